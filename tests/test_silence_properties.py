"""Oracle and invariance properties of silence scoring (docs/methods.md#silence, #determinism)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from tests import reference
from tests.conftest import START, micros, transaction_logs
from winback.errors import WinbackConfigError

EXACT = ("n_occasions", "recency_days", "tenure_days", "max_gap_days", "recency_rank", "rank_ratio")
CLOSE = ("mean_gap_days", "median_gap_days", "silence_score")
LABELS = ("status", "rank_ratio_group", "silence_band")


def _rows(frame: pl.DataFrame) -> list[tuple[object, int, float | None]]:
    amounts = frame.get_column("amount") if "amount" in frame.columns else [None] * frame.height
    ts = frame.get_column("ts").cast(pl.Datetime("us")).cast(pl.Int64)
    return list(zip(frame.get_column("customer_id"), ts, amounts, strict=True))


def assert_matches_reference(frame: pl.DataFrame, as_of: datetime, **kwargs: object) -> None:
    out = winback.silence(frame, as_of=as_of, **kwargs)  # type: ignore[arg-type]
    resolution_us = int(
        {"1d": reference.DAY_US, "1h": 3_600_000_000, "7d": 7 * reference.DAY_US}[
            str(kwargs.get("resolution", "1d"))
        ]
    )
    expected = reference.silence(
        _rows(frame),
        as_of_us=micros(as_of),
        resolution_us=resolution_us,
        min_occasions=int(kwargs.get("min_occasions", 2)),  # type: ignore[call-overload]
    )
    assert out.get_column("customer_id").to_list() == sorted(expected)
    for row in out.iter_rows(named=True):
        ref = expected[row["customer_id"]]
        for name in (*EXACT, *LABELS):
            assert row[name] == ref[name], (name, row, ref)
        for name in CLOSE:
            if ref[name] is None:
                assert row[name] is None
            else:
                assert math.isclose(row[name], ref[name], rel_tol=1e-12), (name, row, ref)
        if "amount" in frame.columns:
            scale = 1e-9 * (1 + abs(ref["total_amount"]) + frame["amount"].abs().sum())
            assert math.isclose(row["total_amount"], ref["total_amount"], abs_tol=scale)
            assert math.isclose(row["mean_amount"], ref["mean_amount"], abs_tol=scale)


@given(log=transaction_logs(), as_of_day=st.integers(-2, 45), min_occasions=st.integers(1, 4))
@example(
    log=pl.DataFrame({"customer_id": [1], "ts": [START], "amount": [5.0]}),
    as_of_day=3,
    min_occasions=2,
)
@example(
    log=pl.DataFrame({"customer_id": [1, 1], "ts": [START, START], "amount": [1.0, 2.0]}),
    as_of_day=0,
    min_occasions=2,
)
def test_kernel_matches_reference(log: pl.DataFrame, as_of_day: int, min_occasions: int) -> None:
    as_of = START + timedelta(days=as_of_day, hours=12)
    if log.height and as_of < log.get_column("ts").min():  # type: ignore[operator]
        # docs/methods.md#as-of: a snapshot before all the data is refused, not empty.
        with pytest.raises(WinbackConfigError, match="is before the first purchase"):
            winback.silence(log, as_of=as_of, min_occasions=min_occasions)
        return
    assert_matches_reference(log, as_of, min_occasions=min_occasions)


@given(log=transaction_logs(max_rows=40), resolution=st.sampled_from(["1h", "7d"]))
def test_kernel_matches_reference_at_other_resolutions(log: pl.DataFrame, resolution: str) -> None:
    assert_matches_reference(log, START + timedelta(days=50), resolution=resolution)


@given(log=transaction_logs(), seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_change_a_bit(log: pl.DataFrame, seed: int) -> None:
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=seed)
    assert_frame_equal(winback.silence(log), winback.silence(shuffled))


@given(log=transaction_logs())
def test_every_customer_appears_exactly_once(log: pl.DataFrame) -> None:
    out = winback.silence(log)
    assert sorted(out.get_column("customer_id").to_list()) == sorted(
        set(log.get_column("customer_id").to_list())
    )
    assert out.get_column("customer_id").is_unique().all()


def _large_log(n_customers: int, seed: int) -> pl.DataFrame:
    """Enough rows to span many partitions and chunks of the kernel (awkward: heavy customers)."""
    rng = np.random.default_rng(seed)
    per_customer = rng.geometric(0.12, n_customers)
    per_customer[:3] = [40_000, 1, 2]  # one very heavy customer
    ids = np.repeat(rng.permutation(n_customers * 7)[:n_customers], per_customer)
    n = ids.size
    ts = np.datetime64("2022-01-01T00:00:00", "us") + rng.integers(
        0, 700 * 86_400_000_000, n
    ).astype("timedelta64[us]")
    amounts = np.round(rng.gamma(2.0, 20.0, n), 2)
    frame = pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amounts})
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.fixture(scope="module")
def large_log() -> pl.DataFrame:
    return _large_log(30_000, seed=7)


def test_large_input_matches_reference(large_log: pl.DataFrame) -> None:
    assert large_log.height > 200_000  # several chunks and partitions
    assert_matches_reference(large_log, datetime(2023, 12, 31))


def test_large_input_thread_count_and_order_invariant(large_log: pl.DataFrame) -> None:
    one = winback.silence(large_log, num_threads=1)
    two = winback.silence(large_log.reverse(), num_threads=2)
    four = winback.silence(large_log.sort("ts"), num_threads=4)
    assert_frame_equal(one, two)
    assert_frame_equal(one, four)


def test_batch_split_does_not_change_result(large_log: pl.DataFrame) -> None:
    table = large_log.to_arrow()
    batches = table.to_batches(max_chunksize=9_999)
    assert len(batches) > 10
    split = pa.Table.from_batches(batches)
    assert_frame_equal(winback.silence(large_log), winback.silence(split))


def test_customer_with_100k_purchases_matches_reference() -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    ts = np.datetime64("2000-01-01", "us") + np.sort(
        rng.integers(0, 30 * 365 * 86_400, n).astype("timedelta64[s]")
    ).astype("timedelta64[us]")
    frame = pl.DataFrame(
        {"customer_id": np.zeros(n, dtype=np.int64), "ts": ts, "amount": rng.random(n)}
    )
    assert_matches_reference(frame, datetime(2031, 1, 1))


def test_string_and_integer_ids_give_the_same_scores(large_log: pl.DataFrame) -> None:
    as_int = winback.silence(large_log)
    as_str = winback.silence(large_log.with_columns(pl.col("customer_id").cast(pl.String)))
    mapped = as_int.with_columns(pl.col("customer_id").cast(pl.String)).sort("customer_id")
    assert_frame_equal(mapped, as_str)


def test_real_cdnow_matches_reference(cdnow_master: pl.DataFrame) -> None:
    assert cdnow_master.height == 69_659
    assert_matches_reference(cdnow_master, datetime(1998, 6, 30, 23, 59), min_occasions=2)
    out = winback.silence(cdnow_master, as_of=date(1998, 6, 30))
    assert out.height == 23_570


@pytest.mark.parametrize("template", ["customer-{:012d}", "{}", "x{:011d}", "{:0>13}"])
def test_long_and_short_string_ids_match_integer_ids(
    large_log: pl.DataFrame, template: str
) -> None:
    """Ids of ≤ 12 bytes live inside Arrow string views, longer ones in shared buffers: both paths
    (and the 12/13-byte boundary) must group and sort exactly like the integer ids they encode."""
    ids = large_log.get_column("customer_id").to_list()
    named = large_log.with_columns(
        pl.Series("customer_id", [template.format(i) for i in ids], dtype=pl.String)
    )
    as_int = winback.silence(large_log)
    as_str = winback.silence(named)
    expected = as_int.with_columns(
        pl.Series(
            "customer_id", [template.format(i) for i in as_int["customer_id"]], dtype=pl.String
        )
    ).sort("customer_id")
    assert_frame_equal(expected, as_str)
    assert as_str.get_column("customer_id").is_sorted()


def test_amounts_that_sum_past_the_largest_float_are_refused() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [date(2024, 1, 1), date(2024, 1, 5), date(2024, 1, 6)],
            "amount": [1e308, 1e308, 5.0],
        }
    )
    with pytest.raises(winback.WinbackInputError, match=r"1 customer\(s\) \(1\) add up beyond"):
        winback.silence(tx)
    with pytest.raises(winback.WinbackInputError, match="beyond the largest float"):
        winback.rfm(tx)


@given(
    amounts=st.lists(
        st.floats(-1.7e308, 1.7e308, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=12,
    )
)
@example(amounts=[1.7e308, 0.0, 0.0, 1.7e308])  # customer 0's sum overflows
@example(amounts=[-1.7e308, 1.7e308, 0.0, -1.7e308])
def test_outputs_are_finite_or_the_input_is_refused(amounts: list[float]) -> None:
    """Any finite amounts: either a typed error, or no ±inf/NaN in any float output."""
    n = len(amounts)
    tx = pl.DataFrame(
        {
            "customer_id": [i % 3 for i in range(n)],
            "ts": [date(2024, 1, 1) + timedelta(days=i) for i in range(n)],
            "amount": amounts,
        }
    )
    sums = (
        tx.group_by("customer_id").agg(pl.col("amount").cum_sum().abs().max()).get_column("amount")
    )
    if sums.is_infinite().any():  # some running sum overflows: refused, naming the customers
        with pytest.raises(winback.WinbackInputError, match="beyond the largest float"):
            winback.silence(tx, as_of=date(2024, 3, 1))
        return
    scores = winback.silence(tx, as_of=date(2024, 3, 1))
    floats = scores.select(pl.col(pl.Float64))
    assert floats.select(pl.all().is_nan().any() | pl.all().is_infinite().any()).row(0) == tuple(
        [False] * floats.width
    )
