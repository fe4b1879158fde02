"""DERT for Pareto/NBD, BG/NBD and MBG/NBD (docs/methods.md#dert): against numerical integration
of the discounted expected transaction rate, δ ∫_0^∞ e^{−δt} E[X(T, T+t)] dt, and for Pareto/NBD
against the Tricomi-U closed form of Fader, Hardie & Lee (2005)."""

from __future__ import annotations

import math
from pathlib import Path

import mpmath as mp
import numpy as np
import polars as pl
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy import integrate

from winback.errors import WinbackConfigError
from winback.models import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
#: 15 % a year as a continuous weekly rate (FHL 2005 use 0.0027 for CDNOW).
WEEKLY = math.log(1.15) / 52

CUSTOMERS = pl.DataFrame(
    {
        "frequency": [0, 1, 2, 7, 30],
        "recency": [0.0, 1.71, 30.43, 35.0, 38.0],
        "T": [38.86, 38.86, 38.86, 39.0, 39.0],
    }
)


def _by_integration(model: object, row: pl.DataFrame, delta: float) -> float:
    """δ ∫_0^∞ e^{−δt} E[X(T, T+t) | row] dt = ∫_0^∞ e^{−δt} dE[X(T, T+t)] (parts)."""

    def integrand(t: float) -> float:
        return delta * math.exp(-delta * t) * model.expected_purchases(t, row)[0]  # type: ignore[attr-defined]

    value, _ = integrate.quad(integrand, 0.0, math.inf, limit=400, epsabs=1e-13, epsrel=1e-11)
    return float(value)


def _hyperu(s: float, z: float) -> float:
    """Tricomi's U(s, s; z) by mpmath (scipy's hyperu is good to ~1e−8 only, and NaN for large
    arguments)."""
    with mp.workdps(30):
        return float(mp.hyperu(s, s, z))


param = st.floats(0.2, 5.0)


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(r=param, alpha=st.floats(0.5, 20.0), a=param, b=param, delta=st.floats(0.001, 0.5))
def test_bgnbd_dert_matches_integration(
    r: float, alpha: float, a: float, b: float, delta: float
) -> None:
    for cls in (BetaGeoModel, ModifiedBetaGeoModel):
        model = cls.from_params(r=r, alpha=alpha, a=a, b=b)
        dert = model.dert(delta, CUSTOMERS).to_numpy()
        for i in (0, 2, 4):
            expected = _by_integration(model, CUSTOMERS[i], delta)
            assert dert[i] == pytest.approx(expected, rel=1e-7, abs=1e-12), (cls, i)


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(
    r=param,
    alpha=st.floats(0.5, 20.0),
    s=param,
    beta=st.floats(0.5, 20.0),
    delta=st.floats(0.001, 0.5),
)
def test_pareto_dert_matches_integration_and_the_closed_form(
    r: float, alpha: float, s: float, beta: float, delta: float
) -> None:
    model = ParetoNBDModel.from_params(r=r, alpha=alpha, s=s, beta=beta)
    dert = model.dert(delta, CUSTOMERS).to_numpy()
    alive = model.probability_alive(CUSTOMERS).to_numpy()
    x, T = CUSTOMERS["frequency"].to_numpy(), CUSTOMERS["T"].to_numpy()
    for i in (0, 2, 4):
        assert dert[i] == pytest.approx(_by_integration(model, CUSTOMERS[i], delta), rel=1e-7)
        # FHL 2005: P(alive) (r+x)/(α+T) (β+T)^s δ^{s−1} U(s, s; δ(β+T)).
        z = delta * (beta + T[i])
        closed = (
            alive[i] * (r + x[i]) / (alpha + T[i]) * (beta + T[i]) ** s * delta ** (s - 1)
        ) * _hyperu(s, z)
        assert dert[i] == pytest.approx(closed, rel=1e-9)


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_dert_on_cdnow_is_finite_and_falls_with_the_rate(cls: type) -> None:
    summary = pl.read_csv(SHARED / "cdnow_customers_summary.csv")
    model = cls().fit(summary)
    low = model.dert(WEEKLY).to_numpy()
    high = model.dert(10 * WEEKLY).to_numpy()
    assert low.shape == (summary.height,)
    assert np.all(np.isfinite(low))
    assert np.all(low > 0)
    assert np.all(high < low)
    # Residual value grows with the frequency at fixed recency = T (alive for sure).
    sure = pl.DataFrame({"frequency": [1, 5], "recency": [38.0, 38.0], "T": [38.0, 38.0]})
    more = model.dert(WEEKLY, sure).to_numpy()
    assert more[1] > more[0]


def test_pareto_cdnow_dert_values() -> None:
    """Pareto/NBD on CDNOW with δ = ln(1.15)/52: values pinned from this implementation and
    cross-checked against the Tricomi-U closed form (FHL 2005's published figures were not
    available to check against; see docs/methods.md#dert)."""
    summary = pl.read_csv(SHARED / "cdnow_customers_summary.csv")
    model = ParetoNBDModel().fit(summary)
    r, alpha, s, beta = (model.params_[k] for k in ("r", "alpha", "s", "beta"))
    dert = model.dert(WEEKLY, summary.head(3)).to_numpy()
    alive = model.probability_alive(summary.head(3)).to_numpy()
    x, T = summary["frequency"].to_numpy()[:3], summary["T"].to_numpy()[:3]
    closed = (
        alive
        * (r + x)
        / (alpha + T)
        * (beta + T) ** s
        * WEEKLY ** (s - 1)
        * np.array([_hyperu(s, z) for z in WEEKLY * (beta + T)])
    )
    np.testing.assert_allclose(dert, closed, rtol=1e-9)
    np.testing.assert_allclose(dert, [6.5002, 0.76379, 0.47825], rtol=1e-4)


@pytest.mark.parametrize("rate", [0.0, -0.1, math.nan, math.inf, "x"])
def test_dert_refuses_a_bad_rate(rate: object) -> None:
    for model in (
        BetaGeoModel.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4),
        ParetoNBDModel.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7),
    ):
        with pytest.raises(WinbackConfigError, match="discount_rate"):
            model.dert(rate, CUSTOMERS)  # type: ignore[arg-type]


def test_dert_for_a_heavy_buyer_is_finite() -> None:
    heavy = pl.DataFrame({"frequency": [20_000], "recency": [52.0], "T": [52.0]})
    for model in (
        BetaGeoModel.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4),
        ModifiedBetaGeoModel.from_params(r=0.52, alpha=6.2, a=0.89, b=1.6),
        ParetoNBDModel.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7),
    ):
        value = model.dert(WEEKLY, heavy).to_numpy()
        assert np.all(np.isfinite(value))
        assert value[0] > 0
