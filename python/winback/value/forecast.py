"""Next-period forecasts (docs/methods.md#models, #forecasts): the period NBD's count predictive and
the Gamma–Gamma spend predictive, evaluated once per distinct (X, T) and (x, z̄) and gathered back
to customers, the chain's purchase cells per customer, and the BG/NBD P(alive)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special

from winback._parallel import chunk_bounds, map_chunks, submit
from winback.errors import WinbackFitError
from winback.models import BetaGeoModel, GammaGammaModel, NBDModel
from winback.models.gamma_gamma import spend_upside_and_mass
from winback.value.result import PMF_MAX

__all__ = ["NextPeriod", "next_period", "probability_alive"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Rows (customers or distinct tuples) per unit of threaded work: fixed, so the split never
#: depends on the thread count (the work is elementwise: the same bits on any thread count).
_CHUNK = 1 << 16


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


# -- predictives ----------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class _FrequencyTuples:
    """NB predictives (docs/methods.md#nbd) per distinct (X, T): the next period's count X' ~
    NegBin(r', π)."""

    r_post: FloatArray
    pi: FloatArray
    expected: FloatArray  # E[X'] = r'/α'
    p_active: FloatArray  # 1 − P(X' = 0)
    pmf: FloatArray  # P(X' = j), j = 0 … PMF_MAX
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
        pmf=np.exp(np.stack([_nb_log_pmf(float(j), r_post, pi) for j in range(PMF_MAX + 1)], 1)),
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
    """E[M' | m_i ≤ M' ≤ m_max] over one occasion and P(m_i ≤ M' ≤ m_max) (docs/methods.md#upside),
    m_i = z̄, m_max = ``upper``: the model's own closed form (``GammaGammaModel.spend_upside``),
    which also returns the probability the seed's product needs."""
    return spend_upside_and_mass(p, 1.0, z, Q, G, upper)


@dataclass(frozen=True)
class _SpendTuples:
    """Gamma–Gamma predictives (docs/methods.md#gamma-gamma) per distinct (x, z̄)."""

    Q: FloatArray
    G: FloatArray
    expected: FloatArray  # E[M'] = p G/(Q − 1)
    upside: FloatArray  # E[M' | m_i ≤ M' ≤ m_max]
    p_upside: FloatArray  # P(m_i ≤ M' ≤ m_max)
    bins: dict[int, FloatArray]  # P(M' in each spend bin | c = j occasions), finite bucket counts
    table: FloatArray  # the same as one (tuples, counts × bins) array, the counts ascending


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

    n = x.shape[0]
    upside, mass = np.empty(n), np.empty(n)
    bins = np.empty((n, len(counts) * n_m))

    def work(lo: int, hi: int) -> None:
        """Fills rows ``lo:hi`` of the outputs (each chunk its own rows: no copy at the end)."""
        s = slice(lo, hi)
        upside[s], mass[s] = _spend_upside(p, z[s], Q[s], G[s], upper)
        for k, j in enumerate(counts):
            c = np.full(hi - lo, float(j))
            bins[s, k * n_m : (k + 1) * n_m] = _spend_bin_probs(p, Q[s], G[s], c, edges)

    map_chunks(work, chunk_bounds(n, _CHUNK))
    return _SpendTuples(
        Q=Q,
        G=G,
        expected=p * G / (Q - 1.0),
        upside=upside,
        p_upside=np.clip(mass, 0.0, 1.0),
        bins={j: bins[:, k * n_m : (k + 1) * n_m] for k, j in enumerate(counts)},
        table=bins,
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
    buckets mix the exact counts; the open bucket uses its conditional mean count.

    A customer's cells depend on its (frequency tuple, spend tuple) pair only: the open bucket's
    spend-bin probabilities (the special functions) are evaluated once per distinct pair, and
    one loop (:func:`winback._kernels.value.purchase_cells`) gathers and adds the terms in the
    order the column-by-column numpy sums added them (the same bits)."""
    from winback._kernels import value as kernels  # numba loads on first use, not on import

    n_m = len(edges) + 1
    width = 1 + len(buckets) * n_m
    n_all = f_index.shape[0]
    counts = list(range(buckets[0], buckets[-1]))
    weights = (
        np.stack([freq.weights[j] for j in counts])
        if counts
        else np.zeros((0, freq.p_zero.shape[0]))
    )
    bucket_of = np.asarray(
        [next(b for b in range(len(buckets) - 1) if j < buckets[b + 1]) for j in counts],
        dtype=np.int64,
    )
    # The open bucket's spend-bin probabilities per distinct (frequency, spend) tuple pair.
    n_spend = max(spend.Q.shape[0], 1)
    pairs, open_index = np.unique(f_index * n_spend + s_index, return_inverse=True)
    pair_f, pair_s = np.divmod(pairs, n_spend)

    open_probs = np.empty((pairs.shape[0], n_m))

    def open_work(lo: int, hi: int) -> None:
        fi, si = pair_f[lo:hi], pair_s[lo:hi]
        count = freq.open_count[fi]
        open_probs[lo:hi] = _spend_bin_probs(p, spend.Q[si], spend.G[si], count, edges)

    map_chunks(open_work, chunk_bounds(pairs.shape[0], _CHUNK))
    all_cells, all_bins = np.zeros((n_all, width)), np.zeros((n_all, n_m))
    table = np.ascontiguousarray(spend.table)

    def work(lo: int, hi: int) -> None:
        """Fills rows ``lo:hi`` of the outputs (each chunk its own rows: no copy at the end)."""
        s = slice(lo, hi)
        kernels.purchase_cells(
            f_index[s],
            s_index[s],
            open_index[s],
            freq.p_zero,
            weights,
            table,
            bucket_of,
            freq.open_tail,
            open_probs,
            n_m,
            all_cells[s],
        )
        count = freq.count[f_index[s]]
        bins = all_bins[s]
        known = kernels.known_bins(count, s_index[s], table, buckets[0], n_m, bins)
        rest = ~known
        if rest.any():
            sr = s_index[s][rest]
            bins[rest] = _spend_bin_probs(p, spend.Q[sr], spend.G[sr], count[rest], edges)

    map_chunks(work, chunk_bounds(n_all, _CHUNK))
    return all_cells, all_bins


# -- per customer ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NextPeriod:
    """Per modelled customer (in the order of the frame given to :func:`next_period`): the
    next-period columns of the value frame and the chain's purchase cells."""

    expected_frequency: FloatArray  # E[X']
    p_active_next: FloatArray  # 1 − P(X' = 0)
    frequency_mode: IntArray
    p_frequency_mode: FloatArray
    p_frequency: FloatArray  # P(X' = j), j = 0 … PMF_MAX
    expected_mean_amount: FloatArray  # E[M']
    spend_bin_mode: IntArray
    p_spend_bin_mode: FloatArray
    frequency_upside: FloatArray
    spend_upside: FloatArray
    seed_upside_amount: FloatArray
    expected_amount: FloatArray  # E[X'] E[M']
    cells: FloatArray  # P(X' = 0), then P(X' in bucket f, M' in bin m) row-major (f, m)


def next_period(
    m: pl.DataFrame,
    nbd: NBDModel,
    gg: GammaGammaModel,
    frequency_buckets: Sequence[int],
    spend_edges: Sequence[float],
) -> NextPeriod:
    """The fitted predictives for the customers of ``m`` (``period_frequency``, ``n_periods``,
    ``spend_frequency``, ``monetary_value``)."""
    p = gg.params_["p"]
    # Predictives per distinct (X, T) and per distinct (x, z̄), gathered back to customers;
    # the two sorts run side by side on the pool.
    X, T = m.get_column("period_frequency").to_numpy(), m.get_column("n_periods").to_numpy()
    frequency_rows = submit(lambda: _distinct(X, T))
    sf = m.get_column("spend_frequency").to_numpy().astype(np.float64)
    z_all = m.get_column("monetary_value").to_numpy()
    x_all = np.where(z_all > 0, sf, 0.0)
    s_first, s_index = _distinct(x_all, z_all)
    f_first, f_index = frequency_rows.result()
    freq = _frequency_tuples(
        nbd,
        m.select("period_frequency", "n_periods")[pl.Series(f_first)],
        frequency_buckets,
    )
    finite_counts = list(range(frequency_buckets[0], frequency_buckets[-1]))
    spend = _spend_tuples(gg, x_all[s_first], z_all[s_first], finite_counts, spend_edges)
    cells, bin_probs = _customer_cells(
        p, freq, spend, f_index, s_index, frequency_buckets, spend_edges
    )
    expected_frequency = freq.expected[f_index]
    expected_mean = spend.expected[s_index]
    bin_mode = bin_probs.argmax(axis=1)
    frequency_upside = freq.upside[f_index]
    spend_upside = spend.upside[s_index]
    seed_upside = frequency_upside * freq.p_upside[f_index] * spend_upside * spend.p_upside[s_index]
    return NextPeriod(
        expected_frequency=expected_frequency,
        p_active_next=freq.p_active[f_index],
        frequency_mode=freq.mode[f_index].astype(np.int64),
        p_frequency_mode=freq.p_mode[f_index],
        p_frequency=freq.pmf[f_index],
        expected_mean_amount=expected_mean,
        spend_bin_mode=bin_mode.astype(np.int64),
        p_spend_bin_mode=bin_probs[np.arange(m.height), bin_mode],
        frequency_upside=frequency_upside,
        spend_upside=spend_upside,
        seed_upside_amount=seed_upside,
        expected_amount=expected_frequency * expected_mean,
        cells=cells,
    )


# -- P(alive) -------------------------------------------------------------------------------------
def probability_alive(
    alive_summary: pl.DataFrame | None, customers: pl.Series
) -> tuple[FloatArray, BetaGeoModel | None, str | None]:
    """BG/NBD P(alive) per customer of ``customers`` (docs/methods.md#bg-nbd, #p-active) from their
    (x, t_x, T) summary: (values, NaN where unknown; the model; why it could not be fitted)."""
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
