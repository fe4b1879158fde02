"""Numba loops of the value engine (docs/methods.md#markov): transition counts over the customer ×
period panel and the Dirichlet-multinomial evidence of the smoothing weight κ.

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
