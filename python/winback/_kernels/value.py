"""Numba loops of the value engine (docs/methods.md#markov): transition counts over the customer ×
period panel, the Dirichlet-multinomial evidence of the smoothing weight κ, the per-customer
aggregates and the forecast's per-customer purchase cells.

All functions are compiled with :data:`winback._kernels.jit` (cached, fastmath off: bit-for-bit
reproducible; ``nogil``) and no ``parallel=True``; float64/int64 arrays in, float64 out, no
raising.
"""

from __future__ import annotations

import math

import numpy as np

from winback._kernels import jit


@jit
def state_index(r: int, f: int, m: int, n_f: int, n_m: int) -> int:
    """Index of state (r, f_b, m_b); r = R is the absorbing bucket ``R+``."""
    return (r * n_f + f) * n_m + m


@jit
def transition_counts(
    starts: np.ndarray,
    periods: np.ndarray,
    f_bins: np.ndarray,
    m_bins: np.ndarray,
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
) -> np.ndarray:
    """N(s → s') from consecutive complete periods after each customer's birth period.

    ``starts[c]:starts[c+1]`` index customer c's active complete periods (ascending, the first
    is the birth period) with their frequency and spend buckets. Between an active period a and
    the customer's next active period n (or the last complete period ``n_complete - 1``), period
    t → t + 1 moves from (min(t − a, R), f_a, m_a) to (0, f_n, m_n) when t + 1 = n, else to
    (min(t + 1 − a, R), f_a, m_a). Returns a dense (S, S) count matrix.
    """
    n_states = (max_recency + 1) * n_f * n_m
    counts = np.zeros((n_states, n_states), dtype=np.float64)
    for c in range(starts.shape[0] - 1):
        lo, hi = starts[c], starts[c + 1]
        for i in range(lo, hi):
            a = periods[i]
            f = f_bins[i]
            m = m_bins[i]
            has_next = i + 1 < hi
            stop = periods[i + 1] if has_next else n_complete - 1
            for t in range(a, stop):
                r_from = min(t - a, max_recency)
                s_from = state_index(r_from, f, m, n_f, n_m)
                if has_next and t + 1 == stop:
                    s_to = state_index(0, f_bins[i + 1], m_bins[i + 1], n_f, n_m)
                else:
                    s_to = state_index(min(t + 1 - a, max_recency), f, m, n_f, n_m)
                counts[s_from, s_to] += 1.0
    return counts


@jit
def log_evidence(kappa: float, counts: np.ndarray, prior: np.ndarray) -> float:
    """Σ_s [lnΓ(κ) − lnΓ(κ + N_s) + Σ_s' (lnΓ(κπ₀ + N_ss') − lnΓ(κπ₀))] over observed rows and
    the cells with π₀ > 0 (``counts`` and ``prior`` are (S, S)); −inf when a count falls on a
    cell the prior rules out."""
    total = 0.0
    for s in range(counts.shape[0]):
        n_s = 0.0
        for j in range(counts.shape[1]):
            n_s += counts[s, j]
        if n_s == 0.0:
            continue
        total += math.lgamma(kappa) - math.lgamma(kappa + n_s)
        for j in range(counts.shape[1]):
            a = kappa * prior[s, j]
            n = counts[s, j]
            if a > 0.0:
                if n > 0.0:
                    total += math.lgamma(a + n) - math.lgamma(a)
            elif n > 0.0:
                return -np.inf
    return total


