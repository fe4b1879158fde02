"""The discrete-time BG/BB model (docs/methods.md#bg-bb): the published donations estimates,
closed forms against independent formulas and Monte Carlo, parameter recovery, the Numba
gradient and Hessian against finite differences, numerics for large n, the pattern table from
transactions, persistence and the typed failures."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from winback._kernels import bgbb as kernels
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.models import BetaGeoBetaBinomModel, load, simulate
from winback.summary import bgbb_summary, compress_summary

#: Hardie's donations data (Fader, Hardie & Shang 2010): the 1995 cohort of 11,104 first-time
#: supporters and their (x, t_x) patterns over the n = 6 annual opportunities 1996–2001.
DONATIONS = [
    (0, 0, 3464),
    (1, 1, 1091),
    (1, 2, 277),
    (1, 3, 129),
    (1, 4, 78),
    (1, 5, 119),
    (1, 6, 129),
    (2, 2, 613),
    (2, 3, 255),
    (2, 4, 155),
    (2, 5, 173),
    (2, 6, 234),
    (3, 3, 322),
    (3, 4, 181),
    (3, 5, 225),
    (3, 6, 357),
    (4, 4, 240),
    (4, 5, 284),
    (4, 6, 512),
    (5, 5, 335),
    (5, 6, 728),
    (6, 6, 1203),
]
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(scope="module")
def donations() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "frequency": [r[0] for r in DONATIONS],
            "recency": [r[1] for r in DONATIONS],
            "n": [6] * len(DONATIONS),
            "count": [r[2] for r in DONATIONS],
        }
    )


@pytest.fixture(scope="module")
def fitted(donations: pl.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(donations, weights_col="count")


# -- published values -----------------------------------------------------------------------------
def test_reproduces_fader_hardie_shang_on_the_donations(fitted: BetaGeoBetaBinomModel) -> None:
    # Fader, Hardie & Shang (2010): α 1.204, β 0.750, γ 0.657, δ 2.783, LL −33,225.6.
    for name, value in PUBLISHED.items():
        assert round(fitted.params_[name], 3) == value, name
    assert round(fitted.log_likelihood_, 1) == -33225.6
    assert fitted.converged_
    assert fitted.n_customers_ == 11104
    assert all(0 < se < 0.5 for se in fitted.params_se_.values())


def test_p_alive_in_the_next_year_matches_table_6(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame
) -> None:
    # Their Table 6, P(alive in 2002): 0.11 for (0, 0), 0.59 for (2, 4), 0.93 for (6, 6).
    alive = fitted.probability_alive(donations, periods_ahead=1)
    row = {(x, t): i for i, (x, t, _) in enumerate(DONATIONS)}
    assert [round(alive[row[k]], 2) for k in ((0, 0), (2, 4), (6, 6))] == [0.11, 0.59, 0.93]
    at_end = fitted.probability_alive(donations)
    assert (at_end.to_numpy() >= alive.to_numpy()).all()
    # who transacted at the last opportunity was alive then
    assert at_end[row[(6, 6)]] == 1.0
    assert at_end[row[(2, 4)]] < 1.0


def test_conditional_expectations_match_hardies_spreadsheet(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame
) -> None:
    # Hardie's BG/BB spreadsheet, "Conditional Expectations": 12,884.2 transactions in 2002–2006.
    total = (fitted.expected_purchases(5, donations) * donations["count"]).sum()
    assert round(total, 1) == 12884.2
    assert fitted.conditional_expected_purchases(5, donations).equals(
        fitted.expected_purchases(5, donations)
    )


def test_in_sample_distribution_matches_hardies_spreadsheet(
    fitted: BetaGeoBetaBinomModel,
) -> None:
    # Hardie's spreadsheet, "In-Sample Fit": 3,454.9 donors with no repeat, 1,253.1 with six.
    table = fitted.frequency_distribution_new_customer(6)
    expected = table["probability"].to_numpy() * 11104
    assert round(expected[0], 1) == 3454.9
    assert round(expected[6], 1) == 1253.1
    assert math.isclose(table["probability"].sum(), 1.0, rel_tol=1e-12)
    mean = float((table["probability"] * table["frequency"]).sum())
    assert math.isclose(mean, fitted.expected_purchases_new_customer(6), rel_tol=1e-12)


def test_fit_is_fast_and_equals_the_fit_on_customers(donations: pl.DataFrame) -> None:
    exploded = donations.select(
        pl.col("frequency").repeat_by("count").explode(),
        pl.col("recency").repeat_by("count").explode(),
        pl.col("n").repeat_by("count").explode(),
    )
    by_customer = BetaGeoBetaBinomModel().fit(exploded)
    by_pattern = BetaGeoBetaBinomModel().fit(donations, weights_col="count")
    for name in PUBLISHED:
        assert math.isclose(by_customer.params_[name], by_pattern.params_[name], rel_tol=1e-9)


# -- closed forms ----------------------------------------------------------------------------------
def _reference_ll(p: dict[str, float], x: int, t_x: int, n: int) -> float:
    a, b, g, d = p["alpha"], p["beta"], p["gamma"], p["delta"]
    base = special.betaln(a, b) + special.betaln(g, d)
    terms = [special.betaln(a + x, b + n - x) + special.betaln(g, d + n) - base]
    for i in range(n - t_x):
        terms.append(
            special.betaln(a + x, b + t_x - x + i) + special.betaln(g + 1, d + t_x + i) - base
        )
    return float(special.logsumexp(terms))


def test_predictions_match_the_papers_formulas(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame
) -> None:
    p = fitted.params_
    a, b, g, d = p["alpha"], p["beta"], p["gamma"], p["delta"]
    n, n_star = 6, 5
    alive = fitted.probability_alive(donations).to_numpy()
    expected = fitted.expected_purchases(n_star, donations).to_numpy()
    each = fitted.log_likelihood(donations).to_numpy()
    for i, (x, t_x, _) in enumerate(DONATIONS):
        ll = _reference_ll(p, x, t_x, n)
        assert math.isclose(each[i], ll, rel_tol=1e-12)
        # eq. 11 with the opportunity n itself
        ref_alive = math.exp(
            special.betaln(a + x, b + n - x)
            - special.betaln(a, b)
            + special.betaln(g, d + n)
            - special.betaln(g, d)
            - ll
        )
        assert math.isclose(alive[i], ref_alive, rel_tol=1e-12)
        # eq. 13
        bracket = math.exp(special.gammaln(1 + d + n) - special.gammaln(g + d + n)) - math.exp(
            special.gammaln(1 + d + n + n_star) - special.gammaln(g + d + n + n_star)
        )
        ref = (
            math.exp(special.betaln(a + x + 1, b + n - x) - special.betaln(a, b) - ll)
            * d
            / (g - 1)
            * math.exp(special.gammaln(g + d) - special.gammaln(1 + d))
            * bracket
        )
        assert math.isclose(expected[i], ref, rel_tol=1e-10)


def test_dert_matches_the_discounted_sum_and_the_hypergeometric_form(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame
) -> None:
    p = fitted.params_
    a, b, g, d = p["alpha"], p["beta"], p["gamma"], p["delta"]
    n, rate = 6, 0.1
    dert = fitted.dert(rate, donations).to_numpy()
    alive = fitted.probability_alive(donations).to_numpy()
    t = np.arange(1, 3001, dtype=np.float64)
    survive = np.exp(special.betaln(g, d + n + t) - special.betaln(g, d + n))
    for i, (x, _, _) in enumerate(DONATIONS):
        per_period = alive[i] * (a + x) / (a + b + n) * survive
        assert math.isclose(dert[i], float(np.sum(per_period / (1 + rate) ** t)), rel_tol=1e-12)
        # eq. 14: … B(γ, δ+n+1)/B(γ, δ+n) / (1+d) · ₂F₁(1, δ+n+1; γ+δ+n+1; 1/(1+d))
        hyp = special.hyp2f1(1.0, d + n + 1, g + d + n + 1, 1 / (1 + rate))
        factor = math.exp(special.betaln(g, d + n + 1) - special.betaln(g, d + n)) / (1 + rate)
        assert math.isclose(dert[i], alive[i] * (a + x) / (a + b + n) * factor * hyp, rel_tol=1e-9)
    # the undiscounted limit of a long horizon: DERT grows towards the expected residual count
    assert (fitted.dert(1e-3, donations).to_numpy() > dert).all()


@pytest.mark.parametrize("gamma", [1.0, 1.0 + 1e-9, 1.0 - 1e-7, 0.3, 2.5])
@pytest.mark.parametrize("m", [1, 7, 250_000])
def test_expected_survival_sum_is_exact_and_continuous_at_gamma_one(gamma: float, m: int) -> None:
    delta = 3.7
    got = kernels.bgbb_expected_sum(gamma, [delta], m)[0]
    if m <= 10_000:
        t = np.arange(1, m + 1, dtype=np.float64)
        ref = float(np.sum(np.exp(special.betaln(gamma, delta + t) - special.betaln(gamma, delta))))
        assert math.isclose(got, ref, rel_tol=1e-12)
    else:
        near = kernels.bgbb_expected_sum(1.0, [delta], m)[0]
        assert math.isfinite(got)
        assert got > 0
        if abs(gamma - 1) < 1e-6:
            assert math.isclose(got, near, rel_tol=1e-5)


@pytest.mark.parametrize(
    ("x", "t_x", "n"), [(3, 10, 5000), (500, 1000, 20_000), (0, 0, 30_000), (1, 1, 100_000)]
)
def test_long_patterns_match_the_direct_sum(x: int, t_x: int, n: int) -> None:
    # the kernel steps from one dropout term to the next by recurrences; no drift over 10⁵ steps
    got = kernels.bgbb_loglik_each(list(TRUTH.values()), [x], [t_x], [n])[0]
    assert math.isclose(got, _reference_ll(TRUTH, x, t_x, n), rel_tol=1e-11)


def test_large_n_gives_finite_results() -> None:
    model = BetaGeoBetaBinomModel.from_params(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    frame = pl.DataFrame(
        {"frequency": [0, 1, 50_000, 200], "recency": [0, 1, 99_000, 200], "n": [100_000] * 4}
    )
    for series in (
        model.log_likelihood(frame),
        model.probability_alive(frame),
        model.expected_purchases(1_000_000, frame),
        model.dert(0.01, frame),
    ):
        assert series.is_finite().all()
    assert model.log_likelihood(frame).max() < 0
    assert math.isfinite(model.expected_purchases_new_customer(10**7))


# -- simulation -----------------------------------------------------------------------------------
TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}


def test_parameters_are_recovered_within_three_standard_errors() -> None:
    data = simulate.bgbb(20_000, **TRUTH, n_periods=np.r_[[6] * 10_000, [10] * 10_000], seed=11)
    model = BetaGeoBetaBinomModel().fit(data)
    for name, value in TRUTH.items():
        assert abs(model.params_[name] - value) < 3 * model.params_se_[name], name


def test_closed_forms_agree_with_monte_carlo() -> None:
    n, horizon = 6, 5
    data = simulate.bgbb(400_000, **TRUTH, n_periods=n, n_holdout=horizon, seed=5)
    model = BetaGeoBetaBinomModel.from_params(**TRUTH)
    # unconditional E[X(n)] and its distribution
    assert math.isclose(
        data["frequency"].mean(), model.expected_purchases_new_customer(n), rel_tol=0.01
    )  # type: ignore[arg-type]
    pmf = model.frequency_distribution_new_customer(n)["probability"].to_numpy()
    observed = np.bincount(data["frequency"].to_numpy(), minlength=n + 1) / data.height
    assert np.max(np.abs(observed - pmf)) < 0.005
    # conditional expectations per pattern against the holdout transactions simulated after it
    by_pattern = data.group_by("frequency", "recency", "n").agg(
        pl.col("frequency_holdout").mean().alias("mc"),
        pl.col("frequency_holdout").std().alias("sd"),
        pl.len().alias("count"),
    )
    by_pattern = by_pattern.filter(pl.col("count") >= 2000)
    predicted = model.expected_purchases(horizon, by_pattern).to_numpy()
    se = by_pattern["sd"].to_numpy() / np.sqrt(by_pattern["count"].to_numpy())
    assert np.all(np.abs(predicted - by_pattern["mc"].to_numpy()) < 4 * se + 1e-3)
    # the population total of the conditional expectations (tower property)
    total = model.expected_purchases(horizon, data).sum()
    assert math.isclose(total, data["frequency_holdout"].sum(), rel_tol=0.01)


# -- kernel derivatives -------------------------------------------------------------------------
patterns = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=6
)
positive = st.floats(0.05, 20.0)


@settings(max_examples=60, deadline=None)
@given(patterns, positive, positive, positive, positive)
def test_gradient_and_hessian_match_finite_differences(
    raw: list[tuple[int, int, int]], a: float, b: float, g: float, d: float
) -> None:
    rows = []
    for i, j, k in raw:
        n = max(i, j, k)
        t_x = sorted((i, j, k))[1]
        x = min(i, j, k) if t_x > 0 else 0
        rows.append((x, t_x if x > 0 else 0, n))
    x, t_x, n = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    w = np.arange(1.0, len(rows) + 1.0)
    params = np.array([a, b, g, d])
    value, grad, hess = kernels.bgbb_newton_terms(params, x, t_x, n, w)
    assert math.isfinite(value)
    assert value == kernels.bgbb_loglik(params, x, t_x, n, w)
    assert np.array_equal(grad, kernels.bgbb_loglik_grad(params, x, t_x, n, w)[1])
    for j in range(4):
        h = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        numeric = (
            kernels.bgbb_loglik(up, x, t_x, n, w) - kernels.bgbb_loglik(down, x, t_x, n, w)
        ) / (2 * h)
        assert math.isclose(grad[j], numeric, rel_tol=1e-5, abs_tol=1e-4 * max(1, abs(value)))
        numeric_h = (
            kernels.bgbb_loglik_grad(up, x, t_x, n, w)[1]
            - kernels.bgbb_loglik_grad(down, x, t_x, n, w)[1]
        ) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(hess[j]))))
        assert np.allclose(hess[j], numeric_h, rtol=1e-4, atol=1e-5 * scale)


def test_invalid_parameters_give_minus_infinity() -> None:
    x, t_x, n, w = (np.array([1.0]), np.array([1.0]), np.array([3.0]), np.array([1.0]))
    for bad in ([0.0, 1, 1, 1], [1, -1, 1, 1], [1, 1, math.nan, 1], [1, 1, 1, math.inf]):
        value, grad = kernels.bgbb_loglik_grad(np.array(bad, dtype=float), x, t_x, n, w)
        assert value == -math.inf
        assert np.array_equal(grad, np.zeros(4))


# -- the pattern table from transactions ---------------------------------------------------------
def test_bgbb_summary_counts_periods_with_a_transaction() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3, 4, 4],
            "ts": [
                date(2020, 3, 1),
                date(2020, 9, 1),  # same (birth) year: not an opportunity
                date(2021, 5, 1),
                date(2023, 1, 9),
                date(2020, 7, 1),
                date(2024, 2, 1),  # born in the incomplete year
                date(2022, 1, 1),
                date(2023, 12, 31),
            ],
        }
    )
    out = bgbb_summary(tx, period="year")
    assert out.columns == ["customer_id", "frequency", "recency", "n"]
    assert out.rows() == [(1, 2, 3, 3), (2, 0, 0, 3), (3, 0, 0, 0), (4, 1, 1, 1)]
    split = bgbb_summary(tx, period="year", n_periods=1)
    assert split.rows() == [
        (1, 1, 1, 1, 1, 2),
        (2, 0, 0, 1, 0, 2),
        (3, 0, 0, 0, 0, 0),
        (4, 1, 1, 1, 0, 0),
    ]
    later = bgbb_summary(tx, period="year", as_of=date(2022, 6, 30))
    assert later.filter(pl.col("customer_id") == 1).rows() == [(1, 1, 1, 1)]


def test_bgbb_summary_reproduces_simulated_patterns() -> None:
    data = simulate.bgbb(3000, **TRUTH, n_periods=6, seed=2)
    rng = np.random.default_rng(0)
    customers, stamps = [], []
    for cid, x, t_x in data.select("customer_id", "frequency", "recency").iter_rows():
        periods = [0]
        if x:
            periods += sorted(rng.choice(np.arange(1, t_x), size=x - 1, replace=False).tolist())
            periods.append(t_x)
        for k in periods:
            customers.append(cid)
            stamps.append(date(2000 + k, 1 + int(rng.integers(0, 12)), 1))
    customers.append(-1)  # a customer active in 2006, which closes the sixth opportunity
    stamps.append(date(2007, 1, 1))
    tx = pl.DataFrame({"customer_id": customers, "ts": stamps})
    out = bgbb_summary(tx, period="year").filter(pl.col("customer_id") >= 0)
    assert out.select("frequency", "recency", "n").equals(data.select("frequency", "recency", "n"))
    patterns = compress_summary(out, columns=("frequency", "recency", "n"))
    model = BetaGeoBetaBinomModel().fit(patterns, weights_col="count")
    direct = BetaGeoBetaBinomModel().fit(data)
    assert math.isclose(model.log_likelihood_, direct.log_likelihood_, rel_tol=1e-12)


def test_year_periods_start_on_the_first_of_january() -> None:
    from winback._io import as_of_to_micros, micros_to_datetime
    from winback.summary import period_edges

    edges = period_edges(
        "year", as_of_to_micros(date(2019, 6, 5), None), as_of_to_micros(date(2022, 3, 1), None)
    )
    assert [micros_to_datetime(e).date() for e in edges] == [
        date(2019, 1, 1),
        date(2020, 1, 1),
        date(2021, 1, 1),
        date(2022, 1, 1),
    ]


def test_bgbb_summary_refuses_a_bad_period_or_window() -> None:
    tx = pl.DataFrame({"customer_id": [1], "ts": [date(2020, 1, 1)]})
    with pytest.raises(WinbackConfigError, match="period"):
        bgbb_summary(tx, period="decade")
    with pytest.raises(WinbackConfigError, match="n_periods"):
        bgbb_summary(tx, period="year", n_periods=-1)
    assert bgbb_summary(tx.clear(), period="year").height == 0


# -- persistence and failures --------------------------------------------------------------------
def test_save_and_load_round_trip(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame, tmp_path: Path
) -> None:
    path = fitted.save(tmp_path / "bgbb.json")
    again = load(path)
    assert isinstance(again, BetaGeoBetaBinomModel)
    assert again.params_ == fitted.params_
    assert again.params_se_ == fitted.params_se_
    assert again.dert(0.1, donations).equals(fitted.dert(0.1, donations))
    with pytest.raises(WinbackConfigError, match="pass data="):
        again.probability_alive()


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ({"frequency": [1], "recency": [4], "n": [3]}, "exceeds 'n'"),
        ({"frequency": [3], "recency": [2], "n": [3]}, "exceeds 'recency'"),
        ({"frequency": [0], "recency": [2], "n": [3]}, "is 0 but"),
        ({"frequency": [1.5], "recency": [2], "n": [3]}, "whole counts"),
        ({"frequency": [-1], "recency": [0], "n": [3]}, "negative"),
        ({"frequency": [1], "recency": [1], "n": pl.Series([None], dtype=pl.Int64)}, "null"),
        ({"frequency": [1], "recency": [1]}, "not found"),
    ],
)
def test_invalid_patterns_are_input_errors(rows: dict[str, list[object]], match: str) -> None:
    with pytest.raises(WinbackInputError, match=match):
        BetaGeoBetaBinomModel().fit(pl.DataFrame(rows))


def test_a_bad_weights_column_is_an_input_error() -> None:
    frame = pl.DataFrame({"frequency": [1, 0], "recency": [1, 0], "n": [3, 3], "w": [2, -1]})
    with pytest.raises(WinbackInputError, match="'w' has negative"):
        BetaGeoBetaBinomModel().fit(frame, weights_col="w")
    with pytest.raises(WinbackInputError, match="not found"):
        BetaGeoBetaBinomModel().fit(frame, weights_col="count")


def test_degenerate_data_are_fit_errors() -> None:
    with pytest.raises(WinbackFitError, match="nobody transacted"):
        BetaGeoBetaBinomModel().fit(
            pl.DataFrame({"frequency": [0, 0], "recency": [0, 0], "n": [3, 5]})
        )
    with pytest.raises(WinbackFitError, match="every n is 0"):
        BetaGeoBetaBinomModel().fit(pl.DataFrame({"frequency": [0], "recency": [0], "n": [0]}))
    with pytest.raises(WinbackFitError, match="no customers"):
        BetaGeoBetaBinomModel().fit(
            pl.DataFrame({"frequency": [1], "recency": [1], "n": [2], "w": [0]}), weights_col="w"
        )
    with pytest.raises(WinbackFitError):  # everyone transacts every time: p → 1, θ → 0
        BetaGeoBetaBinomModel().fit(
            pl.DataFrame({"frequency": [3, 5], "recency": [3, 5], "n": [3, 5]})
        )
    with pytest.raises(WinbackFitError, match="not fitted"):
        BetaGeoBetaBinomModel().dert(0.1)
    # one transaction probability for everyone: α, β → ∞ together, not identified
    same = pl.DataFrame(
        {"frequency": [0, 1, 2, 3, 1, 2, 3], "recency": [0, 1, 2, 3, 3, 3, 4], "n": [4] * 7}
    )
    with pytest.raises(WinbackFitError, match="alpha"):
        BetaGeoBetaBinomModel().fit(
            same.with_columns(count=pl.Series([300, 90, 60, 50, 40, 50, 80])), weights_col="count"
        )


def test_bad_arguments_are_config_errors(
    fitted: BetaGeoBetaBinomModel, donations: pl.DataFrame
) -> None:
    for rate in (0.0, -0.1, math.nan, math.inf, 1e-9):
        with pytest.raises(WinbackConfigError, match="discount_rate"):
            fitted.dert(rate, donations)
    for bad in (1.5, -1, math.nan):
        with pytest.raises(WinbackConfigError, match="n_future"):
            fitted.expected_purchases(bad, donations)  # type: ignore[arg-type]
        with pytest.raises(WinbackConfigError, match="opportunities"):
            fitted.expected_purchases_new_customer(bad)  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError):
        fitted.probability_alive(donations, periods_ahead=-1)
    with pytest.raises(WinbackConfigError, match="n_periods"):
        simulate.bgbb(3, **TRUTH, n_periods=-1)
    with pytest.raises(WinbackConfigError, match="gamma"):
        simulate.bgbb(3, alpha=1, beta=1, gamma=0, delta=1, n_periods=3)


def test_the_benchmark_runs_and_fits_the_published_values() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benches" / "bench_bgbb.py"
    spec = importlib.util.spec_from_file_location("bench_bgbb", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run(repeat=3)
    assert {k: round(v, 3) for k, v in result["params"].items()} == PUBLISHED
    assert 0 < result["winback_best_ms"] < 1000
