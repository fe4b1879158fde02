"""Wheat–Morrison regularity (docs/methods.md#regularity): values by hand, recovery of k from
simulated Erlang-k gaps, invariance to row order and time scale, and the typed failures."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.errors import WinbackConfigError, WinbackInputError
from winback.models import regularity


def _transactions(gaps_by_customer: dict[int, list[float]], unit: timedelta) -> pl.DataFrame:
    ids, times = [], []
    start = datetime(2024, 1, 1)
    for customer, gaps in gaps_by_customer.items():
        t = 0.0
        ids.append(customer)
        times.append(start)
        for g in gaps:
            t += g
            ids.append(customer)
            times.append(start + t * unit)
    return pl.DataFrame({"customer_id": ids, "ts": times})


def test_values_by_hand() -> None:
    # customer 1: gaps 2, 6, 4 days → ratios 2/8 = 0.25 and 6/10 = 0.6
    # customer 2: gaps 5, 5 → ratio 0.5; customer 3: one gap only; customer 4: one occasion
    tx = _transactions({1: [2, 6, 4], 2: [5, 5], 3: [9], 4: []}, timedelta(days=1))
    out = regularity(tx, min_pairs=2)
    rows = out.customers.rows(named=True)
    assert [r["n_intervals"] for r in rows] == [3, 2, 1, 0]
    assert [r["n_pairs"] for r in rows] == [2, 1, 0, 0]
    v1 = ((0.25 - 0.5) ** 2 + (0.6 - 0.5) ** 2) / 2
    assert rows[0]["regularity_k"] == pytest.approx(1 / (8 * v1) - 0.5, rel=1e-14)
    assert [r["regularity_k"] for r in rows[1:]] == [None, None, None]
    # population: last pairs 0.6 and 0.5, sample variance 0.005
    assert out.n_customers == 2
    assert out.k == pytest.approx((1 - 4 * 0.005) / (8 * 0.005), rel=1e-12)
    assert regularity(tx, min_pairs=1).customers["regularity_k"][1] == 100.0  # equal gaps: the cap


@pytest.mark.parametrize("k", [1, 3])
def test_recovers_the_erlang_order(k: int) -> None:
    rng = np.random.default_rng(k)
    n, m = 3000, 12
    gaps = rng.gamma(k, 1.0 / rng.gamma(4.0, 1.0, n)[:, None], (n, m)) * 24  # hours, any rate
    tx = _transactions({i: list(gaps[i]) for i in range(n)}, timedelta(hours=1))
    out = regularity(tx, resolution="1s")
    # Var of M over n customers: the population estimate is within ~10 % at n = 3000
    assert out.k == pytest.approx(k, rel=0.15)
    per_customer = out.customers["regularity_k"].to_numpy()
    assert np.median(per_customer) == pytest.approx(k, rel=0.3)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), scale=st.sampled_from([1, 7, 30]))
def test_row_order_and_time_scale_do_not_matter(seed: int, scale: int) -> None:
    rng = np.random.default_rng(seed)
    gaps = {i: list(rng.integers(1, 20, rng.integers(0, 6))) for i in range(30)}
    tx = _transactions(gaps, timedelta(days=1))
    scaled = _transactions(gaps, timedelta(days=scale))
    try:
        base = regularity(tx, min_pairs=1)
    except WinbackInputError:
        return
    shuffled = regularity(tx.sample(fraction=1.0, shuffle=True, seed=seed), min_pairs=1)
    assert shuffled.customers.equals(base.customers)
    assert shuffled.k == base.k
    other = regularity(scaled, min_pairs=1)
    np.testing.assert_allclose(
        other.customers["regularity_k"].fill_null(-1).to_numpy(),
        base.customers["regularity_k"].fill_null(-1).to_numpy(),
        rtol=1e-12,
    )


def test_failures() -> None:
    tx = _transactions({1: [3, 4], 2: [5]}, timedelta(days=1))
    with pytest.raises(WinbackInputError, match="pairs"):
        regularity(tx)  # one customer with a pair: no variance
    with pytest.raises(WinbackConfigError, match="min_pairs"):
        regularity(tx, min_pairs=0)
