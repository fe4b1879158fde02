"""L2 ``penalizer`` on the count models' fits (docs/methods.md#penalizer): 0 is plain maximum
likelihood bit for bit, > 0 shrinks and optimises lifetimes' objective, the penalised Newton pass
has the exact Hessian, ``penalize="log"`` makes the one-customer fit finite."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from winback.errors import WinbackConfigError, WinbackFitError
from winback.models import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from winback.models._summary_data import checked_rft, compressed_rft

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]
ONE = pl.DataFrame({"frequency": [2], "recency": [30.0], "T": [38.0]})


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return pl.read_csv(SHARED / "cdnow_customers_summary.csv")


@pytest.mark.parametrize("cls", MODELS)
def test_zero_penalty_is_bit_identical(cls: type, cdnow: pl.DataFrame) -> None:
    plain = cls().fit(cdnow)
    zero = cls().fit(cdnow, penalizer=0.0)
    assert plain.params_ == zero.params_
    assert plain.log_likelihood_ == zero.log_likelihood_
    assert np.array_equal(plain.covariance_, zero.covariance_)
    assert zero.penalizer_ == 0.0


@pytest.mark.parametrize("cls", MODELS)
def test_penalty_shrinks_and_optimises_lifetimes_objective(cls: type, cdnow: pl.DataFrame) -> None:
    c = 0.01
    plain = cls().fit(cdnow)
    model = cls().fit(cdnow, penalizer=c)
    theta = np.array(list(model.params_.values()))
    assert float(theta @ theta) < float(np.sum(np.square(list(plain.params_.values()))))
    # log_likelihood_ is the data's log-likelihood at the penalised optimum: below the MLE's.
    assert model.log_likelihood_ < plain.log_likelihood_
    n = cdnow.height

    def lifetimes_objective(params: np.ndarray) -> float:
        """lifetimes: −mean per-customer log-likelihood + c Σθ²."""
        scored = cls.from_params(**dict(zip(cls.param_names, params, strict=True)))
        return -float(scored.log_likelihood(cdnow).sum()) / n + c * float(params @ params)

    best = lifetimes_objective(theta)
    assert best == pytest.approx(-model.log_likelihood_ / n + c * float(theta @ theta), rel=1e-9)
    for i in range(theta.size):
        for factor in (1 - 1e-3, 1 + 1e-3):
            moved = theta.copy()
            moved[i] *= factor
            assert lifetimes_objective(moved) > best


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("penalize", ["natural", "log"])
def test_penalised_newton_pass_has_the_exact_hessian(
    cls: type, penalize: str, cdnow: pl.DataFrame
) -> None:
    model = cls()
    model.penalizer_, model.penalize_ = 0.05, penalize
    data = compressed_rft(
        checked_rft(
            cdnow, model="test", frequency_col="frequency", recency_col="recency", T_col="T"
        ),
        None,
        model="test",
    )
    newton = model._objective_newton(data)
    assert newton is not None
    theta = np.array([0.6, 5.0, 0.9, 2.5])
    value, _grad, hess = newton(theta)
    assert value == pytest.approx(model._objective_grad(theta, data)[0], rel=1e-10)
    step = 1e-6
    for i in range(4):
        up, down = theta.copy(), theta.copy()
        up[i] += step * theta[i]
        down[i] -= step * theta[i]
        numeric = (newton(up)[1] - newton(down)[1]) / (2 * step * theta[i])
        np.testing.assert_allclose(hess[i], numeric, rtol=1e-5, atol=1e-4 * np.abs(hess).max())


@pytest.mark.parametrize("cls", MODELS)
def test_log_penalty_makes_the_one_customer_fit_finite(cls: type) -> None:
    with pytest.raises(WinbackFitError):
        cls().fit(ONE)
    model = cls().fit(ONE, penalizer=0.1, penalize="log")
    values = list(model.params_.values()) + list(model.params_se_.values())
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert math.isfinite(model.log_likelihood_)
    assert np.all(np.isfinite(model.expected_purchases(10.0).to_numpy()))


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "x", True])
def test_refuses_a_bad_penalizer(bad: object) -> None:
    with pytest.raises(WinbackConfigError, match="penalizer"):
        BetaGeoModel().fit(ONE, penalizer=bad)  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError, match="penalize"):
        BetaGeoModel().fit(ONE, penalizer=0.1, penalize="l1")  # type: ignore[arg-type]


def test_bgbb_penalizer() -> None:
    """BG/BB's fit takes the same penalty: 0 is bit-identical, > 0 shrinks."""
    from winback.models import BetaGeoBetaBinomModel

    patterns = pl.DataFrame(
        {
            "frequency": [0, 1, 1, 2, 3, 6],
            "recency": [0, 1, 6, 4, 6, 6],
            "n": [6] * 6,
            "count": [3464, 1091, 129, 155, 357, 1203],
        }
    )
    plain = BetaGeoBetaBinomModel().fit(patterns, weights_col="count")
    zero = BetaGeoBetaBinomModel().fit(patterns, weights_col="count", penalizer=0.0)
    assert plain.params_ == zero.params_
    assert plain.log_likelihood_ == zero.log_likelihood_
    shrunk = BetaGeoBetaBinomModel().fit(patterns, weights_col="count", penalizer=0.05)
    assert sum(v**2 for v in shrunk.params_.values()) < sum(v**2 for v in plain.params_.values())
    assert shrunk.log_likelihood_ < plain.log_likelihood_
    with pytest.raises(WinbackConfigError, match="penalizer"):
        BetaGeoBetaBinomModel().fit(patterns, weights_col="count", penalizer=-1.0)
