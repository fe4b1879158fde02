"""Larger-than-memory scoring (docs/methods.md#out-of-core): the out-of-core path equals the
in-memory one, bit for bit, and cleans up after itself whatever happens."""

from __future__ import annotations

import doctest
import tempfile
from collections import namedtuple
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winback
from tests.cli.test_cli import run
from tests.conftest import transaction_logs
from winback._io import spill as _spill
from winback.errors import WinbackConfigError, WinbackInputError
from winback.silence import silence_to_file

START = datetime(2023, 1, 1)
AS_OF = "2024-09-30"  # rows after it exist: they must be excluded and counted alike


def awkward_log(
    n_customers: int = 1500, *, string_ids: bool = False, seed: int = 0
) -> pl.DataFrame:
    """Shuffled transactions: many single-purchase customers, same-day repeats, refunds, rows
    after AS_OF, and one customer (the first id) with a row in every 40-row stretch, so that it
    is spread over every file and batch."""
    rng = np.random.default_rng(seed)
    counts = rng.geometric(0.25, n_customers)  # ≈ 25 % with one row
    customer = np.repeat(np.arange(n_customers), counts)
    days = rng.integers(0, 700, customer.size)
    seconds = rng.integers(0, 86_400, customer.size)
    amount = np.round(rng.gamma(2.0, 40.0, customer.size), 2)
    amount[rng.random(customer.size) < 0.03] *= -1
    order = rng.permutation(customer.size)
    customer, days, seconds, amount = customer[order], days[order], seconds[order], amount[order]
    customer[::40] = 0  # customer 0 everywhere
    ids: list[Any]
    if string_ids:
        # Non-ASCII and prefix-sharing ids: the final sort must be the kernel's (bytewise).
        names = ["é", "e", "ée", "Z", "z", "日本", "a"]
        ids = [f"{names[c % len(names)]}{c}" for c in customer.tolist()]
    else:
        ids = (customer.astype(np.int64) * 7_919 - 3_000).tolist()
    ts = [
        START + timedelta(days=int(d), seconds=int(s)) for d, s in zip(days, seconds, strict=True)
    ]
    return pl.DataFrame(
        {"customer_id": ids, "ts": ts, "amount": amount},
        schema={
            "customer_id": pl.String if string_ids else pl.Int64,
            "ts": pl.Datetime("us"),
            "amount": pl.Float64,
        },
    )


def write_files(frame: pl.DataFrame, directory: Path, files: int) -> Path:
    """Consecutive slices of ``frame`` as ``files`` Parquet files (small row groups)."""
    directory.mkdir(parents=True, exist_ok=True)
    step = -(-max(frame.height, 1) // files)
    for index in range(files):
        part = frame.slice(index * step, step)
        part.write_parquet(directory / f"part-{index:03d}.parquet", row_group_size=97)
    return directory


def assert_same(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert left.schema == right.schema
    assert left.equals(right), (left, right)


@pytest.mark.parametrize("string_ids", [False, True])
@pytest.mark.parametrize("as_of", [None, AS_OF])
def test_silence_by_parts_equals_in_memory(
    tmp_path: Path, string_ids: bool, as_of: str | None
) -> None:
    log = awkward_log(string_ids=string_ids)
    data = write_files(log, tmp_path / "in", files=13)
    spill = tmp_path / "spill"
    calls: list[tuple[str, int, int | None]] = []
    expected, expected_info = winback.silence(data, as_of=as_of, return_info=True)
    got, info = winback.silence(
        data,
        as_of=as_of,
        memory_limit="8KB",  # a few kB a group: dozens of spill files, some split again
        spill_dir=spill,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
        return_info=True,
    )
    assert_same(got, expected)
    assert info.as_dict() == expected_info.as_dict()
    if as_of is not None:
        assert info.rows_after_as_of > 0
    assert (expected.get_column("status") == "single_purchase").sum() > 100
    assert list(spill.iterdir()) == []  # spill files removed
    stages = [stage for stage, _, _ in calls]
    assert stages.count("scoring") > 10
    assert calls[stages.index("scoring") - 1] == ("partitioning", log.height, log.height)


def test_summary_by_parts_equals_in_memory(tmp_path: Path) -> None:
    data = write_files(awkward_log(seed=3), tmp_path / "in", files=7)
    for arguments in (
        {},
        {"calibration_end": "2024-01-31", "period": "week"},
        {"calibration_end": "2023-12-31", "holdout_end": "2024-08-31", "as_of": AS_OF},
    ):
        expected, expected_info = winback.summary(data, return_info=True, **arguments)
        got, info = winback.summary(data, memory_limit="8KB", return_info=True, **arguments)
        assert_same(got, expected)
        assert info.as_dict() == expected_info.as_dict()


def test_summary_by_parts_checks_the_window_globally(tmp_path: Path) -> None:
    data = write_files(awkward_log(seed=4), tmp_path / "in", files=3)
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        winback.summary(data, calibration_end="2022-06-30", memory_limit="8KB")


@settings(max_examples=40)
@given(
    log=transaction_logs(max_rows=80),
    files=st.integers(1, 6),
    limit=st.sampled_from([200, 1_000, 100_000]),
    order=st.booleans(),
)
def test_any_split_into_files_and_any_limit_gives_the_same_scores(
    log: pl.DataFrame, files: int, limit: int, order: bool
) -> None:
    if order:  # rows of one (customer, order) are one purchase; orders cross file boundaries
        log = log.with_columns(order_id=pl.int_range(pl.len()) % 3)
    order_col = "order_id" if order else None
    with tempfile.TemporaryDirectory() as scratch:
        data = write_files(log, Path(scratch) / "in", files)
        expected = winback.silence(log, order_col=order_col)
        got = winback.silence(data, order_col=order_col, memory_limit=limit, spill_dir=scratch)
        assert_same(got, expected)
        summary = winback.summary(log, order_col=order_col, unit="D")
        assert_same(
            winback.summary(data, order_col=order_col, unit="D", memory_limit=limit), summary
        )
        assert sorted(p.name for p in Path(scratch).iterdir()) == ["in"]


def test_a_record_batch_stream_is_scored_by_parts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = awkward_log(seed=5, string_ids=True)
    table = log.to_arrow()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=250))
    calls: list[tuple[str, int, int | None]] = []
    caplog.set_level("INFO", logger="winback.spill")
    got = winback.silence(
        reader,
        memory_limit="4KB",
        spill_dir=tmp_path,
        progress=lambda *call: calls.append(call),
    )
    assert_same(got, winback.silence(log))
    assert ("partitioning", 250, None) in calls  # the stream's own batches, size unknown
    assert list(tmp_path.iterdir()) == []
    # Size unknown: a fixed number of spill files, those over the budget split again.
    assert "splitting" in caplog.text


