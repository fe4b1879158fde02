"""The estimators of winback.models (docs/methods.md#models): published CDNOW estimates, parameter
recovery, predictions against independent closed forms and simulation, persistence, and fit
failures."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, special

from winback import summary
from winback.datasets import read_cdnow_text
from winback.errors import (
    BoundaryFitWarning,
    WinbackConfigError,
    WinbackFitError,
    WinbackInputError,
)
from winback.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    NBDModel,
    ParetoNBDModel,
    load,
    simulate,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def cdnow_summary() -> pl.DataFrame:
    """The literature's 2,357-customer CDNOW calibration summary (weeks)."""
    path = SHARED / "cdnow_customers_summary.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return pl.read_csv(path)


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow_summary: pl.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow_summary)


# -- published estimates --------------------------------------------------------------------------
def test_bgnbd_reproduces_fader_hardie_lee_on_cdnow(cdnow_bgnbd: BetaGeoModel) -> None:
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Table/§5.
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert round(cdnow_bgnbd.params_[name], 3) == value, name
    assert round(cdnow_bgnbd.log_likelihood_, 1) == -9582.4
    assert cdnow_bgnbd.converged_
    assert cdnow_bgnbd.n_customers_ == 2357


def test_pareto_nbd_reproduces_the_literature_on_cdnow(cdnow_summary: pl.DataFrame) -> None:
    # Fader, Hardie & Lee (2005) report r=0.55, α=10.58, s=0.61, β=11.67 (LL −9595.0).
    model = ParetoNBDModel().fit(cdnow_summary)
    published = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    for name, value in published.items():
        assert round(model.params_[name], 2) == value, name
    assert round(model.log_likelihood_) == -9595


def test_continuous_nbd_reproduces_the_literature_on_cdnow(cdnow_summary: pl.DataFrame) -> None:
    # docs/methods.md#nbd: the continuous-time NBD on (x, T) gives r = 0.385, α = 12.072 (Fader &
    # Hardie).
    model = NBDModel().fit(cdnow_summary, frequency_col="frequency", periods_col="T")
    assert round(model.params_["r"], 3) == 0.385
    assert round(model.params_["alpha"], 3) == 12.072


@pytest.fixture(scope="module")
def cdnow_sample_summary() -> pl.DataFrame:
    """winback.summary of the raw CDNOW 1/10 sample: 39-week calibration, weeks."""
    path = SHARED / "CDNOW_sample.txt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    transactions = read_cdnow_text(path)
    return summary(
        transactions, unit="W", calibration_end=date(1997, 9, 30), holdout_end=date(1998, 6, 30)
    )


def test_bgnbd_from_raw_cdnow_transactions(cdnow_sample_summary: pl.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_sample_summary)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {k: round(v, 3) for k, v in model.params_.items()} == published


def test_gamma_gamma_reproduces_fader_hardie_lee_on_cdnow(
    cdnow_sample_summary: pl.DataFrame,
) -> None:
    # Fader, Hardie & Lee (2005), "RFM and CLV", on the 946 customers with repeat purchases:
    # p = 6.25, q = 3.74, γ = 15.44.
    model = GammaGammaModel().fit(cdnow_sample_summary)
    assert model.n_customers_ == 946
    assert {k: round(v, 2) for k, v in model.params_.items()} == {
        "p": 6.25,
        "q": 3.74,
        "gamma": 15.44,
    }


# -- recovery -------------------------------------------------------------------------------------
def _within_three_se(model: object, truth: dict[str, float]) -> None:
    for name, value in truth.items():
        estimate, se = model.params_[name], model.params_se_[name]  # type: ignore[attr-defined]
        assert math.isfinite(se), name
        assert se > 0, name
        assert abs(estimate - value) < 3 * se, f"{name}: {estimate} vs {value} ± {se}"


RNG_T = np.random.default_rng(7).uniform(20, 60, 20_000)


