"""Item–item co-occurrence kernels of ``winback.recommend`` (docs/methods.md#recommendations).

Purchases are two CSR incidence lists over 0-based codes (products coded in product-id order):
``user_ptr``/``user_items`` (each customer's distinct products, ascending) and
``item_ptr``/``item_users`` (each product's distinct customers, ascending). Every loop visits
them in that fixed order, and each kernel call handles a range of products or customers on its
own, so results are the same bits whatever the chunking or thread count.

Order of a candidate list: score descending, then product code ascending (the product id).
"""

from __future__ import annotations

import numpy as np

from winback._kernels import jit

__all__ = ["item_neighbours", "score_customers"]


@jit
def _insert(best_s: np.ndarray, best_j: np.ndarray, filled: int, s: float, j: int) -> int:
    """Puts (s, j) into the list sorted by (s desc, j asc) of capacity ``best_s.size`` holding
    ``filled`` entries; returns the new fill."""
    cap = best_s.size
    if filled == cap:
        last = cap - 1
        if s < best_s[last] or (s == best_s[last] and j > best_j[last]):
            return filled
        pos = last
    else:
        pos = filled
        filled += 1
    while pos > 0 and (s > best_s[pos - 1] or (s == best_s[pos - 1] and j < best_j[pos - 1])):
        best_s[pos] = best_s[pos - 1]
        best_j[pos] = best_j[pos - 1]
        pos -= 1
    best_s[pos] = s
    best_j[pos] = j
    return filled


@jit
def item_neighbours(
    item_ptr: np.ndarray,
    item_users: np.ndarray,
    user_ptr: np.ndarray,
    user_items: np.ndarray,
    lo: int,
    hi: int,
    damping: float,
    out_idx: np.ndarray,
    out_sim: np.ndarray,
) -> None:
    """The ``m = out_idx.shape[1]`` nearest products of each product ``i`` in ``[lo, hi)``:
    ``sim(i, j) = c_ij / (n_i^(1−d) · n_j^d)`` with ``c_ij`` the customers who bought both,
    ``n`` the customers who bought each and ``d = damping``; rows ``i − lo`` of the outputs,
    padded with −1 and 0."""
    n_items = item_ptr.size - 1
    m = out_idx.shape[1]
    acc = np.zeros(n_items, dtype=np.float64)
    touched = np.empty(n_items, dtype=np.int64)
    best_s = np.empty(m, dtype=np.float64)
    best_j = np.empty(m, dtype=np.int64)
    for i in range(lo, hi):
        count = 0
        for a in range(item_ptr[i], item_ptr[i + 1]):
            u = item_users[a]
            for b in range(user_ptr[u], user_ptr[u + 1]):
                j = user_items[b]
                if j == i:
                    continue
                if acc[j] == 0.0:
                    touched[count] = j
                    count += 1
                acc[j] += 1.0
        n_i = float(item_ptr[i + 1] - item_ptr[i])
        filled = 0
        for t in range(count):
            j = touched[t]
            n_j = float(item_ptr[j + 1] - item_ptr[j])
            s = acc[j] / (n_i ** (1.0 - damping) * n_j**damping)
            filled = _insert(best_s, best_j, filled, s, j)
            acc[j] = 0.0
        row = i - lo
        for k in range(m):
            if k < filled:
                out_idx[row, k] = best_j[k]
                out_sim[row, k] = best_s[k]
            else:
                out_idx[row, k] = -1
                out_sim[row, k] = 0.0


@jit
def score_customers(
    user_ptr: np.ndarray,
    user_items: np.ndarray,
    nb_idx: np.ndarray,
    nb_sim: np.ndarray,
    popular: np.ndarray,
    exclude: bool,
    lo: int,
    hi: int,
    out_items: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Top ``n = out_items.shape[1]`` products of each customer ``u`` in ``[lo, hi)``:
    ``score(j) = Σ_{i bought} sim(i, j)`` over the neighbour lists, bought products skipped when
    ``exclude``; a list short of ``n`` is filled from ``popular`` (product codes, most bought
    first) with score 0. Rows ``u − lo``; padding −1 (a catalogue too small to fill it)."""
    n_items = nb_idx.shape[0]
    m = nb_idx.shape[1]
    n = out_items.shape[1]
    acc = np.zeros(n_items, dtype=np.float64)
    seen = np.zeros(n_items, dtype=np.bool_)
    bought = np.zeros(n_items, dtype=np.bool_)
    touched = np.empty(n_items, dtype=np.int64)
    best_s = np.empty(n, dtype=np.float64)
    best_j = np.empty(n, dtype=np.int64)
    for u in range(lo, hi):
        count = 0
        for b in range(user_ptr[u], user_ptr[u + 1]):
            bought[user_items[b]] = True
        for b in range(user_ptr[u], user_ptr[u + 1]):
            i = user_items[b]
            for k in range(m):
                j = nb_idx[i, k]
                if j < 0:
                    break
                if exclude and bought[j]:
                    continue
                if not seen[j]:
                    seen[j] = True
                    touched[count] = j
                    count += 1
                acc[j] += nb_sim[i, k]
        filled = 0
        for t in range(count):
            j = touched[t]
            filled = _insert(best_s, best_j, filled, acc[j], j)
        for t in range(count):
            j = touched[t]
            acc[j] = 0.0
        if filled < n:
            # every touched product is listed (count < n) and still marked seen
            for p in range(popular.size):
                if filled == n:
                    break
                j = popular[p]
                if seen[j] or (exclude and bought[j]):
                    continue
                best_s[filled] = 0.0
                best_j[filled] = j
                filled += 1
        for t in range(count):
            seen[touched[t]] = False
        for b in range(user_ptr[u], user_ptr[u + 1]):
            bought[user_items[b]] = False
        row = u - lo
        for k in range(n):
            if k < filled:
                out_items[row, k] = best_j[k]
                out_scores[row, k] = best_s[k]
            else:
                out_items[row, k] = -1
                out_scores[row, k] = 0.0