@jit
def customer_totals(
    starts: np.ndarray,
    period: np.ndarray,
    occasions: np.ndarray,
    positive_occasions: np.ndarray,
    revenue: np.ndarray,
    positive_revenue: np.ndarray,
    cost: np.ndarray,
    expense: np.ndarray,
    mean: np.ndarray,
    f_edges: np.ndarray,
    m_edges: np.ndarray,
    n_complete: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over a panel sorted by customer then period: the per-customer aggregates of
    ``winback.value.panel.customer_aggregates`` (docs/methods.md#value, #margin, #expense).

    ``starts[c]:starts[c+1]`` are customer c's rows. Missing values are NaN in the float inputs
    (``revenue`` NaN counts as 0 in the totals, as a null did). Returns three (k, C) arrays, one
    contiguous row per aggregate:

    - int64 ``[birth, period_frequency, spend_frequency, last_active, f_bin, m_bin,
      last_occasions, margin_n, last_margin_period]`` (−1 for "none" where the value is an
      index: birth, last_active, f_bin, m_bin, last_occasions, last_margin_period);
    - float64 ``[expense_floor, sk, skk, last_margin]`` (NaN for "none");
    - float64 ``[spend_sum, revenue, cost, expense, sm, skm]``: each a sum in row order starting
      from 0.0 with every row added (0.0 for rows outside its filter), as a weighted
      ``np.bincount`` adds them, so the bits are the same.
    """
    n = starts.shape[0] - 1
    ints = np.full((9, n), -1, dtype=np.int64)
    flts = np.full((4, n), np.nan)
    sums = np.zeros((6, n))
    for c in range(n):
        lo, hi = starts[c], starts[c + 1]
        birth = -1
        for i in range(lo, hi):
            if occasions[i] > 0 and (birth < 0 or period[i] < birth):
                birth = period[i]
        after = birth if birth >= 0 else n_complete
        frequency = 0
        spend_frequency = 0
        margin_n = 0
        sk = 0.0
        skk = 0.0
        floor = np.nan
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        s5 = 0.0
        for i in range(lo, hi):
            k = period[i]
            active = occasions[i] > 0
            complete = k < n_complete
            model = active and complete and k > after
            if model:
                frequency += occasions[i]
                spend_frequency += positive_occasions[i]
            if active and complete:
                if ints[3, c] < 0 or k > ints[3, c]:
                    ints[3, c] = k
                f_bin = 0
                for e in range(f_edges.shape[0]):
                    if occasions[i] >= f_edges[e]:
                        f_bin += 1
                m_bin = 0
                for e in range(m_edges.shape[0]):
                    if mean[i] >= m_edges[e]:
                        m_bin += 1
                ints[4, c] = f_bin
                ints[5, c] = m_bin
                ints[6, c] = occasions[i]
            e_i = expense[i]
            if e_i > 0.0 and not (floor <= e_i):
                floor = e_i
            r_i = revenue[i]
            kf = float(k)
            ok = active and complete and r_i > 0.0
            m_k = 0.0
            if ok:
                m_k = (r_i - cost[i]) / r_i
                margin_n += 1
                sk += kf
                skk += kf * kf
                flts[3, c] = m_k
                if ints[8, c] < 0 or k > ints[8, c]:
                    ints[8, c] = k
            s0 += positive_revenue[i] if model else 0.0
            s1 += 0.0 if np.isnan(r_i) else r_i
            s2 += 0.0 if np.isnan(cost[i]) else cost[i]
            s3 += 0.0 if np.isnan(e_i) else e_i
            s4 += m_k if ok else 0.0
            s5 += kf * m_k if ok else 0.0
        ints[0, c] = birth
        ints[1, c] = frequency
        ints[2, c] = spend_frequency
        ints[7, c] = margin_n
        flts[0, c] = floor
        flts[1, c] = sk
        flts[2, c] = skk
        sums[0, c] = s0
        sums[1, c] = s1
        sums[2, c] = s2
        sums[3, c] = s3
        sums[4, c] = s4
        sums[5, c] = s5
    return ints, flts, sums


@jit
def purchase_cells(
    f_index: np.ndarray,
    s_index: np.ndarray,
    open_index: np.ndarray,
    p_zero: np.ndarray,
    weights: np.ndarray,
    bins: np.ndarray,
    bucket_of: np.ndarray,
    open_tail: np.ndarray,
    open_probs: np.ndarray,
    n_m: int,
    out: np.ndarray,
) -> None:
    """The next period's cells of ``winback.value.forecast`` per customer (docs/methods.md#markov),
    written into ``out`` (zeros, (n, 1 + n_f n_m)): column 0 P(X' = 0) = ``p_zero[f]``; then for
    each finite count j (row k of ``weights`` (P(X' = j) per frequency tuple) and columns
    k n_m … (k+1) n_m − 1 of ``bins`` (P(M' in bin | j occasions) per spend tuple)), in
    ascending j, ``weights[k, f] · bins[s, ·]`` added to bucket ``bucket_of[k]``'s cells; last,
    the open bucket's ``open_tail[f] · open_probs[o, ·]``. Customer i has frequency tuple
    ``f_index[i]``, spend tuple ``s_index[i]`` and open-bucket row ``open_index[i]``. Each cell
    is 0.0 plus its terms in that order, as numpy's ``+=`` over the columns adds them."""
    n_counts = weights.shape[0]
    last = 1 + ((out.shape[1] - 1) // n_m - 1) * n_m
    for i in range(f_index.shape[0]):
        f = f_index[i]
        s = s_index[i]
        out[i, 0] = p_zero[f]
        for k in range(n_counts):
            w = weights[k, f]
            base = 1 + bucket_of[k] * n_m
            for m in range(n_m):
                out[i, base + m] += w * bins[s, k * n_m + m]
        tail = open_tail[f]
        o = open_index[i]
        for m in range(n_m):
            out[i, last + m] += tail * open_probs[o, m]


@jit
def known_bins(
    count: np.ndarray,
    s_index: np.ndarray,
    bins: np.ndarray,
    first_count: int,
    n_m: int,
    out: np.ndarray,
) -> np.ndarray:
    """Rows of ``out`` ((n, n_m)) for the customers whose ``count`` (a whole number as a float) is
    one of the ``bins.shape[1] // n_m`` finite counts from ``first_count``: that count's columns
    of ``bins`` at the customer's spend tuple ``s_index[i]`` (a copy). Returns the mask of the
    rows filled."""
    n_counts = bins.shape[1] // n_m
    known = np.zeros(count.shape[0], dtype=np.bool_)
    for i in range(count.shape[0]):
        for k in range(n_counts):
            if count[i] == float(first_count + k):
                for m in range(n_m):
                    out[i, m] = bins[s_index[i], k * n_m + m]
                known[i] = True
                break
    return known


@jit
def place_by_bin(by_bin: np.ndarray, f_next: np.ndarray, n_m: int, out: np.ndarray) -> None:
    """``out[i, 1 + f_next[i] n_m + m] = by_bin[i, m]`` for every row i and spend bin m (the
    chain's cells moved to the customer's next frequency bucket; ``out`` zeros elsewhere)."""
    for i in range(by_bin.shape[0]):
        base = 1 + f_next[i] * n_m
        for m in range(n_m):
            out[i, base + m] = by_bin[i, m]
