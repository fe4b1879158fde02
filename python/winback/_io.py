"""The input edge: any supported container or file -> one validated Polars frame (SPEC §1).

Everything that reaches the Rust core passes through :func:`read_transactions`, which
- turns Polars/pandas/PyArrow/DuckDB data or Parquet/CSV/IPC paths into a Polars frame,
- checks the columns and their types, and names the fix when they are wrong,
- applies the hygiene policy (``on_invalid="raise" | "drop"``) with a rejects table,
- converts timestamps to local wall-clock microseconds (so buckets follow the local calendar).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from winback.errors import WinbackConfigError, WinbackInputError

__all__ = [
    "Prepared",
    "ReadPlan",
    "as_of_to_micros",
    "check_num_threads",
    "customer_ids",
    "describe_moment",
    "micros_to_datetime",
    "parse_resolution",
    "read_transactions",
    "snapshot_end",
    "snapshot_end_at",
]

OnInvalid = Literal["raise", "drop"]
MICROS_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1)
_MAX_LISTED_ROWS = 5

_UNIT_MICROS = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": MICROS_PER_DAY,
    "w": 7 * MICROS_PER_DAY,
}
_RESOLUTION_RE = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*$")


def parse_resolution(resolution: str | timedelta) -> int:
    """Occasion bucket width in µs, from ``"1d"``, ``"12h"``, ``"7d"``, ``"1w"``… (SPEC §1).

    Units: ``us``, ``ms``, ``s``, ``m`` (minutes), ``h``, ``d``, ``w``. A ``timedelta`` works too.
    """
    if isinstance(resolution, timedelta):
        micros = (resolution.days * 86_400 + resolution.seconds) * 1_000_000
        micros += resolution.microseconds
    else:
        match = _RESOLUTION_RE.match(str(resolution).lower())
        if match is None:
            raise WinbackConfigError(
                f"resolution={resolution!r} is not a duration; use a positive count and a unit, "
                "e.g. '1d', '12h', '30m', '1s' or '1w'"
            )
        micros = int(match.group(1)) * _UNIT_MICROS[match.group(2)]
    if micros <= 0:
        raise WinbackConfigError(f"resolution={resolution!r} must be a positive duration")
    return micros


@dataclass(frozen=True)
class Prepared:
    """Transactions ready for the core: ``customer`` (Int64 or String), ``ts`` (Int64 local
    wall-clock µs since the epoch), optionally ``amount`` (Float64)."""

    frame: pl.DataFrame
    rows_read: int
    rejects: pl.DataFrame
    has_amount: bool
    time_zone: str | None

    @property
    def rows_rejected(self) -> int:
        return self.rejects.height


def _is_pathlike(data: object) -> bool:
    return isinstance(data, str | os.PathLike)


def _expand_paths(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    items: list[Any] = [data] if _is_pathlike(data) else list(data)  # type: ignore[arg-type]
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise WinbackInputError(f"no file matches the pattern {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            path = Path(text)
            if not path.exists():
                raise WinbackInputError(f"input file {text!r} does not exist")
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and _suffix(p))
                if not found:
                    raise WinbackInputError(f"directory {text!r} holds no Parquet/CSV/IPC files")
                paths.extend(found)
            else:
                paths.append(path)
    return paths


def _suffix(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    for kind, names in (
        ("parquet", {".parquet", ".pq"}),
        ("csv", {".csv", ".tsv", ".txt"}),
        ("ipc", {".arrow", ".ipc", ".feather"}),
    ):
        if names.intersection(suffixes):
            return kind
    return None


def _scan_files(paths: list[Path]) -> pl.LazyFrame:
    frames = []
    for path in paths:
        kind = _suffix(path)
        if kind == "parquet":
            frames.append(pl.scan_parquet(path))
        elif kind == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frames.append(pl.scan_csv(path, separator=sep, try_parse_dates=True))
        elif kind == "ipc":
            frames.append(pl.scan_ipc(path))
        else:
            raise WinbackInputError(
                f"cannot read {str(path)!r}: use a .parquet, .csv/.tsv or .arrow/.ipc file"
            )
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def to_polars(data: Any) -> pl.DataFrame | pl.LazyFrame:
    """Any supported input as a Polars frame (lazy for files, so only used columns are read)."""
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data
    if _is_pathlike(data) or (
        isinstance(data, list | tuple) and data and all(_is_pathlike(d) for d in data)
    ):
        return _scan_files(_expand_paths(data))
    module = type(data).__module__
    if module.startswith("pyspark"):
        raise WinbackInputError(
            "a PySpark DataFrame would be pulled whole to the driver; use the Spark path "
            "(winback.spark) to score it on the cluster, or convert a sample with .toArrow() first"
        )
    if module.startswith("pandas"):
        return pl.from_pandas(data)
    if module.startswith("duckdb"):
        return pl.DataFrame(data.arrow())
    if type(data).__name__ == "RecordBatchReader" and hasattr(data, "read_all"):
        return pl.DataFrame(data.read_all())
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return pl.DataFrame(data)
    raise WinbackInputError(
        f"unsupported input of type {type(data).__name__}: pass a Polars/pandas DataFrame, a "
        "PyArrow "
        "table or record-batch reader, a DuckDB relation, or a path/glob of Parquet/CSV/IPC files"
    )


def _check_columns(schema: pl.Schema, wanted: dict[str, str | None]) -> None:
    for role, name in wanted.items():
        if name is not None and name not in schema:
            available = ", ".join(repr(c) for c in schema.names()[:20])
            raise WinbackInputError(
                f"column {name!r} (the {role}) is not in the input; available columns: "
                f"{available}. Pass {role}_col='...' to name it."
            )


def _customer_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return pl.col(name).cast(pl.String)
    raise WinbackInputError(
        f"column {name!r} (the customer id) has type {dtype}; use integer or string ids"
    )


def _time_expr(name: str, dtype: pl.DataType, tz: str | None) -> tuple[pl.Expr, str | None]:
    """Expression giving local wall-clock datetimes (µs), and the time zone used."""
    col = pl.col(name)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")), None
    if isinstance(dtype, pl.Datetime):
        zone = tz or dtype.time_zone
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone(zone or "UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("us")), zone
    if dtype == pl.String:
        return col.str.to_datetime(strict=False, time_unit="us"), tz
    raise WinbackInputError(
        f"column {name!r} (the purchase time) has type {dtype}; use a date or datetime column "
        "(or ISO-8601 strings). Integers are ambiguous: convert them, e.g. "
        "pl.from_epoch(col, time_unit='s')."
    )


def _describe_rows(indices: list[int], total: int) -> str:
    shown = ", ".join(str(i) for i in indices[:_MAX_LISTED_ROWS])
    more = ", …" if total > _MAX_LISTED_ROWS else ""
    return f"rows {shown}{more}"


@dataclass(frozen=True)
class ReadPlan:
    """How to turn input columns into the core's columns and the hygiene flags (SPEC §1).

    ``used`` are the input columns read; ``exprs`` give ``customer``, ``ts`` (local wall-clock
    datetimes, µs), optionally ``amount`` and ``order``; ``checks`` give one boolean column per
    hygiene rule, named like ``__null_customer``, explained by ``reasons`` (column, what).
    """

    used: list[str]
    exprs: list[pl.Expr]
    checks: list[pl.Expr]
    reasons: dict[str, tuple[str, str]]
    time_zone: str | None
    has_amount: bool


def plan_read(
    schema: pl.Schema,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
) -> ReadPlan:
    """Checks the input's columns and types and plans the conversion (see :class:`ReadPlan`)."""
    if amount_col == "amount" and "amount" not in schema:
        amount_col = None
    _check_columns(
        schema,
        {"customer": customer_col, "time": time_col, "amount": amount_col, "order": order_col},
    )
    time_expr, zone = _time_expr(time_col, schema[time_col], tz)
    exprs = [
        _customer_expr(customer_col, schema[customer_col]).alias("customer"),
        time_expr.alias("ts"),
    ]
    checks = [
        pl.col(customer_col).is_null().alias("__null_customer"),
        pl.col(time_col).is_null().alias("__null_ts"),
    ]
    if schema[time_col] == pl.String:
        checks.append((pl.col(time_col).is_not_null() & time_expr.is_null()).alias("__bad_ts"))
    reasons = {
        "__null_customer": (customer_col, "null customer id"),
        "__null_ts": (time_col, "null timestamp"),
        "__bad_ts": (time_col, "unparseable timestamp"),
    }
    if amount_col is not None:
        if not schema[amount_col].is_numeric():
            raise WinbackInputError(
                f"column {amount_col!r} (the amount) has type {schema[amount_col]}; "
                "use a numeric column"
            )
        amount = pl.col(amount_col).cast(pl.Float64)
        exprs.append(amount.alias("amount"))
        checks.append(amount.is_null().alias("__null_amount"))
        checks.append((amount.is_not_null() & ~amount.is_finite()).alias("__bad_amount"))
        reasons["__null_amount"] = (amount_col, "null amount")
        reasons["__bad_amount"] = (amount_col, "NaN or infinite amount")
    if order_col is not None:
        exprs.append(pl.col(order_col).alias("order"))
    originals = [c for c in dict.fromkeys([customer_col, time_col, amount_col]) if c is not None]
    return ReadPlan(
        used=[*originals, *([order_col] if order_col else [])],
        exprs=exprs,
        checks=checks,
        reasons=reasons,
        time_zone=zone,
        has_amount=amount_col is not None,
    )


