"""What the report's sections share: chart sizing, tooltip channels and finding a column by its
usual names."""

from __future__ import annotations

from typing import Any

import polars as pl

from winback.report import _vegalite as vl

__all__ = ["score_column", "sized", "tooltips"]


def sized(chart: Any, width: int = 460, height: int = 260) -> Any:
    """``chart`` with the report's chart size (or the one given)."""
    return chart.properties(width=width, height=height)


def score_column(frame: pl.DataFrame, *names: str) -> str | None:
    """The first of ``names`` that ``frame`` has (a capability's columns by their usual names)."""
    return next((n for n in names if n in frame.columns), None)


def tooltips(*shorthands: str) -> list[Any]:
    """Tooltip channels for ``"field:type"`` shorthands.

    The same spec as passing the strings to ``encode()``, but Altair resolves a string channel
    through its schema on every call (tens of ms each), so the sections pass channel objects
    (``vl.X(...)``, ``vl.Tooltip(...)``) and never bare strings.
    """
    return [vl.Tooltip(shorthand) for shorthand in shorthands]
