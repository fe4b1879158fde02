"""The recency Markov chain of docs/methods.md#markov: states (recency, frequency bucket, spend
bin), observed transitions smoothed toward the model-implied rows with the Dirichlet weight κ,
rewards and the horizon and infinite-horizon values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, sparse, special
from scipy.sparse import linalg as sparse_linalg

from winback._kernels import chain as kernels_chain
from winback._kernels import value as kernels
from winback.errors import WinbackConfigError, WinbackFitError
from winback.value.dropout import STAT_COLUMNS, PeriodicBGNBD, distinct_rows
from winback.value.panel import bin_expr
from winback.value.result import MarkovChain

__all__ = [
    "KAPPA_BOUNDS",
    "ChainRows",
    "ChainTallies",
    "build_chain",
    "chain_rows",
    "customer_values",
    "evidence_kappa",
    "lapse_fit",
    "state_means",
    "tally_chain_rows",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def state_means(
    index: IntArray, values: FloatArray, n_states: int
) -> tuple[FloatArray, FloatArray]:
    """Per state (``index``): the mean of ``values`` (rows, or (rows, k) column by column; NaN
    for an empty state) and the number of rows."""
    counts = np.bincount(index, minlength=n_states).astype(np.float64)
    if values.ndim == 1:
        sums = np.bincount(index, weights=values, minlength=n_states)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sums / counts, counts
    # Column by column, each sum in row order (as np.add.at did, faster).
    table = np.stack(
        [
            np.bincount(index, weights=values[:, k], minlength=n_states)
            for k in range(values.shape[1])
        ],
        axis=1,
    ).reshape(n_states, values.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return table / counts[:, None], counts


def _state_labels(max_recency: int, buckets: Sequence[int], n_m: int) -> pl.DataFrame:
    f_names = []
    for b, low in enumerate(buckets):
        if b + 1 == len(buckets):
            f_names.append(f"{low}+")
        elif buckets[b + 1] - 1 == low:
            f_names.append(str(low))
        else:
            f_names.append(f"{low}-{buckets[b + 1] - 1}")
    rows = []
    for r in range(max_recency + 1):
        r_name = f"{r}+" if r == max_recency else str(r)
        for f, f_name in enumerate(f_names):
            for m in range(n_m):
                rows.append((r, f, m, f"r{r_name}|f{f_name}|m{m}"))
    return pl.DataFrame(
        rows, schema=["recency", "frequency_bucket", "spend_bin", "label"], orient="row"
    ).with_row_index("state")


def _nbd_rows(
    current_state: IntArray, cells: FloatArray, n_states: int, max_recency: int, n_fm: int
) -> FloatArray:
    """π₀ rows (no purchase, then the purchase cells) from the period NBD's cells: the mean over
    the customers currently in s, else over those with the same recency, else over all — the
    chain's rows when the periodic BG/NBD cannot be fitted (docs/methods.md#markov)."""
    mean_cells, in_state = state_means(current_state, cells, n_states)
    recency_of = np.arange(n_states) // n_fm
    r_cells, _ = state_means(recency_of[current_state], cells, max_recency + 1)
    r_counts = np.bincount(recency_of[current_state], minlength=max_recency + 1)
    global_cells = cells.mean(axis=0) if cells.shape[0] else np.zeros(cells.shape[1])
    rows = np.empty((n_states, cells.shape[1]))
    for s in range(n_states):
        r = s // n_fm
        if in_state[s] > 0:
            rows[s] = mean_cells[s]
        elif r_counts[r] > 0:
            rows[s] = r_cells[r]
        else:
            rows[s] = global_cells
    return rows


