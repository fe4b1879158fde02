"""``winback.backtest`` (docs/methods.md#backtest): the metrics against a hand-computed case,
every customer once per origin, horizon and method, the forecasts are winback's own (value's
columns bit for bit, the models' predictions), determinism for row order and thread count, and
typed errors for origins and horizons that do not fit the data."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import winback
from winback.backtest import (
    BACKTEST_COLUMNS,
    SUMMARY_COLUMNS,
    average_ranks,
    backtest,
    spearman,
    top_share_capture,
)
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError

ROOT = Path(__file__).resolve().parents[1]


def small() -> pl.DataFrame:
    """Four customers before the origin 2024-03-31 and one born after it (c5)."""
    rows = [
        (1, date(2024, 1, 10), 10.0),
        (1, date(2024, 3, 5), 20.0),
        (1, date(2024, 4, 2), 30.0),
        (2, date(2024, 2, 1), 5.0),
        (2, date(2024, 2, 20), 5.0),
        (2, date(2024, 4, 10), 8.0),
        (2, date(2024, 4, 11), 2.0),
        (3, date(2024, 3, 15), 40.0),
        (4, date(2024, 1, 3), 7.0),
        (5, date(2024, 4, 5), 100.0),
    ]
    return pl.DataFrame(rows, schema=["customer_id", "ts", "amount"], orient="row")


def cdnow_part(customers: int = 3000) -> pl.DataFrame:
    tx = load_cdnow().select("customer_id", "ts", "amount")
    return tx.filter(pl.col("customer_id") <= customers)


# -- the metrics by hand ----------------------------------------------------------------------------
def test_average_ranks_and_spearman_by_hand() -> None:
    assert average_ranks(np.array([20.0, 0.0, 40.0, 0.0])).tolist() == [3.0, 1.5, 4.0, 1.5]
    # ranks f (3, 1.5, 4, 1.5), a (4, 3, 1.5, 1.5): centred products sum to −0.25, squares to 4.5
    rho = spearman(np.array([20.0, 0.0, 40.0, 0.0]), np.array([30.0, 10.0, 0.0, 0.0]))
    assert rho == pytest.approx(-0.25 / 4.5, abs=1e-15)
    assert spearman(np.zeros(4), np.arange(4.0)) is None  # a constant side has no ranking


def test_top_share_capture_splits_ties_in_proportion() -> None:
    # 20 customers: top 10 % = 2 slots: the 9.0 customer, then half of the two tied at 5.0.
    forecast = np.array([9.0, 5.0, 5.0] + [0.0] * 17)
    actual = np.array([10.0, 4.0, 8.0] + [1.0] * 17)
    assert top_share_capture(forecast, actual) == pytest.approx((10.0 + 0.5 * 12.0) / 39.0)
    # All tied: exactly the share of the total, whatever the row order.
    assert top_share_capture(np.zeros(20), actual) == pytest.approx(0.1)
    shuffled = np.random.default_rng(1).permutation(20)
    assert top_share_capture(forecast[shuffled], actual[shuffled]) == pytest.approx(16.0 / 39.0)
    assert top_share_capture(forecast, np.zeros(20)) is None


def test_metrics_of_the_naive_baselines_by_hand() -> None:
    result = backtest(
        small(),
        origins=["2024-03-31"],
        horizons=["1M"],
        methods=["naive_last", "naive_mean2", "zero"],
        as_of="2024-04-30",
    )
    assert result.frame.columns == list(BACKTEST_COLUMNS)
    assert result.summary.columns == list(SUMMARY_COLUMNS)
    rows = {r["method"]: r for r in result.frame.iter_rows(named=True)}
    # April actuals: c1 30 (1 occasion), c2 10 (2 occasions), c3 0, c4 0; c5 is born after.
    last = rows["naive_last"]  # March: c1 20 (1), c2 0, c3 40 (1), c4 0
    assert last["customers"] == 4
    assert last["actual_total"] == 40.0
    assert last["forecast_total"] == 60.0
    assert last["total_error"] == pytest.approx(0.5)
    assert last["actual_count"] == 3.0
    assert last["forecast_count"] == 2.0
    assert last["count_total_error"] == pytest.approx(-1 / 3)
    assert last["rmse"] == pytest.approx(math.sqrt((100 + 100 + 1600) / 4))
    assert last["mae"] == pytest.approx(15.0)
    assert last["spearman"] == pytest.approx(-0.25 / 4.5)
    assert last["top_decile_capture"] == pytest.approx(0.0)  # 0.4 of c3, who bought nothing
    assert last["brier"] is None
    assert last["note"] is None
    # Feb + Mar over the months each was a customer (at most 2): c1 20/2, c2 10/2, c3 40/1, c4 0.
    mean2 = rows["naive_mean2"]
    assert mean2["forecast_total"] == pytest.approx(10 + 5 + 40 + 0)
    assert mean2["forecast_count"] == pytest.approx(0.5 + 1.0 + 1.0)
    zero = rows["zero"]
    assert zero["total_error"] == -1.0
    assert zero["spearman"] is None
    assert zero["top_decile_capture"] == pytest.approx(0.1)
    origins = result.origins.row(0, named=True)
    assert (origins["customers"], origins["customers_born_after"]) == (4, 1)
    detail = result.details
    assert detail is not None
    assert detail.get_column("customer_id").to_list() == [1, 2, 3, 4]
    assert detail.get_column("naive_mean2").to_list() == [10.0, 5.0, 40.0, 0.0]
    assert detail.get_column("actual_amount").to_list() == [30.0, 10.0, 0.0, 0.0]


def test_summary_pools_the_origins() -> None:
    result = backtest(
        small(),
        origins=["2024-02-29", "2024-03-31"],
        horizons=["1M"],
        methods=["naive_last"],
        as_of="2024-04-30",
    )
    frame, summary = result.frame, result.summary.row(0, named=True)
    assert frame.get_column("origin").to_list() == [date(2024, 2, 29), date(2024, 3, 31)]
    forecast, actual = frame.get_column("forecast_total"), frame.get_column("actual_total")
    assert summary["origins"] == 2
    assert summary["pooled_total_error"] == pytest.approx(forecast.sum() / actual.sum() - 1)
    assert summary["mean_abs_total_error"] == pytest.approx(
        frame.get_column("total_error").abs().mean()
    )
    assert summary["rmse"] == pytest.approx(frame.get_column("rmse").mean())


# -- winback's own forecasts ---------------------------------------------------------------------------
def test_forecasts_are_value_and_the_models_own() -> None:
    tx = cdnow_part()
    result = backtest(tx, origins=["1998-01-31"], horizons=["1M", "3M"])
    detail = result.details
    assert detail is not None
    frame = winback.value(tx, as_of="1998-01-31")
    one = detail.filter(pl.col("horizon") == "1M")
    assert one.get_column("customer_id").to_list() == (
        frame.frame.get_column("customer_id").to_list()
    )
    assert one.get_column("nbd_gg").to_list() == frame.frame.get_column("expected_amount").to_list()
    assert one.get_column("nbd_gg_p_active").to_list() == (
        frame.frame.get_column("p_active_next").to_list()
    )
    alive = frame.frame.get_column("expected_amount") * frame.frame.get_column("p_alive")
    assert one.get_column("nbd_gg_alive").to_list() == alive.to_list()
    three = detail.filter(pl.col("horizon") == "3M")
    np.testing.assert_allclose(
        three.get_column("nbd_gg").to_numpy(),
        3 * frame.frame.get_column("expected_amount").to_numpy(),
        rtol=1e-12,
    )
    # BG/NBD on the daily summary: February 1998 has 28 days, Feb–Apr 89.
    daily = winback.summary(tx, as_of="1998-01-31", unit="D", return_info=True)
    model = winback.models.BetaGeoModel().fit(daily)
    for horizon, days in (("1M", 28), ("3M", 89)):
        expected = model.expected_purchases(days, daily)
        got = detail.filter(pl.col("horizon") == horizon).get_column("bgnbd_gg_count")
        assert got.to_list() == expected.to_list()
    # The chain gives the next month only: a note, null metrics, for 3M.
    markov = result.frame.filter(pl.col("method") == "markov")
    assert markov.get_column("note").to_list()[0] is None
    assert "next month only" in markov.get_column("note").to_list()[1]
    assert markov.row(1, named=True)["rmse"] is None


def test_every_customer_once_per_origin_horizon_and_method() -> None:
    tx = cdnow_part(2000)
    result = backtest(tx, origins=2, horizons=["1M", "2M"])
    detail = result.details
    assert detail is not None
    first = tx.group_by("customer_id").agg(pl.col("ts").min())
    for origin in result.origins.get_column("origin").to_list():
        born = first.filter(pl.col("ts") <= origin).height
        for horizon in result.horizons:
            part = detail.filter((pl.col("origin") == origin) & (pl.col("horizon") == horizon))
            assert part.height == born
            assert part.get_column("customer_id").n_unique() == born
    assert (result.frame.get_column("customers") == result.frame.get_column("customers")[0]).all()
    # No NaN anywhere: missing figures are null with a note.
    for frame in (result.frame, result.summary, result.reliability, detail):
        floats = frame.select(pl.selectors.float())
        assert not floats.select(pl.all().is_nan().any()).row(0).count(True)
    # Brier is the mean squared gap between P(active) and the 0/1 outcome.
    one = detail.filter(pl.col("horizon") == "1M")
    for origin in result.origins.get_column("origin").to_list():
        part = one.filter(pl.col("origin") == origin)
        active = part.get_column("active").cast(pl.Float64)
        brier = ((part.get_column("bgnbd_gg_p_active") - active) ** 2).mean()
        row = result.frame.filter(
            (pl.col("origin") == origin)
            & (pl.col("horizon") == "1M")
            & (pl.col("method") == "bgnbd_gg")
        ).row(0, named=True)
        assert row["brier"] == pytest.approx(brier, rel=1e-12)
    reliability = result.reliability.filter(
        (pl.col("method") == "bgnbd_gg") & (pl.col("horizon") == "1M")
    )
    assert reliability.get_column("decile").to_list() == list(range(1, 11))
    assert reliability.get_column("customers").sum() == one.height


def test_auto_origins_are_the_last_month_ends_leaving_the_horizon() -> None:
    result = backtest(small(), origins=2, horizons=["1M"], methods=["zero"], as_of="2024-04-30")
    assert result.origins.get_column("origin").to_list() == [date(2024, 2, 29), date(2024, 3, 31)]
    result = backtest(small(), origins=1, horizons=["2M"], methods=["zero"], as_of="2024-04-30")
    assert result.origins.get_column("origin").to_list() == [date(2024, 2, 29)]


# -- determinism ----------------------------------------------------------------------------------
def test_same_bits_for_shuffled_rows() -> None:
    tx = cdnow_part(2000)
    kwargs = {"origins": ["1997-12-31", "1998-03-31"], "horizons": ["1M", "3M"]}
    a = backtest(tx, **kwargs)  # type: ignore[arg-type]
    b = backtest(tx.sample(fraction=1.0, shuffle=True, seed=3), **kwargs)  # type: ignore[arg-type]
    assert_frame_equal(a.frame, b.frame, check_exact=True)
    assert_frame_equal(a.summary, b.summary, check_exact=True)
    assert_frame_equal(a.reliability, b.reliability, check_exact=True)
    assert a.details is not None
    assert b.details is not None
    assert_frame_equal(a.details, b.details, check_exact=True)


_THREADS_SCRIPT = """
import hashlib, sys
import polars as pl
from winback.backtest import backtest
from winback.datasets import load_cdnow
tx = load_cdnow().select("customer_id", "ts", "amount").filter(pl.col("customer_id") <= 2000)
r = backtest(tx, origins=["1998-02-28"], horizons=["1M", "3M"])
digest = hashlib.sha256()
for frame in (r.frame, r.summary, r.reliability, r.details):
    digest.update(frame.write_ipc(None).getvalue())
