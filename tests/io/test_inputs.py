"""Every supported container and file format gives the same result (docs/methods.md#input,
Foundation issue)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

import winback


@pytest.fixture
def tx() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [5, 5, 5, 9, 9, 2],
            "ts": [
                datetime(2024, 1, 1, 9),
                datetime(2024, 1, 1, 18),
                datetime(2024, 2, 1, 10),
                datetime(2024, 1, 10, 8),
                datetime(2024, 3, 1, 8),
                datetime(2024, 2, 2, 12),
            ],
            "amount": [10.0, 5.0, 20.0, 7.0, 8.0, 3.0],
        }
    )


@pytest.fixture
def expected(tx: pl.DataFrame) -> pl.DataFrame:
    return winback.silence(tx, as_of=date(2024, 3, 31))


class CapsuleOnly:
    """An object exposing only the Arrow PyCapsule stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._table.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda f: f.lazy(), id="polars-lazy"),
        pytest.param(lambda f: f.to_pandas(), id="pandas"),
        pytest.param(lambda f: f.to_arrow(), id="pyarrow-table"),
        pytest.param(lambda f: f.to_arrow().to_batches()[0], id="pyarrow-batch"),
        pytest.param(
            lambda f: pa.RecordBatchReader.from_batches(
                f.to_arrow().schema, f.to_arrow().to_batches()
            ),
            id="pyarrow-reader",
        ),
        pytest.param(lambda f: CapsuleOnly(f.to_arrow()), id="capsule"),
    ],
)
def test_containers_agree(tx: pl.DataFrame, expected: pl.DataFrame, convert: object) -> None:
    out = winback.silence(convert(tx), as_of=date(2024, 3, 31))  # type: ignore[operator]
    assert_frame_equal(out, expected)


def test_duckdb_relation(tx: pl.DataFrame, expected: pl.DataFrame) -> None:
    con = duckdb.connect()
    con.register("tx", tx.to_arrow())
    relation = con.sql("select * from tx")
    assert_frame_equal(winback.silence(relation, as_of=date(2024, 3, 31)), expected)


def test_files_and_globs(tx: pl.DataFrame, expected: pl.DataFrame, tmp_path: Path) -> None:
    tx.write_parquet(tmp_path / "all.parquet")
    tx.write_csv(tmp_path / "all.csv")
    tx.write_ipc(tmp_path / "all.arrow")
    parts = tmp_path / "parts"
    parts.mkdir()
    tx.head(2).write_parquet(parts / "a.parquet")
    tx.slice(2).write_parquet(parts / "b.parquet")
    for source in (
        tmp_path / "all.parquet",
        tmp_path / "all.arrow",
        str(parts / "*.parquet"),
        parts,
        [parts / "a.parquet", parts / "b.parquet"],
    ):
        out = winback.silence(source, as_of=date(2024, 3, 31))
        assert_frame_equal(out, expected, check_dtypes=True)
    # CSV ids are text unless id_type="int" (docs/methods.md#input).
    csv = str(tmp_path / "all.csv")
    as_int = winback.silence(winback.prepare(csv, id_type="int"), as_of=date(2024, 3, 31))
    assert_frame_equal(as_int, expected, check_dtypes=True)
    as_text = winback.silence(csv, as_of=date(2024, 3, 31))
    assert as_text.schema["customer_id"] == pl.String
    assert_frame_equal(
        as_text.with_columns(pl.col("customer_id").cast(pl.Int64)).sort("customer_id"), expected
    )


def test_string_timestamps_are_parsed(tx: pl.DataFrame, expected: pl.DataFrame) -> None:
    as_text = tx.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"))
    assert_frame_equal(winback.silence(as_text, as_of=date(2024, 3, 31)), expected)


def test_pandas_with_nullable_dtypes(tx: pl.DataFrame, expected: pl.DataFrame) -> None:
    frame = tx.to_pandas()
    frame["customer_id"] = frame["customer_id"].astype("Int64")
    assert isinstance(frame, pd.DataFrame)
    assert_frame_equal(winback.silence(frame, as_of=date(2024, 3, 31)), expected)


