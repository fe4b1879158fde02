"""The tracking curve ``winback.summary.expected_cumulative_transactions``
(docs/methods.md#tracking): counts by hand, calendar weeks from Monday against 7-day buckets,
CDNOW's calibration repeat purchases, and the typed failures."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
from winback.datasets import read_cdnow_text
from winback.errors import WinbackConfigError
from winback.models import BetaGeoModel
from winback.summary import expected_cumulative_transactions

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PARAMS = {"r": 0.2426, "alpha": 4.414, "a": 0.7929, "b": 2.426}


def test_counts_by_hand() -> None:
    # Wed 2024-01-03: customer 1 born; two occasions on 01-05 (one), 01-12; customer 2 born 01-09
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 2],
            "ts": [
                datetime(2024, 1, 3, 9),
                datetime(2024, 1, 5, 10),
                datetime(2024, 1, 5, 18),
                datetime(2024, 1, 12),
                datetime(2024, 1, 9),
                datetime(2024, 1, 20),
            ],
        }
    )
    model = BetaGeoModel.from_params(PARAMS, unit="D")
    out = expected_cumulative_transactions(model, tx, periods=3, period="7d")
    assert out["period_end"].to_list() == [datetime(2024, 1, d) for d in (10, 17, 24)]
    assert out["actual"].to_list() == [1, 2, 3]
    for end, predicted in zip(out["period_end"], out["predicted"], strict=True):
        ages = [(end - datetime(2024, 1, 3)).days]
        if end > datetime(2024, 1, 9):
            ages.append((end - datetime(2024, 1, 9)).days)
        want = sum(float(model.expected_purchases_new_customer(float(a))) for a in ages)
        assert predicted == pytest.approx(want, rel=1e-14)
    weeks = expected_cumulative_transactions(model, tx, periods=3, period="week")
    # calendar weeks: Monday 2024-01-01 starts period 0
    assert weeks["period_end"].to_list() == [datetime(2024, 1, d) for d in (8, 15, 22)]
    assert all(e.weekday() == 0 for e in weeks["period_end"])
    assert weeks["actual"].to_list() == [1, 2, 3]


def test_cdnow_calibration_total() -> None:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    summary, info = winback.summary(
        tx, calibration_end=date(1997, 9, 30), unit="W", time_col="ts", return_info=True
    )
    model = BetaGeoModel().fit((summary, info))
    out = expected_cumulative_transactions(model, tx, periods=78, time_col="ts")
    # 7-day buckets from 1997-01-01: period 39 ends 1997-10-01, the calibration end's next day
    row = out.filter(pl.col("period") == 39).row(0, named=True)
    assert row["period_end"] == datetime(1997, 10, 1)
    assert row["actual"] == int(summary["frequency"].sum())
    assert np.all(np.diff(out["actual"].to_numpy()) >= 0)
    assert np.all(np.diff(out["predicted"].to_numpy()) > 0)
    # the model tracks the calibration period closely (FHL 2005a, fig. 4)
    assert row["predicted"] == pytest.approx(row["actual"], rel=0.05)


def test_failures() -> None:
    tx = pl.DataFrame({"customer_id": [1, 1], "ts": [date(2024, 1, 1), date(2024, 1, 9)]})
    model = BetaGeoModel.from_params(PARAMS, unit="W")
    with pytest.raises(WinbackConfigError, match="contradicts"):
        expected_cumulative_transactions(model, tx, periods=2, unit="D")
    with pytest.raises(WinbackConfigError, match="periods"):
        expected_cumulative_transactions(model, tx, periods=0)
    with pytest.raises(WinbackConfigError, match="period"):
        expected_cumulative_transactions(model, tx, periods=2, period="fortnight")
