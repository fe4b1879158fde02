"""Numba loop of the Markov chain's calibration (docs/methods.md#markov): every observed period
transition of the customer × period panel with the customer's periodic BG/NBD statistics at
that time; and the per-group and per-state sums of the chain's lapse rows, in the order
``np.bincount`` adds.

Compiled with :data:`winback._kernels.jit` (cached, fastmath off, ``nogil``); int64 arrays in
and out (float64 for the sums), no raising.
"""

from __future__ import annotations

import numpy as np

from winback._kernels import jit


@jit
def history_transitions(
    starts: np.ndarray,
    periods: np.ndarray,
    occasions: np.ndarray,
    f_bins: np.ndarray,
    m_bins: np.ndarray,
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
) -> np.ndarray:
    """One row per period transition t → t + 1 that ``transition_counts`` counts (the same
    walk: ``starts[c]:starts[c+1]`` index customer c's active complete periods, ascending, the
    first the birth period b): (state at t, 1 if period t + 1 is active else 0, X, t_x, k, T)
    with the statistics of the periodic BG/NBD as known at the end of period t — X the
    occasions in the active periods after b up to t, t_x = the last active period up to t − b,
    k the active periods up to t (b included), T = t − b. Returns an (n, 6) int64 array."""
    total = 0
    for c in range(starts.shape[0] - 1):
        if starts[c + 1] > starts[c]:
            total += max(n_complete - 1 - periods[starts[c]], 0)
    out = np.empty((total, 6), dtype=np.int64)
    row = 0
    for c in range(starts.shape[0] - 1):
        lo, hi = starts[c], starts[c + 1]
        if hi <= lo:
            continue
        birth = periods[lo]
        x = 0
        for i in range(lo, hi):
            a = periods[i]
            if i > lo:
                x += occasions[i]
            has_next = i + 1 < hi
            stop = periods[i + 1] if has_next else n_complete - 1
            for t in range(a, stop):
                r = min(t - a, max_recency)
                out[row, 0] = (r * n_f + f_bins[i]) * n_m + m_bins[i]
                out[row, 1] = 1 if has_next and t + 1 == stop else 0
                out[row, 2] = x
                out[row, 3] = a - birth
                out[row, 4] = i - lo + 1
                out[row, 5] = t - birth
                row += 1
    return out[:row]


@jit
def history_keys(
    starts: np.ndarray,
    periods: np.ndarray,
    occasions: np.ndarray,
    n_complete: int,
    radix_t: int,
    radix_k: int,
    radix_T: int,
    seen: np.ndarray,
) -> None:
    """Marks in ``seen`` (uint8, one entry per packed key) the (X, t_x, k, T) of every row
    :func:`history_transitions` would return, packed as ((X·radix_t + t_x)·radix_k + k)·radix_T
    + T, without building those rows (one per customer and period: tens of millions)."""
    for c in range(starts.shape[0] - 1):
        lo, hi = starts[c], starts[c + 1]
        if hi <= lo:
            continue
        birth = periods[lo]
        x = 0
        for i in range(lo, hi):
            a = periods[i]
            if i > lo:
                x += occasions[i]
            stop = periods[i + 1] if i + 1 < hi else n_complete - 1
            base = ((x * radix_t + (a - birth)) * radix_k + (i - lo + 1)) * radix_T
            for t in range(a, stop):
                seen[base + t - birth] = 1


@jit
def history_buy_sums(
    starts: np.ndarray,
    periods: np.ndarray,
    occasions: np.ndarray,
    f_bins: np.ndarray,
    m_bins: np.ndarray,
    n_complete: int,
    max_recency: int,
    n_f: int,
    n_m: int,
    radix_t: int,
    radix_k: int,
    radix_T: int,
    position: np.ndarray,
    p_buy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per state: the number of rows :func:`history_transitions` returns from it, and the sum
    of ``p_buy[position[key]]`` over them (key packed as in :func:`history_keys`), added in the
    rows' order — the same bits as ``np.bincount`` over those rows."""
    n_states = (max_recency + 1) * n_f * n_m
    seen = np.zeros(n_states)
    total = np.zeros(n_states)
    for c in range(starts.shape[0] - 1):
        lo, hi = starts[c], starts[c + 1]
        if hi <= lo:
            continue
        birth = periods[lo]
        x = 0
        for i in range(lo, hi):
            a = periods[i]
            if i > lo:
                x += occasions[i]
            stop = periods[i + 1] if i + 1 < hi else n_complete - 1
            base = ((x * radix_t + (a - birth)) * radix_k + (i - lo + 1)) * radix_T
            for t in range(a, stop):
                r = min(t - a, max_recency)
                s = (r * n_f + f_bins[i]) * n_m + m_bins[i]
                seen[s] += 1.0
                total[s] += p_buy[position[base + t - birth]]
    return seen, total


@jit
def add_bincounts(index: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``out[:, c] += np.bincount(index, weights=weights[:, c], minlength=out.shape[0])`` for
    every column c of the (n, C) ``weights``, in one pass over the rows: each bin's sum starts
    at zero and adds the rows in their order, then joins ``out`` — the same bits as the
    bincounts (``index`` int64 in ``[0, out.shape[0])``, ``out`` (bins, C) float64)."""
    partial = np.zeros(out.shape)
    for i in range(index.shape[0]):
        s = index[i]
        for c in range(weights.shape[1]):
            partial[s, c] += weights[i, c]
    for s in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[s, c] += partial[s, c]


@jit
def share_sums(
    cells: np.ndarray,
    spread: np.ndarray,
    overall: np.ndarray,
    inverse: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Per group (``inverse[i]``: row i's group), the sum over its rows of the purchase-cell
    shares ``cells[i, 1:] / spread[i]`` (``overall`` where ``spread[i]`` is not > 0), added in
    the rows' order: the same bits as ``np.where`` then one ``np.bincount`` per cell, without
    the (rows, cells) temporaries. Returns (``n_groups``, cells − 1) float64."""
    n_cells = cells.shape[1] - 1
    out = np.zeros((n_groups, n_cells))
    for i in range(cells.shape[0]):
        g = inverse[i]
        s = spread[i]
        for c in range(n_cells):
            out[g, c] += cells[i, c + 1] / s if s > 0 else overall[c]
    return out
