"""winback.summary and compress_summary (docs/methods.md#summary): oracle, invariance, real data,
bad inputs."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from tests import reference
from tests.conftest import SHARED_DATA, START, micros, transaction_logs
from winback import _winback
from winback.errors import WinbackConfigError, WinbackInputError
from winback.summary import HOLDOUT_COLUMNS, SUMMARY_COLUMNS, compress_summary

RESOLUTIONS = {"1h": 3_600_000_000, "1d": reference.DAY_US, "7d": 7 * reference.DAY_US}
UNITS = {"D": reference.DAY_US, "W": 7 * reference.DAY_US}
PERIODS = ["month", "week", "quarter", "1d", "3d", "10d"]
MONEY = ("monetary_value", "spend_frequency", "first_amount", "monetary_value_holdout")


def _rows(frame: pl.DataFrame) -> list[tuple[object, int, float | None]]:
    amounts = frame.get_column("amount") if "amount" in frame.columns else [None] * frame.height
    ts = frame.get_column("ts").cast(pl.Datetime("us")).cast(pl.Int64)
    return list(zip(frame.get_column("customer_id"), ts, amounts, strict=True))


def assert_matches_reference(
    log: pl.DataFrame,
    *,
    calibration_end: datetime,
    holdout_end: datetime | None,
    resolution: str = "1d",
    unit: str = "W",
    period: str = "month",
) -> None:
    """The summary equals the oracle bit for bit, and accounts for every customer once."""
    split = holdout_end is not None
    max_time = holdout_end if split else calibration_end
    out, info = winback.summary(
        log,
        as_of=max_time,
        calibration_end=calibration_end if split else None,
        resolution=resolution,
        unit=unit,  # type: ignore[arg-type]
        period=period,
        return_info=True,
    )
    expected, born_after = reference.summary(
        _rows(log),
        calibration_end_us=micros(calibration_end),
        max_time_us=micros(max_time),
        resolution_us=RESOLUTIONS[resolution],
        unit_us=UNITS[unit],
        period=period,
    )
    assert out.columns == list(SUMMARY_COLUMNS + (HOLDOUT_COLUMNS if split else ()))
    assert out.get_column("customer_id").to_list() == sorted(expected)
    for row in out.iter_rows(named=True):
        ref = expected[row["customer_id"]]
        for name in SUMMARY_COLUMNS[1:] + (HOLDOUT_COLUMNS[:2] if split else ()):
            assert row[name] == ref[name], (name, row, ref)
    assert info.customers_born_after_calibration == born_after
    present = log.filter(pl.col("ts") <= max_time).get_column("customer_id").n_unique()
    assert out.height + born_after == present
    if split:
        assert info.rows_used == log.filter(pl.col("ts") <= max_time).height


@given(
    log=transaction_logs(),
    cal_hours=st.integers(-24, 45 * 24),
    holdout_hours=st.one_of(st.none(), st.integers(1, 30 * 24)),
    resolution=st.sampled_from(sorted(RESOLUTIONS)),
    unit=st.sampled_from(sorted(UNITS)),
    period=st.sampled_from(PERIODS),
)
@example(
    log=pl.DataFrame({"customer_id": [1], "ts": [START], "amount": [5.0]}),
    cal_hours=0,
    holdout_hours=None,
    resolution="1d",
    unit="W",
    period="month",
)
@example(  # same-day rows across the calibration end: two occasions, one on each side
    log=pl.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "ts": [START, START + timedelta(hours=30), START + timedelta(hours=40)],
            "amount": [1.0, -2.0, 3.0],
        }
    ),
    cal_hours=35,
    holdout_hours=24,
    resolution="1d",
    unit="D",
    period="1d",
)
def test_summary_matches_reference(
    log: pl.DataFrame,
    cal_hours: int,
    holdout_hours: int | None,
    resolution: str,
    unit: str,
    period: str,
) -> None:
    calibration_end = START + timedelta(hours=cal_hours, minutes=30)
    holdout_end = (
        None if holdout_hours is None else calibration_end + timedelta(hours=holdout_hours)
    )
    if holdout_end is not None and log.height and log.get_column("ts").min() > calibration_end:  # type: ignore[operator]
        with pytest.raises(WinbackConfigError, match="is before the first purchase"):
            winback.summary(log, calibration_end=calibration_end, holdout_end=holdout_end)
        return
    if holdout_end is None and log.height and log.get_column("ts").min() > calibration_end:  # type: ignore[operator]
        # docs/methods.md#as-of: a snapshot before all the data is refused, not empty.
        with pytest.raises(WinbackConfigError, match="is before the first purchase"):
            winback.summary(log, as_of=calibration_end)
        return
    assert_matches_reference(
        log,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        resolution=resolution,
        unit=unit,
        period=period,
    )


def _large_log(n_customers: int, seed: int) -> pl.DataFrame:
    """Spans many partitions and chunks; refunds and zero amounts included."""
    rng = np.random.default_rng(seed)
    per_customer = rng.geometric(0.1, n_customers)
    per_customer[0] = 20_000
    ids = np.repeat(rng.permutation(n_customers * 5)[:n_customers], per_customer)
    n = ids.size
    ts = np.datetime64("2022-01-01T00:00:00", "us") + rng.integers(
        0, 700 * 86_400_000_000, n
    ).astype("timedelta64[us]")
    amounts = np.round(rng.gamma(2.0, 20.0, n), 2) * rng.choice(
        [1.0, 0.0, -1.0], n, p=[0.9, 0.05, 0.05]
    )
    frame = pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amounts})
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.fixture(scope="module")
def large_log() -> pl.DataFrame:
    return _large_log(20_000, seed=11)


SPLIT = {"calibration_end": date(2023, 3, 31), "holdout_end": date(2023, 11, 30)}


def test_large_input_matches_reference(large_log: pl.DataFrame) -> None:
    assert large_log.height > 150_000
    assert_matches_reference(
        large_log,
        calibration_end=datetime(2023, 3, 31, 23, 59, 59, 999_999),
        holdout_end=datetime(2023, 11, 30, 23, 59, 59, 999_999),
    )


def test_order_threads_and_batches_do_not_change_a_bit(large_log: pl.DataFrame) -> None:
    one = winback.summary(large_log, num_threads=1, **SPLIT)
    two = winback.summary(large_log.reverse(), num_threads=2, **SPLIT)
    four = winback.summary(large_log.sort("ts"), num_threads=4, **SPLIT)
    batches = large_log.to_arrow().to_batches(max_chunksize=9_999)
    assert len(batches) > 10
    split = winback.summary(pa.Table.from_batches(batches), **SPLIT)
    for other in (two, four, split):
        assert_frame_equal(one, other)


@given(log=transaction_logs(), seed=st.integers(0, 2**32 - 1), period=st.sampled_from(PERIODS))
def test_row_order_does_not_change_a_bit(log: pl.DataFrame, seed: int, period: str) -> None:
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=seed)
    assert_frame_equal(
        winback.summary(log, period=period), winback.summary(shuffled, period=period)
    )


@pytest.mark.parametrize("template", ["{:09d}", "customer-{:012d}"])
def test_string_and_integer_ids_give_the_same_summary(
    large_log: pl.DataFrame, template: str
) -> None:
    ids = large_log.get_column("customer_id").to_list()
    named = large_log.with_columns(
        pl.Series("customer_id", [template.format(i) for i in ids], dtype=pl.String)
    )
    as_int = winback.summary(large_log, **SPLIT)
    as_str = winback.summary(named, **SPLIT)
    expected = as_int.with_columns(
        pl.Series("customer_id", [template.format(i) for i in as_int["customer_id"]])
    )
    assert_frame_equal(expected, as_str)


@given(log=transaction_logs(), as_of_day=st.integers(0, 45))
def test_frequency_and_recency_agree_with_silence(log: pl.DataFrame, as_of_day: int) -> None:
    """Without a split the summary is the silence snapshot in other units (docs/methods.md#silence,
    #summary)."""
    as_of = START + timedelta(days=as_of_day, hours=6)
    if log.height and as_of < log.get_column("ts").min():  # type: ignore[operator]
        for scoring in (winback.summary, winback.silence):  # docs/methods.md#as-of
            with pytest.raises(WinbackConfigError, match="is before the first purchase"):
                scoring(log, as_of=as_of)
        return
    summ = winback.summary(log, as_of=as_of, unit="D")
    sil = winback.silence(log, as_of=as_of)
    joined = summ.join(sil, on="customer_id", how="full", coalesce=True)
    assert joined.height == summ.height == sil.height
    assert (joined["frequency"] == joined["n_occasions"] - 1).all()
    assert (joined["T"] == joined["tenure_days"]).all()
    assert (joined["recency"] == joined["tenure_days"] - joined["recency_days"]).all()


# --- real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_sample() -> pl.DataFrame:
    """The CDNOW 1/10 sample keyed by its sample id (the ``ID`` of the published summary)."""
    path = SHARED_DATA / "CDNOW_sample.txt"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return pl.DataFrame(
        {
            "customer_id": [int(r[1]) for r in rows],
            "ts": [r[2] for r in rows],
            "amount": [float(r[4]) for r in rows],
        }
    ).with_columns(pl.col("ts").str.to_date("%Y%m%d"))


def test_cdnow_sample_reproduces_the_published_summary(cdnow_sample: pl.DataFrame) -> None:
    out, info = winback.summary(
        cdnow_sample,
        unit="W",
        calibration_end=date(1997, 9, 30),
        holdout_end=date(1998, 6, 30),
        return_info=True,
    )
    published = pl.read_csv(SHARED_DATA / "cdnow_customers_summary.csv")
    assert out.height == published.height == 2_357
    joined = published.join(out, left_on="ID", right_on="customer_id", how="inner")
    assert joined.height == 2_357
    assert (joined["frequency"] == joined["frequency_right"]).all()
    assert (joined["recency_right"].round(2) == joined["recency"]).all()
    assert (joined["T_right"].round(2) == joined["T"]).all()
    assert (out["frequency"] > 0).sum() == 946  # the literature's repeat buyers
    assert (out["duration_holdout"] == 39.0).all()
    assert (info.rows_used, info.customers_born_after_calibration) == (6_919, 0)
    assert info.as_of == datetime(1998, 6, 30, 23, 59, 59, 999_999)
    # The sample's calibration period has 9 whole months; a January customer is observed 8 of them.
    first_month = out.filter(pl.col("T") > 38)
    assert first_month["n_periods"].max() == 8


def test_cdnow_master_counts(cdnow_master: pl.DataFrame) -> None:
    out = winback.summary(cdnow_master, calibration_end=date(1997, 9, 30))
    assert out.height == 23_570
    assert (out["spend_frequency"] <= out["frequency"]).all()
    compressed = compress_summary(out)
    assert compressed["count"].sum() == 23_570
    assert compressed.height < out.height // 2  # 8,685 distinct (x, t_x, T)


# --- semantics on small hand-made cases ------------------------------------------------------------


def _tx() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3],
            "ts": [
                date(2024, 1, 3),
                date(2024, 1, 3),
                date(2024, 2, 10),
                date(2024, 4, 2),
                date(2024, 3, 1),
                date(2024, 4, 20),
            ],
            "amount": [10.0, 5.0, -4.0, 8.0, 3.0, 1.0],
        }
    )