def _lapse_rows(
    model: PeriodicBGNBD,
    stats: FloatArray,
    recency: IntArray,
    fm: IntArray,
    cells: FloatArray,
    n_states: int,
    max_recency: int,
    n_fm: int,
) -> FloatArray:
    """π₀ rows tied to the periodic BG/NBD (docs/methods.md#markov): for state (r′, f, m), the
    customers now in (r, f, m) with r ≤ r′ — those who reach it after j = r′ − r silent
    periods, weighted by the probability of that silence (1 for j = 0) — each with the model's
    P(active next | silent j more periods), split over the purchase cells as the customer's
    own NB × Gamma–Gamma cells are. States nobody reaches: the same pooled over every (f, m) of
    recency r′, else over all customers now."""
    n_cells = cells.shape[1] - 1
    purchase = cells[:, 1:]
    spread = purchase.sum(axis=1)
    overall = purchase.sum(axis=0)
    total = float(overall.sum())
    overall = overall / total if total > 0 else np.full(n_cells, 1.0 / n_cells)
    # Customers with the same (recency, f, m, X, t_x, k, T) share every weight below.
    unique, inverse, size = distinct_rows(
        recency.astype(np.float64), fm.astype(np.float64), *stats.T
    )
    # Per group, the sum of its customers' shares purchase / spread (overall where spread = 0).
    share_sum = kernels_chain.share_sums(cells, spread, overall, inverse, unique.shape[0])
    g_r = unique[:, 0].astype(np.int64)
    g_fm = unique[:, 1].astype(np.int64)
    # The model sees (X, t_x, k, T) only, shared by groups that differ in (recency, f, m):
    # it is evaluated once per distinct tuple and gathered (elementwise, so the same bits).
    tuples, tuple_of, _ = distinct_rows(*unique[:, 2:].T)
    R = max_recency
    num = np.zeros((n_states, n_cells + 1))
    den = np.zeros((n_states, 1))
    r_num = np.zeros((R + 1, n_cells + 1))
    r_den = np.zeros((R + 1, 1))
    first: tuple[FloatArray, FloatArray] | None = None
    for j in range(R + 1):
        at = g_r + j <= R  # R+ (recency ≥ R) is reached once, at j = R − r
        if not at.any():
            continue
        needed = np.zeros(tuples.shape[0], dtype=bool)
        needed[tuple_of[at]] = True
        gather = (np.cumsum(needed) - 1)[tuple_of[at]]
        X, t, k, T = tuples[needed].T
        sub = {"period_frequency": X, "last_active_offset": t, "active_periods": k}
        silent = (
            np.ones(gather.size)
            if j == 0
            else (1.0 - model.probability_active(j, {**sub, "n_periods": T}))[gather]
        )
        p_next = model.probability_active(1, {**sub, "n_periods": T + j})[gather]
        weight = size[at] * silent
        mass = np.concatenate(
            [(weight * (1.0 - p_next))[:, None], (silent * p_next)[:, None] * share_sum[at]],
            axis=1,
        )
        if j == 0:
            first = (mass.sum(axis=0), weight)
        target = (g_r[at] + j) * n_fm + g_fm[at]
        recency_target = g_r[at] + j
        kernels_chain.add_bincounts(target, mass, num)
        kernels_chain.add_bincounts(recency_target, mass, r_num)
        kernels_chain.add_bincounts(target, weight[:, None], den)
        kernels_chain.add_bincounts(recency_target, weight[:, None], r_den)
    den, r_den = den[:, 0], r_den[:, 0]
    rows = np.empty((n_states, n_cells + 1))
    for s in range(n_states):
        r = s // n_fm
        if den[s] > 0:
            rows[s] = num[s] / den[s]
        elif r_den[r] > 0:
            rows[s] = r_num[r] / r_den[r]
        elif first is not None and first[1].sum() > 0:
            rows[s] = first[0] / first[1].sum()
        else:
            rows[s] = cells.mean(axis=0)
    return rows


def lapse_fit(
    modelled: pl.DataFrame, active_sizes: IntArray
) -> tuple[FloatArray, PeriodicBGNBD | None]:
    """The modelled customers' (X, t_x, k, T) (``active_sizes``: k, their active complete
    periods, in ``modelled``'s order) and the periodic BG/NBD fitted on them
    (docs/methods.md#periodic-bg-nbd; None when it cannot be fitted)."""
    birth = modelled.get_column("birth").to_numpy().astype(np.float64)
    last = modelled.get_column("last_active").to_numpy().astype(np.float64)
    stats = np.stack(
        [
            modelled.get_column("period_frequency").to_numpy().astype(np.float64),
            last - birth,
            active_sizes.astype(np.float64),
            modelled.get_column("n_periods").to_numpy().astype(np.float64),
        ],
        axis=1,
    )
    try:
        model: PeriodicBGNBD | None = PeriodicBGNBD().fit(
            dict(zip(STAT_COLUMNS, stats.T, strict=True))
        )
    except WinbackFitError:
        model = None
    return stats, model


def _prior_rows(
    *,
    lapse: tuple[FloatArray, PeriodicBGNBD | None] | None = None,
    modelled: pl.DataFrame | None,
    active_ids: pl.Series,
    active_sizes: IntArray,
    current_state: IntArray,
    cells: FloatArray,
    n_states: int,
    max_recency: int,
    n_fm: int,
) -> tuple[FloatArray, PeriodicBGNBD | None, FloatArray | None]:
    """The model-implied rows of the customers now (no purchase, then the purchase cells;
    normalised, floored at 1e-300), the periodic BG/NBD they are tied to (None: the NBD's
    rows, when it cannot be fitted or ``modelled`` is None) and the customers' (X, t_x, k, T)
    it was fitted on (None when there is no model). ``lapse``: :func:`lapse_fit` of the same
    customers, already done."""
    model: PeriodicBGNBD | None = None
    rows: FloatArray | None = None
    stats: FloatArray | None = None
    aligned = (
        modelled is not None
        and modelled.height == current_state.size
        and modelled.get_column("customer_id").equals(active_ids, check_names=False)
    )
    if modelled is not None and aligned:
        stats, model = lapse_fit(modelled, active_sizes) if lapse is None else lapse
        if model is not None:
            rows = _lapse_rows(
                model,
                stats,
                current_state // n_fm,
                current_state % n_fm,
                cells,
                n_states,
                max_recency,
                n_fm,
            )
    if rows is None:
        rows = _nbd_rows(current_state, cells, n_states, max_recency, n_fm)
    rows = np.maximum(rows, 1e-300)
    return rows / rows.sum(axis=1, keepdims=True), model, (stats if model is not None else None)


