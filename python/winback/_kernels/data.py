"""Loops over model input data: the one-pass validity check of (frequency, recency, T) rows and
the helpers of ``winback.models._base.Compressed`` (systematic sampling, scatter by rank)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from winback._kernels import jit

__all__ = ["pps_rows", "rft_rows_valid", "scatter"]

FloatArray = NDArray[np.float64]


@jit
def pps_rows(weights: FloatArray, tau: float) -> tuple[NDArray[np.int64], FloatArray]:
    """Rows of a systematic sample with probability proportional to weight, and their new
    weights: rows weighing ≥ τ with their own weight; lighter rows where the running total of
    light weight passes a multiple of τ (the first at τ/2), each standing for τ customers."""
    keep = np.empty(weights.size, dtype=np.int64)
    new_weights = np.empty(weights.size)
    n_kept = 0
    light_total = 0.0
    passed = 0.0
    for i in range(weights.size):
        w = weights[i]
        take = w >= tau
        if not take:
            light_total += w
            now = math.floor(light_total / tau + 0.5)
            take = now > passed
            passed = now
        if take:
            keep[n_kept] = i
            new_weights[n_kept] = w if w >= tau else tau
            n_kept += 1
    return keep[:n_kept].copy(), new_weights[:n_kept].copy()


@jit
def scatter(index: NDArray[np.uint32], values: FloatArray, size: int) -> FloatArray:
    """``out[index[i]] = values[i]`` (a loop: several times faster than numpy's fancy indexing)."""
    out = np.zeros(size)
    for i in range(index.size):
        out[index[i]] = values[i]
    return out


@jit
def rft_rows_valid(x: FloatArray, t_x: FloatArray, T: FloatArray) -> bool:
    """Every row finite, x a whole count ≥ 0, 0 ≤ t_x ≤ T and t_x = 0 when x = 0: the checks
    of ``winback.models._summary_data.checked_rft`` in one branch-free pass (comparisons with
    NaN are false, so NaN fails the ``≥ 0`` tests; ``v − v`` is NaN for ±∞)."""
    ok = True
    for i in range(x.size):
        xi, ti, Ti = x[i], t_x[i], T[i]
        ok &= (
            (xi >= 0)
            & (ti >= 0)
            & (xi - xi == 0)
            & (Ti - Ti == 0)
            & (xi == math.floor(xi))
            & (ti <= Ti * (1 + 1e-12))
            & ((xi > 0) | (ti == 0))
        )
    return ok