print(digest.hexdigest())
"""


def test_same_bits_for_one_or_two_threads() -> None:
    digests = []
    for threads in (1, 2):
        env = {
            **os.environ,
            "WINBACK_NUM_THREADS": str(threads),
            "POLARS_MAX_THREADS": str(threads),
            "PYTHONPATH": str(ROOT / "python"),
        }
        done = subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())


# -- typed errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"origins": ["2024-03-15"]}, "not a month end"),
        ({"origins": ["2023-12-31"]}, "before the first purchase"),
        ({"origins": ["2024-04-30"]}, "after the end of the data"),
        ({"origins": ["2024-03-31"], "horizons": ["2M"]}, "after the end of the data"),
        ({"origins": 9}, "only 3 month end"),
        ({"origins": 0}, "≥ 1"),
        ({"origins": []}, "empty"),
        ({"origins": ["2024-03-31", "2024-03-31"]}, "twice"),
        ({"origins": ["March"]}, "not an ISO date"),
        ({"horizons": ["1W"]}, "not a horizon"),
        ({"horizons": ["0M"]}, "at least one month"),
        ({"horizons": ["1M", "1m"]}, "twice"),
        ({"methods": ["prophet"]}, "not a method"),
        ({"methods": []}, "empty"),
    ],
)
def test_typed_errors(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {"origins": ["2024-03-31"], "horizons": ["1M"]}
    arguments.update(kwargs)
    with pytest.raises(WinbackConfigError, match=match):
        backtest(small(), as_of="2024-04-30", **arguments)  # type: ignore[arg-type]


def test_no_amounts_is_an_input_error() -> None:
    with pytest.raises(WinbackInputError, match="amount"):
        backtest(small().drop("amount"), origins=["2024-03-31"], horizons=["1M"])


def test_the_default_data_end_is_the_latest_purchase() -> None:
    # The latest purchase is 2024-04-11: April is not complete, so no 1M horizon fits.
    with pytest.raises(WinbackConfigError, match="pass as_of="):
        backtest(small(), origins=["2024-03-31"], horizons=["1M"])


def test_json_safe_summary() -> None:
    result = backtest(small(), origins=1, horizons=["1M"], methods=["zero"], as_of="2024-04-30")
    rows = result.summary.to_dicts()
    assert json.loads(json.dumps(rows, allow_nan=False, default=str))[0]["method"] == "zero"