def test_bgnbd_recovers_simulated_parameters() -> None:
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.8}
    data = simulate.bgnbd(20_000, T=RNG_T, seed=11, **truth)
    _within_three_se(BetaGeoModel().fit(data), truth)


def test_mbgnbd_recovers_simulated_parameters() -> None:
    truth = {"r": 0.6, "alpha": 5.0, "a": 0.9, "b": 3.5}
    data = simulate.mbgnbd(20_000, T=RNG_T, seed=12, **truth)
    _within_three_se(ModifiedBetaGeoModel().fit(data), truth)


def test_pareto_nbd_recovers_simulated_parameters() -> None:
    truth = {"r": 0.7, "alpha": 8.0, "s": 0.8, "beta": 12.0}
    data = simulate.pareto_nbd(20_000, T=RNG_T, seed=13, **truth)
    _within_three_se(ParetoNBDModel().fit(data), truth)


def test_nbd_recovers_simulated_parameters() -> None:
    truth = {"r": 1.3, "alpha": 2.5}
    periods = np.random.default_rng(3).integers(1, 24, 20_000)
    data = simulate.nbd_periods(20_000, periods=periods, seed=14, **truth)
    _within_three_se(NBDModel().fit(data), truth)


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    truth = {"p": 6.0, "q": 3.8, "gamma": 15.0}
    frequency = np.random.default_rng(4).integers(1, 10, 20_000)
    data = simulate.gamma_gamma(20_000, frequency=frequency, seed=15, **truth)
    _within_three_se(GammaGammaModel().fit(data), truth)


def test_fit_on_compressed_input_equals_fit_on_customers(cdnow_summary: pl.DataFrame) -> None:
    counts = cdnow_summary.group_by("frequency", "recency", "T").len("customers")
    weighted = BetaGeoModel().fit(counts, weights_col="customers")
    plain = BetaGeoModel().fit(cdnow_summary)
    for name in plain.param_names:
        assert weighted.params_[name] == pytest.approx(plain.params_[name], rel=1e-7)


def test_fit_is_row_order_invariant(cdnow_summary: pl.DataFrame) -> None:
    shuffled = cdnow_summary.sample(fraction=1.0, shuffle=True, seed=5)
    assert BetaGeoModel().fit(shuffled).params_ == BetaGeoModel().fit(cdnow_summary).params_


# -- predictions ----------------------------------------------------------------------------------
def _bgnbd_alive_reference(params: dict[str, float], x: float, t_x: float, T: float) -> float:
    """FHL 2005 eq. (13), written out directly."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def _bgnbd_conditional_reference(
    params: dict[str, float], t: float, x: float, t_x: float, T: float
) -> float:
    """FHL 2005 eq. (10), written out directly with scipy's hyp2f1."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    denominator = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return float(numerator / denominator)


def test_bgnbd_predictions_match_fhl_closed_forms(
    cdnow_bgnbd: BetaGeoModel, cdnow_summary: pl.DataFrame
) -> None:
    rows = cdnow_summary.head(200)
    alive = cdnow_bgnbd.probability_alive(rows).to_numpy()
    expected = cdnow_bgnbd.expected_purchases(39.0, rows).to_numpy()
    for i, (x, t_x, T) in enumerate(rows.select("frequency", "recency", "T").iter_rows()):
        assert alive[i] == pytest.approx(
            _bgnbd_alive_reference(cdnow_bgnbd.params_, x, t_x, T), rel=1e-12
        )
        assert expected[i] == pytest.approx(
            _bgnbd_conditional_reference(cdnow_bgnbd.params_, 39.0, x, t_x, T), rel=1e-9
        )