def test_hand_computed_summary() -> None:
    out, info = winback.summary(
        _tx(),
        unit="D",
        calibration_end=date(2024, 3, 31),
        holdout_end=date(2024, 4, 30),
        return_info=True,
    )
    assert out.rows() == [
        # id, x, t_x, T, z̄ (refund excluded), spend x, first, n_periods, X, holdout x, z̄, days
        (1, 1, 38.0, 88.0, 0.0, 0, 15.0, 2, 1, 1, 8.0, 30.0),
        (2, 0, 0.0, 30.0, 0.0, 0, 3.0, 0, 0, 0, 0.0, 30.0),
    ]
    assert info.customers_born_after_calibration == 1
    assert info.rows_born_after_calibration == 1
    assert info.as_dict()["calibration_end"] == "2024-03-31"
    assert info.as_dict()["holdout_end"] == "2024-04-30"


def test_without_split_t_runs_to_as_of_and_holdout_columns_are_absent() -> None:
    out = winback.summary(_tx(), as_of="2024-04-30", unit="D", period="week")
    assert out.columns == list(SUMMARY_COLUMNS)
    assert out.filter(pl.col("customer_id") == 3)["T"].item() == 10.0
    assert out.height == 3


def test_without_amounts_money_columns_are_null() -> None:
    out = winback.summary(_tx().drop("amount"), calibration_end=date(2024, 3, 31))
    for name in MONEY:
        assert out[name].null_count() == out.height, name
    assert out["frequency"].null_count() == 0


