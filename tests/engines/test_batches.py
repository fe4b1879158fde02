"""The streaming batch scorer behind winback.spark and winback.dask (docs/methods.md#spark).

The oracle is the local API run on the whole table: whatever the batch split and chunk size,
the stream must give the same rows, bit for bit.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from datetime import date, datetime
from itertools import pairwise

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import winback
import winback._engines.batches as _batches
import winback._engines.plan as _plan
from tests.conftest import transaction_logs
from winback.errors import WinbackConfigError, WinbackInputError

ENUMS = ("status", "rank_ratio_group", "silence_band")


def float_bits(frame: pl.DataFrame) -> pl.DataFrame:
    """Float columns as their IEEE bit patterns (so -0.0 ≠ 0.0 and NaN == NaN), nulls kept."""
    columns = []
    for series in frame.get_columns():
        if series.dtype == pl.Float64:
            bits = series.fill_null(0.0).to_numpy().view(np.uint64)
            columns.append(pl.Series(series.name, bits).set(series.is_null(), None))
        else:
            columns.append(series)
    return pl.DataFrame(columns)


def assert_same_bits(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.columns == expected.columns
    assert got.schema == expected.schema
    assert float_bits(got).equals(float_bits(expected))


def local_silence(tx: pl.DataFrame, **kwargs: object) -> pl.DataFrame:
    return winback.silence(tx, **kwargs).with_columns(pl.col(ENUMS).cast(pl.String))  # type: ignore[arg-type]


def split_batches(table: pa.Table, cuts: list[int]) -> list[pa.RecordBatch]:
    """``table`` cut at the given row positions into record batches (empty ones included)."""
    edges = [0, *sorted(c % (table.num_rows + 1) for c in cuts), table.num_rows]
    return [
        batch
        for start, end in pairwise(edges)
        for batch in (table.slice(start, end - start).combine_chunks().to_batches() or [])
    ]


def sorted_arrow(tx: pl.DataFrame) -> pa.Table:
    return tx.sort("customer_id", "ts").to_arrow()


def stream(batches: list[pa.RecordBatch], kernel, schema: pa.Schema, min_rows: int) -> pl.DataFrame:
    out = list(kernel(batches, min_rows=min_rows))
    return pl.DataFrame(pl.from_arrow(pa.Table.from_batches(out, schema=schema)))


def score_settings(tx: pl.DataFrame, as_of: datetime | None = None) -> _batches.ScoreSettings:
    bounds = _batches.combine_bounds(
        _batches.bounds_table([tx.to_arrow()], _batches.ReadSettings())
    )
    return _batches.ScoreSettings(as_of_us=_plan.resolve_as_of(bounds, as_of))


@given(
    tx=transaction_logs(max_rows=80),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    min_rows=st.integers(1, 40),
)
def test_any_batch_split_gives_the_local_silence(
    tx: pl.DataFrame, cuts: list[int], min_rows: int
) -> None:
    settings = score_settings(tx)
    schema = _batches.silence_schema(
        _batches.customer_arrow_type(tx.schema["customer_id"]), whole_days=True
    )

    def kernel(batches, min_rows):
        return _batches.silence_batches(batches, settings, min_rows=min_rows)

    got = stream(split_batches(sorted_arrow(tx), cuts), kernel, schema, min_rows)
    assert_same_bits(got, local_silence(tx))


@given(
    tx=transaction_logs(max_rows=80),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    min_rows=st.integers(1, 40),
    period=st.sampled_from(["month", "week", "9d"]),
    calibration_end=st.sampled_from(
        [None, datetime(2023, 1, 25, 12), date(2023, 1, 20), "2023-01-31"]
    ),
)
def test_any_batch_split_gives_the_local_summary(
    tx: pl.DataFrame, cuts: list[int], min_rows: int, period: str, calibration_end: object
) -> None:
    bounds = _batches.combine_bounds(
        _batches.bounds_table([tx.to_arrow()], _batches.ReadSettings())
    )
    arguments = {"calibration_end": calibration_end, "period": period}
    try:
        expected = winback.summary(tx, **arguments)  # type: ignore[arg-type]
    except WinbackConfigError as exc:
        local_refusal = str(exc)
    else:
        local_refusal = None
    if local_refusal is not None:  # the global window refuses it with the same message
        with pytest.raises(WinbackConfigError) as refused:
            _plan.resolve_window(
                bounds, as_of=None, holdout_end=None, unit="W", resolution="1d", **arguments
            )
        assert str(refused.value) == local_refusal
        return
    window = _plan.resolve_window(
        bounds, as_of=None, holdout_end=None, unit="W", resolution="1d", **arguments
    )
    settings = _batches.SummarySettings(window=window, period=period)
    schema = _batches.summary_schema(
        _batches.customer_arrow_type(tx.schema["customer_id"]),
        split=calibration_end is not None,
    )

    def kernel(batches, min_rows):
        return _batches.summary_batches(batches, settings, min_rows=min_rows)

    got = stream(split_batches(sorted_arrow(tx), cuts), kernel, schema, min_rows)
    assert_same_bits(got, expected)


def test_a_chunk_starting_late_keeps_the_global_period_grid() -> None:
    """A partition whose customers all start after the data's first purchase: '9d' periods are
    anchored on the data's first day, and a calibration end before the chunk's own first
    purchase is fine globally (the local function on the chunk alone would refuse it)."""
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 2, 3],
            "ts": [datetime(2024, 1, d) for d in (1, 20, 16, 19, 28)] + [datetime(2024, 2, 9)],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    late = tx.filter(pl.col("customer_id") >= 2)
    bounds = _batches.combine_bounds(
        _batches.bounds_table([tx.to_arrow()], _batches.ReadSettings())
    )
    window = _plan.resolve_window(
        bounds,
        as_of=None,
        calibration_end="2024-01-10",
        holdout_end=None,
        unit="D",
        resolution="1d",
        period="9d",
    )
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        winback.summary(late, calibration_end="2024-01-10", period="9d")
    settings = _batches.SummarySettings(window=window, unit="D", period="9d")
    got = pl.DataFrame(pl.from_arrow(_batches.summary_table(late.to_arrow(), settings)))
    whole = winback.summary(tx, calibration_end="2024-01-10", period="9d", unit="D")
    assert_same_bits(got, whole.filter(pl.col("customer_id") >= 2))
    window = _plan.resolve_window(
        bounds,
        as_of=None,
        calibration_end=None,
        holdout_end=None,
        unit="D",
        resolution="1d",
        period="9d",
    )
    settings = _batches.SummarySettings(window=window, unit="D", period="9d")
    got = pl.DataFrame(pl.from_arrow(_batches.summary_table(late.to_arrow(), settings)))
    whole = winback.summary(tx, period="9d", unit="D")
    assert_same_bits(got, whole.filter(pl.col("customer_id") >= 2))
    alone = winback.summary(late, period="9d", unit="D")
    assert not alone.get_column("n_periods").equals(got.get_column("n_periods"))


def test_a_customer_split_over_many_batches_is_scored_once() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": ["a"] * 3 + ["b"] * 40 + ["c"],
            "ts": [datetime(2024, 1, 1 + i % 28, i % 24) for i in range(44)],
        }
    )
    table = sorted_arrow(tx)
    batches = table.to_batches(max_chunksize=3)
    settings = score_settings(tx)
    out = pa.Table.from_batches(list(_batches.silence_batches(batches, settings, min_rows=2)))
    assert out.column("customer_id").to_pylist() == ["a", "b", "c"]
    expected = local_silence(tx).select("customer_id", "n_occasions")
    assert pl.DataFrame(pl.from_arrow(out)).select(expected.columns).equals(expected)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([2, 1], "decrease within a batch"),
        ([1, None], "null ids must come first"),
    ],
)
def test_unsorted_batches_are_refused(ids: list[int | None], message: str) -> None:
    table = pa.table({"customer_id": pa.array(ids, pa.int64()), "ts": [datetime(2024, 1, 1)] * 2})
    with pytest.raises(WinbackInputError, match=message):
        list(_batches.stream_batches(table.to_batches(), lambda t: t, customer_col="customer_id"))


def test_ids_decreasing_across_batches_are_refused() -> None:
    first = pa.record_batch({"customer_id": [5, 6], "ts": [datetime(2024, 1, 1)] * 2})
    second = pa.record_batch({"customer_id": [4], "ts": [datetime(2024, 1, 1)]})
    with pytest.raises(WinbackInputError, match="from one batch to the next"):
        list(
            _batches.stream_batches(
                [first, second], lambda t: t, customer_col="customer_id", min_rows=1
            )
        )


def test_bad_rows_name_their_chunk() -> None:
    table = pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "ts": pa.array([datetime(2024, 1, 1), None, datetime(2024, 1, 3)]),
        }
    )
    with pytest.raises(WinbackInputError, match=r"null timestamp.*customers 1 to 3"):
        list(_batches.silence_batches(table.to_batches(), _batches.ScoreSettings(as_of_us=0)))


@pytest.mark.parametrize(
    "ids",
    [
        [1, 2, 3],
        [np.iinfo(np.int64).max],
        [np.iinfo(np.int64).min, np.iinfo(np.int64).max],
        [np.iinfo(np.int64).min, 0, 1, np.iinfo(np.int64).max],
    ],
)
def test_the_anchor_id_is_never_a_real_customer(ids: list[int]) -> None:
    customers = pl.Series(ids, dtype=pl.Int64)
    anchor = _batches._absent_customer(customers)
    assert anchor not in customers.to_list()


def test_the_anchor_string_id_is_never_a_real_customer() -> None:
    customers = pl.Series(["", "a", "zz", "zz\x00"])
    assert _batches._absent_customer(customers) not in customers.to_list()


@given(
    x=st.lists(st.integers(0, 30), min_size=1, max_size=50),
    data=st.data(),
    width=st.sampled_from([0.0, 1.0, 1 / 7, 2.5]),
)
def test_binned_compression_keeps_customers_and_order(x: list[int], data, width: float) -> None:
    n = len(x)
    T = data.draw(st.lists(st.integers(0, 600), min_size=n, max_size=n))
    t_x = [data.draw(st.integers(0, t)) if xi else 0 for xi, t in zip(x, T, strict=True)]
    frame = pl.DataFrame(
        {
            "frequency": x,
            "recency": [v / 7 for v in t_x],
            "T": [v / 7 for v in T],
        },
        schema={"frequency": pl.Int64, "recency": pl.Float64, "T": pl.Float64},
    )
    out = pl.DataFrame(pl.from_arrow(_batches.bin_compress(frame.to_arrow(), width=width)))
    assert out.get_column("count").sum() == n
    assert (out.get_column("recency") <= out.get_column("T")).all()
    assert out.filter(pl.col("frequency") == 0).get_column("recency").eq(0.0).all()

    def nearest(v: float) -> float:
        return math.floor(v / width + 0.5) * width if width else v

    expected = Counter((xi, nearest(r), nearest(t)) for xi, r, t in frame.iter_rows())
    got = {(xi, r, t): c for xi, r, t, c in out.iter_rows()}
    assert got == dict(expected)
    assert out.drop("count").equals(out.drop("count").sort(pl.all()))


def test_bin_width_must_be_finite_and_non_negative() -> None:
    assert _batches.bin_width_for("W", None) == 1.0
    assert _batches.bin_width_for("D", None) == 7.0
    with pytest.raises(WinbackConfigError, match="bin_width"):
        _batches.bin_width_for("W", -1.0)


def test_spark_module_without_pyspark_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from winback import spark

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(ImportError, match=r"pip install 'winback\[spark\]'"):
        spark.score(object())  # type: ignore[arg-type]


def test_dask_module_without_dask_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from winback import dask as winback_dask

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(ImportError, match=r"pip install 'winback\[dask\]'"):
        winback_dask.score(object())


def with_awkward_customers(tx: pl.DataFrame) -> pl.DataFrame:
    """Adds a customer with many rows on one day and another with one purchase a year before
    everyone else (the data's first purchase lands in one partition only)."""
    ids = tx.get_column("customer_id")
    first, busy = ("A-first", "A-busy") if ids.dtype == pl.String else (-5, -6)
    extra = pl.DataFrame(
        {
            "customer_id": [first] + [busy] * 250,
            "ts": [datetime(2022, 1, 3, 9)] + [datetime(2024, 3, 1, h % 24) for h in range(250)],
            "amount": [12.5] + [1.0] * 250,
        },
        schema=tx.schema,
    )
    return pl.concat([tx, extra])


# -- hygiene over the input with whole-input row numbers (issue 19) ----------------------------
def bad_transactions() -> pl.DataFrame:
    """40 rows, three of them invalid (an unparseable time, a null id, a NaN amount)."""
    ts = [f"2024-01-{d:02d}" for d in range(1, 29)] * 2
    frame = pl.DataFrame(
        {
            "customer_id": [i % 7 for i in range(40)],
            "ts": ts[:40],
            "amount": [float(i) for i in range(40)],
        }
    )
    return frame.with_columns(
        pl.when(pl.int_range(40) == 17).then(pl.lit("17/02/2024")).otherwise("ts").alias("ts"),
        pl.when(pl.int_range(40) == 23).then(None).otherwise("customer_id").alias("customer_id"),
        pl.when(pl.int_range(40) == 31).then(float("nan")).otherwise("amount").alias("amount"),
    )


def chunks_of(table: pa.Table, read: _batches.ReadSettings, cuts: list[int]) -> list[object]:
    """read_tally of ``table`` cut into partitions at ``cuts`` (each partition one chunk)."""
    edges = [0, *cuts, table.num_rows]
    return [
        (number, 0, high - low, _batches.read_tally(table.slice(low, high - low), read))
        for number, (low, high) in enumerate(pairwise(edges))
    ]


def test_tallies_give_the_local_error_word_for_word() -> None:
    """Invalid rows at whole-input rows 17, 23 and 31 are reported as 17, 23 and 31 whatever
    the partitions, with the local API's message; the rejects carry the same row numbers."""
    tx = bad_transactions().with_columns(
        pl.col("ts").replace("17/02/2024", "not a date")  # a row rule, not a refusal
    )
    table = tx.to_arrow()
    with pytest.raises(WinbackInputError) as local:
        winback.silence(tx)
    read = _batches.ReadSettings()
    plan, _ = read.plan(table.slice(0, 0))
    for cuts in ([], [5, 20], [18, 24, 32]):
        with pytest.raises(WinbackInputError) as engine:
            _batches.combine_tallies(chunks_of(table, read, cuts)[::-1], plan, "raise")  # type: ignore[arg-type]
        assert str(engine.value) == str(local.value)
        assert "(rows 17)" in str(engine.value)
    drop = _batches.ReadSettings(on_invalid="drop")
    tally = _batches.combine_tallies(chunks_of(table, drop, [18, 24]), plan, "drop")  # type: ignore[arg-type]
    assert tally.offsets == {0: 0, 1: 18, 2: 24}
    rejects = pl.concat(
        pl.DataFrame(pl.from_arrow(_batches.rejects_table(table.slice(low, n), drop, low)))
        for low, n in ((0, 18), (18, 6), (24, 16))
    )
    _, info = winback.silence(tx, on_invalid="drop", return_info=True)
    assert rejects.equals(info.rejects.with_columns(pl.col("row_index").cast(pl.Int64)))


def test_tallies_refuse_foreign_dates_at_their_whole_input_row() -> None:
    table = bad_transactions().to_arrow()
    with pytest.raises(WinbackInputError) as local:
        winback.silence(table, on_invalid="drop")
    read = _batches.ReadSettings(on_invalid="drop")
    plan, _ = read.plan(table.slice(0, 0))
    with pytest.raises(WinbackInputError) as engine:
        _batches.combine_tallies(chunks_of(table, read, [10, 30]), plan, "drop")  # type: ignore[arg-type]
    assert str(engine.value) == str(local.value)
    assert "(row 17)" in str(engine.value)