def test_bgnbd_new_customer_expectation_by_quadrature(cdnow_bgnbd: BetaGeoModel) -> None:
    # E[X(t)] = E_p[(1 − (α/(α + p t))^r) / p] with p ~ Beta(a, b): an independent route.
    params = cdnow_bgnbd.params_
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    for t in (1.0, 39.0, 78.0):

        def integrand(p: float, t: float = t) -> float:
            return (1 - (alpha / (alpha + p * t)) ** r) / p * p ** (a - 1) * (1 - p) ** (b - 1)

        value, _ = integrate.quad(integrand, 0, 1, limit=200)
        value /= special.beta(a, b)
        assert float(cdnow_bgnbd.expected_purchases_new_customer(t)) == pytest.approx(
            value, rel=1e-8
        )


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_purchase_pmf_sums_to_one_and_gives_the_mean(
    model_class: type, cdnow_summary: pl.DataFrame
) -> None:
    model = model_class().fit(cdnow_summary)
    rows = cdnow_summary.filter(pl.col("frequency").is_in([0, 1, 5, 14])).head(40)
    t = 39.0
    pmf = np.column_stack(
        [model.probability_of_n_purchases(t, n, rows).to_numpy() for n in range(200)]
    )
    assert np.all(pmf >= 0)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, rtol=1e-7)
    mean_from_pmf = pmf @ np.arange(200)
    np.testing.assert_allclose(
        mean_from_pmf, model.expected_purchases(t, rows).to_numpy(), rtol=1e-6
    )


def test_pareto_nbd_conditional_expectation_by_monte_carlo(cdnow_summary: pl.DataFrame) -> None:
    model = ParetoNBDModel().fit(cdnow_summary)
    r, alpha, s, beta = (model.params_[k] for k in ("r", "alpha", "s", "beta"))
    rng = np.random.default_rng(2024)
    customer = cdnow_summary.filter(pl.col("frequency") == 3).head(1)
    x, _, T = customer.select("frequency", "recency", "T").row(0)
    alive = float(model.probability_alive(customer)[0])
    draws = 400_000
    is_alive = rng.random(draws) < alive
    rate = rng.gamma(r + x, 1 / (alpha + T), draws)
    death = rng.exponential(1 / rng.gamma(s, 1 / (beta + T), draws))
    horizon = 26.0
    purchases = np.where(is_alive, rng.poisson(rate * np.minimum(death, horizon)), 0)
    se = purchases.std() / math.sqrt(draws)
    assert abs(purchases.mean() - float(model.expected_purchases(horizon, customer)[0])) < 3 * se


def test_nbd_predictive_pmf_closed_forms() -> None:
    periods = np.random.default_rng(5).integers(1, 12, 5_000)
    data = simulate.nbd_periods(5_000, r=0.9, alpha=1.7, periods=periods, seed=2)
    model = NBDModel().fit(data)
    rows = data.head(100)
    pmf = np.column_stack([model.predictive_pmf(j, data=rows).to_numpy() for j in range(300)])
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(
        pmf @ np.arange(300), model.expected_purchases(1.0, rows).to_numpy(), rtol=1e-9
    )
    np.testing.assert_allclose(
        np.cumsum(pmf, axis=1)[:, 3], model.predictive_cdf(3, data=rows).to_numpy(), rtol=1e-9
    )


def test_frequency_upside_matches_brute_force_sum() -> None:
    periods = np.full(2_000, 10)
    data = simulate.nbd_periods(2_000, r=2.0, alpha=1.0, periods=periods, seed=8)
    model = NBDModel().fit(data)
    rows = data.head(50)
    cap = 9.0
    upside = model.frequency_upside(rows, cap=cap).to_numpy()
    pmf = np.column_stack(
        [model.predictive_pmf(j, data=rows).to_numpy() for j in range(int(cap) + 1)]
    )
    lows = np.ceil(rows["period_frequency"].to_numpy() / 10.0)
    for i, lo in enumerate(lows):
        js = np.arange(int(lo), int(cap) + 1)
        brute = (js * pmf[i, js]).sum() / pmf[i, js].sum()
        assert upside[i] == pytest.approx(brute, rel=1e-9)


