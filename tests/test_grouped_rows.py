"""The rows grouped by customer once (``winback._io.customer_runs``), what reads them (the
cold-start occasions, RFM's window kernel) and the silence scores kept on the prepared rows:
the same frames, bit for bit, as the Polars and sort-based paths they replace (issue 18)."""

from __future__ import annotations

import importlib
from collections import Counter
from datetime import datetime

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import winback
from winback import _io, coldstart

from .conftest import START, transaction_logs
from .test_coldstart import _first_occasions_by_sort

rfm_module = importlib.import_module("winback.rfm")
DAY = 86_400_000_000
START_US = int((START - datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def _with_ids(tx: pl.DataFrame, kind: str) -> pl.DataFrame:
    """``tx`` with its ids as drawn (sparse ints or strings), dense small ints (the counting
    sort's case) or ids spread just past the counting sort's limit."""
    if kind == "drawn":
        return tx
    codes = pl.col("customer_id").rank("dense").cast(pl.Int64)
    if kind == "dense":
        return tx.with_columns(codes - 3)  # negative ids too
    return tx.with_columns(codes * 10_000 + 5)


def _bits(frame: pl.DataFrame) -> pl.DataFrame:
    """Float columns as their bit patterns, so equality is bit for bit (−0.0 ≠ 0.0)."""
    return frame.with_columns(
        pl.col(c).cast(pl.Float64).to_physical().reinterpret(signed=True)
        if frame.schema[c].is_float()
        else pl.col(c)
        for c in frame.columns
    )


id_kinds = st.sampled_from(["drawn", "dense", "spread"])


@given(transaction_logs(), id_kinds, st.randoms(use_true_random=False))
def test_customer_runs_hold_each_customers_rows_once(
    tx: pl.DataFrame, kind: str, rng: object
) -> None:
    tx = _with_ids(tx, kind).sample(fraction=1.0, shuffle=True, seed=rng.randrange(1 << 30))  # type: ignore[attr-defined]
    prepared = winback.prepare(tx)
    ids, starts, grouped = _io.customer_runs(prepared)
    frame = prepared.frame
    assert starts[0] == 0
    assert starts[-1] == frame.height
    assert ids.len() == starts.size - 1 == frame.get_column("customer").n_unique()
    assert ids.equals(frame.get_column("customer").unique().sort())
    for g, customer in enumerate(ids.to_list()):
        mine = grouped.slice(int(starts[g]), int(starts[g + 1] - starts[g]))
        theirs = frame.filter(pl.col("customer") == customer).select(mine.columns)
        assert Counter(mine.rows()) == Counter(theirs.rows())
    assert _io.customer_runs(prepared)[1] is starts  # kept on the prepared rows


@given(
    transaction_logs(),
    id_kinds,
    st.sampled_from([DAY, DAY // 2, 3_600_000_000]),
    st.integers(1, 30),
    st.integers(-5, 45),
    st.randoms(use_true_random=False),
)
def test_window_kernel_matches_the_polars_group_by(
    tx: pl.DataFrame, kind: str, resolution_us: int, window_days: int, as_of_day: int, rng: object
) -> None:
    """Occasions and amount in the window: the kernel over the grouped rows gives the Polars
    group-by's customers, counts and sums bit for bit (amounts added in ascending order), for any
    row order, ids, resolution and window."""
    tx = _with_ids(tx, kind).sample(fraction=1.0, shuffle=True, seed=rng.randrange(1 << 30))  # type: ignore[attr-defined]
    prepared = winback.prepare(tx)
    kwargs = {
        "as_of_us": START_US + as_of_day * DAY + 12 * 3_600_000_000,
        "resolution_us": resolution_us,
        "window_us": window_days * DAY,
        "name": "w",
    }
    threshold = rfm_module._GROUPED_ROWS
    try:
        rfm_module._GROUPED_ROWS = 10**12
        expected = rfm_module._window_stats(prepared, **kwargs)
        rfm_module._GROUPED_ROWS = 0
        got = rfm_module._window_stats(prepared, **kwargs)
    finally:
        rfm_module._GROUPED_ROWS = threshold
    assert got.schema == expected.schema
    assert _bits(got.sort("customer_id")).equals(_bits(expected.sort("customer_id")))


@given(
    transaction_logs(),
    st.sampled_from(["dense", "spread"]),
    st.integers(1, 4),
    st.sampled_from([DAY, DAY // 2]),
    st.integers(0, 45),
)
def test_first_occasions_with_counted_ids_match_the_sort_reference(
    tx: pl.DataFrame, kind: str, count: int, resolution_us: int, as_of_day: int
) -> None:
    """The conftest's ids take the sort path of ``customer_runs``; dense ids take the counting
    sort: the same frame as sorting every row by (customer, t)."""
    prepared = winback.prepare(_with_ids(tx, kind))
    as_of_us = START_US + as_of_day * DAY
    expected = _first_occasions_by_sort(prepared, as_of_us, resolution_us, count)
    got = coldstart._first_occasions(prepared, as_of_us, resolution_us, count)
    assert got.schema == expected.schema
    assert got.drop("gap_days").equals(expected.drop("gap_days"))
    gap, ref = (f.get_column("gap_days") for f in (got, expected))
    assert gap.is_null().equals(ref.is_null())
    present = gap.is_not_null().to_numpy()
    np.testing.assert_array_max_ulp(gap.to_numpy()[present], ref.to_numpy()[present], maxulp=1)


def test_scores_are_kept_for_the_last_two_snapshots() -> None:
    """``silence`` on the same prepared rows and snapshot returns the kept frame (the same as
    scoring afresh); a third snapshot drops the least recently used one."""
    tx = winback.datasets.load_cdnow()
    prepared = winback.prepare(tx)
    first = winback.silence(prepared, as_of="1998-06-30")
    assert winback.silence(prepared, as_of="1998-06-30") is first
    assert first.equals(winback.silence(winback.prepare(tx), as_of="1998-06-30"))
    other = winback.silence(prepared, as_of="1997-12-31")
    winback.silence(prepared, as_of="1998-06-30")  # used again: now the most recent
    winback.silence(prepared, as_of="1998-03-31")  # drops 1997-12-31
    assert len(prepared.memo["silence"]) == 2
    assert winback.silence(prepared, as_of="1998-06-30") is first
    again = winback.silence(prepared, as_of="1997-12-31")
    assert again is not other
    assert again.equals(other)
    # a different resolution is another key
    assert winback.silence(prepared, as_of="1998-06-30", resolution="12h") is not first


@given(transaction_logs(), id_kinds)
def test_distinct_customers_are_the_sorted_unique_ids_with_or_without_runs(
    tx: pl.DataFrame, kind: str
) -> None:
    prepared = winback.prepare(_with_ids(tx, kind))
    expected = prepared.frame.get_column("customer").unique().sort()
    assert _io.distinct_customers(prepared).equals(expected)
    _io.customer_runs(prepared)
    got = _io.distinct_customers(prepared)
    assert got.dtype == expected.dtype
    assert got.equals(expected)
