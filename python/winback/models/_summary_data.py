"""Reading (frequency, recency, T) summaries for the purchase-count models."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

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
    checked = check_columns(
        frame,
        {"frequency": frequency_col, "recency": recency_col, "T": T_col},
        model=model,
        integer=("frequency",),
    )
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


def compressed_rft(checked: pl.DataFrame, weights: pl.Series | None, *, model: str) -> Compressed:
    """Unique (x, t_x, T) tuples with counts; refuses data where nobody purchased again."""
    if checked.height == 0:
        raise WinbackFitError(f"{model}: the summary has no customers")
    if not (checked["frequency"] > 0).any():
        raise WinbackFitError(
            f"{model}: no customer made a repeat purchase (every frequency is 0), so the purchase "
            "rate and dropout cannot be told apart; use a longer calibration period"
        )
    return compress(checked, weights)


def rft_arrays(checked: pl.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    """frequency, recency, T as contiguous float64 arrays."""
    return (
        np.ascontiguousarray(checked["frequency"].to_numpy(), dtype=np.float64),
        np.ascontiguousarray(checked["recency"].to_numpy(), dtype=np.float64),
        np.ascontiguousarray(checked["T"].to_numpy(), dtype=np.float64),
    )
