"""Larger-than-memory input on one machine (docs/methods.md#out-of-core): stream, partition by
customer, spill.

The out-of-core path of :func:`winback.silence`, :func:`winback.summary` and ``winback score``:

1. **Partition** (one streaming pass over the input): Arrow batches of the used columns are read
   (Polars' streaming engine for files, or the producer's own batches for a record-batch stream),
   checked with the same hygiene rules as the in-memory path (docs/methods.md#hygiene) — row indices
   counted over the whole input — converted to the core's columns, and appended by customer to ``P``
   spill files (Arrow IPC streams) in a temporary directory. A customer's rows all land in one file:
   the file is ``hash(customer) mod P`` with Polars' hash under fixed seeds (stable within a Polars
   version, which is all a spill needs; the BLAKE2b-64 of :mod:`winback.campaign` was measured at
   2.5M rows/s on this machine's two cores, the slowest step by far). The pass also keeps what is
   global: rows read, rejects, and the purchase dates the snapshot rule needs
   (:class:`~winback._io.times.PurchaseDates`: first and latest purchase, a histogram of days and
   the latest few rows, the same for any row order or batch split), so the default ``as_of`` is
   decided exactly as in memory (docs/methods.md#as-of).
2. **Score**: spill files are read back in groups whose size fits the memory budget (a file
   that does not fit is split again with another seed) and scored with the in-memory code. A
   customer's result depends on its own rows only, so scoring by parts and concatenating gives
   the same rows, bit for bit, as scoring everything at once; only their order differs (sorted
   per group, and by ``customer_id`` at the end when the result is returned as one frame).

Memory: ``memory_limit`` bounds the working memory. The scoring groups hold at most
``memory_limit / WORKING_MEMORY_FACTOR`` bytes of prepared rows (and at most
:data:`MAX_GROUP_BYTES`) (in-memory scoring peaks at about
that factor times its input, result included), and the batches of the first pass are sized
from the limit too. The default limit is :data:`DEFAULT_MEMORY_FRACTION` of the available RAM
(``MemAvailable``). What the Python API returns — one row per customer — is held in memory on top;
the CLI writes results to disk as each group is done.

Disk: the spill needs about the prepared size of the input (24 bytes a row with integer ids and
an amount; strings take their length). It is checked against the free space before spilling
when the input's size is known (Parquet metadata, file sizes) and while spilling in any case;
too little is a :class:`~winback.WinbackConfigError` naming the directory and the sizes. Spill
files are removed on success and on any failure, Ctrl-C included.

Text times and ids are read by the in-memory path's rules (:func:`winback._io.hygiene.plan_read`:
ISO 8601 or ``time_format``, row by row; ``id_type``), so every batch reads them alike and a
refused column is refused with the same message.

Limits: rows rejected with ``on_invalid="drop"`` are kept in memory (one frame, as in the
in-memory path); a single customer larger than the group budget is scored whole; with
``order_col`` the default ``as_of`` needs one more pass over the spill files.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from winback._io.hygiene import (
    ReadPlan,
    RefusalTally,
    check_id_type,
    check_on_invalid,
    empty_rejects,
    invalid_rows_error,
    merge_orders,
    plan_read,
    reject_reason,
    unreadable_columns_error,
)
from winback._io.prepared import PreparedTransactions
from winback._io.sources import (
    expand_paths,
    file_kind,
    is_database_url,
    open_transactions,
    read_schema,
)
from winback._io.times import PurchaseDates, check_time_format
from winback._options import ID_TYPE, TIME_FORMAT, IdType, OnInvalid
from winback.errors import WinbackConfigError

if TYPE_CHECKING:  # pyarrow loads when a spill or a footer read needs it
    import pyarrow as pa
    import pyarrow.ipc as pa_ipc

__all__ = [
    "DEFAULT_MEMORY_FRACTION",
    "WORKING_MEMORY_FACTOR",
    "OutOfCoreOptions",
    "Progress",
    "ResultSink",
    "SpilledInput",
    "available_memory_bytes",
    "default_memory_limit",
    "out_of_core_options",
    "parse_memory_size",
    "spill_input",
]

log = logging.getLogger("winback.spill")

#: Share of the available RAM used as the default memory limit.
DEFAULT_MEMORY_FRACTION = 0.5
#: Peak memory of in-memory scoring over the size of its prepared input (measured ≈ 3 with the
#: result; more for reading spill files back and concatenating them, and for what the Arrow and
#: Polars allocators keep after freeing).
WORKING_MEMORY_FACTOR = 5
#: Largest scoring group (bytes of prepared rows). Larger groups were measured slower, not
#: faster (50M rows: groups of 0.1–0.5 GB 9–10 s, one of 1.2 GB 18 s: fresh large buffers
#: fault their pages in), so a generous limit is a bound, not a target.
MAX_GROUP_BYTES = 256 << 20
#: Spill files when the input's size is unknown (a stream); too-large files are split again.
UNKNOWN_SIZE_PARTITIONS = 64
#: Upper bound on spill files (each is an open file while partitioning).
MAX_PARTITIONS = 512
#: Bytes a prepared row is assumed to take when the input does not say (24 = id, time, amount).
BYTES_PER_ROW = 24
#: Seed of the partition hash; the split of an oversized spill file adds its level.
PARTITION_SEED = 0x5EED_5B11
#: How often a split may be split again (a single customer larger than the budget stays whole).
MAX_SPLIT_LEVEL = 3
#: Free space kept on the spill disk beyond what is written (bytes).
DISK_RESERVE = 64 << 20

#: ``progress(stage, done, total)``: stage name, units done, total units (None when unknown).
Progress = Callable[[str, int, int | None], None]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1 << 10,
    "kib": 1 << 10,
    "mi": 1 << 20,
    "mib": 1 << 20,
    "gi": 1 << 30,
    "gib": 1 << 30,
    "ti": 1 << 40,
    "tib": 1 << 40,
}


def parse_memory_size(value: str | int) -> int:
    """Bytes from ``"8GB"`` (10⁹), ``"512MiB"`` (2²⁰), ``"1.5G"``, ``"1000000"`` or an int.

    >>> parse_memory_size("8GB"), parse_memory_size("512MiB"), parse_memory_size(4096)
    (8000000000, 536870912, 4096)
    """
    if isinstance(value, bool):
        raise WinbackConfigError(f"memory_limit={value!r} is not a size")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        unit = (match.group(2) or "").lower() if match else ""
        if match is None or unit not in _SIZE_UNITS:
            raise WinbackConfigError(
                f"memory_limit={value!r} is not a size; use bytes or a number with a unit, "
                "e.g. '8GB', '512MiB', '2G'"
            )
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise WinbackConfigError(f"memory_limit={value!r} must be a positive size")
    return size


def available_memory_bytes() -> int:
    """The RAM available to new work: ``MemAvailable`` of /proc/meminfo, else total RAM."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def default_memory_limit() -> int:
    """:data:`DEFAULT_MEMORY_FRACTION` of :func:`available_memory_bytes`, in bytes."""
    return int(available_memory_bytes() * DEFAULT_MEMORY_FRACTION)


