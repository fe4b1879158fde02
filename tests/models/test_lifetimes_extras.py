"""lifetimes-style extras on the count models (docs/methods.md#models): P(alive) at a future
time T + t and ``probability_of_n_purchases_up_to_time``, against numerical integration of each
model's definition and against Monte Carlo — never against the code under test."""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import numpy as np
import polars as pl
import pytest
from scipy import integrate, special

from winback.models import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    simulate,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BG = {"r": 0.2426, "alpha": 4.414, "a": 0.7929, "b": 2.426}
PNBD = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return pl.read_csv(DATA / "cdnow_customers_summary.csv").head(300)


def _bg_survival_by_integration(r: float, alpha: float, a: float, b: float, t: float) -> float:
    """E_p[(α/(α + p t))^r], p ~ Beta(a, b), by mpmath quadrature: given p and λ the chance of
    no dropout among the N(t) ~ Poisson(λt) purchases is e^{−λ p t}; λ ~ Gamma(r, α)."""
    mpmath.mp.dps = 30
    norm = mpmath.beta(a, b)
    value = mpmath.quad(
        lambda p: p ** (a - 1) * (1 - p) ** (b - 1) * (alpha / (alpha + p * t)) ** r, [0, 0.5, 1]
    )
    return float(value / norm)


@pytest.mark.parametrize(("model", "shift"), [(BetaGeoModel, 0.0), (ModifiedBetaGeoModel, 1.0)])
def test_bg_future_alive_against_integration(
    model: type, shift: float, cdnow: pl.DataFrame
) -> None:
    fixed = model.from_params(BG)
    now = fixed.probability_alive(cdnow).to_numpy()
    assert np.array_equal(fixed.probability_alive(cdnow, future_t=0.0).to_numpy(), now)
    later = fixed.probability_alive(cdnow, future_t=26.0).to_numpy()
    for i in (0, 1, 5, 17, 40):
        x, T = float(cdnow["frequency"][i]), float(cdnow["T"][i])
        factor = _bg_survival_by_integration(
            BG["r"] + x, BG["alpha"] + T, BG["a"], BG["b"] + x + shift, 26.0
        )
        assert later[i] == pytest.approx(now[i] * factor, rel=1e-10)
    assert np.all(later <= now)


def test_pareto_future_alive_against_integration(cdnow: pl.DataFrame) -> None:
    fixed = ParetoNBDModel.from_params(PNBD)
    now = fixed.probability_alive(cdnow).to_numpy()
    later = fixed.probability_alive(cdnow, future_t=10.0).to_numpy()
    s, beta = PNBD["s"], PNBD["beta"]
    for i in (0, 3, 9):
        T = float(cdnow["T"][i])
        # posterior μ ~ Gamma(s, β + T): P(lifetime beyond 10 more weeks) = E[e^{−10 μ}]
        survive, _ = integrate.quad(
            lambda mu, T=T: (
                math.exp(
                    s * math.log(beta + T)
                    + (s - 1) * math.log(mu)
                    - (beta + T) * mu
                    - math.lgamma(s)
                )
                * math.exp(-10.0 * mu)
            ),
            0,
            math.inf,
        )
        assert later[i] == pytest.approx(now[i] * survive, rel=1e-8)


def test_cnbd_future_alive_k1_equals_bg_and_monte_carlo(cdnow: pl.DataFrame) -> None:
    data = cdnow.with_columns(litt=pl.lit(0.0))
    for cnbd, plain in (
        (BetaGeoCNBDModel, BetaGeoModel),
        (ModifiedBetaGeoCNBDModel, ModifiedBetaGeoModel),
    ):
        ours = cnbd.from_params(BG, k=1).probability_alive(data, future_t=20.0).to_numpy()
        ref = plain.from_params(BG).probability_alive(data, future_t=20.0).to_numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-10)
    # k = 3, new customers alive at 0: P(alive at t) = 1 − P(dropped by t); by simulation, a
    # customer dropped by t made fewer purchases in (0, t] than their geometric budget allows.
    truth = {"r": 3.0, "alpha": 5.0, "a": 0.6, "b": 2.5}
    model = BetaGeoCNBDModel.from_params(truth, k=3)
    zero = pl.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0], "litt": [0.0]})
    p_alive = model.probability_alive(zero, future_t=15.0)[0]
    rng = np.random.default_rng(7)
    n = 200_000
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    p = rng.beta(truth["a"], truth["b"], n)
    clocks = rng.poisson(lam * 15.0) // 3  # purchase clocks completed by t
    budget = rng.geometric(p)  # BG: dropout after the budget-th repeat purchase
    alive = budget > clocks
    assert abs(alive.mean() - p_alive) < 4 * math.sqrt(p_alive * (1 - p_alive) / n)


def _bg_pmf_by_integration(
    n: int, r: float, alpha: float, a: float, b: float, t: float, modified: bool
) -> float:
    """P(X(t) = n) for a new customer from the definition: given λ and p, n purchases happen
    when the budget exceeds n and Poisson(λt) = n, or the budget is exactly n and ≥ n phases…
    integrated over λ by quadrature and over p by Beta moments."""

    def moment(i: int, j: int) -> float:  # E[p^i (1−p)^j]
        return math.exp(special.betaln(a + i, b + j) - special.betaln(a, b))

    if modified:  # dropout also at 0: budget B ≥ 0 repeat purchases, P(B = j) = (1−p)^j p
        keep, stop = moment(0, n + 1), moment(1, n)
    else:  # budget B ≥ 1, P(B = j) = (1−p)^{j−1} p; for n = 0 nothing stops the customer
        keep, stop = moment(0, n), (moment(1, n - 1) if n > 0 else 0.0)

    mpmath.mp.dps = 30

    def integrand(lam: mpmath.mpf) -> mpmath.mpf:
        prior = mpmath.exp(
            r * mpmath.log(alpha) + (r - 1) * mpmath.log(lam) - alpha * lam - mpmath.loggamma(r)
        )
        exact = mpmath.exp(-lam * t) * (lam * t) ** n / mpmath.factorial(n)
        at_least = mpmath.gammainc(n, 0, lam * t, regularized=True) if n > 0 else 1
        return prior * (keep * exact + stop * at_least)

    # tanh–sinh handles λ^(r−1) at 0; split where the Poisson mass sits
    value = float(mpmath.quad(integrand, [0, (n + 1) / t, 10 * (n + 1) / t, mpmath.inf]))
    return value  # (MBG, n = 0: "stop" is the dropout at time 0, after which nothing happens)


@pytest.mark.parametrize(
    ("model", "modified"), [(BetaGeoModel, False), (ModifiedBetaGeoModel, True)]
)
def test_probability_of_n_purchases_up_to_time(model: type, modified: bool) -> None:
    fixed = model.from_params(BG, unit="W")
    total = 0.0
    for n in range(0, 400):
        got = fixed.probability_of_n_purchases_up_to_time(39.0, n)
        total += got
        if n < 6:
            want = _bg_pmf_by_integration(n, *BG.values(), 39.0, modified)
            assert got == pytest.approx(want, rel=1e-8), n
    assert total == pytest.approx(1.0, abs=1e-6)


def test_pareto_probability_of_n_purchases_up_to_time_monte_carlo() -> None:
    fixed = ParetoNBDModel.from_params(PNBD)
    data = simulate.pareto_nbd(200_000, **PNBD, T=39.0, seed=3)
    x = data["frequency"].to_numpy()
    for n in (0, 1, 2, 5):
        p = fixed.probability_of_n_purchases_up_to_time(39.0, n)
        share = float(np.mean(x == n))
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / x.size), n
