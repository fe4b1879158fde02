"""Next-period margin and marketing expense (docs/methods.md#margin, #expense): each customer's own
history first, then their segment's, then the population's."""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

__all__ = ["expected_expenses", "next_margins"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _ols_terms(c: pl.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per customer: the margin OLS slope (NaN with fewer than 2 periods) and its pooled
    within-customer numerator and denominator."""
    n = c.get_column("_mn").to_numpy().astype(np.float64)
    sk, sm, skm, skk = (
        c.get_column(k).fill_null(0.0).to_numpy() for k in ("_sk", "_sm", "_skm", "_skk")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.where(n >= 2, skm - sk * sm / np.maximum(n, 1), 0.0)
        den = np.where(n >= 2, skk - sk * sk / np.maximum(n, 1), 0.0)
        slope = np.where((n >= 2) & (den > 0), num / den, np.nan)
    return slope, num, den


def _group_fallback(
    groups: IntArray, n_groups: int, num: FloatArray, den: FloatArray, default: float
) -> FloatArray:
    """Per-group ratio Σnum/Σden (the population's when a group has den 0, else ``default``)."""
    g_num = np.bincount(groups, weights=num, minlength=n_groups)
    g_den = np.bincount(groups, weights=den, minlength=n_groups)
    total = float(num.sum()) / float(den.sum()) if den.sum() > 0 else default
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g_den > 0, g_num / g_den, total)


def next_margins(
    c: pl.DataFrame,
    segments: IntArray,
    n_segments: int,
    n_complete: int,
    *,
    has_cost: bool,
    margin: float | None,
) -> tuple[FloatArray, list[str]]:
    """Next margin (docs/methods.md#margin): last margin, adjusted by Δ = slope · r / 2 when the
    customer has been inactive r > 0 periods (clamped to [0, 1]); slope = the customer's OLS slope
    of margin on period index, the segment's pooled slope with fewer than 2 periods."""
    n = c.height
    if not has_cost:
        if margin is None:
            return np.ones(n), ["no_cost_data"] * n
        return np.full(n, margin), ["margin_argument"] * n
    slope, num, den = _ols_terms(c)
    seg_slope = _group_fallback(segments, n_segments, num, den, 0.0)
    slope = np.where(np.isnan(slope), seg_slope[segments], slope)
    last = c.get_column("last_margin").fill_null(np.nan).to_numpy()
    r = (n_complete - 1 - c.get_column("last_margin_period").fill_null(-1).to_numpy()).astype(
        np.float64
    )
    adjusted = np.clip(last * (1.0 + slope * r / 2.0), 0.0, 1.0)
    own = np.where(r == 0, last, adjusted)
    revenue = c.get_column("revenue_to_date").to_numpy()
    cost = c.get_column("cost_to_date").to_numpy()
    positive = revenue > 0
    seg_margin = _group_fallback(
        segments,
        n_segments,
        np.where(positive, revenue - cost, 0.0),
        np.where(positive, revenue, 0.0),
        1.0 if margin is None else margin,
    )
    has_own = ~np.isnan(last)
    fallback = np.full(n, margin) if margin is not None else seg_margin[segments]
    basis = np.where(has_own, "cost", "margin_argument" if margin is not None else "segment")
    return np.where(has_own, own, fallback), basis.tolist()


def expected_expenses(
    c: pl.DataFrame,
    expected_amount: FloatArray,
    segments: IntArray,
    n_segments: int,
    *,
    has_expenses: bool,
) -> tuple[FloatArray, list[str]]:
    """The expense rule (docs/methods.md#expense): Rate = Σ expense / Σ revenue, Floor = the
    smallest positive per-period expense, X = expected_amount × Rate; X if X > Floor, else X if
    expected_amount < Floor, else Floor. Without past revenue or positive expense: the segment's
    Rate and Floor (then the population's)."""
    n = c.height
    if not has_expenses:
        return np.zeros(n), ["no_expense_data"] * n
    revenue = c.get_column("revenue_to_date").to_numpy()
    spent = c.get_column("expense_to_date").to_numpy()
    floor = c.get_column("expense_floor").fill_null(np.nan).to_numpy()
    own = (revenue > 0) & ~np.isnan(floor)
    rate = np.where(own, spent / np.where(own, revenue, 1.0), np.nan)
    seg_rate = _group_fallback(
        segments, n_segments, np.where(own, spent, 0.0), np.where(own, revenue, 0.0), 0.0
    )
    big = np.inf
    seg_floor = np.full(n_segments, big)
    np.minimum.at(seg_floor, segments[own], floor[own])
    pop_floor = float(floor[own].min()) if own.any() else 0.0
    seg_has = np.bincount(segments[own], minlength=n_segments) > 0
    seg_floor = np.where(seg_has, seg_floor, pop_floor)
    basis = np.where(own, "own", np.where(seg_has[segments], "segment", "population"))
    rate = np.where(own, rate, seg_rate[segments])
    floor = np.where(own, floor, seg_floor[segments])
    x = expected_amount * rate
    out = np.where(x > floor, x, np.where(expected_amount < floor, x, floor))
    return out, basis.tolist()
