"""What :func:`winback.report` returns (:class:`Report`) and its progress callback type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Progress", "Report"]

#: ``progress(step, done, total)``: called before each step of the report.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Report:
    """A built report.

    Attributes
    ----------
    html : the page.
    path : where it was written (``None`` without ``output``).
    figures : the data-summary figures shown in its first table (rows read, rejected and used,
        customers by status, first and last purchase, as_of, total amount).
    sections : keys of the sections shown, in order.
    skipped : key → reason of each section left out.
    parameters : the parameters shown in its last table.
    """

    html: str = field(repr=False)
    path: Path | None
    figures: dict[str, Any]
    sections: list[str]
    skipped: dict[str, str]
    parameters: dict[str, Any] = field(repr=False)

    def save(self, path: str | Path) -> Path:
        """Writes the page to ``path`` (UTF-8) and returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.html, encoding="utf-8")
        return target
