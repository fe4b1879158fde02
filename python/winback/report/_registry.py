"""The report's sections: what a section returns, and the registry the report walks in order.

A section is a function ``build(ctx) -> SectionBody`` registered under a key with a title and an
order. It is left out of the report — and listed under "Sections not shown" with the reason —
when a capability it ``requires`` (an attribute of the ``winback`` package, e.g. ``"rfm"``) is
missing at run time, or when it raises :class:`SkipSection` (e.g. no amount column, nobody
bought twice). This is how sections for features still being built light up when they land.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from winback.report._context import ReportContext

__all__ = [
    "Section",
    "SectionBody",
    "SkipSection",
    "TableBlock",
    "missing_capabilities",
    "register_section",
    "registered_sections",
    "unregister_section",
]


class SkipSection(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a section builder to leave its section out, with the reason shown in the report."""


@dataclass(frozen=True)
class TableBlock:
    """A table in a section. ``key_col`` names a column whose values become ``data-key``
    attributes of the rows (the summary table uses it so tests and scripts can find figures)."""

    frame: pl.DataFrame
    caption: str = ""
    key_col: str | None = None


@dataclass
class SectionBody:
    """What a section shows: a paragraph of text, charts (Altair charts or Vega-Lite dicts, each
    with a caption) and tables, in that order."""

    text: str = ""
    charts: list[tuple[Any, str]] = field(default_factory=list)
    tables: list[TableBlock] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


SectionBuilder = Callable[["ReportContext"], SectionBody]


@dataclass(frozen=True)
class Section:
    """A registered section: ``key`` (HTML id), ``title``, ``order`` (ascending), the winback
    attributes it ``requires`` and its ``build`` function."""

    key: str
    title: str
    order: float
    requires: tuple[str, ...]
    build: SectionBuilder


_REGISTRY: dict[str, Section] = {}


def register_section(
    key: str, title: str, *, order: float, requires: Sequence[str] = ()
) -> Callable[[SectionBuilder], SectionBuilder]:
    """Registers ``build(ctx) -> SectionBody`` as a report section (a decorator).

    ``requires`` names attributes of the ``winback`` package the section needs (``"rfm"``,
    ``"quadrant"``, ``"value"``, ``"campaign"``…); while any is missing the section is skipped.
    Registering an existing key replaces that section.
    """

    def decorator(build: SectionBuilder) -> SectionBuilder:
        _REGISTRY[key] = Section(key, title, float(order), tuple(requires), build)
        return build

    return decorator


def unregister_section(key: str) -> None:
    """Removes a registered section (no error when it is not registered)."""
    _REGISTRY.pop(key, None)


def registered_sections() -> list[Section]:
    """The registered sections in report order."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.key))


def missing_capabilities(section: Section) -> list[str]:
    """The names in ``section.requires`` that the installed ``winback`` does not provide.

    ``requires`` names attributes of the public ``winback`` package (any function, including
    ones a newer or patched winback adds), so they are looked up by name at run time in the
    package, which is always imported by then (this module is inside it); the report does not
    import the package it is part of.
    """
    package = sys.modules["winback"]
    return [name for name in section.requires if not callable(getattr(package, name, None))]
