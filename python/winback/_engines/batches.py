"""Streaming scoring of customer-sorted Arrow record batches (docs/methods.md#spark): the
engine-neutral core of :mod:`winback.spark` and :mod:`winback.dask` that runs on the workers.

An engine hands each worker an iterator of :class:`pyarrow.RecordBatch` holding its share of the
transactions, hash-partitioned by customer and sorted by (customer, time) within the partition.
:func:`stream_batches` cuts that stream into chunks of whole customers — the rows of the last
customer of a chunk are held over to the next one, so a customer split across batches is scored
once, with all of its rows — and calls the local API (:func:`winback.silence`,
:func:`winback.summary`) on each chunk as one table: the same Rust kernels, never Python per
customer. Memory is bounded by ``min_rows`` plus the largest customer plus one batch.

Every customer is scored independently by the kernels, so a chunk's rows come out bit for bit as
they would from the whole table, given the same global settings: the snapshot ``as_of`` (whose
default, the latest purchase, is a property of all the data) and, for :func:`winback.summary`,
the first purchase of all the data (it anchors the period grid and the calibration checks).
:func:`data_bounds` computes those per batch; :mod:`winback._engines.plan` resolves them into a
:class:`GlobalWindow` on the driver.

Row numbers are those of the whole input (docs/methods.md#spark): :func:`read_tally` applies the
local reader's rules to a chunk of the unshuffled input and :func:`combine_tallies` adds the
chunks' offsets on the driver, raising the local API's error word for word; under
``on_invalid="drop"`` :func:`rejects_table` returns a chunk's rejects numbered from its offset.
Text ids read as integers (``id_type="int"``) are shuffled on :func:`customer_key`, the parsed id.

Output schemas are fixed and declared (:func:`silence_schema`, :func:`summary_schema`): the local
API's columns and dtypes in Arrow form. Polars ``Enum`` columns (``status``,
``rank_ratio_group``, ``silence_band``) become plain ``large_string`` (Spark ``string``, pandas
``string[pyarrow]``); Int64 → ``int64`` (Spark ``bigint``); Float64 → ``double``; String ids →
``large_string``; ``Date`` → ``date32`` (Spark ``date``); naive ``Datetime("us")`` →
``timestamp[us]`` (Spark ``timestamp_ntz``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from winback import _io
from winback._io.hygiene import REFUSAL_SAMPLE, ReadPlan, refusal_error
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ID_TYPE,
    MIN_OCCASIONS,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TIME_FORMAT,
    TRF_CUTS,
    UNIT,
    IdType,
    OnInvalid,
    TimeUnit,
)
from winback.errors import WinbackConfigError, WinbackInputError
from winback.silence import silence
from winback.summary import compress_summary, summary

__all__ = [
    "BOUNDS_SCHEMA",
    "DEFAULT_MIN_ROWS",
    "KEY_COL",
    "TALLY_SCHEMA",
    "GlobalWindow",
    "ReadSettings",
    "ScoreSettings",
    "SummarySettings",
    "Tally",
    "bin_compress",
    "bin_frame",
    "bin_width_for",
    "bounds_table",
    "combine_bounds",
    "combine_tallies",
    "customer_arrow_type",
    "customer_key",
    "data_bounds",
    "naive",
    "needs_key",
    "read_tally",
    "rejects_schema",
    "rejects_table",
    "silence_batches",
    "silence_schema",
    "silence_table",
    "stream_batches",
    "summary_batches",
    "summary_schema",
    "summary_table",
]

#: Rows gathered before a chunk is scored (amortises the per-call cost of the local API).
DEFAULT_MIN_ROWS = 100_000

#: One row per input batch from :func:`data_bounds`: valid rows' earliest and latest purchase
#: (local wall-clock µs since the epoch, docs/methods.md#time-zones), the rows read and rejected,
#: the time zone.
BOUNDS_SCHEMA = pa.schema(
    [
        ("min_ts_us", pa.int64()),
        ("max_ts_us", pa.int64()),
        ("rows_read", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("time_zone", pa.large_string()),
    ]
)

#: One row per chunk of an input partition from :func:`read_tally`: the partition's number, the
#: chunk's first row within the partition, its rows and its pickled tally.
TALLY_SCHEMA = pa.schema(
    [
        ("partition", pa.int64()),
        ("start", pa.int64()),
        ("rows", pa.int64()),
        ("tally", pa.binary()),
    ]
)

#: The hidden column the engines shuffle and sort on when ids are parsed from text
#: (``id_type="int"``: ``00123`` and ``123`` are one customer, so the raw text cannot be the key).
KEY_COL = "__winback_customer"

#: Rows listed per broken rule in the ``on_invalid="raise"`` error (as the local reader lists).
_FIRST_ROWS = 5

_ENUM_COLUMNS = ("status", "rank_ratio_group", "silence_band")


# -- declared output schemas ---------------------------------------------------------------------
def customer_arrow_type(customer_dtype: pl.DataType) -> pa.DataType:
    """Arrow type of ``customer_id`` in every output: ``int64`` for integer ids, else
    ``large_string`` (the local API casts ids to Int64 or String, docs/methods.md#input)."""
    return pa.int64() if customer_dtype == pl.Int64 else pa.large_string()


def silence_schema(customer_type: pa.DataType, *, whole_days: bool) -> pa.Schema:
    """Arrow schema of :func:`winback.silence` output (docs/methods.md#silence), Enums as strings.

    ``first_ts``/``last_ts`` are ``date32`` when the resolution is whole days, else naive
    ``timestamp[us]`` (local wall clock), as in the local API.
    """
    stamp = pa.date32() if whole_days else pa.timestamp("us")
    text, i64, f64 = pa.large_string(), pa.int64(), pa.float64()
    return pa.schema(
        [
            ("customer_id", customer_type),
            ("status", text),
            ("n_occasions", i64),
            ("first_ts", stamp),
            ("last_ts", stamp),
            ("tenure_days", f64),
            ("recency_days", f64),
            ("max_gap_days", f64),
            ("mean_gap_days", f64),
            ("median_gap_days", f64),
            ("recency_rank", i64),
            ("rank_ratio", f64),
            ("silence_score", f64),
            ("rank_ratio_group", text),
            ("silence_band", text),
            ("total_amount", f64),
            ("mean_amount", f64),
        ]
    )


def summary_schema(customer_type: pa.DataType, *, split: bool) -> pa.Schema:
    """Arrow schema of :func:`winback.summary` output (docs/methods.md#summary); with ``split`` (a
    calibration end) also the holdout columns."""
    i64, f64 = pa.int64(), pa.float64()
    fields = [
        ("customer_id", customer_type),
        ("frequency", i64),
        ("recency", f64),
        ("T", f64),
        ("monetary_value", f64),
        ("spend_frequency", i64),
        ("first_amount", f64),
        ("n_periods", i64),
        ("period_frequency", i64),
    ]
    if split:
        fields += [
            ("frequency_holdout", i64),
            ("monetary_value_holdout", f64),
            ("duration_holdout", f64),
        ]
    return pa.schema(fields)


def _to_arrow(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    enums = [c for c in _ENUM_COLUMNS if c in frame.columns]
    if enums:
        frame = frame.with_columns(pl.col(enums).cast(pl.String))
    return frame.to_arrow().cast(schema)


# -- global settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadSettings:
    """How the transactions are read (the local API's arguments of the same names,
    docs/methods.md#input)."""

    customer_col: str = CUSTOMER_COL
    time_col: str = TIME_COL
    amount_col: str | None = AMOUNT_COL
    order_col: str | None = None
    tz: str | None = None
    on_invalid: OnInvalid = ON_INVALID
    time_format: str | None = TIME_FORMAT
    id_type: IdType = ID_TYPE

    def plan(self, table: pa.Table | pa.RecordBatch) -> tuple[ReadPlan, pl.DataFrame]:
        """The local reader's plan for ``table`` (its checks and refusals) and the used columns
        as the local reader reads them."""
        named = [
            c for c in (self.customer_col, self.time_col, self.amount_col, self.order_col) if c
        ]
        frame = _io.open_transactions(
            table,
            customer_col=self.customer_col,
            time_col=self.time_col,
            columns=named,
            numeric=[self.amount_col] if self.amount_col else [],
        )
        plan = _io.plan_read(
            _io.read_schema(frame),
            customer_col=self.customer_col,
            time_col=self.time_col,
            amount_col=self.amount_col,
            order_col=self.order_col,
            tz=self.tz,
            time_format=self.time_format,
            id_type=self.id_type,
        )
        collected = frame.select(plan.used)
        if isinstance(collected, pl.LazyFrame):
            collected = collected.collect()
        return plan, collected

    def read(self, table: Any) -> _io.PreparedTransactions:
        return _io.prepare(
            table,
            customer_col=self.customer_col,
            time_col=self.time_col,
            amount_col=self.amount_col,
            order_col=self.order_col,
            tz=self.tz,
            on_invalid=self.on_invalid,
            time_format=self.time_format,
            id_type=self.id_type,
        )


@dataclass(frozen=True)
class ScoreSettings(ReadSettings):
    """Arguments of :func:`winback.silence` for every chunk; ``as_of_us`` is the global snapshot
    (local wall-clock µs, resolved on the driver)."""

    as_of_us: int = 0
    resolution: str = RESOLUTION
    min_occasions: int = MIN_OCCASIONS
    trf_cuts: tuple[float, ...] = TRF_CUTS
    s_cuts: tuple[float, ...] = S_CUTS
    num_threads: int | None = 1


@dataclass(frozen=True)
class GlobalWindow:
    """The summary's cut-offs resolved over all the data (local wall-clock µs), and its first
    purchase at or before the end of observation (None when there is none)."""

    as_of_us: int
    calibration_end_us: int | None
    holdout_end_us: int | None
    first_ts_us: int | None


@dataclass(frozen=True)
class SummarySettings(ReadSettings):
    """Arguments of :func:`winback.summary` for every chunk, with the global window."""

    window: GlobalWindow = field(default_factory=lambda: GlobalWindow(0, None, None, None))
    unit: TimeUnit = UNIT
    resolution: str = RESOLUTION
    period: str = PERIOD
    num_threads: int | None = 1


# -- the global pre-pass -------------------------------------------------------------------------
def data_bounds(table: pa.Table | pa.RecordBatch, settings: ReadSettings) -> dict[str, Any]:
    """Earliest and latest valid purchase of ``table`` (local wall-clock µs), rows read and
    rejected, and the time zone of its calendar — what the driver needs to resolve ``as_of``.

    Hygiene applies as in the local API: with ``on_invalid="raise"`` bad rows raise here.
    """
    prepared = settings.read(table)
    ts = prepared.frame.get_column("ts")
    empty = prepared.frame.height == 0
    return {
        "min_ts_us": None if empty else int(ts.min()),  # type: ignore[arg-type]
        "max_ts_us": None if empty else int(ts.max()),  # type: ignore[arg-type]
        "rows_read": prepared.rows_read,
        "rows_rejected": prepared.rows_rejected,
        "time_zone": prepared.time_zone,
    }


def bounds_table(tables: Iterable[pa.Table | pa.RecordBatch], settings: ReadSettings) -> pa.Table:
    """:func:`data_bounds` of each table, one row each, :data:`BOUNDS_SCHEMA`."""
    rows = [data_bounds(t, settings) for t in tables]
    return pa.Table.from_pylist(rows, schema=BOUNDS_SCHEMA)


def combine_bounds(bounds: pa.Table) -> dict[str, Any]:
    """The global bounds from per-batch :func:`data_bounds` rows (None when no valid rows)."""
    zones = [z for z in bounds.column("time_zone").to_pylist() if z is not None]
    min_ts = pc.min(bounds.column("min_ts_us")).as_py()
    max_ts = pc.max(bounds.column("max_ts_us")).as_py()
    return {
        "min_ts_us": min_ts,
        "max_ts_us": max_ts,
        "rows_read": int(pc.sum(bounds.column("rows_read")).as_py() or 0),
        "rows_rejected": int(pc.sum(bounds.column("rows_rejected")).as_py() or 0),
        "time_zone": zones[0] if zones else None,
    }


# -- the shuffle key ----------------------------------------------------------------------------
def needs_key(settings: ReadSettings, customer_type: pa.DataType) -> bool:
    """Whether the raw ids cannot key the shuffle: text ids read as integers (``id_type="int"``),
    where several texts are one customer."""
    text = (
        pa.types.is_string(customer_type)
        or pa.types.is_large_string(customer_type)
        or pa.types.is_dictionary(customer_type)
    )
    return settings.id_type == "int" and text


def customer_key(table: pa.Table | pa.RecordBatch, settings: ReadSettings) -> pa.Table:
    """``table`` with :data:`KEY_COL`: each row's id as the local reader parses it (Int64; null
    where it does not parse, such rows being invalid), the engines' shuffle key."""
    used = pa.table(table) if isinstance(table, pa.RecordBatch) else table
    plan, collected = settings.plan(used)
    customer = next(e for e in plan.exprs if e.meta.output_name() == "customer")
    key = collected.select(customer.cast(pl.Int64, strict=False)).to_series().to_arrow()
    return used.append_column(pa.field(KEY_COL, pa.int64()), key.cast(pa.int64()))


# -- hygiene over the input, with whole-input row numbers ----------------------------------------
def read_tally(table: pa.Table | pa.RecordBatch, settings: ReadSettings) -> dict[str, Any]:
    """What the local reader finds in one chunk of the input (docs/methods.md#hygiene), with row
    numbers counted from the chunk's start: per refusal its first row and first values, per
    row rule its count, first rows and the first bad value, the valid rows' earliest and latest
    purchase (local wall-clock µs) and the time zone. :func:`combine_tallies` adds the chunks'
    offsets and raises the local API's error on the driver, word for word."""
    plan, collected = settings.plan(table)
    try:
        prepared = collected.select(*plan.exprs, *plan.checks, *plan.refusals)
    except pl.exceptions.PolarsError as exc:
        raise _io.unreadable_columns_error(plan.used, exc) from exc
    refusals: dict[str, tuple[int, list[Any]]] = {}
    for flag in plan.refusal_flags:
        rows = prepared.select(pl.arg_where(pl.col(flag))).to_series().head(REFUSAL_SAMPLE)
        if rows.len():
            column = collected.get_column(plan.reasons[_refusal_reason(flag)][0])
            refusals[flag] = (int(rows[0]), column.gather(rows).to_list())
    counts: dict[str, int] = {}
    first_rows: dict[str, list[int]] = {}
    examples: dict[str, Any] = {}
    flags = plan.flags
    for flag, count in prepared.select(pl.col(flags).sum()).row(0, named=True).items():
        counts[flag] = int(count)
        if count:
            rows = prepared.select(pl.arg_where(pl.col(flag))).to_series().head(_FIRST_ROWS)
            first_rows[flag] = [int(r) for r in rows]
            if flag in plan.hints:
                examples[flag] = collected.get_column(plan.reasons[flag][0])[int(rows[0])]
    valid = prepared.filter(~pl.any_horizontal(flags)) if flags else prepared
    ts = valid.get_column("ts").cast(pl.Datetime("us")).cast(pl.Int64)
    # the day histogram and latest rows the default as_of's far-future rule needs
    # (docs/methods.md#as-of): one count per distinct day, so the tally stays small
    dates = _io.PurchaseDates()
    dates.add(pl.DataFrame([valid.get_column("customer"), ts]))
    return {
        "dates": dates,
        "rows": collected.height,
        "refusals": refusals,
        "counts": counts,
        "first_rows": first_rows,
        "examples": examples,
        "rows_rejected": collected.height - valid.height,
        "min_ts_us": None if valid.height == 0 else int(ts.min()),  # type: ignore[arg-type]
        "max_ts_us": None if valid.height == 0 else int(ts.max()),  # type: ignore[arg-type]
        "time_zone": plan.time_zone,
    }


def _refusal_reason(flag: str) -> str:
    """The reason key naming a refusal's column (as :mod:`winback._io.hygiene` names it)."""
    return "__null_ts" if flag == "__refuse_foreign_ts" else "__null_customer"


@dataclass(frozen=True)
class Tally:
    """The input read once over all its partitions: each partition's first row in the whole
    input (``offsets``), the global bounds (as :func:`combine_bounds`) and the rows read."""

    offsets: dict[int, int]
    bounds: dict[str, Any]
    rows_read: int


def combine_tallies(
    chunks: Sequence[tuple[int, int, int, dict[str, Any]]],
    plan: ReadPlan,
    on_invalid: OnInvalid,
) -> Tally:
    """The whole input's tally from its chunks' :func:`read_tally` (``(partition, start within
    the partition, rows, tally)``, in any order). Partitions follow each other in their number
    order, as the engine lays out the input (Spark's partition index, Dask's partition number).

    Raises the local reader's error (docs/methods.md#hygiene) with whole-input row numbers: a
    refusal whatever ``on_invalid`` says, the invalid rows under ``on_invalid="raise"``.
    """
    ordered = sorted(chunks, key=lambda chunk: (chunk[0], chunk[1]))
    sizes: dict[int, int] = {}
    for partition, _, rows, _ in ordered:
        sizes[partition] = sizes.get(partition, 0) + rows
    offsets, total = {}, 0
    for partition in sorted(sizes):
        offsets[partition] = total
        total += sizes[partition]
    refused: dict[str, tuple[int, list[Any]]] = {}
    counts = dict.fromkeys(plan.flags, 0)
    first_rows: dict[str, list[int]] = {flag: [] for flag in plan.flags}
    examples: dict[str, Any] = {}
    low: list[int] = []
    high: list[int] = []
    dates: list[_io.PurchaseDates] = []
    zones: list[str] = []
    rejected = 0
    for partition, start, _, tally in ordered:
        at = offsets[partition] + start
        for flag, (row, values) in tally["refusals"].items():
            _first, seen = refused.setdefault(flag, (at + row, []))
            seen.extend(values[: REFUSAL_SAMPLE - len(seen)])
        for flag, count in tally["counts"].items():
            counts[flag] += count
            listed = first_rows[flag]
            if count and not listed and flag in tally["examples"]:
                examples[flag] = tally["examples"][flag]
            listed.extend(
                at + r for r in tally["first_rows"].get(flag, [])[: _FIRST_ROWS - len(listed)]
            )
        rejected += tally["rows_rejected"]
        dates += [tally["dates"]] if "dates" in tally else []
        low += [tally["min_ts_us"]] if tally["min_ts_us"] is not None else []
        high += [tally["max_ts_us"]] if tally["max_ts_us"] is not None else []
        zones += [tally["time_zone"]] if tally["time_zone"] is not None else []
    for flag in plan.refusal_flags:
        if flag in refused:
            raise refusal_error(plan, flag, refused[flag][0], refused[flag][1])
    if on_invalid == "raise" and any(counts.values()):
        raise _io.invalid_rows_error(plan, counts, first_rows, examples)
    bounds = {
        "min_ts_us": min(low) if low else None,
        "max_ts_us": max(high) if high else None,
        "rows_read": total,
        "rows_rejected": rejected,
        "time_zone": zones[0] if zones else plan.time_zone,
        "dates": _io.PurchaseDates.merge(dates),
    }
    return Tally(offsets=offsets, bounds=bounds, rows_read=total)


def rejects_schema(input_schema: pa.Schema) -> pa.Schema:
    """The rejects' schema, as the local API's ``rejects``: ``row_index`` (whole-input position,
    int64), the input's used columns in their types, ``reason``."""
    return pa.schema(
        [pa.field("row_index", pa.int64()), *input_schema, pa.field("reason", pa.large_string())]
    )


def rejects_table(
    table: pa.Table | pa.RecordBatch, settings: ReadSettings, offset: int
) -> pa.Table:
    """The rows of one chunk of the input that ``on_invalid="drop"`` sets aside, with their
    ``reason`` and their ``row_index`` in the whole input (the chunk starts at ``offset``), in
    :func:`rejects_schema` of the chunk's columns."""
    used = pa.table(table) if isinstance(table, pa.RecordBatch) else table
    plan, collected = settings.plan(used)
    try:
        prepared = collected.select(*plan.exprs, *plan.checks)
    except pl.exceptions.PolarsError as exc:
        raise _io.unreadable_columns_error(plan.used, exc) from exc
    schema = rejects_schema(used.select(plan.used).schema)
    flags = plan.flags
    if not flags:
        return schema.empty_table()
    bad = prepared.select(pl.any_horizontal(flags).alias("bad")).get_column("bad")
    positions = pa.array(np.flatnonzero(bad.to_numpy()), pa.int64())
    reasons = prepared.filter(bad).select(_io.reject_reason(plan, flags)).to_series()
    rejected = used.select(plan.used).take(positions)
    columns = [pc.add(positions, offset), *rejected.columns, reasons.to_arrow()]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


# -- the stream ----------------------------------------------------------------------------------
def _key_order_error(what: str, customer_col: str) -> WinbackInputError:
    return WinbackInputError(
        f"the record batches are not sorted by {customer_col!r} ({what}); rows of one customer "
        "must be contiguous: sort each partition by (customer, time), e.g. Spark's "
        f"sortWithinPartitions({customer_col!r}, ...), before streaming it"
    )


def _check_sorted(keys: pa.Array, previous: Any, customer_col: str) -> None:
    """Customer keys must be non-decreasing within and across batches, nulls first."""
    nulls = keys.null_count
    if nulls:
        if keys.slice(0, nulls).null_count != nulls:
            raise _key_order_error("null ids must come first", customer_col)
        if previous is not None and previous.is_valid:
            raise _key_order_error("a null id follows a non-null one", customer_col)
    values = keys.slice(nulls)
    if len(values) > 1:
        ordered = pc.all(pc.less_equal(values.slice(0, len(values) - 1), values.slice(1)))
        if not ordered.as_py():
            raise _key_order_error("ids decrease within a batch", customer_col)
    later = len(values) and previous is not None and previous.is_valid
    if later and pc.less(values[0], previous).as_py():
        raise _key_order_error("ids decrease from one batch to the next", customer_col)


def _tail_length(keys: pa.Array) -> int:
    """Rows at the end of ``keys`` that belong to its last customer (contiguous when sorted)."""
    last = keys[len(keys) - 1]
    if not last.is_valid:
        return int(keys.null_count)
    return int(pc.sum(pc.equal(keys, last)).as_py() or 0)


def stream_batches(
    batches: Iterable[pa.RecordBatch],
    score: Callable[[pa.Table], pa.Table],
    *,
    customer_col: str,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Scores a customer-sorted stream of record batches chunk by chunk (docs/methods.md#spark).

    Batches are gathered until they hold ``min_rows`` rows and end inside a customer other than
    the first; the rows of the last customer are then held over to the next chunk and the rest is
    passed to ``score`` as one table. Each customer therefore reaches ``score`` once, with all its
    rows, whatever the batch boundaries. ``customer_col`` must be non-decreasing over the stream
    (nulls first), which is checked: a :class:`~winback.WinbackInputError` says how to sort.

    Yields the record batches of ``score``'s tables, in customer order.
    """
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    previous: Any = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        keys = batch.column(customer_col)
        _check_sorted(keys, previous, customer_col)
        previous = keys[len(keys) - 1]
        pending.append(batch)
        pending_rows += batch.num_rows
        tail = _tail_length(keys)
        if pending_rows < min_rows or tail == batch.num_rows:
            continue
        head = batch.num_rows - tail
        chunk = pa.Table.from_batches([*pending[:-1], batch.slice(0, head)])
        pending, pending_rows = [batch.slice(head)], tail
        yield from score(chunk).to_batches()
    if pending:
        yield from score(pa.Table.from_batches(pending)).to_batches()


def _chunk_context(exc: WinbackInputError, chunk: pa.Table, customer_col: str) -> str:
    keys = chunk.column(customer_col)
    first, last = keys[0].as_py(), keys[len(keys) - 1].as_py()
    return (
        f"{exc} [in a chunk of {chunk.num_rows} rows, customers {first!r} to {last!r}: row "
        "numbers count from the start of that chunk]"
    )


# -- silence -------------------------------------------------------------------------------------
def silence_table(table: pa.Table, settings: ScoreSettings) -> pa.Table:
    """:func:`winback.silence` of one chunk of whole customers, in :func:`silence_schema`."""
    try:
        frame = silence(
            table,
            as_of=_io.micros_to_datetime(settings.as_of_us),
            resolution=settings.resolution,
            min_occasions=settings.min_occasions,
            trf_cuts=settings.trf_cuts,
            s_cuts=settings.s_cuts,
            customer_col=settings.customer_col,
            time_col=settings.time_col,
            amount_col=settings.amount_col,
            order_col=settings.order_col,
            tz=settings.tz,
            on_invalid=settings.on_invalid,
            time_format=settings.time_format,
            id_type=settings.id_type,
            num_threads=settings.num_threads,
        )
    except WinbackInputError as exc:
        raise WinbackInputError(_chunk_context(exc, table, settings.customer_col)) from None
    schema = silence_schema(
        customer_arrow_type(frame.schema["customer_id"]),
        whole_days=_io.parse_resolution(settings.resolution) % _io.MICROS_PER_DAY == 0,
    )
    return _to_arrow(frame, schema)


def silence_batches(
    batches: Iterable[pa.RecordBatch],
    settings: ScoreSettings,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    key_col: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Silence scores (docs/methods.md#silence) of a customer-sorted batch stream, one row per
    customer."""
    yield from stream_batches(
        batches,
        lambda table: silence_table(table, settings),
        customer_col=key_col or settings.customer_col,
        min_rows=min_rows,
    )


# -- summary -------------------------------------------------------------------------------------
def _absent_customer(customers: pl.Series) -> Any:
    """An id of the customers' type that is not among ``customers`` (for the anchor row)."""
    if customers.dtype == pl.String:
        largest = customers.max()
        return "" if largest is None else f"{largest!s}\x00"
    values = np.unique(customers.to_numpy())
    info = np.iinfo(np.int64)
    if values.size == 0:
        return 0
    if values[-1] < info.max:
        return int(values[-1]) + 1
    if values[0] > info.min:
        return int(values[0]) - 1
    gaps = np.flatnonzero(values[1:] > values[:-1] + 1)  # no overflow: values[:-1] < max
    return int(values[gaps[0]]) + 1


def naive(micros: int | None) -> datetime | None:
    """Local wall-clock µs as a naive datetime (None stays None)."""
    return None if micros is None else _io.micros_to_datetime(micros)


def summary_table(table: pa.Table, settings: SummarySettings) -> pa.Table:
    """:func:`winback.summary` of one chunk of whole customers with the global window, in
    :func:`summary_schema`.

    The chunk is read as the local API reads it, then one row of an id absent from the chunk is
    added at the data's first purchase (so the chunk's period grid and checks are those of all
    the data) and its row removed from the result.
    """
    window = settings.window
    try:
        prepared = settings.read(table)
    except WinbackInputError as exc:
        raise WinbackInputError(_chunk_context(exc, table, settings.customer_col)) from None
    frame = prepared.frame.with_columns(pl.col("ts").cast(pl.Datetime("us")))
    anchor_id = None
    if window.first_ts_us is not None:
        anchor_id = _absent_customer(frame.get_column("customer"))
        anchor: dict[str, Any] = {
            "customer": [anchor_id],
            "ts": [_io.micros_to_datetime(window.first_ts_us)],
        }
        if prepared.has_amount:
            anchor["amount"] = [0.0]
        frame = pl.concat([frame, pl.DataFrame(anchor, schema=frame.schema)])
    result = summary(
        frame,
        as_of=naive(window.as_of_us),
        unit=settings.unit,
        calibration_end=naive(window.calibration_end_us),
        holdout_end=naive(window.holdout_end_us),
        resolution=settings.resolution,
        period=settings.period,
        customer_col="customer",
        time_col="ts",
        amount_col="amount" if prepared.has_amount else None,
        num_threads=settings.num_threads,
    )
    if anchor_id is not None:
        result = result.filter(pl.col("customer_id") != anchor_id)
    schema = summary_schema(
        customer_arrow_type(result.schema["customer_id"]),
        split=window.calibration_end_us is not None,
    )
    return _to_arrow(result, schema)


def summary_batches(
    batches: Iterable[pa.RecordBatch],
    settings: SummarySettings,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    key_col: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Per-customer BTYD statistics (docs/methods.md#summary) of a customer-sorted batch stream."""
    yield from stream_batches(
        batches,
        lambda table: summary_table(table, settings),
        customer_col=key_col or settings.customer_col,
        min_rows=min_rows,
    )


# -- compressed sufficient statistics for model fits ---------------------------------------------
def bin_width_for(unit: str, bin_width: float | None) -> float:
    """The bin width of t_x and T in the summary's ``unit``: ``None`` means one week (1.0 in
    weeks, 7.0 in days); 0 means no binning."""
    if bin_width is None:
        return 1.0 if unit == "W" else 7.0
    if not bin_width >= 0 or bin_width == float("inf"):
        raise WinbackConfigError(
            f"bin_width={bin_width!r} must be a finite number ≥ 0 (0: no binning), in the "
            "summary's time unit"
        )
    return float(bin_width)


def bin_compress(
    table: pa.Table | pa.RecordBatch,
    *,
    columns: Sequence[str] = ("frequency", "recency", "T"),
    binned: Sequence[str] = ("recency", "T"),
    width: float,
) -> pa.Table:
    """Distinct rows of some summary ``columns`` of a chunk with customer counts, the ``binned``
    ones binned first (docs/methods.md#fitting, #spark): each value is replaced by the nearest
    multiple of ``width``, ``floor(v / width + 0.5) · width`` (halves round up), which keeps 0 at 0
    and t_x ≤ T. ``width = 0`` keeps them exact. Output: ``columns`` in their types, ``count``
    (int64).
    """
    frame = bin_frame(pl.DataFrame(pl.from_arrow(table)).select(columns), width, binned)
    return compress_summary(frame, columns).to_arrow()


def bin_frame(frame: pl.DataFrame, width: float, columns: Sequence[str]) -> pl.DataFrame:
    """``frame`` with ``columns`` binned as :func:`bin_compress` bins them (for local fits)."""
    if width <= 0:
        return frame
    return frame.with_columns(((pl.col(c) / width + 0.5).floor() * width).alias(c) for c in columns)
