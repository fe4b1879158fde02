"""winback.value on hostile bases (issue 19): one extreme customer (docs/methods.md#spend-outliers),
one or two customers (docs/methods.md#population-defaults), negative and unmatched expenses
(docs/methods.md#expense)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
from winback.errors import WinbackInputError
from winback.models.gamma_gamma import SpendOutlierWarning
from winback.value.result import FITTED, POPULATION_DEFAULT, ValueResult, ValueWarning

START = datetime(2022, 1, 1)


def _normal_base(n: int = 500, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    customers, times, amounts = [], [], []
    for c in range(n):
        mean = rng.gamma(3.0, 20.0)
        for day in np.sort(rng.integers(0, 730, rng.integers(1, 15))):
            customers.append(c)
            times.append(START + timedelta(days=int(day), hours=int(rng.integers(0, 24))))
            amounts.append(float(rng.gamma(4.0, mean / 4.0)))
    return pl.DataFrame({"customer_id": customers, "ts": times, "amount": amounts})


def _floats_finite(result: ValueResult) -> None:
    frame = result.frame.filter(pl.col("status") == "modelled")
    floats = [c for c, d in frame.schema.items() if d == pl.Float64 and c != "p_alive"]
    for column in floats:
        values = frame.get_column(column)
        assert values.null_count() == 0, column
        assert values.is_finite().all(), column
    pmf = frame.get_column("p_frequency").arr.explode()
    assert pmf.is_finite().all()
    # p_alive is null (never NaN) when its BG/NBD cannot be fitted.
    assert not frame.get_column("p_alive").is_nan().any()


# -- one extreme customer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extreme_run() -> tuple[pl.DataFrame, ValueResult, list[warnings.WarningMessage]]:
    base = _normal_base()
    # The reproducer: 10^5 identical $1 purchases (ten minutes apart, occasions of 1 s).
    n = 100_000
    extreme = pl.DataFrame(
        {
            "customer_id": [9999] * n,
            "ts": [START + timedelta(seconds=600 * i) for i in range(n)],
            "amount": [1.0] * n,
        }
    )
    tx = pl.concat([base, extreme])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = winback.value(tx, as_of="2023-12-31", resolution="1s")
    return base, result, list(caught)


def test_one_extreme_customer_does_not_kill_value_for_everyone(
    extreme_run: tuple[pl.DataFrame, ValueResult, list[warnings.WarningMessage]],
) -> None:
    # Before: WinbackFitError "the spend shows no customer-level heterogeneity" for all 501.
    _, result, caught = extreme_run
    assert result.frame.height == 501
    assert (result.frame.get_column("status") == "modelled").sum() > 450
    assert result.info.spend_model == FITTED
    assert result.info.spend_fit_set_aside == (9999,)
    outliers = [w for w in caught if issubclass(w.category, SpendOutlierWarning)]
    assert len(outliers) == 1
    assert "1 customer(s)" in str(outliers[0].message)
    assert "customer_id 9999" in str(outliers[0].message)
    assert result.gamma_gamma is not None
    assert int(result.gamma_gamma.set_aside_.sum()) == 1
    _floats_finite(result)
    row = result.frame.filter(pl.col("customer_id") == 9999)
    # Predicted from the fitted parameters: their own $1 mean dominates.
    assert row.item(0, "expected_mean_amount") == pytest.approx(1.0, rel=0.01)


def test_the_spend_fit_is_the_fit_without_the_outlier(
    extreme_run: tuple[pl.DataFrame, ValueResult, list[warnings.WarningMessage]],
) -> None:
    base, result, _ = extreme_run
    clean = winback.value(base, as_of="2023-12-31", resolution="1s")
    assert clean.info.spend_fit_set_aside == ()
    assert result.gamma_gamma is not None
    assert clean.gamma_gamma is not None
    assert result.gamma_gamma.params_ == clean.gamma_gamma.params_


def test_cdnow_sets_nobody_aside_and_fits_both_models() -> None:
    from winback.datasets import load_cdnow

    with warnings.catch_warnings():
        warnings.simplefilter("error", SpendOutlierWarning)
        warnings.simplefilter("error", ValueWarning)
        result = winback.value(load_cdnow(), as_of="1998-06-30")
    assert result.info.spend_fit_set_aside == ()
    assert (result.info.count_model, result.info.spend_model) == (FITTED, FITTED)
    assert result.info.model_fallbacks == ()


# -- one or two customers -------------------------------------------------------------------------
ONE = pl.DataFrame(
    {
        "customer_id": [1] * 4,
        "ts": [datetime(2023, m, 5) for m in (1, 3, 4, 9)],
        "amount": [5.0, 7.0, 6.0, 9.0],
    }
)
ONE_PURCHASE = pl.DataFrame({"customer_id": [1], "ts": [datetime(2023, 1, 5)], "amount": [5.0]})
TWO = pl.DataFrame(
    {
        "customer_id": [1, 1, 2],
        "ts": [datetime(2023, 1, 5), datetime(2023, 5, 5), datetime(2023, 2, 1)],
        "amount": [5.0, 7.0, 30.0],
    }
)
TWO_SINGLE = pl.DataFrame(
    {
        "customer_id": [1, 2],
        "ts": [datetime(2023, 1, 1), datetime(2023, 2, 1)],
        "amount": [5.0, 6.0],
    }
)


@pytest.mark.parametrize(
    "tx", [ONE, ONE_PURCHASE, TWO, TWO_SINGLE], ids=["one", "one_purchase", "two", "two_single"]
)
def test_tiny_bases_fall_back_to_population_defaults(tx: pl.DataFrame) -> None:
    # Before: WinbackFitError from the NBD (boundary, or nobody purchased in observed periods).
    with pytest.warns(ValueWarning, match="population defaults") as caught:
        result = winback.value(tx, as_of="2023-12-31")
    assert "docs/methods.md#population-defaults" in str(caught[0].message)
    assert result.frame.height == tx.get_column("customer_id").n_unique()
    assert (result.frame.get_column("status") == "modelled").all()
    assert result.info.count_model == POPULATION_DEFAULT
    assert result.info.spend_model == POPULATION_DEFAULT
    assert len(result.info.model_fallbacks) == 2
    _floats_finite(result)
    assert result.nbd is not None
    assert not result.nbd.converged_
    assert result.chain is not None


def test_one_customer_defaults_by_hand() -> None:
    # Monthly periods, as_of 2023-12-31: birth January, then 11 observed periods with X = 3
    # occasions (March, April, September) all positive.
    with pytest.warns(ValueWarning):
        result = winback.value(ONE, as_of="2023-12-31")
    row = result.frame.row(0, named=True)
    X, T = 3, 11
    rate = (X + 1) / (T + 1)  # pooled rate, the birth period counted as one period, one occasion
    assert row["expected_frequency"] == pytest.approx((1 + X) / (1 / rate + T), rel=1e-12)
    mean_all = (5 + 7 + 6 + 9) / 4  # m̄: every positive occasion of the complete periods
    z_bar, x = (7 + 6 + 9) / 3, 3
    assert row["expected_mean_amount"] == pytest.approx((mean_all + x * z_bar) / (x + 1))
    assert result.gamma_gamma is not None
    assert result.gamma_gamma.params_ == {"p": 1.0, "q": 2.0, "gamma": mean_all}


# -- expenses -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_base() -> pl.DataFrame:
    return _normal_base(n=200, seed=11)


def test_negative_expenses_are_refused(small_base: pl.DataFrame) -> None:
    expenses = pl.DataFrame(
        {
            "customer_id": [3, 4, 5],
            "ts": [datetime(2022, 6, 1)] * 3,
            "expense": [2.0, -1.5, -0.5],
        }
    )
    with pytest.raises(
        WinbackInputError, match=r"'expense' has 2 negative value\(s\) \(customers 4, 5\)"
    ):
        winback.value(small_base, as_of="2023-12-31", expenses=expenses)


def test_expense_rows_of_unknown_customers_are_counted_and_warned(
    small_base: pl.DataFrame,
) -> None:
    expenses = pl.DataFrame(
        {
            "customer_id": [3, 777, 777, 888],
            "ts": [
                datetime(2022, 6, 1),
                datetime(2022, 6, 2),
                datetime(2022, 6, 3),
                datetime(2022, 7, 1),
            ],
            "expense": [2.0, 1.0, 1.0, 3.0],
        }
    )
    with pytest.warns(
        ValueWarning, match=r"3 expense row\(s\) of 2 customer\(s\) without transactions.*777, 888"
    ):
        result = winback.value(small_base, as_of="2023-12-31", expenses=expenses)
    # Rows, not customer × period cells (777's two rows share June).
    assert result.info.expense_rows_unmatched == 3
    assert result.info.expense_customers_unmatched == 2
    assert result.frame.filter(pl.col("customer_id").is_in([777, 888])).height == 0


def test_cli_prints_unmatched_expense_rows(small_base: pl.DataFrame, tmp_path: Path) -> None:
    import subprocess
    import sys

    sales, spend, out = tmp_path / "s.parquet", tmp_path / "e.parquet", tmp_path / "v.parquet"
    small_base.write_parquet(sales)
    pl.DataFrame(
        {
            "customer_id": [3, 777],
            "ts": [datetime(2022, 6, 1), datetime(2022, 6, 2)],
            "expense": [2.0, 1.0],
        }
    ).write_parquet(spend)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "value",
            str(sales),
            "--expenses",
            str(spend),
            "--as-of",
            "2023-12-31",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "1 expense row(s) of 1 customer(s) without transactions were left out" in run.stdout
    assert "warning: expenses: 1 expense row(s)" in run.stderr
    assert "Traceback" not in run.stderr


def test_cli_refuses_negative_expenses_in_one_line(
    small_base: pl.DataFrame, tmp_path: Path
) -> None:
    import subprocess
    import sys

    sales, spend, out = tmp_path / "s.parquet", tmp_path / "e.parquet", tmp_path / "v.parquet"
    small_base.write_parquet(sales)
    pl.DataFrame(
        {"customer_id": [3], "ts": [datetime(2022, 6, 1)], "expense": [-2.0]}
    ).write_parquet(spend)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "value",
            str(sales),
            "--expenses",
            str(spend),
            "--as-of",
            "2023-12-31",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "negative" in run.stderr
    assert "'expense'" in run.stderr
    assert "Traceback" not in run.stderr


# -- other bad values that used to reach the outputs ----------------------------------------------
def test_non_finite_spend_bins_are_refused(small_base: pl.DataFrame) -> None:
    from winback.errors import WinbackConfigError

    for bins in ([float("nan")], [10.0, float("inf")]):
        with pytest.raises(WinbackConfigError, match="must be finite numbers"):
            winback.value(small_base, as_of="2023-12-31", spend_bins=bins)


@pytest.mark.parametrize(
    ("times", "scope"),
    [
        ([datetime(2022, 3, 1), datetime(2022, 3, 2)], "a period's total of revenue"),
        ([datetime(2022, 3, 1), datetime(2022, 5, 2)], "a customer's total of revenue_to_date"),
    ],
)
def test_overflowing_totals_are_refused_naming_the_customer(
    small_base: pl.DataFrame, times: list[datetime], scope: str
) -> None:
    # Before: value_to_date = inf and clv = NaN for everyone (the chain's rewards mix customers).
    big = pl.DataFrame(
        {
            "customer_id": [5000] * 3,
            "ts": [*times, datetime(2022, 6, 1)],
            "amount": [1e308] * 2 + [5.0],
        }
    )
    with pytest.raises(WinbackInputError, match=rf"{scope}.*1 customer\(s\) \(5000\)"):
        winback.value(pl.concat([small_base, big]), as_of="2023-12-31")


def test_overflowing_expenses_are_refused(small_base: pl.DataFrame) -> None:
    expenses = pl.DataFrame(
        {"customer_id": [1, 1], "ts": [datetime(2022, 3, 1)] * 2, "expense": [1e308, 1e308]}
    )
    with pytest.raises(WinbackInputError, match=r"total of expense overflows.*\(1\)"):
        winback.value(small_base, as_of="2023-12-31", expenses=expenses)


@pytest.mark.parametrize("rate", [0.0, -0.5])
def test_infinite_horizon_value_is_null_when_it_diverges(
    small_base: pl.DataFrame, rate: float
) -> None:
    # Before: d = 0 gave clv_infinite ≈ −1e18 (a near-singular solve), d < 0 finite nonsense.
    result = winback.value(small_base, as_of="2023-12-31", discount_rate=rate)
    modelled = result.frame.filter(pl.col("status") == "modelled")
    assert modelled.get_column("clv_infinite").null_count() == modelled.height
    assert modelled.get_column("clv").is_finite().all()
    assert result.chain is not None
    assert (
        result.chain.states.get_column("value_infinite").null_count() == result.chain.states.height
    )


def test_overflowing_horizon_values_are_refused(small_base: pl.DataFrame) -> None:
    from winback.errors import WinbackConfigError

    with pytest.raises(WinbackConfigError, match=r"horizon=5000 with discount_rate=-0.5"):
        winback.value(small_base, as_of="2023-12-31", discount_rate=-0.5, horizon=5000)


def test_cli_values_two_customers_with_defaults(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    sales, out = tmp_path / "s.parquet", tmp_path / "v.csv"
    TWO.write_parquet(sales)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "value",
            str(sales),
            "--as-of",
            "2023-12-31",
            "-o",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["count_model"] == summary["spend_model"] == POPULATION_DEFAULT
    assert summary["modelled"] == 2
    assert "population defaults" in run.stderr
    assert "Traceback" not in run.stderr
