"""Reading (frequency, recency, T) summaries for the purchase-count models."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._kernels.data import rft_rows_valid
from winback.errors import WinbackFitError, WinbackInputError
from winback.models._base import Compressed, check_columns, compress, frame_of

__all__ = ["RFT_COLUMNS", "checked_rft", "compressed_rft", "rft_arrays"]

FloatArray = NDArray[np.float64]
RFT_COLUMNS = ("frequency", "recency", "T")


def checked_rft(
    data: Any,
    *,
    model: str,
    frequency_col: str,
    recency_col: str,
    T_col: str,
) -> pl.DataFrame:
    """The summary's frequency/recency/T as a checked Float64 frame (roles as column names)."""
    frame = frame_of(data)
    names = {"frequency": frequency_col, "recency": recency_col, "T": T_col}
    fast = _valid_rft(frame, names)
    if fast is not None:
        return fast
    # Something is wrong: the column-by-column checks find it and say where.
    return _checked_rft_by_column(frame, names, model=model)


def _checked_rft_by_column(
    frame: pl.DataFrame, names: dict[str, str], *, model: str
) -> pl.DataFrame:
    """The checks of :func:`checked_rft` one by one, raising with the rows at fault."""
    checked = check_columns(frame, names, model=model, integer=("frequency",))
    too_late = checked["recency"] > checked["T"] * (1 + 1e-12)
    if too_late.any():
        rows = too_late.arg_true().head(5).to_list()
        raise WinbackInputError(
            f"{model}: recency exceeds T in {int(too_late.sum())} row(s), first at index {rows}; "
            "recency (last − first purchase) must be ≤ T (end of observation − first purchase)"
        )
    stray = (checked["frequency"] == 0) & (checked["recency"] > 0)
    if stray.any():
        rows = stray.arg_true().head(5).to_list()
        raise WinbackInputError(
            f"{model}: {int(stray.sum())} customer(s) with frequency 0 have recency > 0 (first at "
            f"index {rows}); with no repeat purchase recency must be 0"
        )
    return checked


def _valid_rft(frame: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame | None:
    """The checked frame in one pass over the data when every check passes, else None."""
    if not all(name in frame.columns for name in names.values()):
        return None
    series = [frame.get_column(name) for name in names.values()]
    if not all(s.dtype.is_numeric() and s.null_count() == 0 for s in series):
        return None
    checked = pl.DataFrame(
        [s.cast(pl.Float64).alias(role) for s, role in zip(series, names, strict=True)]
    )
    x, t_x, T = (np.ascontiguousarray(s.to_numpy()) for s in checked.get_columns())
    return checked if rft_rows_valid(x, t_x, T) else None


def compressed_rft(checked: pl.DataFrame, weights: pl.Series | None, *, model: str) -> Compressed:
    """Unique (x, t_x, T) tuples with counts; refuses data where nobody purchased again."""
    if checked.height == 0:
        # nothing to fit is a property of the input, not of the optimiser: exit 2, not 3
        raise WinbackInputError(
            f"{model}: the summary has no customers (the input has no valid transactions)"
        )
    if not (checked["frequency"] > 0).any():
        raise WinbackFitError(
            f"{model}: no customer made a repeat purchase (every frequency is 0), so the purchase "
            "rate and dropout cannot be told apart; use a longer calibration period"
        )
    return compress(checked, weights, ranked=True)


def rft_arrays(checked: pl.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    """frequency, recency, T as contiguous float64 arrays."""
    return (
        np.ascontiguousarray(checked["frequency"].to_numpy(), dtype=np.float64),
        np.ascontiguousarray(checked["recency"].to_numpy(), dtype=np.float64),
        np.ascontiguousarray(checked["T"].to_numpy(), dtype=np.float64),
    )