def invalid_rows_error(
    plan: ReadPlan, counts: dict[str, int], first_rows: dict[str, list[int]]
) -> WinbackInputError:
    """The ``on_invalid="raise"`` error: per broken rule its column, row count and first row
    indices (0-based positions in the whole input)."""
    problems = []
    for flag, count in counts.items():
        if count:
            column, what = plan.reasons[flag]
            problems.append(
                f"column {column!r}: {count} rows with {what} "
                f"({_describe_rows(first_rows[flag], count)})"
            )
    return WinbackInputError(
        "invalid input rows — "
        + "; ".join(problems)
        + ". Fix the data, or pass on_invalid='drop' to drop them and get them back "
        "with their reasons in the run's info (return_info=True)."
    )


def reject_reason(plan: ReadPlan, flags: Sequence[str]) -> pl.Expr:
    """The ``reason`` of a rejected row: the first broken rule, in the order of ``flags``."""
    reason: Any = pl.when(pl.col(flags[0])).then(pl.lit(plan.reasons[flags[0]][1]))
    for flag in flags[1:]:
        reason = reason.when(pl.col(flag)).then(pl.lit(plan.reasons[flag][1]))
    return reason.otherwise(None).alias("reason")


def check_on_invalid(on_invalid: str) -> None:
    """``on_invalid`` must be ``"raise"`` or ``"drop"``."""
    if on_invalid not in ("raise", "drop"):
        raise WinbackConfigError(f"on_invalid={on_invalid!r} must be 'raise' or 'drop'")


