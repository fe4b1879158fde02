"""The one snapshot rule (issue 19, items 5 and 6; docs/methods.md#as-of).

- an explicit ``as_of`` before all the data is refused, naming it and the data's first and last
  dates, in every function that takes one (in memory and out of core);
- a default ``as_of`` set by rows far beyond the rest of the data (more than a year after the
  99.9th percentile, or after tomorrow by the clock) is refused, naming the rows; the decision
  is the same for any row order, batch split, and in memory or out of core;
- the default ``as_of`` is the end of the latest purchase's day: every function gives the same
  bits as with ``as_of`` = that date (the 17-vs-18-periods bug of ``value``/``summary``);
- an explicit ``amount_col`` missing from the data is refused; the default one may be absent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from winback._engines.plan import resolve_as_of
from winback._io.times import (
    LATE_DAYS,
    MICROS_PER_DAY,
    PurchaseDates,
    as_of_to_micros,
    check_default_snapshot,
)
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError

LAST = date(1998, 6, 30)  # CDNOW's last purchase day


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return load_cdnow().select("customer_id", "ts", "amount")


def _with_rows(tx: pl.DataFrame, rows: list[tuple[int, date, float]]) -> pl.DataFrame:
    return pl.concat([tx, pl.DataFrame(rows, schema=tx.schema, orient="row")])


# --- an explicit as_of before all the data ----------------------------------------------------

ENTRIES: dict[str, Callable[..., Any]] = {
    "silence": lambda tx, as_of: winback.silence(tx, as_of=as_of),
    "silence_out_of_core": lambda tx, as_of: winback.silence(tx, as_of=as_of, memory_limit="1MB"),
    "summary": lambda tx, as_of: winback.summary(tx, as_of=as_of),
    "summary_out_of_core": lambda tx, as_of: winback.summary(tx, as_of=as_of, memory_limit="1MB"),
    "value": lambda tx, as_of: winback.value(tx, as_of=as_of),
    "rfm": lambda tx, as_of: winback.rfm(tx, as_of=as_of),
    "migration": lambda tx, as_of: winback.migration(tx, as_of=[as_of, "1998-01-01"]),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_as_of_before_all_data_is_refused(entry: str, cdnow: pl.DataFrame) -> None:
    # Reproducer: `--as-of 1990-01-01` on CDNOW (1997-01-01 … 1998-06-30) gave empty tables.
    with pytest.raises(WinbackConfigError) as refused:
        ENTRIES[entry](cdnow, "1990-01-01")
    message = str(refused.value)
    for needle in ("as_of=1990-01-01", "1997-01-01", "1998-06-30", "(CLI: --as-of)"):
        assert needle in message, (needle, message)


def test_as_of_before_data_is_refused_for_a_date_and_a_datetime(cdnow: pl.DataFrame) -> None:
    with pytest.raises(WinbackConfigError, match=r"as_of=1996-12-31 is before"):
        winback.silence(cdnow, as_of=date(1996, 12, 31))
    with pytest.raises(WinbackConfigError, match=r"as_of=1996-12-31T23:59:59 is before"):
        winback.silence(cdnow, as_of=datetime(1996, 12, 31, 23, 59, 59))


def test_as_of_on_the_first_purchase_day_is_a_snapshot(cdnow: pl.DataFrame) -> None:
    out = winback.silence(cdnow, as_of="1997-01-01")
    first_day = cdnow.filter(pl.col("ts") == date(1997, 1, 1))
    assert out.height == first_day.get_column("customer_id").n_unique() > 0


def test_holdout_end_before_data_is_named(cdnow: pl.DataFrame) -> None:
    # The summary's snapshot then comes from holdout_end, and the message names that argument
    # (the calibration_end check would say the same thing in other words).
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        winback.summary(cdnow, calibration_end="1990-01-01", holdout_end="1990-06-01")


def test_empty_input_with_as_of_is_not_refused() -> None:
    empty = pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Date})
    assert winback.silence(empty, as_of="1990-01-01").height == 0


# --- a default as_of set by far-future rows -----------------------------------------------------


def test_a_typo_row_in_2204_is_refused_with_its_customer(cdnow: pl.DataFrame) -> None:
    # Reproducer: one row dated 2204-01-01 moved the default as_of and made everyone deep_silent.
    bad = _with_rows(cdnow, [(4242, date(2204, 1, 1), 12.0)])
    with pytest.raises(WinbackInputError) as refused:
        winback.silence(bad)
    message = str(refused.value)
    for needle in ("1 purchase(s)", "customer 4242 on 2204-01-01", "as_of=", "--as-of"):
        assert needle in message, (needle, message)


def test_rows_a_decade_late_are_refused_by_the_percentile(cdnow: pl.DataFrame) -> None:
    # Before the machine's clock, so only the percentile rule can see them.
    bad = _with_rows(cdnow, [(7, date(2008, 1, 1), 3.0), (8, date(2010, 3, 1), 2.0)])
    with pytest.raises(WinbackInputError) as refused:
        winback.summary(bad)
    message = str(refused.value)
    assert "2 purchase(s) dated after 1999-06-29" in message
    assert "99.9th percentile" in message
    assert "customer 8 on 2010-03-01, customer 7 on 2008-01-01" in message


def test_many_late_rows_are_data_not_typos(cdnow: pl.DataFrame) -> None:
    # More than 0.1% of the purchases a year later: the percentile moves with them.
    late = [(9_000_000 + i, date(2000, 1, 1), 1.0) for i in range(cdnow.height // 1000 + 1)]
    _, info = winback.silence(_with_rows(cdnow, late), return_info=True)
    assert info.as_of == datetime(2000, 1, 1, 23, 59, 59, 999999)


def test_rows_after_tomorrow_are_refused_even_in_small_data() -> None:
    future = date.today() + timedelta(days=3)
    tx = pl.DataFrame(
        {"customer_id": [1, 1, 2], "ts": [date(2024, 1, 1), date(2024, 2, 1), future]}
    )
    with pytest.raises(WinbackInputError, match="after tomorrow by this machine's clock"):
        winback.silence(tx)
    tomorrow = pl.DataFrame({"customer_id": [1], "ts": [date.today() + timedelta(days=1)]})
    assert winback.silence(tomorrow).height == 1  # a day of slack for the zones


def test_explicit_as_of_keeps_todays_handling_of_later_rows(cdnow: pl.DataFrame) -> None:
    # Rows after an explicit as_of are left out of the snapshot and counted, as before.
    bad = _with_rows(cdnow, [(4242, date(2204, 1, 1), 12.0)])
    out, info = winback.silence(bad, as_of=LAST, return_info=True)
    assert info.rows_after_as_of == 1
    assert_frame_equal(out, winback.silence(cdnow, as_of=LAST))
    summ, summ_info = winback.summary(bad, as_of=LAST, return_info=True)
    assert summ_info.rows_after_as_of == 1
    assert_frame_equal(summ, winback.summary(cdnow, as_of=LAST))


def test_in_memory_and_out_of_core_refuse_alike(cdnow: pl.DataFrame, tmp_path: Path) -> None:
    bad = _with_rows(
        cdnow, [(7, date(2008, 1, 1), 3.0), (8, date(2204, 3, 1), 2.0), (9, date(2204, 3, 1), 1.0)]
    )
    shuffled = bad.sample(fraction=1.0, shuffle=True, seed=3)
    for index, part in enumerate(shuffled.iter_slices(9_000)):
        part.write_parquet(tmp_path / f"part{index}.parquet")
    messages = set()
    for data, limit in ((bad, None), (shuffled, None), (tmp_path, "1MB"), (tmp_path, None)):
        with pytest.raises(WinbackInputError) as refused:
            winback.silence(data, memory_limit=limit)
        messages.add(str(refused.value))
        with pytest.raises(WinbackInputError) as refused:
            winback.summary(data, memory_limit=limit)
        messages.add(str(refused.value))
    assert len(messages) == 1, messages
    assert "customer 8 on 2204-03-01, customer 9 on 2204-03-01, customer 7 on 2008-01-01" in (
        messages.pop()
    )


def test_orders_are_counted_as_purchases_out_of_core(tmp_path: Path) -> None:
    # With order_col a purchase is dated at its first row, in memory and out of core alike.
    days = [date(2020, 1, 1) + timedelta(days=i % 700) for i in range(3000)]
    tx = pl.DataFrame(
        {
            "customer_id": [i % 50 for i in range(3000)],
            "ts": days,
            "order": [i for i in range(3000)],
            "amount": [1.0] * 3000,
        }
    )
    late = pl.DataFrame(
        {"customer_id": [3, 3], "ts": [date(2019, 1, 1), date(2024, 6, 1)], "order": [-1, -1]},
        schema_overrides={"customer_id": pl.Int64},
    ).with_columns(amount=pl.lit(1.0))
    whole = pl.concat([tx, late.select(tx.columns)])
    whole.write_parquet(tmp_path / "tx.parquet")
    # The late row shares an order with a 2019 row: the order is dated 2019, nothing is late.
    expected = winback.silence(whole, order_col="order")
    got = winback.silence(tmp_path, order_col="order", memory_limit="200KB")
    assert_frame_equal(got, expected)
    for data in (whole, tmp_path):  # as rows, the 2024 one is a typo-like late purchase
        with pytest.raises(WinbackInputError, match="customer 3 on 2024-06-01"):
            winback.silence(data, memory_limit="200KB")


@st.composite
def day_logs(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(1, 3000))
    base = draw(st.sampled_from([-20_000, 0, 10_000]))  # days since 1970, pre-1970 too
    span = draw(st.integers(0, 900))
    seed = draw(st.integers(0, 2**16))
    frame = pl.DataFrame({"i": range(n)}).select(
        customer=(pl.col("i") * 7919 + seed) % 97,
        ts=((pl.col("i") * 104_729 + seed) % (span + 1) + base) * MICROS_PER_DAY
        + (pl.col("i") * 31) % MICROS_PER_DAY,
    )
    outliers = draw(st.lists(st.integers(span + 1, span + 3 * LATE_DAYS), max_size=6))
    extra = pl.DataFrame(
        {
            "customer": [draw(st.integers(0, 96)) for _ in outliers],
            "ts": [(base + day) * MICROS_PER_DAY for day in outliers],
        },
        schema=frame.schema,
    )
    return pl.concat([frame, extra])


def _decision(dates: PurchaseDates) -> str:
    try:
        check_default_snapshot(dates, None, today=date(2200, 1, 1))
    except WinbackInputError as refused:
        return str(refused)
    return "accepted"


@settings(max_examples=60)
@given(log=day_logs(), seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 700))
def test_the_decision_is_the_same_for_any_order_and_batch_split(
    log: pl.DataFrame, seed: int, batch: int
) -> None:
    whole = PurchaseDates.of(log)
    streamed = PurchaseDates()
    for part in log.sample(fraction=1.0, shuffle=True, seed=seed).iter_slices(batch):
        streamed.add(part)
    assert (streamed.rows, streamed.first_us, streamed.latest_us) == (
        whole.rows,
        whole.first_us,
        whole.latest_us,
    )
    assert_frame_equal(streamed.latest(), whole.latest())
    for rank in {min(2, whole.rows), whole.rows // 1000 + 1, whole.rows}:
        assert streamed.day_from_top(rank) == whole.day_from_top(rank)
    assert _decision(streamed) == _decision(whole)


def test_the_percentile_is_the_nearest_rank() -> None:
    # 2000 purchases: 2 may lie above the 99.9th percentile, the third latest sets it.
    days = [0] * 1997 + [1, 400, 401]
    frame = pl.DataFrame({"customer": range(2000), "ts": [d * MICROS_PER_DAY for d in days]})
    dates = PurchaseDates.of(frame)
    assert dates.day_from_top(3) == 1
    assert "2 purchase(s) dated after 1971-01-02" in _decision(dates)  # day 1 + 365
    frame = frame.with_columns(pl.col("ts").replace(1 * MICROS_PER_DAY, 400 * MICROS_PER_DAY))
    assert _decision(PurchaseDates.of(frame)) == "accepted"


def test_engines_resolve_the_default_by_the_same_rule() -> None:
    bounds = {
        "time_zone": None,
        "min_ts_us": as_of_to_micros(datetime(2024, 1, 1, 9), None),
        "max_ts_us": as_of_to_micros(datetime(2024, 3, 1, 8), None),
    }
    assert resolve_as_of(bounds, None) == as_of_to_micros(date(2024, 3, 1), None)
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        resolve_as_of(bounds, "2023-12-31")
    bounds["max_ts_us"] = as_of_to_micros(datetime(2304, 3, 1, 8), None)
    with pytest.raises(WinbackInputError, match="after tomorrow"):
        resolve_as_of(bounds, None)


# --- one definition of the default as_of ----------------------------------------------------------


def test_value_periods_agree_for_the_default_and_the_last_date(cdnow: pl.DataFrame) -> None:
    # Reproducer: the default gave 17 complete periods and a "next period" of 1998-06-01, a
    # month already in the data; as_of="1998-06-30" gave 18 and 1998-07-01.
    default, explicit = winback.value(cdnow), winback.value(cdnow, as_of=LAST)
    assert default.info.n_complete_periods == explicit.info.n_complete_periods == 18
    assert default.info.next_period_start == explicit.info.next_period_start
    assert default.info.next_period_start == datetime(1998, 7, 1)
    assert default.info.as_of == explicit.info.as_of
    assert_frame_equal(default.frame, explicit.frame)


@pytest.mark.parametrize(
    "call",
    [
        lambda tx, **kw: winback.silence(tx, **kw),
        lambda tx, **kw: winback.silence(tx, resolution="12h", **kw),
        lambda tx, **kw: winback.summary(tx, **kw),
        lambda tx, **kw: winback.summary(tx, unit="D", period="week", **kw),
        lambda tx, **kw: winback.summary(tx, calibration_end="1997-09-30", **kw),
        lambda tx, **kw: winback.rfm(tx, **kw),
        lambda tx, **kw: winback.silence(tx, memory_limit="1MB", **kw),
        lambda tx, **kw: winback.summary(tx, memory_limit="1MB", **kw),
    ],
    ids=["silence", "silence_12h", "summary", "summary_d_week", "summary_split", "rfm",
         "silence_out_of_core", "summary_out_of_core"],
)  # fmt: skip
def test_default_as_of_is_the_last_purchase_date(call: Any, cdnow: pl.DataFrame) -> None:
    assert_frame_equal(call(cdnow), call(cdnow, as_of=LAST))
    assert_frame_equal(call(cdnow), call(cdnow, as_of="1998-06-30"))


def test_summary_counts_the_last_month_as_complete(cdnow: pl.DataFrame) -> None:
    default, info = winback.summary(cdnow, return_info=True)
    explicit, explicit_info = winback.summary(cdnow, as_of=LAST, return_info=True)
    assert info.as_of == explicit_info.as_of == datetime(1998, 6, 30, 23, 59, 59, 999999)
    first = default.filter(pl.col("customer_id") == 1).row(0, named=True)
    assert first["n_periods"] == 17  # Feb 1997 … Jun 1998 after the birth month (Jan 1997)
    assert_frame_equal(default, explicit)


def test_intraday_default_is_the_end_of_the_last_day() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "ts": [
                datetime(2024, 1, 1, 10),
                datetime(2024, 2, 1, 9),
                datetime(2024, 1, 5, 20),
                datetime(2024, 2, 1, 15, 30),
            ],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    for resolution in ("1d", "1h"):
        default, info = winback.silence(tx, resolution=resolution, return_info=True)
        assert info.as_of == datetime(2024, 2, 1, 23, 59, 59, 999999)
        explicit = winback.silence(tx, resolution=resolution, as_of=date(2024, 2, 1))
        assert_frame_equal(default, explicit)
    assert_frame_equal(
        winback.summary(tx, unit="D"), winback.summary(tx, unit="D", as_of="2024-02-01")
    )


def test_tz_aware_default_is_the_end_of_the_local_day() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [datetime(2024, 1, 1, 10), datetime(2024, 2, 1, 23, 30), datetime(2024, 1, 5)],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    _, info = winback.silence(tx, tz="Asia/Tokyo", return_info=True)  # 08:30 on 2 Feb in Tokyo
    assert info.as_of == datetime(2024, 2, 2, 23, 59, 59, 999999)


# --- an explicit amount column missing from the data ----------------------------------------------

NO_AMOUNT = pl.DataFrame(
    {"customer_id": [1, 1, 2], "ts": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5)]}
)

AMOUNT_ENTRIES: dict[str, Callable[..., Any]] = {
    "prepare": lambda **kw: winback.prepare(NO_AMOUNT, **kw),
    "silence": lambda **kw: winback.silence(NO_AMOUNT, **kw),
    "silence_out_of_core": lambda **kw: winback.silence(NO_AMOUNT, memory_limit="1MB", **kw),
    "summary": lambda **kw: winback.summary(NO_AMOUNT, **kw),
    "rfm": lambda **kw: winback.rfm(NO_AMOUNT, **kw),
    "value": lambda **kw: winback.value(NO_AMOUNT, **kw),
    "migration": lambda **kw: winback.migration(
        NO_AMOUNT, as_of=["2024-01-10", "2024-02-10"], **kw
    ),
}


@pytest.mark.parametrize("entry", sorted(AMOUNT_ENTRIES))
def test_an_explicit_amount_column_missing_is_refused(entry: str) -> None:
    with pytest.raises(WinbackInputError) as refused:
        AMOUNT_ENTRIES[entry](amount_col="spend")
    message = str(refused.value)
    assert "'spend'" in message, message
    assert "amount" in message, message
    if entry != "value":  # value says it needs amounts instead of listing the columns
        assert "'customer_id', 'ts'" in message, message


@pytest.mark.parametrize(
    "entry", ["prepare", "silence", "silence_out_of_core", "summary", "migration"]
)
def test_the_default_amount_column_may_be_absent(entry: str) -> None:
    AMOUNT_ENTRIES[entry]()