def test_in_memory_frames_and_lazy_frames_take_the_limit_too() -> None:
    log = awkward_log(seed=6, n_customers=300)
    expected = winback.silence(log)
    assert_same(winback.silence(log, memory_limit="4KB"), expected)
    assert_same(winback.silence(log.lazy(), memory_limit="4KB"), expected)


def test_bad_rows_raise_with_global_row_indices(tmp_path: Path) -> None:
    log = awkward_log(seed=7, n_customers=400).with_row_index("i")
    broken = log.with_columns(
        customer_id=pl.when(pl.col("i").is_in([5, 333, 901])).then(None).otherwise("customer_id"),
        ts=pl.when(pl.col("i") == 777).then(None).otherwise("ts"),
        amount=pl.when(pl.col("i").is_in([2, 800])).then(float("nan")).otherwise("amount"),
    ).drop("i")
    data = write_files(broken, tmp_path / "in", files=9)
    with pytest.raises(WinbackInputError) as in_memory:
        winback.silence(data)
    with pytest.raises(WinbackInputError) as by_parts:
        winback.silence(data, memory_limit="8KB", spill_dir=tmp_path / "spill")
    assert str(by_parts.value) == str(in_memory.value)
    assert "rows 5, 333, 901" in str(by_parts.value)
    assert "rows 2, 800" in str(by_parts.value)
    assert list((tmp_path / "spill").iterdir()) == []

    expected, expected_info = winback.silence(data, on_invalid="drop", return_info=True)
    got, info = winback.silence(data, on_invalid="drop", memory_limit="8KB", return_info=True)
    assert_same(got, expected)
    assert info.as_dict() == expected_info.as_dict()
    assert_same(info.rejects, expected_info.rejects)
    assert info.rejects.get_column("row_index").to_list() == [2, 5, 333, 777, 800, 901]


def test_empty_input_gives_the_full_empty_schema(tmp_path: Path) -> None:
    data = write_files(awkward_log(n_customers=3).clear(), tmp_path / "in", files=1)
    expected, expected_info = winback.silence(data, return_info=True)
    got, info = winback.silence(data, memory_limit="1MB", return_info=True)
    assert_same(got, expected)
    assert info.as_dict() == expected_info.as_dict()
    assert_same(winback.summary(data, memory_limit="1MB"), winback.summary(data))