@dataclass(frozen=True)
class OutOfCoreOptions:
    """How to run out of core: the memory limit (bytes), where to spill (None: the system's
    temporary directory) and the progress callback."""

    memory_limit: int
    spill_dir: Path | None = None
    progress: Progress | None = None

    @property
    def group_budget(self) -> int:
        """Bytes of prepared rows one scoring group may hold: the limit's share, at most
        :data:`MAX_GROUP_BYTES`."""
        return max(1, min(MAX_GROUP_BYTES, self.memory_limit // WORKING_MEMORY_FACTOR))

    @property
    def batch_rows(self) -> int:
        """Rows per batch of the partitioning pass (≈ 1/16 of the limit at ~64 bytes a row in
        flight: input, converted columns and the partition pieces)."""
        return min(4_000_000, max(1024, self.memory_limit // (16 * 64)))


def _is_path_input(data: Any) -> bool:
    if is_database_url(data):  # a table or query is read whole (docs/methods.md#input)
        return False
    if isinstance(data, str | os.PathLike):
        return True
    return (
        isinstance(data, list | tuple)
        and bool(data)
        and all(isinstance(d, str | os.PathLike) for d in data)
    )


@dataclass(frozen=True)
class InputSize:
    """What the input's metadata says about its size: rows (None when unknown) and the bytes
    its used columns take once prepared (an estimate)."""

    rows: int | None
    prepared_bytes: int


def estimate_input_size(data: Any, columns: list[str]) -> InputSize | None:
    """Size of a path input from Parquet footers (rows, uncompressed column sizes) or file
    sizes (CSV, IPC); None for other inputs."""
    if not _is_path_input(data):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = expand_paths(data)
    rows: int | None = 0
    total = 0
    for path in paths:
        kind = file_kind(path)
        if kind == "parquet":
            try:
                meta = pq.ParquetFile(path).metadata
            except (OSError, pa.ArrowException):
                # Unreadable: the reading pass reports it; count its bytes meanwhile.
                total += path.stat().st_size
                rows = None
                continue
            file_rows = meta.num_rows
            used = 0
            for group in range(meta.num_row_groups):
                row_group = meta.row_group(group)
                for index in range(row_group.num_columns):
                    chunk = row_group.column(index)
                    if chunk.path_in_schema in columns:
                        used += chunk.total_uncompressed_size
            total += max(used, file_rows * 8 * len(columns))
            rows = None if rows is None else rows + file_rows
        else:
            total += path.stat().st_size
            rows = None
    return InputSize(rows=rows, prepared_bytes=total)


def out_of_core_options(
    data: Any,
    *,
    columns: list[str],
    memory_limit: int | str | None,
    spill_dir: str | os.PathLike[str] | None,
    progress: Progress | None,
) -> OutOfCoreOptions | None:
    """Whether to take the out-of-core path, and with which options.

    Taken when ``memory_limit`` is given (any raw input; in-memory inputs are then scored by parts
    too), or when a path input's estimated working memory (:data:`WORKING_MEMORY_FACTOR` × its
    prepared size) exceeds the default limit. Streams without ``memory_limit`` are read whole, as
    before: their size is unknown up front.
    """
    if isinstance(data, PreparedTransactions):
        return None  # already read into memory: nothing left to stream
    spill = None if spill_dir is None else Path(spill_dir)
    if memory_limit is not None:
        return OutOfCoreOptions(parse_memory_size(memory_limit), spill, progress)
    if not _is_path_input(data):
        return None
    size = estimate_input_size(data, columns)
    limit = default_memory_limit()
    if size is not None and size.prepared_bytes * WORKING_MEMORY_FACTOR > limit:
        log.info(
            "input of about %d MB prepared exceeds the memory limit of %d MB: going out of core",
            size.prepared_bytes >> 20,
            limit >> 20,
        )
        return OutOfCoreOptions(limit, spill, progress)
    return None


# --------------------------------------------------------------------------------------------
# Partitioning pass


@dataclass
class _Partition:
    """A spill file: its path, rows and prepared bytes, and the seed level that made it."""

    path: Path
    rows: int = 0
    bytes: int = 0
    level: int = 0


class _PartitionWriter:
    """Appends rows to ``count`` spill files by ``hash(customer) mod count``."""

    def __init__(self, root: Path, name: str, count: int, level: int) -> None:
        self.count = count
        self.seed = PARTITION_SEED + level
        self.partitions = [
            _Partition(root / f"{name}-{index:04d}.arrow", level=level) for index in range(count)
        ]
        self._writers: dict[int, pa_ipc.RecordBatchStreamWriter] = {}
        self._schema: pa.Schema | None = None

    def write(self, rows: pl.DataFrame) -> int:
        """Appends ``rows`` (customer, ts[, amount][, order]); returns the bytes written."""
        if rows.height == 0:
            return 0
        if self.count == 1:
            pieces = {0: rows}
        else:
            keyed = rows.with_columns(
                (pl.col("customer").hash(seed=self.seed) % self.count).alias("__partition")
            )
            pieces = {
                int(key[0]): piece
                for key, piece in keyed.partition_by(
                    "__partition", as_dict=True, include_key=False
                ).items()
            }
        written = 0
        for index, piece in pieces.items():
            table = piece.to_arrow()
            if self._schema is None:
                self._schema = table.schema
            elif table.schema != self._schema:
                table = table.cast(self._schema)
            writer = self._writers.get(index)
            if writer is None:
                import pyarrow.ipc as pa_ipc

                writer = pa_ipc.new_stream(str(self.partitions[index].path), self._schema)
                self._writers[index] = writer
            writer.write_table(table)
            size = int(piece.estimated_size())
            partition = self.partitions[index]
            partition.rows += piece.height
            partition.bytes += size
            written += size
        return written

    def close(self) -> list[_Partition]:
        """Closes every file; returns the non-empty partitions."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        return [p for p in self.partitions if p.rows]


def _check_disk(root: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(root).free
    if needed + DISK_RESERVE > free:
        raise WinbackConfigError(
            f"not enough disk space to spill {what}: about {_mb(needed)} needed in "
            f"{str(root.parent)!r}, {_mb(free)} free. Pass spill_dir= (CLI: --spill-dir) on a "
            "disk with more room, or a larger memory_limit (--memory-limit) if the input fits "
            "in memory."
        )


def _mb(size: int) -> str:
    return f"{size / 1e9:,.1f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"


@dataclass
class _Hygiene:
    """Hygiene tallies over the whole input (docs/methods.md#hygiene), in input row order."""

    counts: dict[str, int] = field(default_factory=dict)
    first_rows: dict[str, list[int]] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)
    rejects: list[pl.DataFrame] = field(default_factory=list)

    @property
    def any_bad(self) -> bool:
        return any(self.counts.values())


@dataclass
class SpilledInput:
    """The spilled, validated input: global figures and the spill files.

    ``rows_read`` counts input rows, ``rejects`` the rows dropped by ``on_invalid="drop"``
    (with their global ``row_index`` and ``reason``), ``dates`` the valid purchases' dates (the
    snapshot rule's figures; ``first_ts``/``latest_ts`` the earliest and latest, local wall-clock
    µs, None without rows), ``rows_clean`` the valid rows.
    """

    root: Path
    options: OutOfCoreOptions
    rows_read: int
    rows_clean: int
    rejects: pl.DataFrame
    has_amount: bool
    has_order: bool
    time_zone: str | None
    dates: PurchaseDates
    partitions: list[_Partition]
    empty: pl.DataFrame

    @property
    def first_ts(self) -> int | None:
        """The earliest valid purchase (local wall-clock µs), None without rows."""
        return self.dates.first_us

    @property
    def latest_ts(self) -> int | None:
        """The latest valid purchase (local wall-clock µs), None without rows."""
        return self.dates.latest_us

    def groups(self) -> Iterator[PreparedTransactions]:
        """:meth:`parts`, or one empty frame of the core's columns when no row is valid."""
        if not self.partitions:
            yield self._prepared(self.empty)
            return
        yield from self.parts()

    def parts(self, stage: str = "scoring") -> Iterator[PreparedTransactions]:
        """The spilled rows as prepared frames, a group of whole spill files at a time, each
        within the memory budget (oversized files are split again first)."""
        budget = self.options.group_budget
        ready = self.partitions = self._fitting(self.partitions, budget)
        total = len(ready)
        done = 0
        batch: list[_Partition] = []
        held = 0
        for part in ready:
            if batch and held + part.bytes > budget:
                yield self._read(batch)
                done += len(batch)
                self._report(stage, done, total)
                batch, held = [], 0
            batch.append(part)
            held += part.bytes
        if batch:
            yield self._read(batch)
            done += len(batch)
            self._report(stage, done, total)

    def merge_orders_latest(self) -> None:
        """With an order column a purchase is dated at its first row, so the latest purchase
        (the default ``as_of``) and the dates the snapshot rule counts (one per purchase, as in
        memory) are known only after merging orders: one more pass over the spill files counts
        them."""
        dates = PurchaseDates()
        for prepared in self.parts("dating orders"):
            dates.add(prepared.frame)
        self.dates = dates

    def _fitting(self, parts: list[_Partition], budget: int) -> list[_Partition]:
        fitting: list[_Partition] = []
        for part in parts:
            if part.bytes <= budget or part.level >= MAX_SPLIT_LEVEL or part.rows < 2:
                fitting.append(part)
                continue
            count = min(MAX_PARTITIONS, max(2, math.ceil(2 * part.bytes / budget)))
            log.info("splitting %s (%d MB) into %d files", part.path.name, part.bytes >> 20, count)
            writer = _PartitionWriter(self.root, f"{part.path.stem}s", count, part.level + 1)
            try:
                import pyarrow.ipc as pa_ipc

                with pa_ipc.open_stream(str(part.path)) as reader:
                    for batch in reader:
                        frame = pl.DataFrame(pl.from_arrow(batch))
                        _check_disk(self.root, int(frame.estimated_size()), "a split spill file")
                        writer.write(frame)
            finally:
                pieces = writer.close()
            part.path.unlink()
            fitting.extend(self._fitting(pieces, budget))
        return fitting

    def _read(self, parts: list[_Partition]) -> PreparedTransactions:
        import pyarrow.ipc as pa_ipc

        frames = []
        for part in parts:
            with pa_ipc.open_stream(str(part.path)) as reader:
                frames.append(pl.DataFrame(pl.from_arrow(reader.read_all())))
        frame = pl.concat(frames, how="vertical", rechunk=True)
        del frames
        return self._prepared(frame)

    def _prepared(self, frame: pl.DataFrame) -> PreparedTransactions:
        if self.has_order:
            frame = merge_orders(frame).rechunk()
        return PreparedTransactions(
            frame=frame,
            rows_read=frame.height,
            rejects=self.rejects.clear(),
            has_amount=self.has_amount,
            time_zone=self.time_zone,
        )

    def _report(self, stage: str, done: int, total: int | None) -> None:
        if self.options.progress is not None:
            self.options.progress(stage, done, total)


def _source(
    data: Any, batch_rows: int, plan_columns: dict[str, Any]
) -> tuple[pl.Schema, Callable[[list[str]], Iterator[pl.DataFrame]]]:
    """The input's schema and a function giving its batches of some columns, in input order
    (files opened as transactions: :func:`~winback._io.sources.open_transactions`)."""
    import pyarrow as pa

    if isinstance(data, pa.RecordBatchReader) or (
        hasattr(data, "__arrow_c_stream__")
        and not isinstance(data, pl.DataFrame | pl.LazyFrame | pa.Table)
        and not type(data).__module__.startswith(("pandas", "duckdb"))
    ):
        reader = (
            data
            if isinstance(data, pa.RecordBatchReader)
            else pa.RecordBatchReader.from_stream(data)
        )
        schema = pl.DataFrame(pl.from_arrow(reader.schema.empty_table())).schema

        def reader_batches(columns: list[str]) -> Iterator[pl.DataFrame]:
            for batch in reader:
                yield pl.DataFrame(pl.from_arrow(batch.select(columns)))

        return schema, reader_batches
    names = ("customer_col", "time_col", "amount_col", "order_col")
    frame = open_transactions(
        data,
        customer_col=plan_columns["customer_col"],
        time_col=plan_columns["time_col"],
        columns=[plan_columns[n] for n in names if plan_columns[n] is not None],
        numeric=[plan_columns["amount_col"]] if plan_columns["amount_col"] else [],
    )
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = read_schema(lazy)

    def lazy_batches(columns: list[str]) -> Iterator[pl.DataFrame]:
        yield from lazy.select(columns).collect_batches(chunk_size=batch_rows)

    return schema, lazy_batches


def _partition_count(size: InputSize | None, options: OutOfCoreOptions) -> int:
    if size is None:
        return UNKNOWN_SIZE_PARTITIONS
    # Twice what fits, so that hash imbalance rarely makes a file outgrow the budget.
    needed = math.ceil(2 * size.prepared_bytes / options.group_budget)
    return min(MAX_PARTITIONS, max(1, needed))


@contextmanager
def spill_input(
    data: Any,
    options: OutOfCoreOptions,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> Iterator[SpilledInput]:
    """Streams, validates and partitions the input into spill files (see the module docstring);
    the files are removed when the block ends, however it ends.

    Bad rows with ``on_invalid="raise"`` raise the in-memory path's
    :class:`~winback.WinbackInputError` (global row indices) after the whole input is read; a
    refused column (:class:`~winback._io.hygiene.ReadPlan`) raises its error as soon as it is
    settled, whatever ``on_invalid`` says.
    """
    check_on_invalid(on_invalid)
    check_id_type(id_type)
    check_time_format(time_format)
    columns = [c for c in (customer_col, time_col, amount_col, order_col) if c is not None]
    size = estimate_input_size(data, columns)
    parent = options.spill_dir
    if parent is not None:
        if parent.exists() and not parent.is_dir():
            raise WinbackConfigError(f"spill_dir={str(parent)!r} is not a directory")
        parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="winback-spill-", dir=parent))
    try:
        if size is not None:
            _check_disk(root, size.prepared_bytes, "the input")
        plan_columns = {
            "customer_col": customer_col,
            "time_col": time_col,
            "amount_col": amount_col,
            "order_col": order_col,
            "tz": tz,
            "time_format": time_format,
            "id_type": id_type,
        }
        spilled = _partition(data, options, root, size, plan_columns, on_invalid)
        if spilled.has_order:
            spilled.merge_orders_latest()
        yield spilled
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _partition(
    data: Any,
    options: OutOfCoreOptions,
    root: Path,
    size: InputSize | None,
    plan_columns: dict[str, Any],
    on_invalid: OnInvalid,
) -> SpilledInput:
    schema, batches = _source(data, options.batch_rows, plan_columns)
    plan = plan_read(schema, **plan_columns)
    flags = plan.flags
    refusals = RefusalTally(plan)
    count = _partition_count(size, options)
    log.info("partitioning into %d spill files under %s", count, root)
    writer = _PartitionWriter(root, "part", count, level=0)
    hygiene = _Hygiene(counts=dict.fromkeys(flags, 0), first_rows={f: [] for f in flags})
    rows_read = rows_clean = 0
    dates = PurchaseDates()
    spilled_since_check = 0
    total_rows = None if size is None else size.rows
    progress = options.progress
    try:
        for raw in batches(plan.used):
            try:
                prepared = raw.select(*plan.exprs, *plan.checks, *plan.refusals)
            except pl.exceptions.PolarsError as exc:
                raise unreadable_columns_error(plan.used, exc) from exc
            if plan.refusals:
                refusals.add(raw, prepared, rows_read)
                if refusals.settled:
                    break
                if refusals.any:  # refused: only its values are still needed
                    rows_read += raw.height
                    continue
                prepared = prepared.drop(plan.refusal_flags)
            clean = _screen(raw, prepared, plan, flags, hygiene, rows_read, on_invalid)
            rows_read += raw.height
            del raw, prepared
            if clean.height:
                clean = clean.with_columns(pl.col("ts").cast(pl.Int64))
                if "order" in clean.columns and isinstance(
                    clean.schema["order"], pl.Categorical | pl.Enum
                ):
                    clean = clean.with_columns(pl.col("order").cast(pl.String))
                dates.add(clean)
                rows_clean += clean.height
                if not (on_invalid == "raise" and hygiene.any_bad):
                    batch_bytes = int(clean.estimated_size())
                    spilled_since_check += batch_bytes
                    if spilled_since_check >= min(256 << 20, options.group_budget) or (
                        size is None and spilled_since_check == batch_bytes
                    ):
                        _check_disk(root, 2 * batch_bytes, "the input")
                        spilled_since_check = 0
                    writer.write(clean)
            if progress is not None:
                progress("partitioning", rows_read, total_rows)
    finally:
        partitions = writer.close()
    refused = refusals.error()
    if refused is not None:
        raise refused
    if on_invalid == "raise" and hygiene.any_bad:
        raise invalid_rows_error(plan, hygiene.counts, hygiene.first_rows, hygiene.examples)
    empty = pl.DataFrame(schema={c: schema[c] for c in plan.used})
    rejects = pl.concat(hygiene.rejects) if hygiene.rejects else empty_rejects(empty)
    empty_core = empty.select(plan.exprs).with_columns(pl.col("ts").cast(pl.Int64))
    log.info("spilled %d of %d rows into %d files", rows_clean, rows_read, len(partitions))
    return SpilledInput(
        root=root,
        options=options,
        rows_read=rows_read,
        rows_clean=rows_clean,
        rejects=rejects,
        has_amount=plan.has_amount,
        has_order=plan_columns["order_col"] is not None,
        time_zone=plan.time_zone,
        dates=dates,
        partitions=partitions,
        empty=empty_core,
    )


def _screen(
    raw: pl.DataFrame,
    prepared: pl.DataFrame,
    plan: ReadPlan,
    flags: list[str],
    hygiene: _Hygiene,
    offset: int,
    on_invalid: OnInvalid,
) -> pl.DataFrame:
    """Tallies a batch's bad rows (at global row ``offset``) and returns its valid rows."""
    bad_counts = prepared.select(pl.col(flags).sum()).row(0, named=True)
    if not any(bad_counts.values()):
        return prepared.drop(flags)
    for flag, bad in bad_counts.items():
        if not bad:
            continue
        hygiene.counts[flag] += bad
        listed = hygiene.first_rows[flag]
        if len(listed) < 5:
            local = prepared.with_row_index("row_index").filter(pl.col(flag))
            indices = local.get_column("row_index").head(5 - len(listed)).to_list()
            if not listed and flag in plan.hints:
                hygiene.examples[flag] = raw.get_column(plan.reasons[flag][0])[indices[0]]
            listed.extend(offset + i for i in indices)
    bad_mask = prepared.select(pl.any_horizontal(flags).alias("bad")).get_column("bad")
    if on_invalid == "drop":
        hygiene.rejects.append(
            raw.with_row_index("row_index", offset=offset)
            .with_columns(prepared.select(reject_reason(plan, flags)).to_series())
            .filter(bad_mask)
        )
    return prepared.filter(~bad_mask).drop(flags)


# --------------------------------------------------------------------------------------------
# Results


class ResultSink:
    """Collects per-group results: into one frame sorted by ``customer_id`` (``output`` None),
    or appended to a Parquet/CSV file as they come (sorted within each group only).

    A file is written under a temporary name beside ``output`` and renamed when complete; on
    failure it is removed.
    """

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.rows = 0
        self._frames: list[pl.DataFrame] = []
        self._partial: Path | None = None
        self._parquet: Any = None
        self._csv: Any = None
        if output is not None:
            suffix = output.suffix.lower()
            if suffix not in (".parquet", ".pq", ".csv"):
                raise WinbackConfigError(
                    f"cannot write {str(output)!r}: use a .parquet or .csv file name"
                )
            output.parent.mkdir(parents=True, exist_ok=True)
            self._partial = output.with_name(f".{output.name}.partial")

    def add(self, frame: pl.DataFrame) -> None:
        """Adds one group's results."""
        self.rows += frame.height
        if self.output is None:
            self._frames.append(frame)
            return
        assert self._partial is not None
        if self.output.suffix.lower() == ".csv":
            if self._csv is None:
                self._csv = open(self._partial, "wb")  # noqa: SIM115 (closed in finish/abort)
                frame.write_csv(self._csv, include_header=True)
            else:
                frame.write_csv(self._csv, include_header=False)
            return
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self._partial), table.schema)
        self._parquet.write_table(table)

    def finish(self, empty: pl.DataFrame) -> pl.DataFrame | None:
        """The sorted frame (``empty`` when nothing came), or None after completing the file."""
        if self.output is None:
            if not self._frames:
                return empty
            frame = pl.concat(self._frames, how="vertical", rechunk=True)
            self._frames.clear()
            return frame.sort("customer_id")
        if self._parquet is None and self._csv is None:
            self.add(empty)
        self._close()
        assert self._partial is not None
        os.replace(self._partial, self.output)
        return None

    def abort(self) -> None:
        """Drops what was written."""
        self._frames.clear()
        self._close()
        if self._partial is not None:
            self._partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._csv is not None:
            self._csv.close()
            self._csv = None