def _square(rows: FloatArray, max_recency: int, n_f: int, n_m: int) -> FloatArray:
    """(S, S) from per-state rows (no purchase, then the purchase cells): no purchase moves
    (r, f, m) to (min(r+1, R), f, m), a purchase in cell (f′, m′) to (0, f′, m′)."""
    n_states = rows.shape[0]
    square = np.zeros((n_states, n_states))
    for s in range(n_states):
        r, rest = divmod(s, n_f * n_m)
        f, m = divmod(rest, n_m)
        # The kernel's plain-Python twin: a call from Python would compile a specialisation.
        square[s, kernels.state_index.py_func(min(r + 1, max_recency), f, m, n_f, n_m)] = rows[s, 0]
        square[s, : n_f * n_m] = rows[s, 1:]
    return square


#: Per state, the observed transitions out of it and the sum of their P(purchase next period)
#: (:func:`_buy_rate`); None when no transition was observed.
BuySums = tuple[FloatArray, FloatArray] | None


def _buy_rate(sums: BuySums, fallback: FloatArray) -> FloatArray:
    """Per state, the mean P(purchase next period) of ``sums``; ``fallback`` where none was
    observed (and everywhere when ``sums`` is None). Kept inside (1e-12, 1 − 1e-12)."""
    if sums is None:
        return fallback
    seen, expected = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(seen > 0, expected / seen, fallback)
    return np.clip(rate, 1e-12, 1.0 - 1e-12)


def _historical_sums(model: PeriodicBGNBD, history: IntArray, n_states: int) -> BuySums:
    """:data:`BuySums` of the observed transitions (``history``: the rows of
    :func:`winback._kernels.chain.history_transitions`), each with the customer's statistics
    as known then."""
    if history.shape[0] == 0:
        return None
    unique, inverse, _ = distinct_rows(*(history[:, c].astype(np.float64) for c in range(2, 6)))
    p_buy = model.probability_active(1, dict(zip(STAT_COLUMNS, unique.T, strict=True)))[inverse]
    seen = np.bincount(history[:, 0], minlength=n_states).astype(np.float64)
    expected = np.bincount(history[:, 0], weights=p_buy, minlength=n_states)
    return seen, cast(FloatArray, expected)  # weighted: float64


def _historical_buy_rate(
    model: PeriodicBGNBD, history: IntArray, n_states: int, fallback: FloatArray
) -> FloatArray:
    """Per state, the periodic BG/NBD's mean P(purchase next period) over the observed
    transitions out of it (``history``: the rows of
    :func:`winback._kernels.chain.history_transitions`), each with the customer's statistics
    as known then; ``fallback`` where none was observed. Kept inside (1e-12, 1 − 1e-12)."""
    return _buy_rate(_historical_sums(model, history, n_states), fallback)


#: Periods summed exactly for ``clv_infinite`` before its geometric tail (docs/methods.md#clv).
TAIL_PERIODS = 60


def _customer_purchases(
    model: PeriodicBGNBD, stats: FloatArray, horizon: int, delta: float
) -> tuple[FloatArray, FloatArray | None]:
    """Per customer, the periodic BG/NBD's discounted expected occasions over the horizon,
    Σ_{t=1..H} δ^t e(t) with e(t) from :meth:`PeriodicBGNBD.expected_by_period`, and (δ < 1
    only, else None) the infinite sum: exact to L = max(H, :data:`TAIL_PERIODS`) periods, then
    continued geometrically at the ratio g = e(L)/e(L−1): + δ^L e(L) δg/(1 − δg)
    (docs/methods.md#clv)."""
    unique, inverse, _ = distinct_rows(*stats.T)
    data = dict(zip(STAT_COLUMNS, unique.T, strict=True))
    if delta >= 1.0:
        per_period = model.expected_by_period(horizon, data)
        # Row sums in a fixed order (no BLAS): the same bits for any thread count.
        within = (per_period * delta ** np.arange(1, horizon + 1, dtype=np.float64)).sum(axis=1)
        return np.asarray(within[inverse]), None
    L = max(horizon, TAIL_PERIODS)
    per_period = model.expected_by_period(L, data)
    discounted = per_period * delta ** np.arange(1, L + 1, dtype=np.float64)
    within = discounted[:, :horizon].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            per_period[:, -2] > 0, np.minimum(per_period[:, -1] / per_period[:, -2], 1.0), 0.0
        )
    tail = discounted[:, -1] * (delta * ratio) / (1.0 - delta * ratio)
    infinite = discounted.sum(axis=1) + tail
    return np.asarray(within[inverse]), np.asarray(infinite[inverse])