def test_spend_upside_matches_quadrature() -> None:
    frequency = np.random.default_rng(1).integers(1, 6, 3_000)
    data = simulate.gamma_gamma(3_000, p=4.0, q=5.0, gamma=20.0, frequency=frequency, seed=3)
    model = GammaGammaModel().fit(data)
    p, q, gamma = (model.params_[k] for k in ("p", "q", "gamma"))
    rows = data.head(20)
    upside = model.spend_upside(rows, cap=None).to_numpy()
    for i, (x, z) in enumerate(rows.select("spend_frequency", "monetary_value").iter_rows()):
        Q, G = q + p * x, gamma + x * z

        def density(m: float, Q: float = Q, G: float = G) -> float:
            # M' ~ G · BetaPrime(p, Q) for c = 1.
            u = m / G
            return float(
                np.exp((p - 1) * np.log(u) - (p + Q) * np.log1p(u) - special.betaln(p, Q)) / G
            )

        mass, _ = integrate.quad(density, z, np.inf, limit=200)
        first, _ = integrate.quad(lambda m, d=density: m * d(m), z, np.inf, limit=200)
        assert upside[i] == pytest.approx(first / mass, rel=1e-7)


def test_expected_spend_closed_form() -> None:
    data = simulate.gamma_gamma(2_000, p=3.0, q=4.0, gamma=10.0, frequency=3, seed=9)
    model = GammaGammaModel().fit(data)
    p, q, gamma = (model.params_[k] for k in ("p", "q", "gamma"))
    z = data["monetary_value"].to_numpy()
    np.testing.assert_allclose(
        model.expected_spend().to_numpy(), p * (gamma + 3 * z) / (3 * p + q - 1), rtol=1e-13
    )
    cdf = model.spend_cdf(np.inf, data=data.head(3)).to_numpy()
    np.testing.assert_allclose(cdf, 1.0)


# -- persistence ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel, ModifiedBetaGeoModel])
def test_save_and_load_round_trip(
    model_class: type, cdnow_summary: pl.DataFrame, tmp_path: Path
) -> None:
    model = model_class().fit(cdnow_summary)
    path = model.save(tmp_path / "model.json")
    payload = json.loads(path.read_text())
    assert payload["model"] == model_class.__name__
    assert "pickle" not in path.read_text()
    loaded = load(path)
    assert type(loaded) is model_class
    assert loaded.params_ == model.params_
    np.testing.assert_array_equal(loaded.covariance_, model.covariance_)
    np.testing.assert_array_equal(
        loaded.probability_alive(cdnow_summary).to_numpy(),
        model.probability_alive(cdnow_summary).to_numpy(),
    )


def test_loading_the_wrong_model_class_is_an_error(
    cdnow_bgnbd: BetaGeoModel, tmp_path: Path
) -> None:
    path = cdnow_bgnbd.save(tmp_path / "bgnbd.json")
    with pytest.raises(WinbackConfigError, match="holds a BetaGeoModel, not a ParetoNBDModel"):
        ParetoNBDModel.load(path)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(WinbackConfigError, match="not valid JSON"):
        load(tmp_path / "junk.json")


def test_summary_table(cdnow_bgnbd: BetaGeoModel) -> None:
    table = cdnow_bgnbd.summary()
    assert table["param"].to_list() == ["r", "alpha", "a", "b"]
    assert (table["lower_95"] < table["estimate"]).all()
    assert (table["estimate"] < table["upper_95"]).all()
    assert (table["std_error"] > 0).all()


