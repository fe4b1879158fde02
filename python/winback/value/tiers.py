"""Value tiers (docs/methods.md#value-tiers): customers ranked by a value, cut into named tiers by
cumulative share, with the rest and the negative values in tiers of their own."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback.value.result import NEGATIVE_TIER, REST_TIER

__all__ = ["min_rank", "tier_codes", "tier_labels", "tier_names", "tier_series"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def tier_codes(values: FloatArray, tiers: Mapping[str, float]) -> IntArray:
    """Value tiers (docs/methods.md#value-tiers) as codes: non-negative values ranked from the top
    (ties share the better tier) get tier ``i`` (the i-th of ``tiers``) by cumulative share, the
    rest ``len(tiers)`` (:data:`REST_TIER`); negative values ``len(tiers) + 1``
    (:data:`NEGATIVE_TIER`); NaN −1."""
    codes = np.full(values.shape[0], -1, dtype=np.int64)
    finite = ~np.isnan(values)
    nonneg = finite & (values >= 0)
    n = int(nonneg.sum())
    codes[finite & ~nonneg] = len(tiers) + 1
    if n:
        share = min_rank(-values[nonneg]) / n
        bounds = np.cumsum(list(tiers.values())) + 1e-12
        # The first tier whose cumulative share reaches the customer's; past the last: the rest.
        codes[nonneg] = np.searchsorted(bounds, share, side="left")
    return codes


def min_rank(values: FloatArray) -> IntArray:
    """1-based ranks in ascending order, ties sharing the lowest rank (``method="min"`` of
    ``scipy.stats.rankdata``, computed the same way: equal values, −0.0 and 0.0 included, form
    one group). NumPy only, so the value engine does not import ``scipy.stats`` (≈ 0.5 s)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts + 1
    ranks: IntArray = starts[inverse.reshape(-1)].astype(np.int64)
    return ranks


def tier_names(tiers: Mapping[str, float]) -> list[str]:
    """Names of the codes of :func:`tier_codes`, in code order."""
    return [*list(tiers), REST_TIER, NEGATIVE_TIER]


def tier_labels(values: FloatArray, tiers: Mapping[str, float]) -> list[str | None]:
    """Value tiers (docs/methods.md#value-tiers): non-negative values ranked from the top (ties
    share the better tier) get the tiers by cumulative share, the rest :data:`REST_TIER`; negative
    values :data:`NEGATIVE_TIER`; NaN (not modelled) None."""
    return tier_series(tier_codes(values, tiers), tiers).to_list()


def tier_series(codes: IntArray, tiers: Mapping[str, float]) -> pl.Series:
    """The tier names of :func:`tier_codes` as a String series (null for code −1)."""
    names = pl.Series(tier_names(tiers), dtype=pl.String)
    return names.gather(pl.Series(codes).set(pl.Series(codes < 0), None))