def test_files_too_large_for_the_default_limit_go_out_of_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = awkward_log(seed=8, n_customers=300)
    data = write_files(log, tmp_path / "in", files=2)
    calls: list[tuple[str, int, int | None]] = []
    winback.silence(data, progress=lambda *call: calls.append(call))
    assert calls == []  # small: read whole, as before
    monkeypatch.setattr(_spill, "available_memory_bytes", lambda: 20_000)
    got = winback.silence(data, progress=lambda *call: calls.append(call))
    assert calls  # too large for half of 20 kB: by parts
    monkeypatch.undo()
    assert_same(got, winback.silence(data))
    winback.silence(log, progress=lambda *call: calls.append(("in memory", 0, 0)))
    assert ("in memory", 0, 0) not in calls  # an in-memory frame without a limit stays whole


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize("stream", [False, True])
def test_too_little_disk_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    log = awkward_log(seed=9, n_customers=300)
    data: Any = write_files(log, tmp_path / "in", files=2)
    if stream:  # size unknown up front: checked while spilling
        table = log.to_arrow()
        data = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=100))
    monkeypatch.setattr(_spill.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 1_000))
    spill = tmp_path / "spill"
    with pytest.raises(WinbackConfigError, match=r"not enough disk space.*spill_dir="):
        winback.silence(data, memory_limit="1MB", spill_dir=spill)
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("stage", ["partitioning", "scoring"])
def test_spill_files_and_partial_output_are_removed_on_ctrl_c(tmp_path: Path, stage: str) -> None:
    data = write_files(awkward_log(seed=10), tmp_path / "in", files=4)
    spill = tmp_path / "spill"
    seen: list[Path] = []

    def interrupt(now: str, done: int, total: int | None) -> None:
        seen.extend(spill.rglob("*.arrow"))
        if now == stage and done >= 2:
            raise KeyboardInterrupt

    output = tmp_path / "out" / "scores.parquet"
    for call in (winback.silence, lambda data, **kw: silence_to_file(data, output, **kw)):
        with pytest.raises(KeyboardInterrupt):
            call(data, memory_limit="8KB", spill_dir=spill, progress=interrupt)
        assert seen  # there were spill files…
        assert list(spill.iterdir()) == []  # …and they are gone
    assert list((tmp_path / "out").iterdir()) == []  # no partial output either


def test_silence_to_file_writes_the_scores(tmp_path: Path) -> None:
    log = awkward_log(seed=11, string_ids=True)
    data = write_files(log, tmp_path / "in", files=5)
    expected = winback.silence(data, as_of=AS_OF)
    for name in ("scores.parquet", "scores.csv"):
        output = tmp_path / name
        info = silence_to_file(data, output, as_of=AS_OF, memory_limit="8KB")
        assert info.customers == expected.height
        if name.endswith(".parquet"):
            assert_same(pl.read_parquet(output).sort("customer_id"), expected)
        else:
            columns = ["customer_id", "n_occasions", "rank_ratio", "silence_score"]
            written = pl.read_csv(output, columns=columns).sort("customer_id")
            assert_same(written, expected.select(columns))
    small = tmp_path / "small.parquet"  # no limit, small input: the in-memory frame, written
    silence_to_file(data, small, as_of=AS_OF)
    assert_same(pl.read_parquet(small), expected)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8GB", 8 * 10**9),
        ("512MiB", 512 << 20),
        ("1.5G", 1_500_000_000),
        ("4096", 4096),
        (" 2 kib ", 2048),
        (123, 123),
    ],
)
def test_memory_sizes(text: str | int, size: int) -> None:
    assert _spill.parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "eight", "8XB", "-1GB", "0", "1e9"])
def test_bad_memory_sizes_are_config_errors(text: str) -> None:
    with pytest.raises(WinbackConfigError, match="memory_limit"):
        _spill.parse_memory_size(text)


def test_cli_scores_by_parts(tmp_path: Path) -> None:
    log = awkward_log(seed=12)
    data = write_files(log, tmp_path / "in", files=3)
    out, spill = tmp_path / "scores.parquet", tmp_path / "spill"
    result = run(
        "score",
        str(data),
        "-o",
        str(out),
        "--as-of",
        AS_OF,
        "--memory-limit",
        "16KB",
        "--spill-dir",
        str(spill),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert_same(pl.read_parquet(out).sort("customer_id"), winback.silence(data, as_of=AS_OF))
    assert list(spill.iterdir()) == []
    bad = run("score", str(data), "-o", str(out), "--memory-limit", "lots")
    assert bad.returncode == 2
    assert "--memory-limit lots is not a size" in bad.stderr  # the CLI's advice is its flag


def test_dates_and_time_zones_by_parts(tmp_path: Path) -> None:
    log = awkward_log(seed=13, n_customers=200)
    zoned = log.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    dated = log.with_columns(pl.col("ts").dt.date())
    for frame in (zoned, dated):
        data = write_files(frame, tmp_path / str(frame.schema["ts"]).replace(" ", ""), files=3)
        for tz in (None, "Asia/Shanghai"):
            expected = winback.silence(data, tz=tz, as_of=date(2024, 6, 30))
            assert_same(
                winback.silence(data, tz=tz, as_of=date(2024, 6, 30), memory_limit="8KB"), expected
            )


def test_spill_docstring_examples() -> None:
    result = doctest.testmod(_spill)
    assert result.attempted > 0
    assert result.failed == 0
