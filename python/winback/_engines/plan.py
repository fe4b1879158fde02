"""Planning on the driver, shared by the Spark and Dask engines (docs/methods.md#scale).

Before any task runs, an engine's ``score`` and ``summary`` check their arguments as the local API
checks them, pick the columns to ship, read the input's empty schema through the local reader
(its column and type errors, the customer id type, the time zone), resolve the settings that
depend on all the data (the default ``as_of``; the summary's window and first purchase) and
declare the output schema. All of that is here; an engine supplies only its own calls, as a
:class:`Source`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import polars as pl
import pyarrow as pa

from winback import _io
from winback._engines.batches import (
    GlobalWindow,
    ReadSettings,
    ScoreSettings,
    SummarySettings,
    Tally,
    combine_tallies,
    customer_arrow_type,
    naive,
    silence_schema,
    summary_schema,
)
from winback._options import AMOUNT_COL, ID_TYPE, TIME_FORMAT, AsOf, IdType, OnInvalid, TimeUnit
from winback.errors import WinbackConfigError
from winback.silence import check_parameters
from winback.summary import UNITS, summary

__all__ = [
    "Plan",
    "Source",
    "data_bounds_of",
    "read_input",
    "read_plan",
    "resolution_text",
    "resolve_as_of",
    "resolve_window",
    "score_plan",
    "summary_plan",
]

S = TypeVar("S", ScoreSettings, SummarySettings)


@dataclass(frozen=True)
class Source:
    """What planning needs from an engine's DataFrame: its engine's own calls."""

    #: Imports the engine, or raises an ImportError naming the extra to install.
    require: Callable[[], object]
    #: The DataFrame's column names (asked after ``require``).
    columns: Callable[[], Sequence[str]]
    #: An empty Arrow table of these columns, in the DataFrame's types.
    empty: Callable[[list[str]], pa.Table]
    #: The :func:`~winback._engines.batches.combine_bounds` of all the data (one engine job).
    bounds: Callable[[ReadSettings, list[str]], dict[str, Any]]
    #: The :func:`~winback._engines.batches.read_tally` of every chunk of the input in its own
    #: row order, as ``(partition, start within it, rows, tally)`` (one engine job).
    tally: Callable[[ReadSettings, list[str]], list[tuple[int, int, int, dict[str, Any]]]]


@dataclass(frozen=True)
class Plan(Generic[S]):
    """What an engine's tasks run with: how to read, the columns to ship, the settings of every
    chunk and the declared output schema."""

    read: ReadSettings
    used: list[str]
    settings: S
    schema: pa.Schema
    #: The input's tally when it was read on the driver (``on_invalid="raise"``, or rejects
    #: asked for): its partitions' offsets number the rejects.
    tally: Tally | None = None


def resolution_text(resolution: str | timedelta) -> str:
    """The resolution as the settings carry it: whole microseconds (``"86400000000us"``)."""
    return f"{_io.parse_resolution(resolution)}us"


def read_plan(
    source: Source,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    time_format: str | None,
    id_type: IdType,
) -> tuple[ReadSettings, list[str], _io.PreparedTransactions]:
    """Checks the columns before any job (an empty read through the local reader) and returns
    the read settings, the columns to ship and the empty prepared frame (customer type, time
    zone)."""
    source.require()
    columns = source.columns()
    if amount_col == AMOUNT_COL and AMOUNT_COL not in columns:
        amount_col = None
    read = ReadSettings(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
    wanted = [c for c in (customer_col, time_col, amount_col, order_col) if c is not None]
    used = list(dict.fromkeys(wanted))
    if any(c not in columns for c in used):  # raises, naming the missing column
        read.read(pa.table({str(c): pa.array([], pa.int64()) for c in columns}))
    return read, used, read.read(source.empty(used))


def read_input(source: Source, read: ReadSettings, used: list[str], rejects: bool) -> Tally | None:
    """Reads the whole input once in its own row order when row numbers matter: under
    ``on_invalid="raise"`` (so that invalid rows raise here, on the driver, with the local
    API's message and whole-input row numbers, docs/methods.md#hygiene) and when the rejects
    are asked for (their ``row_index``). None otherwise."""
    if read.on_invalid == "raise" or rejects:
        plan, _ = read.plan(source.empty(used))
        return combine_tallies(source.tally(read, used), plan, read.on_invalid)
    return None


def data_bounds_of(
    source: Source, read: ReadSettings, used: list[str], tally: Tally | None
) -> dict[str, Any]:
    """The input's bounds: the tally's when it was read and no ``order_col`` changes the
    dating (an order is dated at its first row after the customer shuffle), else one job."""
    if tally is not None and read.order_col is None:
        return dict(tally.bounds)
    return source.bounds(read, used)


def score_plan(
    source: Source,
    *,
    as_of: AsOf | None,
    resolution: str | timedelta,
    min_occasions: int,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    num_threads: int | None,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
    rejects: bool = False,
) -> Plan[ScoreSettings]:
    """The plan of an engine's ``score`` (:func:`winback.silence` on every chunk). Without
    ``as_of`` the source's bounds give the latest purchase, so every task scores at the same
    snapshot."""
    resolution_us, trf, s = check_parameters(
        resolution, min_occasions, trf_cuts, s_cuts, num_threads
    )
    read, used, empty = read_plan(
        source,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
    tally = read_input(source, read, used, rejects)
    # with an explicit as_of the bounds cost nothing when the input was read on the driver
    # anyway, and they let the local rule refuse an as_of before all the data
    if as_of is None or (tally is not None and read.order_col is None):
        bounds = data_bounds_of(source, read, used, tally)
    else:
        bounds = {"time_zone": empty.time_zone, "max_ts_us": None}
    settings = ScoreSettings(
        **asdict(read),
        as_of_us=resolve_as_of(bounds, as_of),
        resolution=f"{resolution_us}us",
        min_occasions=min_occasions,
        trf_cuts=tuple(trf),
        s_cuts=tuple(s),
        num_threads=num_threads,
    )
    schema = silence_schema(
        customer_arrow_type(empty.frame.schema["customer"]),
        whole_days=resolution_us % _io.MICROS_PER_DAY == 0,
    )
    return Plan(read, used, settings, schema, tally)


def summary_plan(
    source: Source,
    *,
    as_of: AsOf | None,
    unit: TimeUnit,
    calibration_end: AsOf | None,
    holdout_end: AsOf | None,
    resolution: str | timedelta,
    period: str,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    num_threads: int | None,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
    rejects: bool = False,
) -> Plan[SummarySettings]:
    """The plan of an engine's ``summary`` (:func:`winback.summary` on every chunk, with the
    window of all the data). The source's bounds give the default ``as_of`` and the period
    grid's anchor; configuration errors (e.g. a ``calibration_end`` before the first purchase)
    are raised here, on the driver."""
    if unit not in UNITS:
        raise WinbackConfigError(f"unit={unit!r} is not a time unit; use 'D' (days) or 'W' (weeks)")
    _io.check_num_threads(num_threads)
    resolution_us = resolution_text(resolution)
    read, used, empty = read_plan(
        source,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
    tally = read_input(source, read, used, rejects)
    bounds = data_bounds_of(source, read, used, tally)
    if bounds["time_zone"] is None:  # no valid row: the input column's zone
        bounds["time_zone"] = empty.time_zone
    window = resolve_window(
        bounds,
        as_of=as_of,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        unit=unit,
        resolution=resolution_us,
        period=period,
    )
    settings = SummarySettings(
        **asdict(read),
        window=window,
        unit=unit,
        resolution=resolution_us,
        period=period,
        num_threads=num_threads,
    )
    schema = summary_schema(
        customer_arrow_type(empty.frame.schema["customer"]),
        split=window.calibration_end_us is not None,
    )
    return Plan(read, used, settings, schema, tally)


def _in_local_time(moment: Any, zone: str | None) -> Any:
    """A cut-off as the local API would read it on data in ``zone``: tz-aware values become the
    naive local wall clock; dates, naive datetimes and ISO strings without an offset are kept as
    given (so error messages quote them as the user wrote them)."""
    aware = isinstance(moment, datetime) and moment.tzinfo is not None
    if isinstance(moment, str) and len(moment.strip()) > 10:
        try:
            aware = datetime.fromisoformat(moment.strip()).tzinfo is not None
        except ValueError:
            aware = False  # the local API reports the bad text itself
    return naive(_io.as_of_to_micros(moment, zone)) if aware else moment


def resolve_as_of(bounds: dict[str, Any], as_of: Any) -> int:
    """The snapshot of :func:`winback.silence` over all the data (local wall-clock µs), by the
    local rule (docs/methods.md#as-of): ``as_of`` in the data's time zone, else the end of the
    latest valid purchase's day, else 0 (no data). Bounds from the driver's read pass carry the
    day histogram (``dates``), so the far-future rule is the local one; bounds from an engine's
    min/max job hold only the first and latest purchase, so there only the clock applies."""
    dates = bounds.get("dates") or _io.PurchaseDates.bounds(
        bounds.get("min_ts_us"), bounds.get("max_ts_us")
    )
    return _io.snapshot_end_at(as_of, bounds["time_zone"], dates)


def resolve_window(
    bounds: dict[str, Any],
    *,
    as_of: Any,
    calibration_end: Any,
    holdout_end: Any,
    unit: TimeUnit,
    resolution: str,
    period: str,
) -> GlobalWindow:
    """The cut-offs of :func:`winback.summary` over all the data, resolved by the local API itself.

    Tz-aware cut-offs are first converted to the data's local wall clock, then the local function
    runs on two rows at the data's earliest and latest purchase: it applies the defaults and
    raises the same :class:`~winback.WinbackConfigError` as it would on all the data.
    """
    zone = bounds["time_zone"]
    if as_of is None and holdout_end is None and bounds.get("dates") is not None:
        # the default as_of's far-future rule needs the day histogram the probe lacks
        _io.snapshot_end_at(None, zone, bounds["dates"])
    micros = [m for m in (bounds["min_ts_us"], bounds["max_ts_us"]) if m is not None]
    probe = pl.DataFrame(
        {"customer": [0] * len(micros), "ts": [_io.micros_to_datetime(m) for m in micros]},
        schema={"customer": pl.Int64, "ts": pl.Datetime("us")},
    )
    _, info = summary(
        probe,
        as_of=_in_local_time(as_of, zone),
        unit=unit,
        calibration_end=_in_local_time(calibration_end, zone),
        holdout_end=_in_local_time(holdout_end, zone),
        resolution=resolution,
        period=period,
        customer_col="customer",
        time_col="ts",
        amount_col=None,
        return_info=True,
    )

    def back(moment: datetime | None) -> int | None:
        return None if moment is None else _io.as_of_to_micros(moment, None)

    as_of_us = back(info.as_of)
    end_us = back(info.holdout_end) if info.holdout_end is not None else as_of_us
    first = bounds["min_ts_us"]
    first_us = first if first is not None and end_us is not None and first <= end_us else None
    return GlobalWindow(
        as_of_us=0 if as_of_us is None else as_of_us,
        calibration_end_us=back(info.calibration_end),
        holdout_end_us=back(info.holdout_end),
        first_ts_us=first_us,
    )