#: Largest packed (X, t_x, k, T) key space :func:`_walked_buy_rate` marks densely (16M keys:
#: 80 MB of tables); wider histories go through the transition rows.
_DENSE_KEYS = 1 << 24


def _walked_buy_rate(
    model: PeriodicBGNBD,
    walk: tuple[IntArray, IntArray, IntArray, IntArray, IntArray],
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
    fallback: FloatArray,
    dense_keys: int = _DENSE_KEYS,
) -> FloatArray:
    """:func:`_historical_buy_rate` over the rows of
    :func:`winback._kernels.chain.history_transitions` for ``walk`` = (starts, periods,
    occasions, f_bins, m_bins), without building those rows (:func:`_walked_sums`)."""
    return _buy_rate(
        _walked_sums(model, walk, n_complete, max_recency, n_f, n_m, dense_keys), fallback
    )


def _walked_sums(
    model: PeriodicBGNBD,
    walk: tuple[IntArray, IntArray, IntArray, IntArray, IntArray],
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
    dense_keys: int = _DENSE_KEYS,
) -> BuySums:
    """:func:`_historical_sums` over the rows of
    :func:`winback._kernels.chain.history_transitions` for ``walk`` = (starts, periods,
    occasions, f_bins, m_bins), without building those rows (one per customer and period:
    tens of millions, ~1 GB at 1M customers × 24 months): the distinct (X, t_x, k, T) are marked
    in a dense table of packed keys, then the sums run over the same walk in the same order
    (the same bits). Reads no forecast: it can run before the chain's prior rows."""
    starts, periods, occasions, f_bins, m_bins = walk
    n_states = (max_recency + 1) * n_f * n_m
    firsts = starts[:-1][np.diff(starts) > 0]
    if firsts.size == 0 or not (n_complete - 1 - periods[firsts] > 0).any():
        return None
    after_birth = np.add.reduceat(occasions, firsts) - occasions[firsts]
    radix_t = radix_T = max(n_complete, 1)
    radix_k = int(np.diff(starts).max()) + 1
    space = (int(np.max(after_birth)) + 1) * radix_t * radix_k * radix_T
    if space > dense_keys:
        history = kernels_chain.history_transitions(
            starts, periods, occasions, f_bins, m_bins, n_complete, max_recency, n_f, n_m
        )
        return _historical_sums(model, history, n_states)
    seen = np.zeros(space, dtype=np.uint8)
    kernels_chain.history_keys(
        starts, periods, occasions, n_complete, radix_t, radix_k, radix_T, seen
    )
    keys = np.flatnonzero(seen)
    position = np.cumsum(seen, dtype=np.int32) - 1
    del seen
    keys, T = np.divmod(keys, radix_T)
    keys, k = np.divmod(keys, radix_k)
    X, t = np.divmod(keys, radix_t)
    unique = [c.astype(np.float64) for c in (X, t, k, T)]
    p_buy = model.probability_active(1, dict(zip(STAT_COLUMNS, unique, strict=True)))
    seen_s, expected = kernels_chain.history_buy_sums(
        starts,
        periods,
        occasions,
        f_bins,
        m_bins,
        n_complete,
        max_recency,
        n_f,
        n_m,
        radix_t,
        radix_k,
        radix_T,
        position,
        np.ascontiguousarray(p_buy, dtype=np.float64),
    )
    return seen_s, expected


#: Search range of the Dirichlet weight κ.
KAPPA_BOUNDS = (1e-3, 1e7)


def evidence_kappa(counts: FloatArray, prior: FloatArray) -> float:
    """The κ maximising the Dirichlet-multinomial evidence (docs/methods.md#markov), as the root of
    its derivative in ln κ,
    κ Σ_s [ψ(κ) − ψ(κ + N_s) + Σ_s' π₀(s'|s) (ψ(κπ₀ + N_ss') − ψ(κπ₀))],
    over the observed rows. The root is found to full precision (a maximiser of the evidence
    itself stops where the evidence is flat to rounding, ~1e-8 in ln κ, so the last digits of
    CLV followed rounding noise in the inputs). Falls back to the better end of
    :data:`KAPPA_BOUNDS` when the derivative does not change sign, and keeps the root only
    when its evidence beats both ends."""
    observed = counts.sum(axis=1) > 0
    n_s = counts.sum(axis=1)[observed]
    cells = prior[observed] > 0
    weights, n = prior[observed][cells], counts[observed][cells]

    def slope(log_k: float) -> float:
        k = math.exp(log_k)
        rows = float(np.sum(special.digamma(k) - special.digamma(k + n_s)))
        inner = float(
            np.sum(weights * (special.digamma(k * weights + n) - special.digamma(k * weights)))
        )
        return k * (rows + inner)

    low, high = (math.log(b) for b in KAPPA_BOUNDS)
    candidates = list(KAPPA_BOUNDS)
    if n_s.size and slope(low) > 0 > slope(high):
        root = optimize.brentq(slope, low, high, xtol=1e-14, rtol=1e-15)
        candidates.append(math.exp(float(root)))
    return max(candidates, key=lambda k: kernels.log_evidence(k, counts, prior))


