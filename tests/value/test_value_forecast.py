"""value(..., forecast=): the periodic BG/NBD and stacked columns, the choice of "auto", the
default frame unchanged, every customer once, determinism under row order, and the back-test's
dropout_gg / stacked_gg methods (docs/methods.md#headline-forecast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
from tests.value.conftest import SAMPLE_AS_OF
from winback.errors import WinbackConfigError
from winback.value import VALUE_COLUMNS, ValueResult
from winback.value.headline import HEADLINE_COLUMNS
from winback.value.stacked import cutoff_features

AS_OF = SAMPLE_AS_OF


@pytest.fixture(scope="module")
def auto(sample: pl.DataFrame) -> ValueResult:
    return winback.value(sample, as_of=AS_OF, forecast="auto")


def test_default_frame_is_unchanged_and_the_new_columns_only_append(
    sample: pl.DataFrame, auto: ValueResult
) -> None:
    default = winback.value(sample, as_of=AS_OF)
    assert default.frame.columns == list(VALUE_COLUMNS)
    assert default.forecast == "nbd"
    assert default.dropout is None
    assert auto.frame.columns == [*VALUE_COLUMNS, *HEADLINE_COLUMNS]
    assert auto.frame.select(default.frame.columns).equals(default.frame)


def test_every_customer_once_with_the_chosen_headline(
    sample: pl.DataFrame, auto: ValueResult
) -> None:
    frame = auto.frame
    assert frame.height == sample.get_column("customer_id").n_unique()
    assert frame.get_column("customer_id").is_unique().all()
    modelled = frame.filter(pl.col("status") == "modelled")
    stacked = {"stacked_expected_amount", "stacked_p_active_next"}
    for name in HEADLINE_COLUMNS:
        # the trees run for the next period only when they are the headline
        filled = name not in stacked or auto.forecast == "stacked"
        assert modelled.get_column(name).null_count() == (0 if filled else modelled.height), name
    source = {
        "nbd": "expected_amount",
        "dropout": "dropout_expected_amount",
        "stacked": "stacked_expected_amount",
    }[auto.forecast]
    assert frame.get_column("forecast_amount").equals(frame.get_column(source), check_names=False)
    assert auto.forecast_reason.startswith("auto:")
    evidence = auto.forecast_evidence
    assert evidence is not None
    assert set(evidence.get_column("method")) == {
        "nbd",
        "dropout",
        "stacked",
    }
    # the chosen one has the smallest mean RMSE over the held-out periods
    means = evidence.group_by("method").agg(pl.col("rmse").mean()).sort("rmse")
    assert means.get_column("method")[0] == auto.forecast
    p = modelled.get_column("dropout_p_alive").to_numpy()
    assert ((p >= 0) & (p <= 1)).all()


def test_dropout_count_is_below_the_nbd_for_the_long_silent(
    auto: ValueResult,
) -> None:
    """The reason for the model: with lapse, customers silent for most of their history get a
    smaller next-period forecast than under the NBD with the same X and T."""
    frame = auto.frame.filter(
        (pl.col("status") == "modelled")
        & (pl.col("n_periods") - pl.col("last_active_offset") >= 6)
        & (pl.col("period_frequency") > 0)
    )
    assert frame.height > 50
    ratio = (frame["dropout_expected_frequency"] / frame["expected_frequency"]).to_numpy()
    assert np.median(ratio) < 1.0


def test_same_result_in_any_row_order(sample: pl.DataFrame) -> None:
    rng = np.random.default_rng(1)
    shuffled = sample[rng.permutation(sample.height).tolist()]
    a = winback.value(sample, as_of=AS_OF, forecast="stacked")
    b = winback.value(shuffled, as_of=AS_OF, forecast="stacked")
    assert a.frame.equals(b.frame)
    assert a.dropout is not None
    assert b.dropout is not None
    assert a.dropout.params_ == b.dropout.params_


def test_unknown_forecast_is_a_config_error(sample: pl.DataFrame) -> None:
    with pytest.raises(WinbackConfigError, match="forecast='best'"):
        winback.value(sample, as_of=AS_OF, forecast="best")  # type: ignore[arg-type]


def test_cutoff_features_by_hand() -> None:
    """One customer: active in periods 0, 2, 3 (2, 1, 3 occasions; revenue 10, 5, 30), 6
    periods known (cut-off 6)."""
    panel = pl.DataFrame(
        {
            "customer_id": [7, 7, 7, 7],
            "period": [0, 2, 3, 6],
            "occasions": [2, 1, 3, 1],
            "positive_occasions": [2, 1, 3, 1],
            "revenue": [10.0, 5.0, 30.0, 4.0],
            "positive_revenue": [10.0, 5.0, 30.0, 4.0],
        }
    )
    row = cutoff_features(panel, 6).row(0, named=True)
    assert row["period_frequency"] == 4  # occasions after the birth period
    assert row["last_active_offset"] == 3
    assert row["active_periods"] == 3
    assert row["n_periods"] == 5
    assert row["recency"] == 2.0
    assert row["revenue_per_active_period"] == pytest.approx(45.0 / 3)
    assert row["last_revenue"] == 0.0
    assert row["revenue_last3"] == 30.0
    assert row["longest_gap"] == 2.0
    assert row["gap_regularity"] == pytest.approx(0.5 / 1.5)
    assert row["monetary_value"] == pytest.approx(35.0 / 4)
    assert row["actual_revenue"] == 4.0
    assert row["actual_occasions"] == 1.0


def test_backtest_dropout_method_is_values_column(sample: pl.DataFrame) -> None:
    result = winback.backtest(
        sample,
        origins=["1997-12-31"],
        horizons=["1M", "3M"],
        methods=["dropout_gg", "stacked_gg"],
    )
    value = winback.value(sample, as_of=AS_OF, forecast="dropout")
    assert result.details is not None
    one = result.details.filter(pl.col("horizon") == "1M").sort("customer_id")
    mine = value.frame.sort("customer_id")
    np.testing.assert_array_equal(
        one.get_column("dropout_gg").to_numpy(), mine.get_column("dropout_expected_amount")
    )
    three = result.frame.filter(pl.col("horizon") == "3M")
    notes = dict(zip(three.get_column("method"), three.get_column("note"), strict=True))
    assert notes["dropout_gg"] is None
    assert notes["stacked_gg"] == "the stacked forecast is for the next month only"


def test_cli_value_forecast_option(tmp_path: Path, sample: pl.DataFrame) -> None:
    import json
    import subprocess
    import sys

    sales, out = tmp_path / "sales.parquet", tmp_path / "value.parquet"
    sample.write_parquet(sales)
    cli = [sys.executable, "-m", "winback.cli", "value"]
    done = subprocess.run(
        [*cli, str(sales), "-o", str(out), "--as-of", AS_OF, "--forecast", "dropout", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["forecast"] == "dropout"
    written = pl.read_parquet(out)
    assert written.get_column("forecast_amount").equals(
        written.get_column("dropout_expected_amount"), check_names=False
    )
    bad = subprocess.run(
        [*cli, str(sales), "-o", str(tmp_path / "x.csv"), "--forecast", "best"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "--forecast best must be one of" in bad.stderr