def test_tz_aware_times_bucket_by_local_day() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 01:00 in Shanghai on Jan 2 is Jan 1 in UTC: it must count as a Jan 2 occasion.
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "ts": [
                datetime(2024, 1, 1, 12, tzinfo=shanghai),
                datetime(2024, 1, 2, 1, tzinfo=shanghai),
                datetime(2024, 1, 5, 23, tzinfo=shanghai),
            ],
        },
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us", "Asia/Shanghai")},
    )
    out = winback.silence(frame)
    assert out.row(0, named=True)["n_occasions"] == 3
    assert out.row(0, named=True)["first_ts"] == date(2024, 1, 1)
    in_utc = winback.silence(frame, tz="UTC")
    # In UTC the first two are Jan 1 04:00 and Jan 1 17:00: one occasion.
    assert in_utc.row(0, named=True)["n_occasions"] == 2


def test_date_as_of_includes_that_whole_day(tx: pl.DataFrame) -> None:
    out, info = winback.silence(tx, as_of=date(2024, 2, 1), return_info=True)
    assert info.rows_after_as_of == 2  # the Feb 2 and Mar 1 rows; Feb 1 10:00 is inside
    assert out.get_column("customer_id").to_list() == [5, 9]  # customer 2 had not bought yet
    customer_5 = out.filter(pl.col("customer_id") == 5).row(0, named=True)
    assert customer_5["n_occasions"] == 2
    assert customer_5["recency_days"] == 0.0


def test_datetime_as_of_excludes_later_rows_of_that_day(tx: pl.DataFrame) -> None:
    out, info = winback.silence(tx, as_of=datetime(2024, 2, 1, 9), return_info=True)
    assert info.rows_after_as_of == 3
    assert out.filter(pl.col("customer_id") == 5).row(0, named=True)["n_occasions"] == 1


def test_default_as_of_is_the_end_of_the_latest_purchase_day(tx: pl.DataFrame) -> None:
    # docs/methods.md#as-of: the default is the cut-off of as_of = the latest purchase's date.
    _, info = winback.silence(tx, return_info=True)
    assert info.as_of == datetime(2024, 3, 1, 23, 59, 59, 999999)
    assert info.rows_after_as_of == 0


def test_sub_day_resolution_returns_datetimes(tx: pl.DataFrame) -> None:
    out = winback.silence(tx, resolution="1h", as_of=date(2024, 3, 31))
    assert out.schema["first_ts"] == pl.Datetime("us")
    customer_5 = out.filter(pl.col("customer_id") == 5).row(0, named=True)
    assert customer_5["n_occasions"] == 3
    assert customer_5["first_ts"] == datetime(2024, 1, 1, 9)


def test_order_id_merges_lines_of_one_order() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1],
            "order_id": ["o1", "o1", "o2", "o2"],
            "ts": [
                datetime(2024, 1, 1, 23, 59),
                datetime(2024, 1, 2, 0, 1),
                datetime(2024, 1, 9),
                datetime(2024, 1, 9),
            ],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    plain = winback.silence(frame, as_of=date(2024, 1, 20)).row(0, named=True)
    by_order = winback.silence(frame, as_of=date(2024, 1, 20), order_col="order_id").row(
        0, named=True
    )
    assert plain["n_occasions"] == 3
    assert by_order["n_occasions"] == 2  # order o1 is dated at its first line (Jan 1)
    assert by_order["total_amount"] == plain["total_amount"] == 10.0


def test_duplicate_rows_are_two_purchases_of_one_occasion() -> None:
    frame = pl.DataFrame(
        {"customer_id": [1, 1], "ts": [date(2024, 1, 1)] * 2, "amount": [4.0, 4.0]}
    )
    row = winback.silence(frame).row(0, named=True)
    assert (row["n_occasions"], row["total_amount"]) == (1, 8.0)


def test_categorical_ids_are_strings() -> None:
    frame = pl.DataFrame(
        {"customer_id": ["b", "a", "b"], "ts": [date(2024, 1, d) for d in (1, 2, 3)]},
        schema_overrides={"customer_id": pl.Categorical},
    )
    out = winback.silence(frame)
    assert out.get_column("customer_id").to_list() == ["a", "b"]
    assert out.schema["customer_id"] == pl.String


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string(), pa.string_view()])
def test_arrow_string_id_types_agree(tx: pl.DataFrame, arrow_type: pa.DataType) -> None:
    named = tx.with_columns(
        pl.format("customer-with-a-long-id-{}", "customer_id").alias("customer_id")
    )
    table = named.to_arrow()
    table = table.set_column(0, "customer_id", table.column("customer_id").cast(arrow_type))
    assert table.schema.field("customer_id").type == arrow_type
    assert_frame_equal(winback.silence(table), winback.silence(named))
