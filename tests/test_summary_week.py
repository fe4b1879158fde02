"""Calendar weeks from Monday as a summary resolution (``resolution="week"``,
docs/methods.md#occasions): lifetimes' ``freq="W"``. A hand-computed case, the shift identity
against 7-day buckets (which start on Thursdays), the out-of-core path, and lifetimes' own
figures on CDNOW."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winback
from winback.datasets import read_cdnow_text
from winback.errors import WinbackConfigError
from winback.models import BetaGeoModel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Tue 2024-01-02, Sun 01-07, Mon 01-08, Thu 01-18 (one customer), and one on Wed 01-10.
TX = pl.DataFrame(
    {
        "customer_id": [1, 1, 1, 1, 2],
        "ts": [date(2024, 1, 2), date(2024, 1, 7), date(2024, 1, 8), date(2024, 1, 18),
               date(2024, 1, 10)],
        "amount": [10.0, 20.0, 5.0, 7.0, 3.0],
    }
)  # fmt: skip
COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value", "first_amount"]


def test_hand_computed_weeks() -> None:
    # Monday weeks: 01-01 (the Tuesday and the Sunday: 30), 01-08 (5), 01-15 (7); as_of
    # Wed 01-31 is in the week of 01-29. x = 2, t_x = 2, T = 4 weeks, z̄ = (5 + 7)/2.
    # Customer 2: week of 01-08, T = 3.
    week = winback.summary(TX, as_of=date(2024, 1, 31), unit="W", resolution="week")
    assert week.select(COLUMNS).rows() == [(1, 2, 2.0, 4.0, 6.0, 30.0), (2, 0, 0.0, 3.0, 0.0, 3.0)]
    # 7-day buckets from the epoch start on Thursdays: 12-28 (10), 01-04 (the Sunday and the
    # Monday: 25), 01-18 (7); as_of in the bucket of 01-25. x = 2, t_x = 3, T = 4. Customer 2:
    # the bucket of 01-04, T = 3.
    seven = winback.summary(TX, as_of=date(2024, 1, 31), unit="W", resolution="7d")
    assert seven.select(COLUMNS).rows() == [
        (1, 2, 3.0, 4.0, 16.0, 10.0),
        (2, 0, 0.0, 3.0, 0.0, 3.0),
    ]


def test_hand_computed_holdout_and_litt() -> None:
    # calibration to Wed 01-10 (week of 01-08), holdout to Wed 01-31 (week of 01-29).
    out = winback.summary(
        TX,
        calibration_end=date(2024, 1, 10),
        holdout_end=date(2024, 1, 31),
        unit="D",
        resolution="week",
        litt=True,
    )
    row = out.filter(pl.col("customer_id") == 1).row(0, named=True)
    assert (row["frequency"], row["recency"], row["T"]) == (1, 7.0, 7.0)
    assert (row["frequency_holdout"], row["duration_holdout"]) == (1, 21.0)
    assert row["litt"] == pytest.approx(math.log(7.0))  # one gap: week 01-01 → week 01-08


@settings(max_examples=25, deadline=None)
@given(
    days=st.lists(st.integers(0, 400), min_size=1, max_size=30),
    customers=st.lists(st.integers(1, 4), min_size=30, max_size=30),
    end=st.integers(0, 420),
)
def test_monday_weeks_are_thursday_buckets_three_days_later(
    days: list[int], customers: list[int], end: int
) -> None:
    """t is in the Monday week [M, M+7) iff t + 3 days is in the Thursday bucket [M+3, M+10):
    every difference-based column is the same on data moved 3 days later."""
    start = datetime(2023, 1, 1, 13, 30)
    tx = pl.DataFrame(
        {
            "customer_id": customers[: len(days)],
            "ts": [start + timedelta(days=d) for d in days],
            "amount": [float(1 + d % 7) for d in days],
        }
    )
    as_of = start + timedelta(days=max(max(days), end))
    cols = ["customer_id", "frequency", "recency", "T", "monetary_value", "spend_frequency"]
    week = winback.summary(tx, as_of=as_of, unit="D", resolution="week").select(cols)
    moved = tx.with_columns(pl.col("ts") + timedelta(days=3))
    seven = winback.summary(
        moved, as_of=as_of + timedelta(days=3), unit="D", resolution="7d"
    ).select(cols)
    assert week.equals(seven)


def test_out_of_core_equals_in_memory() -> None:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    kwargs = {"calibration_end": date(1997, 9, 30), "unit": "W", "resolution": "week", "litt": True}
    whole = winback.summary(tx, **kwargs)  # type: ignore[arg-type]
    parts = winback.summary(tx, memory_limit="1MB", **kwargs)  # type: ignore[arg-type]
    assert parts.sort("customer_id").equals(whole)


def test_cdnow_matches_lifetimes_freq_w() -> None:
    """lifetimes 0.11.3 on CDNOW_sample.txt with observation_period_end 1997-09-30 and freq="W"
    (rows after it left out first): Σ frequency 2,216, Σ recency 16,128, Σ T 77,748 weeks;
    calibration_and_holdout_data to 1998-06-30: Σ frequency_holdout 1,788 and a 39-week
    holdout (computed by lifetimes in benches/bench_parity.py's run, not by winback)."""
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    out = winback.summary(tx, as_of=date(1997, 9, 30), unit="W", resolution="week")
    assert out.height == 2357
    assert out["frequency"].sum() == 2216
    assert out["recency"].sum() == 16128.0
    assert out["T"].sum() == 77748.0
    split = winback.summary(
        tx,
        calibration_end=date(1997, 9, 30),
        holdout_end=date(1998, 6, 30),
        unit="W",
        resolution="week",
    )
    assert split["frequency_holdout"].sum() == 1788
    assert split["duration_holdout"].unique().to_list() == [39.0]


def test_models_record_and_check_the_week_resolution() -> None:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    pair = winback.summary(
        tx, as_of=date(1997, 9, 30), unit="W", resolution="week", return_info=True
    )
    model = BetaGeoModel().fit(pair)
    assert model.resolution_ == "week"
    days = winback.summary(tx, as_of=date(1997, 9, 30), unit="W", resolution="7d", return_info=True)
    with pytest.raises(WinbackConfigError, match="resolution"):
        model.expected_purchases(10.0, days)


def test_unknown_resolution_names_week() -> None:
    with pytest.raises(WinbackConfigError, match="'week'"):
        winback.summary(TX, resolution="fortnight")
