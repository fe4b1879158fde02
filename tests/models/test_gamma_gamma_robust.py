"""Gamma–Gamma spend outliers (docs/methods.md#spend-outliers, issue 19): one customer with an
extreme number of occasions is set aside from the fit, named, and still predicted."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import winback
from winback.datasets import load_cdnow
from winback.models import GammaGammaModel
from winback.models.gamma_gamma import (
    EXTREME_FREQUENCY_FACTOR,
    EXTREME_FREQUENCY_MIN,
    SpendOutlierWarning,
    extreme_frequency_cap,
)


def _base(n: int = 500, seed: int = 3) -> pl.DataFrame:
    """A Gamma–Gamma population: x repeat occasions, mean amount z̄ around $60."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 8, n)
    nu = rng.gamma(3.0, 1 / 60.0, n)
    z = rng.gamma(4.0 * x, 1 / (x * nu))
    return pl.DataFrame({"customer_id": np.arange(n), "spend_frequency": x, "monetary_value": z})


def _with_extreme(base: pl.DataFrame, x: int = 100_000, z: float = 1.0) -> pl.DataFrame:
    extreme = pl.DataFrame(
        {"customer_id": [9999], "spend_frequency": [x], "monetary_value": [z]},
        schema=base.schema,
    )
    return pl.concat([base, extreme])


def test_one_extreme_customer_no_longer_kills_the_fit() -> None:
    # The issue's reproducer: 10^5 identical $1 occasions made the fit report "no customer-level
    # heterogeneity" (a WinbackFitError) for everyone.
    base = _base()
    with pytest.warns(SpendOutlierWarning, match=r"1 customer\(s\).*customer_id 9999") as caught:
        model = GammaGammaModel().fit(_with_extreme(base))
    assert "docs/methods.md#spend-outliers" in str(caught[0].message)
    # The fit is the fit without the outlier, bit for bit.
    clean = GammaGammaModel().fit(base)
    assert model.params_ == clean.params_
    assert model.log_likelihood_ == clean.log_likelihood_
    assert model.set_aside_.tolist() == [False] * base.height + [True]
    assert model.frequency_cap_ == max(EXTREME_FREQUENCY_MIN, 10 * 7.0)


def test_the_set_aside_customer_is_predicted_from_the_fitted_parameters() -> None:
    data = _with_extreme(_base())
    with pytest.warns(SpendOutlierWarning):
        model = GammaGammaModel().fit(data)
    spend = model.expected_spend(data)
    assert spend.is_finite().all()
    p, q, gamma = (model.params_[k] for k in ("p", "q", "gamma"))
    x, z = 100_000, 1.0
    assert spend[-1] == pytest.approx(p * (gamma + x * z) / (p * x + q - 1))
    assert spend[-1] == pytest.approx(1.0, rel=0.01)  # its own mean dominates
    assert model.spend_upside(data).is_finite().all()
    assert model.spend_cdf(2.0, data=data).is_finite().all()


@pytest.mark.parametrize("x", [300, 1_000, 10_000])
@pytest.mark.parametrize("z", [1.0, 60.0, 500.0])
def test_any_extreme_customer_leaves_the_fit_unchanged(x: int, z: float) -> None:
    # Without the rule x = 1,000 at $1 dragged p from 0.8 to 250; x = 10,000 failed the fit.
    base = _base(seed=5)
    clean = GammaGammaModel().fit(base)
    with pytest.warns(SpendOutlierWarning):
        model = GammaGammaModel().fit(_with_extreme(base, x, z))
    assert model.params_ == clean.params_


def test_without_ids_the_warning_names_rows() -> None:
    data = _with_extreme(_base()).drop("customer_id")
    with pytest.warns(SpendOutlierWarning, match=r"rows 500\)"):
        GammaGammaModel().fit(data)


def test_ordinary_data_set_nothing_aside(recwarn: pytest.WarningsRecorder) -> None:
    base = _base()
    model = GammaGammaModel().fit(base)
    assert not model.set_aside_.any()
    assert not [w for w in recwarn if issubclass(w.category, SpendOutlierWarning)]


def test_cdnow_is_far_below_the_cap() -> None:
    summary = winback.summary(load_cdnow(), as_of="1998-06-30")
    model = GammaGammaModel().fit(summary)
    assert not model.set_aside_.any()
    x = summary.filter(pl.col("frequency") > 0).get_column("frequency").to_numpy()
    # The largest CDNOW customer (170 repeat occasions) is below 10 × the 99th percentile (230).
    assert x.max() < model.frequency_cap_ == EXTREME_FREQUENCY_FACTOR * np.quantile(x, 0.99)


def test_weighted_data_set_aside_the_same_customers() -> None:
    # Compressed data with weights (the Spark path) give the cap of the rows they stand for.
    data = _with_extreme(_base()).drop("customer_id")
    with pytest.warns(SpendOutlierWarning):
        plain = GammaGammaModel().fit(data)
    weighted = data.group_by("spend_frequency", "monetary_value").agg(pl.len().alias("count"))
    with pytest.warns(SpendOutlierWarning):
        model = GammaGammaModel().fit(weighted, weights_col="count")
    assert model.frequency_cap_ == plain.frequency_cap_
    assert int(model.set_aside_.sum()) == 1
    for name in ("p", "q", "gamma"):
        assert model.params_[name] == pytest.approx(plain.params_[name], rel=1e-9)


def test_cap_is_the_inverted_cdf_percentile() -> None:
    x = np.arange(1.0, 201.0)
    assert extreme_frequency_cap(x) == 10 * 198.0
    assert extreme_frequency_cap(x, np.ones_like(x)) == extreme_frequency_cap(x)
    assert extreme_frequency_cap(np.array([1.0, 2.0])) == EXTREME_FREQUENCY_MIN
    assert extreme_frequency_cap(np.zeros(0)) == EXTREME_FREQUENCY_MIN
    assert math.isfinite(extreme_frequency_cap(np.array([1e12])))
