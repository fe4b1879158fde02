"""Per-customer loops over transaction rows: each customer's first distinct occasion times, for
the cold-start reference curves (docs/methods.md#cold-start)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from winback._kernels import jit

__all__ = ["first_distinct"]

IntArray = NDArray[np.int64]


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
