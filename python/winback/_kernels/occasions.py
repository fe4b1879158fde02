"""Per-customer loops over transaction rows: the rows grouped by customer (a counting sort), each
customer's first distinct occasion times for the cold-start reference curves
(docs/methods.md#cold-start) and the occasions and amount in a window for RFM
(docs/methods.md#rfm)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from winback._kernels import jit

__all__ = ["counting_order", "first_distinct", "window_totals"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@jit
def first_distinct(starts: IntArray, t: IntArray, count: int) -> tuple[IntArray, IntArray]:
    """The ``count`` smallest distinct values of ``t`` in each group of rows
    ``starts[g] … starts[g + 1] − 1`` (rows in any order within a group), increasing, and how
    many each group has (≤ ``count``). One pass with a sorted buffer of ``count`` per group."""
    n_groups = starts.size - 1
    out = np.zeros((n_groups, count), dtype=np.int64)
    found = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        m = 0
        for row in range(starts[g], starts[g + 1]):
            v = t[row]
            # Insertion into the sorted buffer, dropping duplicates and values past the count.
            pos = m
            while pos > 0 and out[g, pos - 1] > v:
                pos -= 1
            if pos > 0 and out[g, pos - 1] == v:
                continue
            if pos >= count:
                continue
            last = m if m < count else count - 1
            for j in range(last, pos, -1):
                out[g, j] = out[g, j - 1]
            out[g, pos] = v
            if m < count:
                m += 1
        found[g] = m
    return out, found


@jit
def counting_order(keys: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """The rows ordered by ``keys`` (each 0 ≤ key < ``size``; rows of one key in their input
    order) and where each key's run starts (``size`` + 1 offsets; an absent key has an empty
    run). A counting sort: two passes, no comparisons."""
    starts = np.zeros(size + 1, dtype=np.int64)
    for i in range(keys.size):
        starts[keys[i] + 1] += 1
    for k in range(size):
        starts[k + 1] += starts[k]
    fill = starts[:-1].copy()
    order = np.empty(keys.size, dtype=np.int64)
    for i in range(keys.size):
        k = keys[i]
        order[fill[k]] = i
        fill[k] += 1
    return order, starts


@jit
def window_totals(
    starts: IntArray,
    bucket: IntArray,
    amount: FloatArray,
    low: int,
    high: int,
    with_amount: bool,
) -> tuple[IntArray, FloatArray]:
    """For each group of rows ``starts[g] … starts[g + 1] − 1``: the distinct ``bucket``
    values with ``low`` < bucket ≤ ``high``, and the sum of those rows' ``amount`` added one by
    one in ascending order of amount (so the bits depend on no row order), −1 and 0 where the
    group has no row in the window."""
    n_groups = starts.size - 1
    widest = 0
    for g in range(n_groups):
        widest = max(widest, starts[g + 1] - starts[g])
    keys = np.empty(widest, dtype=np.int64)
    values = np.empty(widest, dtype=np.float64)
    occasions = np.full(n_groups, -1, dtype=np.int64)
    totals = np.zeros(n_groups, dtype=np.float64)
    for g in range(n_groups):
        m = 0
        for row in range(starts[g], starts[g + 1]):
            b = bucket[row]
            if low < b <= high:
                keys[m] = b
                if with_amount:
                    values[m] = amount[row]
                m += 1
        if m == 0:
            continue
        ordered = np.sort(keys[:m])
        distinct = 1
        for j in range(1, m):
            if ordered[j] != ordered[j - 1]:
                distinct += 1
        occasions[g] = distinct
        if with_amount:
            spend = np.sort(values[:m])
            total = spend[0]
            for j in range(1, m):
                total += spend[j]
            totals[g] = total
    return occasions, totals
