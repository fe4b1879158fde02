"""Per-customer intervals for the Gamma–Gamma conditional expected spend
(docs/methods.md#intervals): the delta method against the closed-form gradient and a seeded
parametric bootstrap, and the typed failures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

import winback
from winback.datasets import read_cdnow_text
from winback.errors import WinbackConfigError
from winback.models import GammaGammaModel

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def spend() -> pl.DataFrame:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    return winback.summary(tx, as_of=date(1997, 9, 30), unit="W")


def test_delta_method_against_closed_form_gradient(spend: pl.DataFrame) -> None:
    model = GammaGammaModel().fit(spend)
    some = spend[[0, 1, 7, 12, 100]]
    out = model.expected_spend_interval(some, level=0.9)
    p, q, g = (model.params_[n] for n in ("p", "q", "gamma"))
    x = some["spend_frequency"].cast(pl.Float64).to_numpy()
    z = some["monetary_value"].to_numpy()
    # E = p (γ + x z̄) / (p x + q − 1): by hand, ∂E/∂p = (γ + x z̄)(q − 1)/D²,
    # ∂E/∂q = −p (γ + x z̄)/D², ∂E/∂γ = p/D with D = p x + q − 1.
    d = p * x + q - 1.0
    grad = np.stack([(g + x * z) * (q - 1.0) / d**2, -p * (g + x * z) / d**2, p / d])
    se = np.sqrt(np.einsum("ic,ij,jc->c", grad, model.covariance_, grad))
    expected = p * (g + x * z) / d
    np.testing.assert_allclose(out["expected"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(out["std_error"].to_numpy(), se, rtol=1e-6)
    half = norm.ppf(0.95) * se / expected
    np.testing.assert_allclose(out["lower"].to_numpy(), expected * np.exp(-half), rtol=1e-6)
    np.testing.assert_allclose(out["upper"].to_numpy(), expected * np.exp(half), rtol=1e-6)


def test_delta_method_against_parametric_bootstrap(spend: pl.DataFrame) -> None:
    model = GammaGammaModel().fit(spend)
    # With the covariance scaled down the linearisation is exact to first order; the
    # bootstrap's spread (θ ~ N(θ̂, Σ), seeded) must then match it (~3 % sampling error).
    model.covariance_ = model.covariance_ * 0.01
    some = spend[[0, 1, 7, 12, 100]]
    out = model.expected_spend_interval(some)
    rng = np.random.default_rng(3)
    names = model.param_names
    mean = np.array([model.params_[n] for n in names])
    draws = rng.multivariate_normal(mean, model.covariance_, 1000)
    values = np.array(
        [
            GammaGammaModel.from_params(dict(zip(names, d, strict=True)))
            .expected_spend(some)
            .to_numpy()
            for d in draws
            if d[0] > 0 and d[1] > 1 and d[2] > 0
        ]
    )
    np.testing.assert_allclose(out["std_error"].to_numpy(), values.std(axis=0), rtol=0.1)
    lower, expected, upper = (out[c].to_numpy() for c in ("lower", "expected", "upper"))
    assert np.all((lower > 0) & (lower < expected) & (expected < upper))


def test_needs_a_covariance_and_a_level(spend: pl.DataFrame) -> None:
    model = GammaGammaModel.from_params(p=6.0, q=3.9, gamma=15.0)
    with pytest.raises(WinbackConfigError, match="covariance"):
        model.expected_spend_interval(spend)
    fitted = GammaGammaModel().fit(spend)
    with pytest.raises(WinbackConfigError, match="level"):
        fitted.expected_spend_interval(spend, level=0.0)


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.integers(0, 300), min_size=1, max_size=400),
    weighted=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_frequency_cap_by_value_counts_equals_the_sorted_rows(
    x: list[int], weighted: bool, seed: int
) -> None:
    """The cap from weight per value (whole counts) is the cap from sorting every row."""
    from winback.models import gamma_gamma

    values = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 50, values.size).astype(np.float64) if weighted else None
    fast = gamma_gamma.extreme_frequency_cap(values, w)
    weights = np.ones_like(values) if w is None else w
    order = np.argsort(values, kind="stable")
    share = np.cumsum(weights[order]) / weights.sum()
    at = min(int(np.searchsorted(share, 0.99, side="left")), values.size - 1)
    expected = max(gamma_gamma.EXTREME_FREQUENCY_MIN, 10.0 * float(values[order][at]))
    assert fast == expected
    # non-whole values take the sorting path and agree with it too
    assert gamma_gamma.extreme_frequency_cap(values + 0.5, w) == max(
        gamma_gamma.EXTREME_FREQUENCY_MIN, 10.0 * (float(values[order][at]) + 0.5)
    )