# -- failures -------------------------------------------------------------------------------------
def test_everyone_without_repeat_purchase_is_a_fit_error() -> None:
    data = pl.DataFrame(
        {"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0], "T": [10.0, 20.0, 30.0]}
    )
    with pytest.raises(WinbackFitError, match="no customer made a repeat purchase"):
        BetaGeoModel().fit(data)


def test_recency_beyond_t_is_an_input_error() -> None:
    data = pl.DataFrame({"frequency": [1, 2], "recency": [5.0, 40.0], "T": [10.0, 30.0]})
    with pytest.raises(
        WinbackInputError, match=r"recency exceeds T in 1 row\(s\), first at index \[1\]"
    ):
        BetaGeoModel().fit(data)


def test_missing_column_is_an_input_error() -> None:
    with pytest.raises(WinbackInputError, match=r"column\(s\) \['T'\] not found"):
        ParetoNBDModel().fit(pl.DataFrame({"frequency": [1], "recency": [1.0]}))


def test_gamma_gamma_without_heterogeneity_is_a_clear_fit_error() -> None:
    # Every customer has the same spend rate; in this seeded sample the likelihood's maximum is
    # at q → ∞ (other samples show a little heterogeneity by chance and have an interior one).
    rng = np.random.default_rng(1)
    frequency = rng.integers(1, 8, 5_000)
    amounts = rng.gamma(4.0 * frequency, 1 / (frequency * 0.2))
    data = pl.DataFrame({"spend_frequency": frequency, "monetary_value": amounts})
    with pytest.raises(
        WinbackFitError, match=r"no customer-level heterogeneity.*boundary q, γ → ∞"
    ):
        GammaGammaModel().fit(data)


def test_unfitted_model_says_so() -> None:
    with pytest.raises(WinbackFitError, match="not fitted yet"):
        BetaGeoModel().probability_alive(
            pl.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]})
        )


# -- the Newton fast path -------------------------------------------------------------------------
@pytest.mark.parametrize("modified", [False, True])
def test_newton_terms_match_the_likelihood_and_finite_differences(
    modified: bool, cdnow_summary: pl.DataFrame
) -> None:
    from winback._kernels import likelihood as lik
    from winback._kernels import newton as kernels
    from winback.summary import compress_summary

    data = compress_summary(cdnow_summary.with_columns(pl.col("frequency").cast(pl.Float64)))
    x, t_x, T, w = (
        data[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T", "count")
    )
    x_values, starts = np.unique(x, return_index=True)
    starts = np.append(starts, x.size).astype(np.int64)
    # t_x and T as ranks into their distinct values, as winback's compression hands them over.
    t_x_values, t_x_rank = np.unique(t_x, return_inverse=True)
    T_values, T_rank = np.unique(T, return_inverse=True)
    tables = (t_x_rank.astype(np.uint32), t_x_values, T_rank.astype(np.uint32), T_values, w)
    reference = lik.mbgnbd_loglik_grad if modified else lik.bgnbd_loglik_grad
    for params in (np.array([0.3, 4.0, 0.9, 2.0]), np.array([2.5, 0.7, 3.0, 0.4])):
        value, grad, hess = kernels.beta_geo_newton_terms(
            params, modified, starts, x_values, *tables
        )
        ref_value, ref_grad = reference(params, x, t_x, T, w)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)
        for i in range(4):
            step = 1e-6 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += step
            down[i] -= step
            column = (
                kernels.beta_geo_newton_terms(up, modified, starts, x_values, *tables)[1]
                - kernels.beta_geo_newton_terms(down, modified, starts, x_values, *tables)[1]
            ) / (2 * step)
            np.testing.assert_allclose(
                hess[:, i], column, rtol=1e-5, atol=1e-4 * np.abs(hess).max()
            )


def test_newton_and_quasi_newton_fits_agree(cdnow_summary: pl.DataFrame) -> None:
    fast = BetaGeoModel().fit(cdnow_summary)

    class Slow(BetaGeoModel):
        def _newton_objective(self, data):  # type: ignore[no-untyped-def]
            return None

    slow = Slow().fit(cdnow_summary)
    for name in fast.param_names:
        assert fast.params_[name] == pytest.approx(slow.params_[name], rel=1e-6)
        assert fast.params_se_[name] == pytest.approx(slow.params_se_[name], rel=1e-4)