@pytest.mark.parametrize("split", [False, True])
def test_empty_input_gives_the_full_schema(split: bool) -> None:
    empty = _tx().clear()
    out = winback.summary(empty, calibration_end=date(2024, 3, 31) if split else None)
    assert out.height == 0
    assert out.columns == list(SUMMARY_COLUMNS + (HOLDOUT_COLUMNS if split else ()))
    assert out.schema["frequency"] == pl.Int64
    assert out.schema["T"] == pl.Float64


def test_dropped_rows_are_reported() -> None:
    tx = _tx().with_columns(
        pl.when(pl.col("customer_id") == 2).then(None).otherwise(pl.col("amount")).alias("amount")
    )
    out, info = winback.summary(tx, on_invalid="drop", return_info=True)
    assert info.rows_rejected == 1
    assert info.rejects["reason"].to_list() == ["null amount"]
    assert out["customer_id"].to_list() == [1, 3]


# --- compress -----------------------------------------------------------------------------------


@given(
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from([0.0, -0.0, 0.5, 2.25]), st.integers(0, 2)),
        max_size=200,
    )
)
def test_compress_keeps_the_multiset(rows: list[tuple[int, float, int]]) -> None:
    frame = pl.DataFrame(
        rows, schema={"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Int32}, orient="row"
    )
    out = compress_summary(frame)
    assert out.schema == pl.Schema(
        {"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Int32, "count": pl.Int64}
    )
    assert out["count"].sum() == len(rows)

    def key(r: tuple[int, float, int]) -> tuple[int, str, int]:
        return (r[0], repr(r[1]), r[2])  # repr keeps -0.0 apart from 0.0

    expanded: Counter[tuple[int, str, int]] = Counter()
    for *values, count in out.iter_rows():
        expanded[key(tuple(values))] += count  # type: ignore[arg-type]
    assert expanded == Counter(key(r) for r in rows)
    assert len({key(r[:3]) for r in out.iter_rows()}) == out.height  # distinct rows


def test_compress_sorts_rows_and_uses_the_rust_kernel() -> None:
    frame = pl.DataFrame({"a": [2.0, 1.0, 2.0, -0.0, 0.0], "b": [1, 1, 1, 0, 0]})
    assert compress_summary(frame, columns=("a", "b")).rows() == [
        (-0.0, 0, 1),
        (0.0, 0, 1),
        (1.0, 1, 1),
        (2.0, 1, 2),
    ]
    raw = pl.DataFrame(_winback.compress(frame))
    assert raw.schema["count"] == pl.UInt64


@given(
    columns=st.lists(
        st.lists(st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1)), min_size=40),
        min_size=1,
        max_size=4,
    ),
    wide_values=st.booleans(),
)
def test_compress_ranks_index_each_columns_sorted_distinct_values(
    columns: list[list[float]], wide_values: bool
) -> None:
    n = min(len(c) for c in columns)
    frame = pl.DataFrame({f"c{i}": c[:n] for i, c in enumerate(columns)})
    if wide_values:  # many distinct values per column: the kernel's full-key path
        frame = frame.with_columns(pl.all() + pl.int_range(n).cast(pl.Float64) * 1e-3)
    out = pl.DataFrame(_winback.compress(frame, ranks=True))
    assert out.drop(pl.selectors.ends_with("_rank")).equals(pl.DataFrame(_winback.compress(frame)))
    for name in frame.columns:
        # total_cmp order: -0.0 is its own value, just below 0.0.
        by_repr = {repr(v): v for v in out[name].to_list()}
        distinct = sorted(by_repr.values(), key=lambda v: (v, math.copysign(1.0, v)))
        assert out[f"{name}_rank"].dtype == pl.UInt32
        assert [distinct[r] for r in out[f"{name}_rank"]] == out[name].to_list()