@dataclass(frozen=True)
class ChainRows:
    """The panel's active complete periods the chain counts (docs/methods.md#markov), in the
    panel's customer-then-period order, as writable int64/float64 arrays."""

    ids: pl.Series  # the customers with an active complete period, in order
    sizes: IntArray  # their active periods
    starts: IntArray  # each customer's first row (and the total at the end)
    period: IntArray
    occasions: IntArray
    m_bin: IntArray
    revenue: FloatArray
    # The period's own occasion bucket; None when the rows are tied to ``modelled`` (the
    # bucket is then the customer's active periods so far, from ``starts``).
    f_bin: IntArray | None
    # :func:`lapse_fit` of ``modelled`` and ``sizes`` when already done (rows tied to it only).
    lapse: tuple[FloatArray, PeriodicBGNBD | None] | None = None
    # What the chain reads of the rows, already tallied (:func:`tally_chain_rows`): the row
    # arrays (period, occasions, m_bin, revenue) are then empty.
    tallies: ChainTallies | None = None


@dataclass(frozen=True)
class ChainTallies:
    """All :func:`build_chain` reads of the active rows beyond ``ids``, ``sizes`` and
    ``starts``; none of it reads the forecast (docs/methods.md#markov)."""

    counts: FloatArray  # N(s → s'), dense (S, S)
    # The periodic BG/NBD's walk over the rows (:func:`_walked_sums`) for ``walk_model``.
    walk_sums: BuySums
    walk_model: PeriodicBGNBD | None
    cell_sums: FloatArray  # per purchase cell (f, m): the rows' revenue, summed in row order
    cell_counts: IntArray  # and their number
    overall: float  # the rows' mean revenue (0 without rows)
    # :func:`_customer_purchases` of ``walk_model`` and the rows' :func:`lapse_fit` statistics
    # for (horizon, δ) ``purchases_for``, when asked (it reads no forecast either).
    purchases: tuple[FloatArray, FloatArray | None] | None = None
    purchases_for: tuple[int, float] | None = None


def _active_f_bins(starts: IntArray, sizes: IntArray, buckets: Sequence[int]) -> IntArray:
    """Each active row's frequency bucket when the rows are tied to the modelled customers: the
    customer's active periods so far (docs/methods.md#markov)."""
    edges = np.asarray(list(buckets[1:]), dtype=np.int64)
    n_active = int(starts[-1]) if starts.size else 0
    k_row = np.arange(n_active, dtype=np.int64) - np.repeat(starts[:-1], sizes) + 1
    return np.searchsorted(edges, k_row, side="right").astype(np.int64)


def _tally(
    walk: tuple[IntArray, IntArray, IntArray, IntArray, IntArray],
    revenue: FloatArray,
    lapse_model: PeriodicBGNBD | None,
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
) -> ChainTallies:
    """:class:`ChainTallies` of the rows ``walk`` = (starts, periods, occasions, f_bins,
    m_bins) with their ``revenue``."""
    starts, a_period, _, a_f_bin, a_m_bin = walk
    counts = kernels.transition_counts(
        starts, a_period, a_f_bin, a_m_bin, n_complete, max_recency, n_f, n_m
    )
    walk_sums = (
        None
        if lapse_model is None
        else _walked_sums(lapse_model, walk, n_complete, max_recency, n_f, n_m)
    )
    # numpy sums in row order (the panel's customer-then-period order): a Polars group-by mean
    # may add in another order from run to run, which changed CLVs in the last bits.
    cell = a_f_bin * n_m + a_m_bin
    cell_sums = cast(FloatArray, np.bincount(cell, weights=revenue, minlength=n_f * n_m))
    cell_counts = np.bincount(cell, minlength=n_f * n_m)
    overall = float(revenue.sum() / revenue.size) if revenue.size else 0.0
    return ChainTallies(counts, walk_sums, lapse_model, cell_sums, cell_counts, overall)


