"""winback.models.customer_lifetime_value (docs/methods.md#clv-discounted): lifetimes' formula
computed independently, CDNOW sanity bounds, typed refusals."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from winback.datasets import read_cdnow_text
from winback.errors import WinbackConfigError
from winback.models import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    customer_lifetime_value,
)
from winback.summary import summary

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

SMALL = pl.DataFrame(
    {
        "frequency": [0, 2, 6],
        "recency": [0.0, 30.43, 35.0],
        "T": [38.86, 38.86, 39.0],
        "spend_frequency": [0, 2, 6],
        "monetary_value": [0.0, 22.5, 41.0],
    }
)


def _lifetimes_by_hand(
    bg: BetaGeoModel, gg: GammaGammaModel, row: int, months: int, d: float, per_month: float
) -> float:
    """lifetimes' loop, written out from the closed forms (FHL 2005 eq. 10, Gamma–Gamma mean)."""
    r, alpha, a, b = (bg.params_[k] for k in ("r", "alpha", "a", "b"))
    p, q, gamma = (gg.params_[k] for k in ("p", "q", "gamma"))
    x, t_x, T = (float(SMALL[c][row]) for c in ("frequency", "recency", "T"))
    z = float(SMALL["monetary_value"][row])
    from scipy.special import hyp2f1

    def cumulative(t: float) -> float:
        if t == 0:
            return 0.0
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        top = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        bottom = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return top / bottom

    spend = p * (gamma + x * z) / (p * x + q - 1) if x > 0 else p * gamma / (q - 1)
    total = 0.0
    for i in range(1, months + 1):
        step = i * per_month
        total += (cumulative(step) - cumulative(step - per_month)) * spend / (1 + d) ** i
    return total


@pytest.mark.parametrize(
    ("months", "d", "freq", "per_month"), [(12, 0.01, "W", 4.345), (3, 0.1, "D", 30.0)]
)
def test_matches_the_lifetimes_formula_by_hand(
    months: int, d: float, freq: str, per_month: float
) -> None:
    bg = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    gg = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    clv = customer_lifetime_value(bg, gg, SMALL, months=months, discount_rate=d, freq=freq)  # type: ignore[arg-type]
    assert clv.name == "clv"
    assert clv.len() == SMALL.height
    for row in range(SMALL.height):
        expected = _lifetimes_by_hand(bg, gg, row, months, d, per_month)
        assert clv[row] == pytest.approx(expected, rel=1e-10)


def test_no_discount_is_expected_purchases_times_spend() -> None:
    model = ParetoNBDModel.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    gg = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    clv = customer_lifetime_value(model, gg, SMALL, months=6, discount_rate=0.0, freq="W")
    expected = model.expected_purchases(6 * 4.345, SMALL) * gg.expected_spend(SMALL)
    np.testing.assert_allclose(clv.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_cdnow_bgnbd_gamma_gamma_total() -> None:
    path = SHARED / "CDNOW_master.txt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    data, info = summary(
        read_cdnow_text(path), unit="W", calibration_end=date(1997, 9, 30), return_info=True
    )
    bg = BetaGeoModel().fit((data, info))
    gg = GammaGammaModel().fit((data, info))
    clv = customer_lifetime_value(bg, gg, (data, info), months=12, discount_rate=0.01)
    values = clv.to_numpy()
    assert values.shape == (23_570,)
    assert np.all(np.isfinite(values))
    assert np.all(values > 0)
    undiscounted = float(
        (bg.expected_purchases(12 * 4.345, (data, info)) * gg.expected_spend(data)).sum()
    )
    total = float(values.sum())
    # Between the undiscounted value and all of it discounted by the last month's factor.
    assert undiscounted / 1.01**12 < total < undiscounted
    assert total == pytest.approx(768_055.2, rel=1e-4)


def test_refusals() -> None:
    bg = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    gg = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    with pytest.raises(WinbackConfigError, match="unit"):
        customer_lifetime_value(bg, gg, SMALL)  # unit unknown
    for months in (0, 1.5, -3, math.nan, True, "12"):
        with pytest.raises(WinbackConfigError, match="months"):
            customer_lifetime_value(bg, gg, SMALL, months=months, freq="W")  # type: ignore[arg-type]
    for rate in (-0.1, math.inf, math.nan, "x", True):
        with pytest.raises(WinbackConfigError, match="discount_rate"):
            customer_lifetime_value(bg, gg, SMALL, discount_rate=rate, freq="W")  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError, match="freq"):
        customer_lifetime_value(bg, gg, SMALL, freq="Y")  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError, match="count_model"):
        customer_lifetime_value(gg, gg, SMALL, freq="W")  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError, match="spend_model"):
        customer_lifetime_value(bg, bg, SMALL, freq="W")  # type: ignore[arg-type]
