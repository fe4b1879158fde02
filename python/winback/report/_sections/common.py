"""What the report's sections share: chart sizing and finding a column by its usual names."""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["score_column", "sized"]


def sized(chart: Any, width: int = 460, height: int = 260) -> Any:
    """``chart`` with the report's chart size (or the one given)."""
    return chart.properties(width=width, height=height)


def score_column(frame: pl.DataFrame, *names: str) -> str | None:
    """The first of ``names`` that ``frame`` has (a capability's columns by their usual names)."""
    return next((n for n in names if n in frame.columns), None)