@pytest.mark.parametrize(
    ("frame", "columns", "error", "pattern"),
    [
        (
            pl.DataFrame({"x": [1.0, float("nan")]}),
            ("x",),
            WinbackInputError,
            "column 'x' holds NaN at row 1",
        ),
        (pl.DataFrame({"x": [1.0, None]}), ("x",), WinbackInputError, r"null values in \{'x': 1\}"),
        (
            pl.DataFrame({"x": [1.0]}),
            ("y",),
            WinbackInputError,
            r"columns \['y'\] are not in the summary",
        ),
        (pl.DataFrame({"x": ["a"]}), ("x",), WinbackInputError, "column 'x' has type String"),
        (pl.DataFrame({"x": [1.0]}), (), WinbackConfigError, "must name distinct columns"),
        (pl.DataFrame({"x": [1.0]}), ("x", "x"), WinbackConfigError, "must name distinct columns"),
    ],
)
def test_compress_bad_inputs(
    frame: pl.DataFrame, columns: tuple[str, ...], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        compress_summary(frame, columns=columns)


# --- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"unit": "days"}, r"unit='days' is not a time unit; use 'D' \(days\) or 'W' \(weeks\)"),
        ({"period": "fortnight"}, r"period='fortnight' is not a period; use 'month', 'week'"),
        ({"period": "0d"}, r"period='0d' is not a period"),
        ({"resolution": "0d"}, r"resolution='0d' must be a positive duration"),
        ({"num_threads": 0}, r"num_threads=0 must be at least 1"),
        (
            {"calibration_end": date(2024, 4, 30), "holdout_end": date(2024, 4, 30)},
            r"calibration_end=2024-04-30 must be before holdout_end=2024-04-30",
        ),
        (
            {"calibration_end": date(2024, 5, 1)},
            r"calibration_end=2024-05-01 must be before the last purchase \(2024-04-20\)",
        ),
        (
            {"calibration_end": "2024-04-01", "as_of": "2024-03-01"},
            r"calibration_end=2024-04-01 must be before as_of=2024-03-01 \(the default holdout_end\)",
        ),
        (
            {"calibration_end": date(2023, 12, 31), "holdout_end": date(2024, 4, 30)},
            r"calibration_end=2023-12-31 is before the first purchase \(2024-01-03\)",
        ),
        ({"holdout_end": date(2024, 4, 30)}, r"holdout_end is given without calibration_end"),
        (
            {
                "calibration_end": date(2024, 3, 1),
                "holdout_end": date(2024, 5, 1),
                "as_of": date(2024, 4, 1),
            },
            r"holdout_end=2024-05-01 is after as_of=2024-04-01",
        ),
        ({"as_of": "yesterday"}, r"as_of='yesterday' is not an ISO date"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(WinbackConfigError, match=pattern):
        winback.summary(_tx(), **kwargs)  # type: ignore[arg-type]


def test_kernel_rejects_bad_period_edges() -> None:
    frame = pl.DataFrame({"customer": [1], "ts": [0]})
    common = {"calibration_end_us": 10, "max_time_us": 10, "resolution_us": 1, "unit_us": 1}
    with pytest.raises(WinbackConfigError, match="period_edges_us: must be strictly increasing"):
        _winback.summary(frame, period_edges_us=[0, 5, 5], **common)
    with pytest.raises(WinbackConfigError, match="the last edge 12 is after the calibration end"):
        _winback.summary(frame, period_edges_us=[0, 12], **common)
    with pytest.raises(WinbackConfigError, match="max_time_us: 9 is before the calibration end"):
        _winback.summary(frame, **{**common, "max_time_us": 9})
