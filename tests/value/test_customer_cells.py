"""The forecast's per-customer cells (docs/methods.md#markov) against the former column-by-column
numpy construction, kept here as the slow reference: the same bytes.

``_customer_cells`` now evaluates the open bucket's spend-bin probabilities once per distinct
(frequency tuple, spend tuple) pair and adds the terms in one Numba loop; these tests fail on a
one-ulp change (a changed addition order or a changed argument of the special function).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.models import GammaGammaModel, NBDModel
from winback.value.forecast import (
    _customer_cells,
    _distinct,
    _frequency_tuples,
    _FrequencyTuples,
    _spend_bin_probs,
    _spend_tuples,
    _SpendTuples,
)


def reference_cells(
    p: float,
    freq: _FrequencyTuples,
    spend: _SpendTuples,
    f_index: np.ndarray,
    s_index: np.ndarray,
    buckets: Sequence[int],
    edges: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """The former ``_customer_cells`` (numpy, every customer evaluated)."""
    n_m = len(edges) + 1
    n = f_index.shape[0]
    cells, bins = np.zeros((n, 1 + len(buckets) * n_m)), np.zeros((n, n_m))
    fi, si = f_index, s_index
    cells[:, 0] = freq.p_zero[fi]
    for b, low in enumerate(buckets):
        cols = slice(1 + b * n_m, 1 + (b + 1) * n_m)
        if b + 1 < len(buckets):
            for j in range(low, buckets[b + 1]):
                cells[:, cols] += freq.weights[j][fi][:, None] * spend.bins[j][si]
        else:
            probs = _spend_bin_probs(
                p,
                spend.Q[si],
                spend.G[si],
                freq.open_count[fi],
                edges,
            )
            cells[:, cols] += freq.open_tail[fi][:, None] * probs
    count = freq.count[fi]
    known = np.zeros(n, dtype=bool)
    for j, probs_j in spend.bins.items():
        at = count == j
        bins[at] = probs_j[si[at]]
        known |= at
    rest = ~known
    if rest.any():
        sr = si[rest]
        bins[rest] = _spend_bin_probs(p, spend.Q[sr], spend.G[sr], count[rest], edges)
    return cells, bins


def _case(
    seed: int, n: int, buckets: list[int], edges: list[float]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    T = rng.integers(0, 12, n)
    X = rng.poisson(rng.gamma(0.8, 1.5, n) * np.maximum(T, 1))
    x = rng.integers(0, 6, n).astype(np.float64)
    # Repeated spend means (cents), so many customers share a spend tuple and a pair.
    z = np.where(x > 0, rng.integers(100, 20_000, n) / 100.0, 0.0)
    nbd = NBDModel()
    nbd.params_ = {"r": float(rng.uniform(0.3, 3.0)), "alpha": float(rng.uniform(0.5, 5.0))}
    nbd.data_summary_ = {"max_rate": float(X.max() + 1)}
    nbd.frequency_col, nbd.periods_col = "period_frequency", "n_periods"
    gg = GammaGammaModel()
    gg.params_ = {
        "p": float(rng.uniform(1.0, 8.0)),
        "q": float(rng.uniform(1.5, 6.0)),
        "gamma": float(rng.uniform(5.0, 80.0)),
    }
    gg.data_summary_ = {"max_amount": 250.0}
    f_first, f_index = _distinct(X, T)
    unique = pl.DataFrame({"period_frequency": X[f_first], "n_periods": T[f_first]})
    freq = _frequency_tuples(nbd, unique, buckets)
    s_first, s_index = _distinct(x, z)
    counts = list(range(buckets[0], buckets[-1]))
    spend = _spend_tuples(gg, x[s_first], z[s_first], counts, edges)
    p = gg.params_["p"]
    new = _customer_cells(p, freq, spend, f_index, s_index, buckets, edges)
    old = reference_cells(p, freq, spend, f_index, s_index, buckets, edges)
    return new, old


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("buckets", [[1, 2, 3, 5], [1, 5, 8]])
def test_default_edges_same_bytes(buckets: list[int]) -> None:
    # [1, 5, 8]: four counts add into one bucket, so their order shows in the bits.
    (cells, bins), (ref_cells, ref_bins) = _case(0, 20_000, buckets, [37.4, 54.1, 74.5, 110.0])
    assert _same_bytes(cells, ref_cells)
    assert _same_bytes(bins, ref_bins)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(1, 400),
    buckets=st.sampled_from([[1], [1, 2], [1, 3], [1, 2, 3, 5], [2, 4, 7], [1, 2, 4, 8, 9]]),
    edges=st.sampled_from([[], [50.0], [0.0, 30.0, 90.0], [-5.0, 10.0, 40.0, 80.0, 200.0]]),
)
def test_same_bytes_as_reference(seed: int, n: int, buckets: list[int], edges: list[float]) -> None:
    (cells, bins), (ref_cells, ref_bins) = _case(seed, n, buckets, edges)
    assert _same_bytes(cells, ref_cells)
    assert _same_bytes(bins, ref_bins)