def tally_chain_rows(
    rows: ChainRows,
    *,
    n_complete: int,
    max_recency: int,
    buckets: Sequence[int],
    n_m: int,
    horizon: int | None = None,
    discount_rate: float | None = None,
) -> ChainRows:
    """``rows`` (tied to the modelled customers, with :func:`lapse_fit` done) with their
    :class:`ChainTallies` and without their row arrays: what :func:`build_chain` reads of them
    needs no forecast, so it can be tallied beside it, and the rows freed before the chain.
    With ``horizon`` and ``discount_rate``, the customers' discounted expected occasions under
    the periodic BG/NBD are computed here too (the chain's for the same arguments)."""
    if rows.f_bin is not None or rows.lapse is None:
        raise ValueError("only rows tied to the modelled customers, with lapse_fit, are tallied")
    a_f_bin = _active_f_bins(rows.starts, rows.sizes, buckets)
    walk = (rows.starts, rows.period, rows.occasions, a_f_bin, rows.m_bin)
    stats, model = rows.lapse
    tallies = _tally(walk, rows.revenue, model, n_complete, max_recency, len(buckets), n_m)
    del walk, a_f_bin
    if model is not None and horizon is not None and discount_rate is not None:
        delta = 1.0 / (1.0 + discount_rate)  # as build_chain's
        try:
            # A float warning (an overflowing horizon, say) is left to build_chain, which
            # refuses or warns where it always did: these are not kept then (numpy's error
            # state is this thread's own).
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                purchases = _customer_purchases(model, stats, horizon, delta)
            tallies = replace(tallies, purchases=purchases, purchases_for=(horizon, delta))
        except FloatingPointError:
            pass
    none_int, none_float = np.zeros(0, dtype=np.int64), np.zeros(0)
    return ChainRows(
        ids=rows.ids,
        sizes=rows.sizes,
        starts=rows.starts,
        period=none_int,
        occasions=none_int,
        m_bin=none_int,
        revenue=none_float,
        f_bin=None,
        lapse=rows.lapse,
        tallies=tallies,
    )


def chain_rows(
    panel: pl.DataFrame,
    *,
    n_complete: int,
    buckets: Sequence[int],
    spend_edges: Sequence[float],
    modelled: pl.DataFrame | None = None,
) -> ChainRows:
    """The rows :func:`build_chain` counts, read once from ``panel`` (which this function lets
    go of: freed here unless the caller keeps it). ``modelled``: the modelled customers, as for
    :func:`build_chain` (their frequency bucket is not read from the panel when they are the
    rows' customers, in order)."""
    # Column by column: each of the panel's columns the chain reads is filtered to the active
    # complete periods, converted and let go of in turn (an eager filter of the frame copies
    # every column at once, beside the whole panel).
    kept = ("customer_id", "period", "occasions", "revenue", "_mean")
    columns = {column.name: column for column in panel.get_columns() if column.name in kept}
    del panel
    active = (columns["occasions"] > 0) & (columns["period"] < n_complete)

    def rows(name: str) -> pl.Series:
        return columns.pop(name).filter(active)

    grouped = rows("customer_id").to_frame().group_by("customer_id", maintain_order=True).len()
    sizes = grouped.get_column("len").to_numpy()
    ids = grouped.get_column("customer_id")
    del grouped
    aligned = modelled is not None and modelled.get_column("customer_id").equals(
        ids, check_names=False
    )

    def take(column: pl.Series, dtype: type[np.generic]) -> NDArray[Any]:
        # A writable array, converted once (the column is let go of by the caller's name).
        return column.to_numpy().astype(dtype)

    period = take(rows("period"), np.int64)
    occasions_column = rows("occasions")
    f_bin = None
    if not aligned:  # the period's own occasion bucket (tied rows: from ``starts`` instead)
        f_bin = take(
            occasions_column.to_frame()
            .select(bin_expr("occasions", list(buckets[1:])))
            .to_series(),
            np.int64,
        )
    occasions = take(occasions_column, np.int64)
    del occasions_column
    revenue = take(rows("revenue"), np.float64)
    m_bin = take(
        rows("_mean").to_frame().select(bin_expr("_mean", list(spend_edges))).to_series(),
        np.int64,
    )
    return ChainRows(
        ids=ids,
        sizes=sizes,
        starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        period=period,
        occasions=occasions,
        m_bin=m_bin,
        revenue=revenue,
        f_bin=f_bin,
    )