def test_gamma_gamma_newton_terms_match_the_likelihood_and_finite_differences() -> None:
    from winback._kernels import likelihood as lik
    from winback._kernels import newton as kernels

    data = simulate.gamma_gamma(
        3_000, p=4.0, q=3.0, gamma=12.0, frequency=np.arange(3_000) % 7 + 1, seed=4
    )
    data = data.sort("spend_frequency", "monetary_value")
    x = data["spend_frequency"].cast(pl.Float64).to_numpy()
    z = data["monetary_value"].to_numpy()
    w = np.linspace(0.5, 2.0, x.size)
    x_values, starts = np.unique(x, return_index=True)
    starts = np.append(starts, x.size).astype(np.int64)
    for params in (np.array([4.0, 3.0, 12.0]), np.array([0.7, 9.0, 1.5])):
        value, grad, hess = kernels.gamma_gamma_newton_terms(params, starts, x_values, z, w)
        ref_value, ref_grad = lik.gamma_gamma_loglik_grad(params, x, z, w)
        assert value == pytest.approx(ref_value, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-8 * np.abs(ref_grad).max())
        for i in range(3):
            step = 1e-6 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += step
            down[i] -= step
            column = (
                kernels.gamma_gamma_newton_terms(up, starts, x_values, z, w)[1]
                - kernels.gamma_gamma_newton_terms(down, starts, x_values, z, w)[1]
            ) / (2 * step)
            np.testing.assert_allclose(
                hess[:, i], column, rtol=1e-5, atol=1e-5 * np.abs(hess).max()
            )


def test_pareto_nbd_without_dropout_heterogeneity_stops_on_the_boundary() -> None:
    # Everyone has (nearly) the same dropout rate: the likelihood keeps rising as s, β → ∞, and
    # the fit stops on that ray with a warning naming μ = s/β (docs/methods.md#pareto-nbd-boundary;
    # it used to fail as flat after running out along it).
    data = simulate.pareto_nbd(20_000, r=0.8, alpha=10.0, s=1e7, beta=3e8, T=52.0, seed=3)
    with pytest.warns(BoundaryFitWarning, match=r"s, β → ∞ with s/β fixed"):
        model = ParetoNBDModel().fit(data)
    assert model.boundary_
    assert model.params_["s"] / model.params_["beta"] == pytest.approx(1e7 / 3e8, rel=0.1)


def test_conditional_expected_purchases_is_the_spec_name(cdnow_bgnbd: BetaGeoModel) -> None:
    assert cdnow_bgnbd.conditional_expected_purchases(10.0).equals(
        cdnow_bgnbd.expected_purchases(10.0)
    )


def test_new_customer_expectation_is_a_float_or_a_series(cdnow_bgnbd: BetaGeoModel) -> None:
    one = cdnow_bgnbd.expected_purchases_new_customer(39.0)
    many = cdnow_bgnbd.expected_purchases_new_customer(np.array([0.0, 39.0, 78.0]))
    assert isinstance(one, float)
    assert isinstance(many, pl.Series)
    assert many.to_list()[0] == 0.0
    assert many[1] == one
    assert many[2] > one


def test_gamma_gamma_interior_maximum_far_along_the_ridge_is_found() -> None:
    # Same process as the boundary test, another seed: by chance this sample shows a little
    # heterogeneity, so the maximum is interior but far out along the q–γ ridge (q ≈ 1.4e3).
    rng = np.random.default_rng(0)
    frequency = rng.integers(1, 8, 5_000)
    amounts = rng.gamma(4.0 * frequency, 1 / (frequency * 0.2))
    data = pl.DataFrame({"spend_frequency": frequency, "monetary_value": amounts})
    model = GammaGammaModel().fit(data)
    assert model.converged_
    assert model.params_["q"] > 500
    # Along the ridge γ/q is what the data pin down: the mean spend rate ν ≈ 0.2.
    assert model.params_["q"] / model.params_["gamma"] == pytest.approx(0.2, rel=0.05)
    assert all(math.isfinite(se) for se in model.params_se_.values())


