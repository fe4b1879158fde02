"""``Model.from_params`` and the per-customer ``log_likelihood`` of every model
(docs/methods.md#fitting): a model built from known parameters predicts like the fitted one and
saves, bad parameters are typed errors naming them, and per-customer log-likelihoods sum to the
fit's total at the optimum."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from winback.errors import WinbackConfigError
from winback.models import (
    BaseModel,
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    NBDModel,
    ParetoNBDModel,
    load,
    simulate,
)


def _data(cls: type[BaseModel]) -> pl.DataFrame:
    if cls is NBDModel:
        return simulate.nbd_periods(3000, r=0.8, alpha=2.0, periods=np.arange(3000) % 12, seed=1)
    if cls is GammaGammaModel:
        return simulate.gamma_gamma(
            3000, p=6.0, q=4.0, gamma=15.0, frequency=np.arange(3000) % 7, seed=1
        )
    if cls is BetaGeoBetaBinomModel:
        return simulate.bgbb(3000, alpha=1.2, beta=0.75, gamma=0.66, delta=2.8, n_periods=8, seed=1)
    if cls is ParetoNBDModel:
        return simulate.pareto_nbd(3000, r=0.55, alpha=10.6, s=0.6, beta=11.7, T=39.0, seed=1)
    draw = simulate.mbgnbd if cls is ModifiedBetaGeoModel else simulate.bgnbd
    return draw(3000, r=0.25, alpha=4.4, a=0.8, b=2.4, T=np.arange(3000) % 39 + 1.0, seed=1)


MODELS = [
    NBDModel,
    GammaGammaModel,
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    BetaGeoBetaBinomModel,
]


@pytest.fixture(scope="module")
def fits() -> dict[type[BaseModel], tuple[BaseModel, pl.DataFrame]]:
    out: dict[type[BaseModel], tuple[BaseModel, pl.DataFrame]] = {}
    for cls in MODELS:
        data = _data(cls)
        out[cls] = (cls().fit(data), data)
    return out


def _predictions(model: Any, data: pl.DataFrame) -> list[pl.Series]:
    if isinstance(model, NBDModel):
        return [model.expected_purchases(2.0, data), model.predictive_pmf(1, 1.0, data)]
    if isinstance(model, GammaGammaModel):
        return [model.expected_spend(data)]
    if isinstance(model, BetaGeoBetaBinomModel):
        return [model.probability_alive(data), model.expected_purchases(4, data)]
    return [model.probability_alive(data), model.expected_purchases(10.0, data)]


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_per_customer_log_likelihoods_sum_to_the_fit(
    cls: type[BaseModel], fits: dict[type[BaseModel], tuple[BaseModel, pl.DataFrame]]
) -> None:
    model, data = fits[cls]
    each = model.log_likelihood(data)
    assert each.len() == data.height
    assert each.is_finite().all()
    assert math.isclose(each.sum(), model.log_likelihood_, rel_tol=1e-9)
    assert model.log_likelihood().equals(each)  # default: the fitted frame


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_a_model_from_params_predicts_like_the_fitted_one_and_saves(
    cls: type[BaseModel],
    fits: dict[type[BaseModel], tuple[BaseModel, pl.DataFrame]],
    tmp_path: Path,
) -> None:
    fitted, data = fits[cls]
    built = cls.from_params(**fitted.params_)
    assert built.params_ == fitted.params_
    assert not built.converged_
    assert built.n_customers_ == 0
    assert built.n_iter_ == 0
    assert math.isnan(built.log_likelihood_)
    assert all(math.isnan(v) for v in built.params_se_.values())
    for got, want in zip(_predictions(built, data), _predictions(fitted, data), strict=True):
        assert got.equals(want)
    assert built.log_likelihood(data).equals(fitted.log_likelihood(data))
    assert cls.from_params(dict(fitted.params_)).params_ == fitted.params_
    again = load(built.save(tmp_path / "model.json"))
    assert type(again) is cls
    assert again.params_ == fitted.params_
    assert math.isnan(again.log_likelihood_)
    assert np.isnan(again.covariance_).all()
    assert all(math.isnan(v) for v in again.params_se_.values())
    table = again.summary()
    assert table["estimate"].to_list() == list(fitted.params_.values())
    with pytest.raises(WinbackConfigError, match="pass data="):
        built.log_likelihood()


def test_from_params_records_the_unit_and_resolution() -> None:
    model = BetaGeoModel.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4, unit="W", resolution="1d")
    assert (model.unit_, model.resolution_) == ("W", "1d")
    with pytest.raises(WinbackConfigError, match="unit"):
        BetaGeoModel.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4, unit="M")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"r": 0.2, "alpha": 4.0, "a": 0.8}, r"missing \['b'\]"),
        ({"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.0, "s": 1.0}, r"unknown \['s'\]"),
        ({"r": 0.0, "alpha": 4.0, "a": 0.8, "b": 2.0}, "'r' must be a finite number > 0"),
        ({"r": 0.2, "alpha": -4.0, "a": 0.8, "b": 2.0}, "'alpha' must be"),
        ({"r": 0.2, "alpha": 4.0, "a": math.nan, "b": 2.0}, "'a' must be"),
        ({"r": 0.2, "alpha": 4.0, "a": 0.8, "b": math.inf}, "'b' must be"),
        ({"r": True, "alpha": 4.0, "a": 0.8, "b": 2.0}, "'r' must be"),
        ({"r": "0.2", "alpha": 4.0, "a": 0.8, "b": 2.0}, "'r' must be"),
    ],
)
def test_bad_parameters_are_config_errors_naming_them(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(WinbackConfigError, match=match):
        BetaGeoModel.from_params(**kwargs)


def test_model_specific_constraints_apply() -> None:
    with pytest.raises(WinbackConfigError, match="'q' must be > 1"):
        GammaGammaModel.from_params(p=6.0, q=0.9, gamma=15.0)
    with pytest.raises(WinbackConfigError, match="mapping or as keywords"):
        NBDModel.from_params({"r": 1.0}, alpha=2.0)


def test_an_unfitted_model_has_no_log_likelihood() -> None:
    from winback.errors import WinbackFitError

    with pytest.raises(WinbackFitError, match="not fitted"):
        BetaGeoModel().log_likelihood(
            pl.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]})
        )
