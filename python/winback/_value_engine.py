"""The numerical half of :func:`winback.value`: model fits, per-customer forecasts, margin and
expense rules (SPEC §6) and the Markov chain (SPEC §7). Imported on first use (numba, scipy)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, sparse, special, stats
from scipy.sparse import linalg as sparse_linalg

from winback import _value_kernels as kernels
from winback._winback import effective_threads
from winback.errors import WinbackFitError
from winback.models import BetaGeoModel, GammaGammaModel, NBDModel
from winback.models.gamma_gamma import spend_upside_and_mass
from winback.value import (
    NEGATIVE_TIER,
    REST_TIER,
    VALUE_COLUMNS,
    MarkovChain,
    ValueInfo,
    ValueResult,
    _bin_expr,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_PMF_MAX = 10
#: Rows (customers or distinct tuples) per unit of threaded work: fixed, so the split never
#: depends on the thread count.
_CHUNK = 1 << 16
_T = TypeVar("_T")
_pools: dict[int, ThreadPoolExecutor] = {}
_NOT_MODELLED = "first purchase in the incomplete current period: no complete period to model"


def _pool(n_threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(n_threads)
    if pool is None:
        pool = _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="winback-value")
    return pool


def _by_chunks(work: Callable[[slice], _T], n: int) -> list[_T]:
    """``work`` on fixed slices of ``range(n)`` (``_CHUNK`` long) on ``effective_threads()``
    threads (scipy's special functions release the GIL); results in slice order. ``work`` is
    elementwise, so the bits never depend on the thread count."""
    slices = [slice(lo, min(lo + _CHUNK, n)) for lo in range(0, n, _CHUNK)]
    threads = min(effective_threads(None), len(slices))
    if threads <= 1:
        return [work(s) for s in slices]
    return list(_pool(threads).map(work, slices))


def _stack(parts: Sequence[FloatArray], width: int) -> FloatArray:
    """Row blocks from :func:`_by_chunks` as one (n, width) array."""
    return np.concatenate(parts) if parts else np.zeros((0, width))


def _distinct(*columns: NDArray[Any]) -> tuple[IntArray, IntArray]:
    """Distinct rows of equal-length columns: (the first row of each distinct row, the
    inverse mapping each row to its distinct row). Values are evaluated once per distinct row
    and gathered back: the same bits as evaluating every row."""
    n = columns[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort(columns[::-1])
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for column in columns:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new].astype(np.int64), inverse


# -- predictives ---------------------------------------------------------------------------------
def _nb_log_pmf(j: FloatArray | float, r: FloatArray, pi: FloatArray) -> FloatArray:
    return np.asarray(
        special.gammaln(r + j)
        - special.gammaln(r)
        - special.gammaln(np.asarray(j) + 1.0)
        + r * np.log(pi)
        + j * np.log1p(-pi)
    )


def _spend_bin_probs(
    p: float, Q: FloatArray, G: FloatArray, c: FloatArray, edges: Sequence[float]
) -> FloatArray:
    """P(M' in each spend bin | c occasions): differences of I_u(p c, Q), u = c m/(G + c m)."""
    n = Q.shape[0]
    cdf = np.zeros((n, len(edges) + 2))
    cdf[:, -1] = 1.0
    for i, edge in enumerate(edges):
        m = max(edge, 0.0)
        cdf[:, i + 1] = special.betainc(p * c, Q, c * m / (G + c * m))
    return np.diff(cdf, axis=1)


def tier_codes(values: FloatArray, tiers: Mapping[str, float]) -> IntArray:
    """SPEC §6 tiers as codes: non-negative values ranked from the top (ties share the better
    tier) get tier ``i`` (the i-th of ``tiers``) by cumulative share, the rest ``len(tiers)``
    (:data:`REST_TIER`); negative values ``len(tiers) + 1`` (:data:`NEGATIVE_TIER`); NaN −1."""
    codes = np.full(values.shape[0], -1, dtype=np.int64)
    finite = ~np.isnan(values)
    nonneg = finite & (values >= 0)
    n = int(nonneg.sum())
    codes[finite & ~nonneg] = len(tiers) + 1
    if n:
        share = stats.rankdata(-values[nonneg], method="min") / n
        bounds = np.cumsum(list(tiers.values())) + 1e-12
        # The first tier whose cumulative share reaches the customer's; past the last: the rest.
        codes[nonneg] = np.searchsorted(bounds, share, side="left")
    return codes


def tier_names(tiers: Mapping[str, float]) -> list[str]:
    """Names of the codes of :func:`tier_codes`, in code order."""
    return [*list(tiers), REST_TIER, NEGATIVE_TIER]


def tier_labels(values: FloatArray, tiers: Mapping[str, float]) -> list[str | None]:
    """SPEC §6 tiers: non-negative values ranked from the top (ties share the better tier) get
    the tiers by cumulative share, the rest :data:`REST_TIER`; negative values
    :data:`NEGATIVE_TIER`; NaN (not modelled) None."""
    return _tier_series(tier_codes(values, tiers), tiers).to_list()


def _tier_series(codes: IntArray, tiers: Mapping[str, float]) -> pl.Series:
    names = pl.Series(tier_names(tiers), dtype=pl.String)
    return names.gather(pl.Series(codes).set(pl.Series(codes < 0), None))


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
    """SPEC §6 margin: last margin, adjusted by Δ = slope · r / 2 when the customer has been
    inactive r > 0 periods (clamped to [0, 1]); slope = the customer's OLS slope of margin on
    period index, the segment's pooled slope with fewer than 2 periods."""
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
    """SPEC §6 expense rule: Rate = Σ expense / Σ revenue, Floor = the smallest positive
    per-period expense, X = expected_amount × Rate; X if X > Floor, else X if expected_amount <
    Floor, else Floor. Without past revenue or positive expense: the segment's Rate and Floor
    (then the population's)."""
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


@dataclass(frozen=True)
class _FrequencyTuples:
    """NB predictives (SPEC §5) per distinct (X, T): the next period's count X' ~ NegBin(r', π)."""

    r_post: FloatArray
    pi: FloatArray
    expected: FloatArray  # E[X'] = r'/α'
    p_active: FloatArray  # 1 − P(X' = 0)
    pmf: FloatArray  # P(X' = j), j = 0 … _PMF_MAX
    mode: FloatArray
    p_mode: FloatArray
    upside: FloatArray  # E[X' | x_i ≤ X' ≤ x_max]
    p_upside: FloatArray  # P(x_i ≤ X' ≤ x_max)
    p_zero: FloatArray  # P(X' = 0)
    weights: dict[int, FloatArray]  # P(X' = j) for the counts of the finite frequency buckets
    open_tail: FloatArray  # P(X' ≥ the open bucket's lower bound)
    open_count: FloatArray  # the open bucket's conditional mean count (≥ its lower bound)
    count: FloatArray  # max(1, round(E[X'])): the occasions of the spend-bin forecast


def _frequency_tuples(
    nbd: NBDModel, unique: pl.DataFrame, buckets: Sequence[int]
) -> _FrequencyTuples:
    """The frequency side of the forecast on the distinct (``period_frequency``, ``n_periods``)
    rows (a few thousand, whatever the customer count)."""
    r, alpha = nbd.params_["r"], nbd.params_["alpha"]
    X = unique.get_column("period_frequency").to_numpy().astype(np.float64)
    T = unique.get_column("n_periods").to_numpy().astype(np.float64)
    r_post, a_post = r + X, alpha + T
    pi = a_post / (a_post + 1.0)
    expected = r_post / a_post
    mode = np.where(r_post > 1, np.floor((r_post - 1) * (1 - pi) / pi), 0.0)
    # P(A) = P(x_i ≤ X' ≤ x_max) of the seed's upside product.
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(T > 0, np.ceil(X / np.where(T > 0, T, 1.0)), 0.0)
    hi = np.maximum(lo, math.ceil(nbd.data_summary_.get("max_rate", math.inf)))

    def at_least(k: FloatArray) -> FloatArray:
        return np.where(k <= 0, 1.0, special.betainc(np.maximum(k, 1.0), r_post, 1.0 - pi))

    n = X.shape[0]
    low = buckets[-1]
    # The open bucket: its mass and its conditional mean count (a continuous c for the spend).
    tail = special.betainc(float(low), r_post, 1.0 - pi) if low >= 1 else np.ones(n)
    above = special.betainc(float(low - 1), r_post + 1.0, 1.0 - pi) if low >= 2 else np.ones(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_count = r_post * (1.0 - pi) / pi * above / tail
    return _FrequencyTuples(
        r_post=r_post,
        pi=pi,
        expected=expected,
        p_active=-np.expm1(r_post * np.log(pi)),
        pmf=np.exp(np.stack([_nb_log_pmf(float(j), r_post, pi) for j in range(_PMF_MAX + 1)], 1)),
        mode=mode,
        p_mode=np.exp(_nb_log_pmf(mode, r_post, pi)),
        upside=nbd.frequency_upside(unique).to_numpy(),
        p_upside=np.clip(at_least(lo) - np.where(np.isinf(hi), 0.0, at_least(hi + 1.0)), 0.0, 1.0),
        p_zero=np.exp(r_post * np.log(pi)),
        weights={j: np.exp(_nb_log_pmf(float(j), r_post, pi)) for j in range(buckets[0], low)},
        open_tail=tail,
        open_count=np.where(tail > 0, np.maximum(mean_count, float(low)), float(low)),
        count=np.maximum(1.0, np.round(expected)),
    )


def _spend_upside(
    p: float, z: FloatArray, Q: FloatArray, G: FloatArray, upper: float
) -> tuple[FloatArray, FloatArray]:
    """E[M' | m_i ≤ M' ≤ m_max] over one occasion and P(m_i ≤ M' ≤ m_max) (SPEC §5), m_i = z̄,
    m_max = ``upper``: the model's own closed form (``GammaGammaModel.spend_upside``), which
    also returns the probability the seed's product needs."""
    return spend_upside_and_mass(p, 1.0, z, Q, G, upper)


@dataclass(frozen=True)
class _SpendTuples:
    """Gamma–Gamma predictives (SPEC §5) per distinct (x, z̄)."""

    Q: FloatArray
    G: FloatArray
    expected: FloatArray  # E[M'] = p G/(Q − 1)
    upside: FloatArray  # E[M' | m_i ≤ M' ≤ m_max]
    p_upside: FloatArray  # P(m_i ≤ M' ≤ m_max)
    bins: dict[int, FloatArray]  # P(M' in each spend bin | c = j occasions), finite bucket counts


def _spend_tuples(
    gg: GammaGammaModel,
    x: FloatArray,
    z: FloatArray,
    counts: Sequence[int],
    edges: Sequence[float],
) -> _SpendTuples:
    p, q, gamma = gg.params_["p"], gg.params_["q"], gg.params_["gamma"]
    Q, G = q + p * x, gamma + x * z
    upper = max(float(gg.data_summary_.get("max_amount", math.inf)), 0.0)
    n_m = len(edges) + 1

    def work(s: slice) -> tuple[FloatArray, FloatArray, FloatArray]:
        upside, mass = _spend_upside(p, z[s], Q[s], G[s], upper)
        n = upside.shape[0]
        bins = [_spend_bin_probs(p, Q[s], G[s], np.full(n, float(j)), edges) for j in counts]
        return upside, mass, np.concatenate(bins, axis=1) if bins else np.zeros((n, 0))

    parts = _by_chunks(work, x.shape[0])
    bins = _stack([b for _, _, b in parts], len(counts) * n_m)
    return _SpendTuples(
        Q=Q,
        G=G,
        expected=p * G / (Q - 1.0),
        upside=np.concatenate([u for u, _, _ in parts]),
        p_upside=np.clip(np.concatenate([m for _, m, _ in parts]), 0.0, 1.0),
        bins={j: bins[:, k * n_m : (k + 1) * n_m] for k, j in enumerate(counts)},
    )


def _customer_cells(
    p: float,
    freq: _FrequencyTuples,
    spend: _SpendTuples,
    f_index: IntArray,
    s_index: IntArray,
    buckets: Sequence[int],
    edges: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """Per customer: (P(X' = 0) and P(X' in bucket f, M' in bin m) row-major (f, m), under the
    NB × Gamma–Gamma predictives; P(M' in each bin | max(1, round E[X']) occasions)). Finite
    buckets mix the exact counts; the open bucket uses its conditional mean count."""
    n_m = len(edges) + 1
    width = 1 + len(buckets) * n_m

    n_all = f_index.shape[0]
    all_cells, all_bins = np.zeros((n_all, width)), np.zeros((n_all, n_m))

    def work(s: slice) -> None:
        """Fills rows ``s`` of the outputs (each chunk its own rows: no copy at the end)."""
        fi, si = f_index[s], s_index[s]
        n = fi.shape[0]
        cells = all_cells[s]
        cells[:, 0] = freq.p_zero[fi]
        for b, low in enumerate(buckets):
            cols = slice(1 + b * n_m, 1 + (b + 1) * n_m)
            if b + 1 < len(buckets):
                for j in range(low, buckets[b + 1]):
                    cells[:, cols] += freq.weights[j][fi][:, None] * spend.bins[j][si]
            else:
                probs = _spend_bin_probs(p, spend.Q[si], spend.G[si], freq.open_count[fi], edges)
                cells[:, cols] += freq.open_tail[fi][:, None] * probs
        count = freq.count[fi]
        bins = all_bins[s]
        known = np.zeros(n, dtype=bool)
        for j, probs_j in spend.bins.items():
            at = count == j
            bins[at] = probs_j[si[at]]
            known |= at
        rest = ~known
        if rest.any():
            sr = si[rest]
            bins[rest] = _spend_bin_probs(p, spend.Q[sr], spend.G[sr], count[rest], edges)

    _by_chunks(work, n_all)
    return all_cells, all_bins


def _state_means(
    index: IntArray, values: FloatArray, n_states: int
) -> tuple[FloatArray, FloatArray]:
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


#: Search range of the Dirichlet weight κ.
KAPPA_BOUNDS = (1e-3, 1e7)


def evidence_kappa(counts: FloatArray, prior: FloatArray) -> float:
    """The κ maximising the Dirichlet-multinomial evidence (SPEC §7), as the root of its
    derivative in ln κ,
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


def build_chain(
    *,
    panel: pl.DataFrame,
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
) -> MarkovChain:
    """SPEC §7: counts, Dirichlet smoothing toward the model-implied rows, rewards and values."""
    n_f, n_m = len(buckets), len(spend_edges) + 1
    R = max_recency
    n_states = (R + 1) * n_f * n_m
    active = panel.filter((pl.col("occasions") > 0) & (pl.col("period") < n_complete)).select(
        "customer_id",
        "period",
        "revenue",
        _bin_expr("occasions", list(buckets[1:])).alias("f_bin"),
        _bin_expr("_mean", list(spend_edges)).alias("m_bin"),
    )
    sizes = active.group_by("customer_id", maintain_order=True).len().get_column("len").to_numpy()
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    counts = kernels.transition_counts(
        starts,
        active.get_column("period").to_numpy().astype(np.int64),
        active.get_column("f_bin").to_numpy().astype(np.int64),
        active.get_column("m_bin").to_numpy().astype(np.int64),
        n_complete,
        R,
        n_f,
        n_m,
    )
    # Model-implied rows: the customers currently in s, else those with the same recency, else all.
    mean_cells, in_state = _state_means(current_state, cells, n_states)
    recency_of = np.arange(n_states) // (n_f * n_m)
    r_cells, _ = _state_means(recency_of[current_state], cells, R + 1)
    r_counts = np.bincount(recency_of[current_state], minlength=R + 1).astype(np.float64)
    global_cells = cells.mean(axis=0) if cells.shape[0] else np.zeros(cells.shape[1])
    prior = np.zeros((n_states, n_states))
    for s in range(n_states):
        r, rest = divmod(s, n_f * n_m)
        f, m = divmod(rest, n_m)
        if in_state[s] > 0:
            row = mean_cells[s]
        elif r_counts[r] > 0:
            row = r_cells[r]
        else:
            row = global_cells
        row = np.maximum(row, 1e-300)
        row = row / row.sum()
        prior[s, kernels.state_index(min(r + 1, R), f, m, n_f, n_m)] = row[0]
        prior[s, kernels.state_index(0, 0, 0, n_f, n_m) : n_f * n_m] = row[1:]
    kappa_value = evidence_kappa(counts, prior) if kappa == "evidence" else float(kappa)
    n_s = counts.sum(axis=1)
    P = (counts + kappa_value * prior) / (n_s + kappa_value)[:, None]
    # Rewards: expected amount from the chain's purchase cells × margin − expense share.
    # numpy sums in row order (the panel's customer-then-period order): a Polars group-by mean
    # may add in another order from run to run, which changed CLVs in the last bits.
    revenue = active.get_column("revenue").to_numpy().astype(np.float64)
    cell = active.get_column("f_bin").to_numpy().astype(np.int64) * n_m + active.get_column(
        "m_bin"
    ).to_numpy().astype(np.int64)
    cell_sums = np.bincount(cell, weights=revenue, minlength=n_f * n_m)
    cell_counts = np.bincount(cell, minlength=n_f * n_m)
    overall = float(revenue.sum() / revenue.size) if revenue.size else 0.0
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
    for _ in range(horizon):
        v = delta * (reward + P_sparse @ v)
    identity = sparse.identity(n_states, format="csc")
    v_inf = sparse_linalg.spsolve((identity - delta * P_sparse).tocsc(), delta * reward)
    states = _state_labels(R, buckets, n_m).with_columns(
        pl.Series("customers", in_state.astype(np.int64)),
        pl.Series("transitions", n_s),
        pl.Series("reward", reward),
        pl.Series("value", v),
        pl.Series("value_infinite", np.asarray(v_inf, dtype=np.float64)),
    )
    return MarkovChain(
        states=states,
        transition_matrix=P_sparse,
        counts=sparse.csr_array(counts),
        prior=sparse.csr_array(prior),
        kappa=kappa_value,
        horizon=horizon,
        discount_rate=discount_rate,
    )


def probability_alive(
    alive_summary: pl.DataFrame | None, customers: pl.Series
) -> tuple[FloatArray, BetaGeoModel | None, str | None]:
    """BG/NBD P(alive) per customer of ``customers`` (SPEC §5, §6) from their (x, t_x, T)
    summary: (values, NaN where unknown; the model; why it could not be fitted)."""
    missing = np.full(customers.len(), np.nan)
    if alive_summary is None or alive_summary.height == 0:
        return missing, None, "no complete period to fit the BG/NBD on"
    try:
        model = BetaGeoModel().fit(alive_summary)
    except WinbackFitError as error:
        return missing, None, str(error)
    alive = alive_summary.select(
        "customer_id", model.probability_alive(alive_summary).alias("p_alive")
    )
    joined = pl.DataFrame({"customer_id": customers}).join(
        alive, on="customer_id", how="left", maintain_order="left"
    )
    return joined.get_column("p_alive").fill_null(np.nan).to_numpy(), model, None


def forecast(
    *,
    alive_summary: pl.DataFrame | None,
    panel: pl.DataFrame,
    customers: pl.DataFrame,
    info: ValueInfo,
    n_complete: int,
    margin: float | None,
    horizon: int,
    discount_rate: float,
    kappa: float | str,
    max_recency: int,
    frequency_buckets: list[int],
    tiers: Mapping[str, float],
    tier_by: str,
    customer_dtype: Any,
) -> ValueResult:
    """Fits the models on the modelled customers and builds the result (SPEC §6, §7)."""
    c = customers.with_columns(
        (pl.col("birth") < n_complete).alias("_modelled"),
        (n_complete - 1 - pl.col("birth")).clip(lower_bound=0).cast(pl.Int64).alias("n_periods"),
        pl.when(pl.col("spend_frequency") > 0)
        .then(pl.col("_spend_sum") / pl.col("spend_frequency"))
        .otherwise(0.0)
        .alias("monetary_value"),
    )
    m = c.filter(pl.col("_modelled"))
    if m.height == 0:
        return _empty_result(c, info, customer_dtype)
    nbd = NBDModel().fit(m, frequency_col="period_frequency", periods_col="n_periods")
    gg = GammaGammaModel().fit(m, frequency_col="spend_frequency", monetary_col="monetary_value")
    p = gg.params_["p"]
    spend_edges = list(info.spend_bin_edges)
    # Predictives per distinct (X, T) and per distinct (x, z̄), gathered back to customers.
    f_first, f_index = _distinct(
        m.get_column("period_frequency").to_numpy(), m.get_column("n_periods").to_numpy()
    )
    freq = _frequency_tuples(
        nbd,
        m.select("period_frequency", "n_periods")[pl.Series(f_first)],
        frequency_buckets,
    )
    sf = m.get_column("spend_frequency").to_numpy().astype(np.float64)
    z_all = m.get_column("monetary_value").to_numpy()
    x_all = np.where(z_all > 0, sf, 0.0)
    s_first, s_index = _distinct(x_all, z_all)
    finite_counts = list(range(frequency_buckets[0], frequency_buckets[-1]))
    spend = _spend_tuples(gg, x_all[s_first], z_all[s_first], finite_counts, spend_edges)
    cells, bin_probs = _customer_cells(
        p, freq, spend, f_index, s_index, frequency_buckets, spend_edges
    )
    p_alive, bg_nbd, bg_nbd_error = probability_alive(alive_summary, m.get_column("customer_id"))
    expected_frequency = freq.expected[f_index]
    expected_mean = spend.expected[s_index]
    bin_mode = bin_probs.argmax(axis=1)
    p_bin_mode = bin_probs[np.arange(m.height), bin_mode]
    frequency_upside = freq.upside[f_index]
    spend_upside = spend.upside[s_index]
    seed_upside = frequency_upside * freq.p_upside[f_index] * spend_upside * spend.p_upside[s_index]
    expected_amount = expected_frequency * expected_mean
    segment_codes = tier_codes(expected_amount, tiers)
    seg_index = np.where(segment_codes < 0, len(tiers), segment_codes)
    n_segments = len(tier_names(tiers))
    next_margin, margin_basis = next_margins(
        m, seg_index, n_segments, n_complete, has_cost=info.has_cost, margin=margin
    )
    expected_cost = expected_amount * (1.0 - next_margin)
    expected_expense, expense_basis = expected_expenses(
        m, expected_amount, seg_index, n_segments, has_expenses=info.has_expenses
    )
    expected_value = expected_amount - expected_cost - expected_expense
    # Markov chain (SPEC §7).
    n_f, n_m = len(frequency_buckets), len(spend_edges) + 1
    last = m.get_column("last_active").to_numpy()
    recency = np.minimum(n_complete - 1 - last, max_recency)
    f_bin = m.get_column("f_bin").to_numpy().astype(np.int64)
    m_bin = m.get_column("m_bin").to_numpy().astype(np.int64)
    state = ((recency * n_f + f_bin) * n_m + m_bin).astype(np.int64)
    if m.height < c.height:
        panel = panel.join(m.select("customer_id"), on="customer_id", how="semi")
    chain = build_chain(
        panel=panel,
        current_state=state,
        cells=cells,
        next_margin=next_margin,
        expected_amount=expected_amount,
        expected_expense=expected_expense,
        n_complete=n_complete,
        max_recency=max_recency,
        buckets=frequency_buckets,
        spend_edges=spend_edges,
        kappa=kappa,
        horizon=horizon,
        discount_rate=discount_rate,
    )
    states = chain.states
    P = chain.transition_matrix
    n_cells = n_f * n_m
    p_active_markov = np.asarray(P[:, :n_cells].sum(axis=1)).ravel()[state]
    ev_mean, _ = _state_means(state, expected_value, P.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ev_mean[state] > 0, expected_value / ev_mean[state], 1.0)
    clv = states.get_column("value").to_numpy()[state] * ratio
    clv_inf = states.get_column("value_infinite").to_numpy()[state] * ratio
    labels = states.get_column("label").gather(pl.Series(state))
    tier_values = expected_value if tier_by == "expected_value" else clv
    out = pl.DataFrame(
        {
            "customer_id": m.get_column("customer_id"),
            "expected_frequency": expected_frequency,
            "p_active_next": freq.p_active[f_index],
            "p_alive": p_alive,
            "frequency_mode": freq.mode[f_index].astype(np.int64),
            "p_frequency_mode": freq.p_mode[f_index],
            "p_frequency": freq.pmf[f_index],
            "expected_mean_amount": expected_mean,
            "spend_bin_mode": bin_mode.astype(np.int64),
            "p_spend_bin_mode": p_bin_mode,
            "frequency_upside": frequency_upside,
            "spend_upside": spend_upside,
            "seed_upside_amount": seed_upside,
            "expected_amount": expected_amount,
            "segment": _tier_series(segment_codes, tiers),
            "next_margin": next_margin,
            "margin_basis": margin_basis,
            "expected_cost": expected_cost,
            "expected_expense": expected_expense,
            "expense_basis": expense_basis,
            "expected_value": expected_value,
            "negative_value": expected_value < 0,
            "markov_state": labels,
            "p_active_next_markov": p_active_markov,
            "clv": clv,
            "clv_infinite": clv_inf,
            "value_tier": _tier_series(tier_codes(tier_values, tiers), tiers),
        },
        schema_overrides={"p_frequency": pl.Array(pl.Float64, _PMF_MAX + 1)},
    )
    frame = _assemble(c, out).with_columns(pl.col("p_alive").fill_nan(None))
    if bg_nbd_error is not None:
        info = dataclasses.replace(info, bg_nbd_error=bg_nbd_error)
    return ValueResult(frame=frame, nbd=nbd, gamma_gamma=gg, chain=chain, info=info, bg_nbd=bg_nbd)


def _assemble(c: pl.DataFrame, modelled: pl.DataFrame) -> pl.DataFrame:
    base = c.select(
        "customer_id",
        pl.when(pl.col("_modelled"))
        .then(pl.lit("modelled"))
        .otherwise(pl.lit("not_modelled"))
        .alias("status"),
        pl.when(pl.col("_modelled")).then(None).otherwise(pl.lit(_NOT_MODELLED)).alias("reason"),
        "n_periods",
        pl.col("period_frequency").cast(pl.Int64),
        (pl.col("revenue_to_date") - pl.col("cost_to_date") - pl.col("expense_to_date")).alias(
            "value_to_date"
        ),
    )
    return base.join(modelled, on="customer_id", how="left").select(VALUE_COLUMNS)


def _empty_result(c: pl.DataFrame, info: ValueInfo, customer_dtype: Any) -> ValueResult:
    schema = {
        "customer_id": customer_dtype,
        "expected_frequency": pl.Float64,
        "p_active_next": pl.Float64,
        "p_alive": pl.Float64,
        "frequency_mode": pl.Int64,
        "p_frequency_mode": pl.Float64,
        "p_frequency": pl.Array(pl.Float64, _PMF_MAX + 1),
        "expected_mean_amount": pl.Float64,
        "spend_bin_mode": pl.Int64,
        "p_spend_bin_mode": pl.Float64,
        "frequency_upside": pl.Float64,
        "spend_upside": pl.Float64,
        "seed_upside_amount": pl.Float64,
        "expected_amount": pl.Float64,
        "segment": pl.String,
        "next_margin": pl.Float64,
        "margin_basis": pl.String,
        "expected_cost": pl.Float64,
        "expected_expense": pl.Float64,
        "expense_basis": pl.String,
        "expected_value": pl.Float64,
        "negative_value": pl.Boolean,
        "markov_state": pl.String,
        "p_active_next_markov": pl.Float64,
        "clv": pl.Float64,
        "clv_infinite": pl.Float64,
        "value_tier": pl.String,
    }
    c = c.with_columns(pl.col("customer_id").cast(customer_dtype))
    frame = _assemble(c, pl.DataFrame(schema=schema))
    return ValueResult(frame=frame, nbd=None, gamma_gamma=None, chain=None, info=info)