def test_newton_passes_give_identical_bits_on_any_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from winback._kernels import newton as kernels

    data = simulate.bgnbd(
        200_000, r=0.5, alpha=6.0, a=0.7, b=2.8, T=np.linspace(10, 60, 200_000), seed=21
    )
    fits = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("WINBACK_NUM_THREADS", threads)
        fits.append(BetaGeoModel().fit(data))
    assert fits[0].params_ == fits[1].params_ == fits[2].params_
    assert fits[0].log_likelihood_ == fits[1].log_likelihood_ == fits[2].log_likelihood_
    assert kernels.CHUNK_TUPLES < 200_000  # the data spans several chunks


def test_a_loaded_model_asks_for_data(cdnow_bgnbd: BetaGeoModel, tmp_path: Path) -> None:
    loaded = load(cdnow_bgnbd.save(tmp_path / "m.json"))
    with pytest.raises(
        WinbackConfigError, match=r"pass data= \(a summary frame\); a loaded model keeps no data"
    ):
        loaded.probability_alive()  # type: ignore[attr-defined]


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([0.0, 1.0, 3.0, 2.5, -1.0, math.inf, math.nan]),
            st.sampled_from([0.0, 0.5, 3.0, -0.5, math.inf, math.nan]),
            st.sampled_from([0.0, 1.0, 3.0, 3.0 + 1e-13, -1.0, math.inf, math.nan]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_one_pass_input_checks_agree_with_the_column_by_column_checks(
    rows: list[tuple[float, float, float]],
) -> None:
    from winback.models._summary_data import _checked_rft_by_column, _valid_rft

    names = {"frequency": "frequency", "recency": "recency", "T": "T"}
    frame = pl.DataFrame(rows, schema=list(names), orient="row")
    fast = _valid_rft(frame, names)
    try:
        slow = _checked_rft_by_column(frame, names, model="BG/NBD")
    except WinbackInputError:
        assert fast is None
    else:
        assert fast is not None
        assert fast.equals(slow)


def test_warm_start_sample_keeps_heavy_tuples_and_the_total_weight() -> None:
    from winback.models._base import compress

    rng = np.random.default_rng(5)
    frequency = rng.poisson(1.0, 60_000).astype(np.float64)
    T = rng.integers(30, 60, 60_000).astype(np.float64)
    recency = np.where(frequency > 0, np.floor(rng.uniform(0, 1, 60_000) * T), 0.0)
    data = compress(pl.DataFrame({"frequency": frequency, "recency": recency, "T": T}), ranked=True)
    sample = data.systematic_sample(2_000)
    tau = data.n_customers / 2_000
    heavy = data.weights >= tau
    # Every heavy tuple is kept with its own weight; light ones stand for τ customers each.
    heavy_rows = {tuple(r) for r in np.column_stack([data[c] for c in data.columns])[heavy]}
    sample_rows = np.column_stack([sample[c] for c in sample.columns])
    kept_heavy = {tuple(r) for r, w in zip(sample_rows, sample.weights, strict=True) if w >= tau}
    assert heavy_rows <= kept_heavy
    assert sample.n_unique <= int(heavy.sum()) + 2_001
    assert sample.n_unique < data.n_unique
    assert abs(sample.n_customers - data.n_customers) <= tau
    for name in data.columns:  # the sample's ranks index the full data's distinct values
        np.testing.assert_array_equal(sample.distinct(name)[sample.rank(name)], sample[name])
        np.testing.assert_array_equal(data.distinct(name), np.unique(data[name]))


def test_leading_column_ranks_counted_from_runs_equal_the_kernels() -> None:
    from winback.models._base import compress

    rng = np.random.default_rng(11)
    frame = pl.DataFrame(
        {"x": rng.integers(1, 9, 5_000).astype(np.float64), "z": rng.gamma(2.0, 10.0, 5_000)}
    )
    counted, from_kernel = compress(frame), compress(frame, ranked=True)
    assert "x" not in counted.ranks
    np.testing.assert_array_equal(counted.rank("x"), from_kernel.rank("x"))
    np.testing.assert_array_equal(counted.distinct("x"), np.arange(1.0, 9.0))
    with pytest.raises(KeyError, match="no ranks for column 'z'"):
        counted.rank("z")
