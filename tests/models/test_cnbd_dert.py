"""DERT for BG/CNBD-k and MBG/CNBD-k (docs/methods.md#dert): against numerical integration of the
discounted expected transaction rate, δ ∫_0^∞ e^{−δt} E[X(T, T+t)] dt with E from the models' own
series (docs/methods.md#cnbd-k), and k = 1 against BG/NBD and MBG/NBD."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from winback.errors import WinbackConfigError
from winback.models import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
)

#: x, t_x, T: no repeat purchase, a recent buyer, one silent for a while, a frequent one.
CUSTOMERS = pl.DataFrame(
    {
        "frequency": [0, 1, 3, 8],
        "recency": [0.0, 30.0, 10.0, 50.0],
        "T": [52.0, 52.0, 52.0, 52.0],
    }
)


def _by_integration(model: object, row: pl.DataFrame, delta: float) -> float:
    """δ ∫_0^∞ e^{−δt} E[X(T, T+t) | row] dt = ∫_0^∞ e^{−δt} dE[X(T, T+t)] (by parts)."""

    def integrand(t: float) -> float:
        return delta * math.exp(-delta * t) * model.expected_purchases(t, row)[0]  # type: ignore[attr-defined]

    value, _ = integrate.quad(integrand, 0.0, math.inf, limit=200, epsabs=1e-12, epsrel=1e-10)
    return float(value)


@pytest.mark.parametrize("cls", [BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel])
@pytest.mark.parametrize("k", [2, 3])
def test_dert_matches_integration(cls: type, k: int) -> None:
    model = cls.from_params(dict(r=2.0, alpha=6.0, a=0.6, b=2.5), k=k)
    delta = 0.02
    values = model.dert(delta, CUSTOMERS).to_numpy()
    expected = [_by_integration(model, CUSTOMERS[[i]], delta) for i in range(CUSTOMERS.height)]
    np.testing.assert_allclose(values, expected, rtol=1e-7)


@settings(max_examples=5, deadline=None)
@given(
    r=st.floats(0.3, 4.0),
    alpha=st.floats(1.0, 20.0),
    a=st.floats(0.3, 3.0),
    b=st.floats(0.3, 4.0),
    delta=st.floats(0.005, 0.3),
)
def test_dert_matches_integration_over_parameters(
    r: float, alpha: float, a: float, b: float, delta: float
) -> None:
    model = ModifiedBetaGeoCNBDModel.from_params(dict(r=r, alpha=alpha, a=a, b=b), k=2)
    row = CUSTOMERS[[2]]  # Δ = T − t_x > 0: both phase states weigh in
    assert model.dert(delta, row)[0] == pytest.approx(_by_integration(model, row, delta), rel=1e-7)


@pytest.mark.parametrize(
    ("cnbd", "plain"),
    [(BetaGeoCNBDModel, BetaGeoModel), (ModifiedBetaGeoCNBDModel, ModifiedBetaGeoModel)],
)
def test_k1_equals_bg_and_mbg(cnbd: type, plain: type) -> None:
    params = dict(r=0.24, alpha=4.41, a=0.79, b=2.43)
    ours = cnbd.from_params(params, k=1).dert(0.0027, CUSTOMERS).to_numpy()
    theirs = plain.from_params(params).dert(0.0027, CUSTOMERS).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_more_regular_buyers_due_sooner_are_worth_more_now() -> None:
    """With the same mean gap, a customer whose Erlang clock has run longer since the last
    purchase (larger T − t_x, still alive) is due sooner: higher value given alive."""
    from winback.models.beta_geo_cnbd import cnbd_dert_given_alive

    x = np.array([3.0, 3.0])
    values = cnbd_dert_given_alive(
        np.array([20.0, 6.0, 0.5, 3.0]), 4, False, 0.05, x, np.array([51.0, 40.0]), np.full(2, 52.0)
    )
    assert values[1] > values[0]


def test_dert_refuses_a_bad_rate() -> None:
    model = BetaGeoCNBDModel.from_params(dict(r=2.0, alpha=6.0, a=0.6, b=2.5), k=2)
    for rate in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(WinbackConfigError, match="discount_rate"):
            model.dert(rate, CUSTOMERS)