def read_schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    """The input's schema; an unreadable input is a :class:`WinbackInputError`."""
    try:
        return frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise WinbackInputError(f"could not read the input: {_first_line(exc)}") from exc


def unreadable_columns_error(used: list[str], exc: BaseException) -> WinbackInputError:
    """The error for input columns that could not be read or converted."""
    return WinbackInputError(
        f"could not read columns {used} of the input: {_first_line(exc)}. Check the file "
        "and the column types (ids: int64 integers or strings; times: dates or datetimes)."
    )


def merge_orders(clean: pl.DataFrame, has_amount: bool) -> pl.DataFrame:
    """Rows with the same (customer, order) as one purchase dated at its first row, amounts
    summed; drops the ``order`` column."""
    aggs = [pl.col("ts").min()]
    if has_amount:
        aggs.append(pl.col("amount").sum())
    return clean.group_by("customer", "order", maintain_order=True).agg(aggs).drop("order")


def read_transactions(
    data: Any,
    *,
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str | None = "amount",
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = "raise",
) -> Prepared:
    """Reads and validates transactions (SPEC §1) into the core's columns.

    ``amount_col`` may be absent from the input when it is the default ``"amount"`` (silence
    scoring needs no amounts); naming another column that does not exist is an error.
    Rows with the same (customer, ``order_col``) are one purchase dated at its first row.
    """
    check_on_invalid(on_invalid)
    frame = to_polars(data)
    schema = read_schema(frame)
    plan = plan_read(
        schema,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
    )
    used = plan.used
    try:
        if isinstance(frame, pl.LazyFrame):
            collected = frame.select(used).collect(engine="streaming")
        else:
            collected = frame.select(used)
        prepared = collected.select(*plan.exprs, *plan.checks)
    except pl.exceptions.PolarsError as exc:
        raise unreadable_columns_error(used, exc) from exc
    flags = [c for c in prepared.columns if c.startswith("__")]
    bad_any = pl.any_horizontal(flags)
    bad_counts = prepared.select(pl.col(flags).sum()).row(0, named=True)
    if sum(bad_counts.values()) == 0:
        rejects = empty_rejects(collected)
        clean = prepared.drop(flags)
    else:
        indexed = prepared.with_row_index("row_index")
        if on_invalid == "raise":
            first_rows = {
                flag: indexed.filter(pl.col(flag)).get_column("row_index").head(5).to_list()
                for flag, count in bad_counts.items()
                if count
            }
            raise invalid_rows_error(plan, bad_counts, first_rows)
        bad_mask = prepared.select(bad_any.alias("bad")).get_column("bad")
        rejects = (
            collected.with_row_index("row_index")
            .with_columns(prepared.select(reject_reason(plan, flags)).to_series())
            .filter(bad_mask)
        )
        clean = prepared.filter(~bad_mask).drop(flags)
    if order_col is not None:
        clean = merge_orders(clean, plan.has_amount)
    clean = clean.with_columns(pl.col("ts").cast(pl.Int64))
    return Prepared(
        frame=clean.rechunk(),
        rows_read=collected.height,
        rejects=rejects,
        has_amount=plan.has_amount,
        time_zone=plan.time_zone,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def empty_rejects(collected: pl.DataFrame) -> pl.DataFrame:
    """A rejects table with no rows: the input's columns, ``row_index`` and ``reason``."""
    return (
        collected.clear()
        .with_row_index("row_index")
        .with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    )


def describe_moment(moment: datetime) -> str:
    """ISO text of a snapshot time; the end of a day (a date's cut-off) reads as that date."""
    if (moment + timedelta(microseconds=1)).time() == time() or moment.time() == time():
        return moment.date().isoformat()
    return moment.isoformat()


def as_of_to_micros(as_of: date | datetime | str, time_zone: str | None) -> int:
    """The snapshot cut-off in local wall-clock µs: rows at or before it are in the snapshot.

    A ``date`` (or ``"YYYY-MM-DD"``) means the end of that day, so the day's purchases count. A
    tz-aware datetime is converted to the data's time zone; a naive one is taken as local time.
    """
    if isinstance(as_of, str):
        text = as_of.strip()
        try:
            as_of = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError as exc:
            raise WinbackConfigError(
                f"as_of={text!r} is not an ISO date or datetime (e.g. '2024-06-30')"
            ) from exc
    if isinstance(as_of, datetime):
        if as_of.tzinfo is not None:
            if time_zone is not None:
                from zoneinfo import ZoneInfo

                as_of = as_of.astimezone(ZoneInfo(time_zone))
            as_of = as_of.replace(tzinfo=None)
        delta = as_of - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(as_of, date):
        start = datetime.combine(as_of, time())
        return as_of_to_micros(start, None) + MICROS_PER_DAY - 1
    raise WinbackConfigError(
        f"as_of must be a date, datetime or ISO string, not {type(as_of).__name__}"
    )


def micros_to_datetime(micros: int) -> datetime:
    """Local wall-clock µs since the epoch as a naive datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def snapshot_end(prepared: Prepared, as_of: date | datetime | str | None) -> int:
    """The snapshot cut-off in local wall-clock µs: ``as_of`` (see :func:`as_of_to_micros`), by
    default the latest purchase; 0 for empty input without ``as_of``."""
    latest = int(prepared.frame.get_column("ts").max()) if prepared.frame.height else None  # type: ignore[arg-type]
    return snapshot_end_at(as_of, prepared.time_zone, latest)


def snapshot_end_at(
    as_of: date | datetime | str | None, time_zone: str | None, latest_us: int | None
) -> int:
    """:func:`snapshot_end` from the latest purchase time alone (local wall-clock µs, None for
    no rows): what a streaming pass over the input keeps."""
    if as_of is not None:
        return as_of_to_micros(as_of, time_zone)
    return 0 if latest_us is None else latest_us


def check_num_threads(num_threads: int | None) -> None:
    """``num_threads`` must be None (the default pool) or at least 1."""
    if num_threads is not None and num_threads < 1:
        raise WinbackConfigError(f"num_threads={num_threads} must be at least 1")


def customer_ids(kernel_output: pl.DataFrame) -> pl.Series:
    """The ``customer_id`` column of a kernel's output: Int64, or String for string ids."""
    customers = kernel_output.get_column("customer_id")
    return customers if customers.dtype == pl.Int64 else customers.cast(pl.String)
