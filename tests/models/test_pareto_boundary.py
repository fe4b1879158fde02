"""Pareto/NBD at the s, β → ∞ boundary (docs/methods.md#pareto-nbd-boundary): with one dropout
rate for every customer the fit stops on the ray with a BoundaryFitWarning and recovers μ = s/β;
with heterogeneous dropout rates nothing changes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from winback._kernels import likelihood as lik
from winback.errors import BoundaryFitWarning
from winback.models import ParetoNBDModel, simulate
from winback.models import _fitting as fitting

MU = 1.0 / 30.0  # one dropout rate per week: mean lifetime 30 weeks


def _constant_dropout(n: int, seed: int) -> object:
    # s = 1e9: the Gamma mixing of the dropout rate has CV 3e-5, i.e. none.
    return simulate.pareto_nbd(n, r=0.8, alpha=10.0, s=1e9, beta=1e9 / MU, T=52.0, seed=seed)


def test_constant_dropout_rate_stops_on_the_ray_and_recovers_mu() -> None:
    data = _constant_dropout(20_000, seed=3)
    with pytest.warns(BoundaryFitWarning, match=r"μ = s/β = 0\.03\d*"):
        model = ParetoNBDModel().fit(data)
    p = model.params_
    assert model.boundary_
    assert p["s"] >= fitting.RAY_MIN_VALUE
    assert p["s"] / p["beta"] == pytest.approx(MU, rel=0.08)
    assert p["r"] == pytest.approx(0.8, rel=0.15)
    assert p["alpha"] == pytest.approx(10.0, rel=0.2)
    assert math.isinf(model.params_se_["s"])
    assert math.isinf(model.params_se_["beta"])
    assert 0 < model.params_se_["r"] < 0.1 * p["r"]
    assert np.all(np.isfinite(model.covariance_))
    # The supremum along the ray (s, β × 1e3) is within the documented gain per customer.
    x, t_x, T = (data[c].to_numpy().astype(np.float64) for c in ("frequency", "recency", "T"))
    w = np.ones_like(x)

    def loglik(scale: float) -> float:
        params = np.array([p["r"], p["alpha"], p["s"] * scale, p["beta"] * scale])
        return float(lik.pareto_nbd_loglik_grad(params, x, t_x, T, w)[0])

    gain = loglik(1e3) - loglik(1.0)
    assert gain < 2 * fitting.RAY_GAIN_PER_CUSTOMER * x.size
    # Predictions are finite and those of the constant-rate model: P(alive) = e^{−μ(T − t_x)}
    # times a factor of λ's posterior only, so at t_x = T everyone with a purchase is alive.
    alive = model.probability_alive(data).to_numpy()
    assert np.all(np.isfinite(alive))
    assert np.all((alive > 0) & (alive <= 1))


def test_constant_dropout_fit_on_a_sample_then_all_tuples() -> None:
    # > 8,000 distinct tuples: the sample stage stops on the ray, the full stage settles r, α, μ.
    data = _constant_dropout(40_000, seed=5)
    with pytest.warns(BoundaryFitWarning):
        model = ParetoNBDModel().fit(data)
    assert model.boundary_
    assert model.params_["s"] / model.params_["beta"] == pytest.approx(MU, rel=0.08)


def test_heterogeneous_dropout_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    data = simulate.pareto_nbd(20_000, r=0.8, alpha=10.0, s=1.5, beta=40.0, T=52.0, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundaryFitWarning)
        model = ParetoNBDModel().fit(data)
    assert not model.boundary_
    # The same bits as the fit without the boundary check.
    monkeypatch.setattr(ParetoNBDModel, "_boundary_ray", None)
    plain = ParetoNBDModel().fit(data)
    assert model.params_ == plain.params_
    assert model.params_se_ == plain.params_se_
    assert model.log_likelihood_ == plain.log_likelihood_
    assert model.params_["s"] == pytest.approx(1.5, rel=0.5)
