"""Per-customer intervals for expected purchases (docs/methods.md#intervals): the delta method's
standard errors against a seeded parametric bootstrap, and the typed failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from winback.errors import WinbackConfigError
from winback.models import BetaGeoModel, ParetoNBDModel

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel])
def test_delta_method_against_parametric_bootstrap(model_class: type) -> None:
    cdnow = pl.read_csv(DATA / "cdnow_customers_summary.csv")
    model = model_class().fit(cdnow)
    # The delta method linearises: with the covariance scaled down the linearisation is exact
    # to first order, and the bootstrap's spread must match it (each ~3 % sampling error).
    model.covariance_ = model.covariance_ * 0.01
    some = cdnow[[0, 1, 4, 20, 100]]
    out = model.expected_purchases_interval(39.0, some)
    np.testing.assert_array_equal(
        out["expected"].to_numpy(), model.expected_purchases(39.0, some).to_numpy()
    )
    rng = np.random.default_rng(1)
    names = model.param_names
    mean = np.array([model.params_[n] for n in names])
    draws = rng.multivariate_normal(mean, model.covariance_, 1000)
    values = np.array(
        [
            model_class.from_params(dict(zip(names, d, strict=True)))
            .expected_purchases(39.0, some)
            .to_numpy()
            for d in draws
            if np.all(d > 0)
        ]
    )
    np.testing.assert_allclose(out["std_error"].to_numpy(), values.std(axis=0), rtol=0.1)
    lower, expected, upper = (out[c].to_numpy() for c in ("lower", "expected", "upper"))
    assert np.all(lower < expected)
    assert np.all(expected < upper)
    assert np.all(lower > 0)


def test_needs_a_covariance() -> None:
    cdnow = pl.read_csv(DATA / "cdnow_customers_summary.csv").head(5)
    model = BetaGeoModel.from_params(r=0.24, alpha=4.4, a=0.79, b=2.4)
    with pytest.raises(WinbackConfigError, match="covariance"):
        model.expected_purchases_interval(10.0, cdnow)
    fitted = BetaGeoModel().fit(pl.read_csv(DATA / "cdnow_customers_summary.csv"))
    with pytest.raises(WinbackConfigError, match="level"):
        fitted.expected_purchases_interval(10.0, cdnow, level=1.5)
