"""The periodic BG/NBD's per-period expectation behind ``clv`` (docs/methods.md#clv,
#periodic-bg-nbd): against the model's own cumulative closed form and Monte Carlo."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.value.dropout import PeriodicBGNBD

PARAMS = {"r": 0.45, "alpha": 2.0, "a": 1.04, "b": 3.06}


def _model(params: dict[str, float] = PARAMS) -> PeriodicBGNBD:
    model = PeriodicBGNBD()
    model.params_ = dict(params)
    return model


@st.composite
def _histories(draw: st.DrawFn) -> dict[str, np.ndarray]:
    T = draw(st.integers(0, 30))
    k = draw(st.integers(1, T + 1))
    t_x = 0 if k == 1 else draw(st.integers(k - 1, T))
    X = draw(st.integers(k - 1, k - 1 + 40))
    return {
        "period_frequency": np.array([X], dtype=float),
        "last_active_offset": np.array([t_x], dtype=float),
        "active_periods": np.array([k], dtype=float),
        "n_periods": np.array([T], dtype=float),
    }


@settings(max_examples=60, deadline=None)
@given(
    history=_histories(),
    h=st.integers(1, 10),
    r=st.floats(0.05, 5.0),
    alpha=st.floats(0.1, 50.0),
    a=st.floats(0.05, 5.0),
    b=st.floats(0.05, 20.0),
)
def test_periods_add_up_to_the_cumulative_closed_form(
    history: dict[str, np.ndarray], h: int, r: float, alpha: float, a: float, b: float
) -> None:
    model = _model({"r": r, "alpha": alpha, "a": a, "b": b})
    per_period = model.expected_by_period(h, history)
    assert per_period.shape == (1, h)
    # Two independent routes: the positive per-period sums and the alternating cumulative one.
    np.testing.assert_allclose(
        per_period.sum(axis=1), model.expected_count(h, history), rtol=1e-8, atol=1e-12
    )
    # A live customer can only drop out: each period expects no more than the one before.
    assert (np.diff(per_period, axis=1) <= 1e-12 * per_period[:, :1]).all()


def test_long_horizons_stay_finite_and_ordered() -> None:
    # The alternating closed form loses digits at long horizons (C(h, m) grows as 2^h); the
    # per-period sums have positive terms only.
    history = {
        "period_frequency": np.array([0.0, 3.0, 12.0]),
        "last_active_offset": np.array([0.0, 4.0, 20.0]),
        "active_periods": np.array([1.0, 3.0, 9.0]),
        "n_periods": np.array([0.0, 10.0, 24.0]),
    }
    per_period = _model().expected_by_period(120, history)
    assert np.isfinite(per_period).all()
    assert (per_period > 0).all()
    assert (np.diff(per_period, axis=1) <= 0).all()


def test_per_period_expectation_matches_monte_carlo() -> None:
    # Simulate the model for 2 observed + 4 future periods from birth; keep the customers whose
    # observed history is X = 1, t_x = 1, k = 2, T = 1 (bought again in the period after birth)
    # and average their future occasions period by period.
    rng = np.random.default_rng(20261207)
    n, r, alpha, a, b = 2_000_000, PARAMS["r"], PARAMS["alpha"], PARAMS["a"], PARAMS["b"]
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    alive = rng.random(n) >= p  # the birth period is active: a dropout chance after it
    counts = np.empty((n, 5))
    for period in range(5):
        x = rng.poisson(lam) * alive
        counts[:, period] = x
        alive &= ~((x > 0) & (rng.random(n) < p))
    keep = counts[:, 0] == 1
    simulated = counts[keep, 1:].mean(axis=0)
    error = counts[keep, 1:].std(axis=0) / np.sqrt(keep.sum())
    history = {
        "period_frequency": np.array([1.0]),
        "last_active_offset": np.array([1.0]),
        "active_periods": np.array([2.0]),
        "n_periods": np.array([1.0]),
    }
    exact = _model().expected_by_period(4, history)[0]
    assert (np.abs(simulated - exact) < 4 * error).all(), (simulated, exact, error)