def build_chain(
    *,
    panel: pl.DataFrame | ChainRows,
    current_state: IntArray,
    cells: FloatArray,
    next_margin: FloatArray,
    expected_amount: FloatArray,
    expected_expense: FloatArray,
    n_complete: int,
    max_recency: int,
    buckets: Sequence[int],
    spend_edges: Sequence[float],
    kappa: float | str,
    horizon: int,
    discount_rate: float,
    modelled: pl.DataFrame | None = None,
    overwrite_cells: bool = False,
) -> MarkovChain:
    """docs/methods.md#markov: counts, Dirichlet smoothing toward the periodic BG/NBD's rows for
    the customers the counts came from, re-weighted to today's customers, rewards and values.

    ``modelled`` (the modelled customers in ``current_state`` order, with ``customer_id``,
    ``birth``, ``last_active``, ``period_frequency`` and ``n_periods``) ties the chain to the
    periodic BG/NBD and makes the frequency bucket the active periods so far; without it the
    chain is the period NBD's, with the last active period's occasions as the bucket.
    ``overwrite_cells``: ``cells`` may be overwritten by the cells moved to the customers' next
    frequency buckets (the caller does not read them again; saves a copy of them).
    ``panel`` may be the rows already read from it (:func:`chain_rows`, with the same
    ``modelled``, ``n_complete``, ``buckets`` and ``spend_edges``): the same chain."""
    n_f, n_m = len(buckets), len(spend_edges) + 1
    R = max_recency
    n_states = (R + 1) * n_f * n_m
    if modelled is not None and modelled.height != current_state.size:
        modelled_rows = None  # not the customers of current_state: not tied to them
    else:
        modelled_rows = modelled
    rows_read = (
        panel
        if isinstance(panel, ChainRows)
        else chain_rows(
            panel,
            n_complete=n_complete,
            buckets=buckets,
            spend_edges=spend_edges,
            modelled=modelled_rows,
        )
    )
    del panel  # read once: freed here unless the caller keeps it (engine.fit_and_score does not)
    aligned = rows_read.f_bin is None
    if aligned and modelled_rows is None:
        raise ValueError("chain_rows were tied to modelled customers other than current_state's")
    sizes, starts, a_period = rows_read.sizes, rows_read.starts, rows_read.period
    a_occasions, a_m_bin, revenue = rows_read.occasions, rows_read.m_bin, rows_read.revenue
    active_ids, lapse, tallies = rows_read.ids, rows_read.lapse, rows_read.tallies
    if rows_read.f_bin is not None:
        a_f_bin = rows_read.f_bin
    del rows_read
    if aligned:
        # The frequency bucket is the customer's active periods so far (docs/methods.md#markov).
        edges = np.asarray(list(buckets[1:]), dtype=np.int64)
        if tallies is None:
            a_f_bin = _active_f_bins(starts, sizes, buckets)
        recency_now, m_now = current_state // (n_f * n_m), current_state % n_m
        f_now = np.searchsorted(edges, sizes, side="right").astype(np.int64)
        current_state = (recency_now * n_f + f_now) * n_m + m_now
        f_next = np.searchsorted(edges, sizes + 1, side="right").astype(np.int64)
        by_bin = np.ascontiguousarray(cells[:, 1:].reshape(-1, n_f, n_m).sum(axis=1))
        if overwrite_cells and cells.flags.writeable and cells.flags.c_contiguous:
            moved = cells  # the caller's cells are not read again: no second (n, cells) array
            moved[:, 1:] = 0.0
        else:
            # np.zeros maps fresh zero pages (np.zeros_like writes every byte first).
            moved = np.zeros(cells.shape)
            moved[:, 0] = cells[:, 0]
        kernels.place_by_bin(by_bin, f_next, n_m, moved)
        del by_bin
        cells = moved
        del moved
    rows, lapse_model, lapse_stats = _prior_rows(
        lapse=lapse if aligned else None,
        modelled=modelled,
        active_ids=active_ids,
        active_sizes=sizes,
        current_state=current_state,
        cells=cells,
        n_states=n_states,
        max_recency=R,
        n_fm=n_f * n_m,
    )
    del cells  # freed here unless the caller keeps them (engine.fit_and_score does not)
    if tallies is None:
        tallies = _tally(
            (starts, a_period, a_occasions, a_f_bin, a_m_bin),
            revenue,
            lapse_model,
            n_complete,
            R,
            n_f,
            n_m,
        )
        del a_period, a_occasions, a_f_bin, a_m_bin, revenue
    elif tallies.walk_model is not lapse_model:
        raise ValueError("the chain rows were tallied for another periodic BG/NBD")
    counts = tallies.counts
    buy_now = rows[:, 1:].sum(axis=1)
    buy_then = buy_now
    if lapse_model is not None:
        buy_then = _buy_rate(tallies.walk_sums, buy_now)
    # π₀: the model's rows for the customers the counts come from — the buy rate they had
    # then, split over the purchase cells as today's customers' are.
    then = np.concatenate(
        [(1.0 - buy_then)[:, None], (buy_then / buy_now)[:, None] * rows[:, 1:]], axis=1
    )
    prior = _square(then, R, n_f, n_m)
    in_state = np.bincount(current_state, minlength=n_states).astype(np.float64)
    kappa_value = evidence_kappa(counts, prior) if kappa == "evidence" else float(kappa)
    n_s = counts.sum(axis=1)
    P = (counts + kappa_value * prior) / (n_s + kappa_value)[:, None]
    if lapse_model is not None:
        # Today's customers in s differ from those the counts saw by the model's buy odds:
        # the smoothed row re-weighted by (today / then), no purchase and purchase apart.
        scale = _square(
            np.concatenate(
                [
                    ((1.0 - buy_now) / (1.0 - buy_then))[:, None],
                    np.repeat((buy_now / buy_then)[:, None], n_f * n_m, axis=1),
                ],
                axis=1,
            ),
            R,
            n_f,
            n_m,
        )
        P = P * scale
        P = P / P.sum(axis=1, keepdims=True)
    # Rewards: expected amount from the chain's purchase cells × margin − expense share.
    cell_sums, cell_counts, overall = tallies.cell_sums, tallies.cell_counts, tallies.overall
    with np.errstate(divide="ignore", invalid="ignore"):
        amounts = np.where(cell_counts > 0, cell_sums / cell_counts, overall)
    expected_amounts = P[:, : n_f * n_m] @ amounts
    sums = np.bincount(current_state, weights=expected_amount, minlength=n_states)
    margin_sums = np.bincount(
        current_state, weights=expected_amount * next_margin, minlength=n_states
    )
    expense_sums = np.bincount(current_state, weights=expected_expense, minlength=n_states)
    total = float(expected_amount.sum())
    global_margin = float((expected_amount * next_margin).sum()) / total if total > 0 else 1.0
    global_expense = float(expected_expense.sum()) / total if total > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_s = np.where(sums > 0, margin_sums / sums, global_margin)
        expense_s = np.where(sums > 0, expense_sums / sums, global_expense)
    reward = expected_amounts * (margin_s - expense_s)
    delta = 1.0 / (1.0 + discount_rate)
    P_sparse = sparse.csr_array(P)
    v = np.zeros(n_states)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
        for _ in range(horizon):
            v = delta * (reward + P_sparse @ v)
    if not np.isfinite(v).all():
        raise WinbackConfigError(
            f"horizon={horizon} with discount_rate={discount_rate!r}: the discounted values "
            "overflow the float range (δ^H = (1 + d)^−H grows without bound for d < 0); use a "
            "shorter horizon or a discount rate ≥ 0 (docs/methods.md#markov)"
        )
    purchases: FloatArray | None = None
    purchases_infinite: FloatArray | None = None
    if lapse_model is not None and lapse_stats is not None:
        if tallies.purchases is not None and tallies.purchases_for == (horizon, delta):
            # computed beside the forecast for the same model (checked above) and statistics
            purchases, purchases_infinite = tallies.purchases
        else:
            purchases, purchases_infinite = _customer_purchases(
                lapse_model, lapse_stats, horizon, delta
            )
    value_infinite = pl.Series("value_infinite", [None] * n_states, dtype=pl.Float64)
    if discount_rate > 0:
        # δ < 1: the infinite sum converges. For d ≤ 0 it diverges (P is stochastic), and a
        # solve would return a meaningless finite number: the value is left null instead.
        identity = sparse.identity(n_states, format="csc")
        v_inf = sparse_linalg.spsolve((identity - delta * P_sparse).tocsc(), delta * reward)
        value_infinite = pl.Series("value_infinite", np.asarray(v_inf, dtype=np.float64))
    states = _state_labels(R, buckets, n_m).with_columns(
        pl.Series("customers", in_state.astype(np.int64)),
        pl.Series("transitions", n_s),
        pl.Series("reward", reward),
        pl.Series("value", v),
        value_infinite,
    )
    return MarkovChain(
        states=states,
        transition_matrix=P_sparse,
        counts=sparse.csr_array(counts),
        prior=sparse.csr_array(prior),
        kappa=kappa_value,
        horizon=horizon,
        discount_rate=discount_rate,
        lapse=lapse_model,
        customer_state=current_state,
        customer_purchases=purchases,
        customer_purchases_infinite=purchases_infinite,
    )


def customer_values(
    chain: MarkovChain,
    mean_amount: FloatArray,
    expected_amount: FloatArray,
    expected_value: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """``clv`` and ``clv_infinite`` per customer (docs/methods.md#clv): the chain's
    ``customer_purchases`` (``customer_purchases_infinite``; NaN when it is None) × E[M′]
    (``mean_amount``) × the customer's value per unit of revenue, ``expected_value /
    expected_amount`` (0 where no revenue is expected)."""
    if chain.customer_purchases is None:
        raise ValueError("customer_values needs a chain tied to the periodic BG/NBD")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_revenue = np.where(expected_amount > 0, expected_value / expected_amount, 0.0)
    per_occasion = mean_amount * per_revenue
    clv = chain.customer_purchases * per_occasion
    clv_inf = (
        np.full(clv.shape, np.nan)
        if chain.customer_purchases_infinite is None
        else chain.customer_purchases_infinite * per_occasion
    )
    return np.asarray(clv, dtype=np.float64), np.asarray(clv_inf, dtype=np.float64)
