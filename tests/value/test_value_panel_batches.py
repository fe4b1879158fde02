"""The value panel (docs/methods.md#periods) does not depend on how the input is split into Arrow
record batches: many small batches give the same panel, and the same value frame, as one."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from tests.conftest import micros, transaction_logs
from winback import _io, _winback
from winback.summary import period_edges

DAY = 86_400_000_000


def _panel(data: object, edges: list[int], max_us: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    customers, rows, excluded = _winback.panel(
        data, max_time_us=max_us, resolution_us=DAY, period_edges_us=edges
    )
    return pl.DataFrame(customers), pl.DataFrame(rows), excluded


def _split(frame: pl.DataFrame, rows_per_batch: int) -> pa.Table:
    batches = frame.to_arrow().to_batches(max_chunksize=rows_per_batch)
    return pa.Table.from_batches(batches, schema=frame.to_arrow().schema)


@given(
    log=transaction_logs(max_rows=80),
    rows_per_batch=st.integers(1, 9),
    period=st.sampled_from(["month", "week", "10d"]),
    end_day=st.integers(5, 60),
)
def test_panel_from_small_batches_equals_the_whole_table(
    log: pl.DataFrame, rows_per_batch: int, period: str, end_day: int
) -> None:
    prepared = _io.prepare(log, amount_col="amount").frame
    start = micros(datetime(2023, 1, 1))
    max_us = start + end_day * DAY - 1
    edges = period_edges(period, start, max_us + 1) or [start]
    split = _split(prepared, rows_per_batch)
    if prepared.height > rows_per_batch:
        assert len(split.to_batches()) > 1
    whole_customers, whole_rows, whole_excluded = _panel(prepared, edges, max_us)
    customers, rows, excluded = _panel(split, edges, max_us)
    assert_frame_equal(customers, whole_customers)
    assert_frame_equal(rows, whole_rows)
    assert excluded == whole_excluded


@pytest.fixture(scope="module")
def generated() -> pl.DataFrame:
    benches = Path(__file__).resolve().parents[2] / "benches"
    sys.path.insert(0, str(benches))
    try:
        from gen_data import generate
    finally:
        sys.path.remove(str(benches))
    return generate(12_000, seed=21, rows_per_customer=12.0)  # ≈ 140k rows, several chunks


def test_large_panel_and_value_from_many_batches(generated: pl.DataFrame) -> None:
    prepared = _io.prepare(generated, amount_col="amount").frame
    start = int(prepared.get_column("ts").min())  # type: ignore[arg-type]
    start -= start % DAY
    max_us = micros(datetime(2025, 1, 1)) - 1
    edges = period_edges("month", start, max_us + 1)
    split = _split(prepared, 997)
    assert len(split.to_batches()) > 100
    whole = _panel(prepared, edges, max_us)
    parts = _panel(split, edges, max_us)
    assert_frame_equal(parts[0], whole[0])
    assert_frame_equal(parts[1], whole[1])
    assert whole[1].height > generated.get_column("customer_id").n_unique()
    # End to end: winback.value on the batches is winback.value on the frame, bit for bit.
    as_of = datetime(2024, 12, 31, 23, 59, 59)
    from_frame = winback.value(generated, as_of=as_of).frame
    from_batches = winback.value(_split(generated, 997), as_of=as_of).frame
    assert from_frame.equals(from_batches)
