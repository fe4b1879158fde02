"""Per-customer sufficient statistics of the frequency and spend models (docs/methods.md#summary).

:func:`summary` turns transactions into the table the BTYD literature starts from: per customer
the repeat purchase count ``frequency`` (x), ``recency`` (t_x) and age ``T``, the Gamma–Gamma
inputs, an optional calibration/holdout split, and the period panel of the period NBD model.
:func:`compress_summary` reduces such a table to its distinct rows with counts, which is what the
likelihoods are summed over.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, overload

import numpy as np
import polars as pl

from winback import _io, _winback
from winback._io import spill as _spill
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ID_TYPE,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    TIME_COL,
    TIME_FORMAT,
    UNIT,
    AsOf,
    IdType,
    OnInvalid,
    TimeUnit,
)
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = [
    "HOLDOUT_COLUMNS",
    "SUMMARY_COLUMNS",
    "UNITS",
    "SummaryInfo",
    "alive_path",
    "bgbb_summary",
    "check_period",
    "compress_summary",
    "expected_cumulative_transactions",
    "period_edges",
    "summary",
]

#: Output time units of :func:`summary` and their length in µs.
UNITS = {"D": _io.MICROS_PER_DAY, "W": 7 * _io.MICROS_PER_DAY}

#: Columns of :func:`summary`, in order.
SUMMARY_COLUMNS = (
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "spend_frequency",
    "first_amount",
    "n_periods",
    "period_frequency",
)
#: Columns :func:`summary` adds after :data:`SUMMARY_COLUMNS` when ``calibration_end`` is given.
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")

_COUNT_COLUMNS = ("frequency", "spend_frequency", "n_periods", "period_frequency")
_PERIOD_RE = re.compile(r"^\s*(\d+)\s*d\s*$")


@dataclass(frozen=True)
class SummaryInfo:
    """What a summary run read, kept and rejected.

    Attributes
    ----------
    rows_read : rows in the input.
    rows_rejected : rows removed by ``on_invalid="drop"`` (see ``rejects``).
    rows_after_as_of : valid rows after the end of observation (``holdout_end`` with a
        calibration split, else ``as_of``): excluded.
    rows_used : rows that entered the summary (at or before the end of observation).
    customers : customers in the result.
    customers_born_after_calibration : customers whose first purchase is after
        ``calibration_end``: not in the result.
    rows_born_after_calibration : used rows of those customers.
    as_of, calibration_end, holdout_end : the cut-offs used (local wall clock; a date means the
        end of that day); ``calibration_end`` and ``holdout_end`` are None without a split.
    unit, resolution, period : the time unit, occasion bucket and period of the panel.
    rejects : the rejected input rows with ``row_index`` and ``reason``.
    """

    rows_read: int
    rows_rejected: int
    rows_after_as_of: int
    rows_used: int
    customers: int
    customers_born_after_calibration: int
    rows_born_after_calibration: int
    as_of: datetime | None
    calibration_end: datetime | None
    holdout_end: datetime | None
    unit: str
    resolution: str
    period: str
    rejects: pl.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for ``--json`` and logs)."""

        def moment(value: datetime | None) -> str | None:
            return None if value is None else _io.describe_moment(value)

        return {
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "rows_after_as_of": self.rows_after_as_of,
            "rows_used": self.rows_used,
            "customers": self.customers,
            "customers_born_after_calibration": self.customers_born_after_calibration,
            "rows_born_after_calibration": self.rows_born_after_calibration,
            "as_of": moment(self.as_of),
            "calibration_end": moment(self.calibration_end),
            "holdout_end": moment(self.holdout_end),
            "unit": self.unit,
            "resolution": self.resolution,
            "period": self.period,
        }


def _check_unit(unit: str) -> int:
    if unit not in UNITS:
        raise WinbackConfigError(f"unit={unit!r} is not a time unit; use 'D' (days) or 'W' (weeks)")
    return UNITS[unit]


def check_period(period: str) -> str | int:
    """``"month"``, ``"week"``, ``"quarter"``, ``"year"``, or a number of days (from ``"Nd"``)."""
    if period in ("month", "week", "quarter", "year"):
        return period
    match = _PERIOD_RE.match(str(period))
    if match is None or int(match.group(1)) < 1:
        raise WinbackConfigError(
            f"period={period!r} is not a period; use 'month', 'week', 'quarter', 'year' or a "
            "number of days such as '30d'"
        )
    return int(match.group(1))


def _period_start(moment: datetime, kind: str | int) -> datetime:
    day = datetime.combine(moment.date(), datetime.min.time())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if kind == "year":
        return day.replace(month=1, day=1)
    if kind == "week":
        return day - timedelta(days=day.weekday())
    return day


def _next_period(start: datetime, kind: str | int) -> datetime:
    if isinstance(kind, int):
        return start + timedelta(days=kind)
    if kind == "week":
        return start + timedelta(days=7)
    step = {"quarter": 3, "year": 12}.get(kind, 1)
    months = start.year * 12 + start.month - 1 + step
    return start.replace(year=months // 12, month=months % 12 + 1)


def period_edges(period: str, first_us: int, end_us: int) -> list[int]:
    """Boundaries of the complete periods of a panel (docs/methods.md#periods), local wall-clock µs.

    Period 0 is the period holding ``first_us``: the calendar month, quarter or ISO week
    (Monday 00:00) of it, or for ``"Nd"`` the N days from midnight of its day. The edges are
    the starts of periods 0, 1, … up to the last start at or before ``end_us`` (the exclusive
    end of observation), which closes the last complete period.

    >>> from datetime import datetime
    >>> from winback._io import as_of_to_micros
    >>> us = lambda d: as_of_to_micros(d, None)
    >>> edges = period_edges("month", us(datetime(2024, 1, 15)), us(datetime(2024, 4, 1)))
    >>> [str(_io.micros_to_datetime(e).date()) for e in edges]
    ['2024-01-01', '2024-02-01', '2024-03-01', '2024-04-01']
    """
    kind = check_period(period)
    edge = _period_start(_io.micros_to_datetime(first_us), kind)
    end = _io.micros_to_datetime(end_us)
    edges = []
    while edge <= end:
        edges.append(_io.as_of_to_micros(edge, None))
        edge = _next_period(edge, kind)
    return edges


@dataclass(frozen=True)
class _Window:
    """Cut-offs of a summary in local wall-clock µs; ``split`` when a calibration end is given."""

    as_of_us: int
    calibration_end_us: int
    max_time_us: int
    split: bool


def _describe(value: AsOf) -> str:
    return value if isinstance(value, str) else value.isoformat()


@dataclass(frozen=True)
class _Extent:
    """What the windows need of the data: the purchase dates (valid rows, first and latest
    purchase in local wall-clock µs, the snapshot rule's figures) and the time zone."""

    dates: _io.PurchaseDates
    time_zone: str | None

    @property
    def rows(self) -> int:
        return self.dates.rows

    @property
    def first_us(self) -> int | None:
        return self.dates.first_us

    @classmethod
    def of(cls, prepared: _io.PreparedTransactions) -> _Extent:
        return cls(_io.purchase_dates(prepared), prepared.time_zone)


def _window(
    extent: _Extent,
    as_of: AsOf | None,
    calibration_end: AsOf | None,
    holdout_end: AsOf | None,
) -> _Window:
    """Resolves and checks ``as_of``, ``calibration_end`` and ``holdout_end``."""
    zone = extent.time_zone
    if calibration_end is None:
        if holdout_end is not None:
            raise WinbackConfigError(
                "holdout_end is given without calibration_end; pass calibration_end= to split "
                "the data into calibration and holdout periods"
            )
        as_of_us = _io.snapshot_end_at(as_of, zone, extent.dates)
        return _Window(as_of_us, as_of_us, as_of_us, split=False)
    cal_us = _io.as_of_to_micros(calibration_end, zone)
    has_data = extent.rows > 0
    # as_of: as given, else holdout_end, else the latest purchase (no data: the calibration end).
    nothing_to_check = as_of is None and holdout_end is None and not has_data
    if nothing_to_check:
        as_of_us = cal_us
    else:
        as_of_us = _io.snapshot_end_at(
            holdout_end if as_of is None else as_of,
            zone,
            extent.dates,
            name="holdout_end" if as_of is None else "as_of",
        )
    hold_us = as_of_us if holdout_end is None else _io.as_of_to_micros(holdout_end, zone)
    cal_text = _describe(calibration_end)
    if as_of is not None and holdout_end is not None and hold_us > as_of_us:
        raise WinbackConfigError(
            f"holdout_end={_describe(holdout_end)} is after as_of={_describe(as_of)}; the "
            "holdout period must end within the snapshot"
        )
    if hold_us <= cal_us and not nothing_to_check:
        if holdout_end is not None:
            end = f"holdout_end={_describe(holdout_end)}"
        elif as_of is not None:
            end = f"as_of={_describe(as_of)} (the default holdout_end)"
        else:
            last = _io.describe_moment(_io.micros_to_datetime(hold_us))
            end = f"the last purchase ({last}), the default holdout_end; pass holdout_end="
        raise WinbackConfigError(f"calibration_end={cal_text} must be before {end}")
    if extent.first_us is not None:
        first_us = extent.first_us
        if first_us > cal_us:
            first = _io.describe_moment(_io.micros_to_datetime(first_us))
            raise WinbackConfigError(
                f"calibration_end={cal_text} is before the first purchase ({first}): no "
                "customer would be in the calibration period; choose a later calibration_end"
            )
    return _Window(as_of_us, cal_us, hold_us, split=True)


def _bucket(t_us: int, resolution_us: int, origin_us: int = 0) -> int:
    """The start of the bucket holding ``t_us``: buckets start at origin + k · width."""
    return t_us - (t_us - origin_us) % resolution_us


def _panel_edges(
    extent: _Extent, window: _Window, resolution_us: int, period: str, origin_us: int = 0
) -> list[int]:
    """Edges of the complete periods up to the calibration end, from the period of the data's
    first occasion (its bucket start) at or before the end of observation."""
    # The earliest row at or before the end is the earliest row, if that one is.
    first = extent.first_us
    if first is None or first > window.max_time_us:
        return []
    start = _bucket(first, resolution_us, origin_us)
    return period_edges(period, start, window.calibration_end_us + 1)


def _kernel_summary(
    frame: pl.DataFrame,
    window: _Window,
    *,
    resolution_us: int,
    origin_us: int,
    unit_us: int,
    edges: list[int],
    num_threads: int | None,
) -> tuple[Any, dict[str, int]]:
    """The Rust summary kernel, whose buckets start at multiples of ``resolution_us`` from the
    epoch. Buckets from another origin (``resolution="week"``: Mondays) are the same buckets of
    times moved back by the origin; every output is a difference of two moved times (or a
    comparison of two), so moving the times, the cut-offs and the panel edges alike gives the
    summary of the anchored buckets, and origin 0 calls the kernel exactly as before."""
    if origin_us:
        frame = frame.with_columns(pl.col("ts") - origin_us)
        edges = [edge - origin_us for edge in edges]
    return _winback.summary(
        frame,
        calibration_end_us=window.calibration_end_us - origin_us,
        max_time_us=window.max_time_us - origin_us,
        resolution_us=resolution_us,
        unit_us=unit_us,
        period_edges_us=edges,
        num_threads=num_threads,
    )


def _summary_frame(
    raw: pl.DataFrame, window: _Window, resolution_us: int, unit_us: int, origin_us: int = 0
) -> pl.DataFrame:
    counts = [pl.col(name).cast(pl.Int64) for name in _COUNT_COLUMNS]
    floats = [pl.col(name) for name in ("recency", "T", "monetary_value", "first_amount")]
    columns = [
        _io.customer_ids(raw),
        *raw.select(*counts, *floats, pl.col("frequency_holdout").cast(pl.Int64)).get_columns(),
        raw.get_column("monetary_value_holdout"),
    ]
    frame = pl.DataFrame(columns)
    # the same refusal as silence's: a customer whose amounts add up past float64 (the first
    # occasion's plus the repeat occasions' sum, x · z̄) is named rather than fitted
    spend_total = pl.col("first_amount") + pl.col("monetary_value") * pl.col("frequency")
    _io.refuse_overflowing_amounts(
        frame.with_columns(spend_total.alias("_amount_total")),
        ["monetary_value", "first_amount", "monetary_value_holdout", "_amount_total"],
    )
    if not window.split:
        return frame.select(SUMMARY_COLUMNS)
    duration_us = _bucket(window.max_time_us, resolution_us, origin_us) - _bucket(
        window.calibration_end_us, resolution_us, origin_us
    )
    return frame.with_columns(
        pl.lit(duration_us / unit_us, dtype=pl.Float64).alias("duration_holdout")
    ).select(*SUMMARY_COLUMNS, *HOLDOUT_COLUMNS)


def _with_litt(
    frame: pl.DataFrame,
    transactions: pl.DataFrame,
    window: _Window,
    resolution_us: int,
    unit_us: int,
    origin_us: int = 0,
) -> pl.DataFrame:
    """``frame`` with ``litt`` appended: per customer Σ ln(t_j − t_{j−1}) over the calibration
    occasions (the summary's: distinct ``resolution`` buckets of the rows at or before the
    calibration end, dated at the bucket start), in ``unit``; 0 with one occasion."""
    customer, bucket = pl.col("customer_id"), pl.col("bucket")
    # Rows sorted by (customer, bucket): a positive step within a customer is a gap between
    # consecutive occasions; rows of one occasion step by 0 and are skipped.
    step = bucket - bucket.shift(1)
    occasions = (
        transactions.lazy()
        .filter(pl.col("ts") <= window.calibration_end_us)
        .select(
            pl.col("customer").alias("customer_id"),
            (((pl.col("ts") - origin_us) // resolution_us) * resolution_us).alias("bucket"),
        )
        .collect()
        .sort("customer_id", "bucket")  # eager: about twice as fast as in the lazy plan here
    )
    sums = (
        occasions.lazy()
        .select(customer, step.alias("step"), (customer == customer.shift(1)).alias("same"))
        .filter(pl.col("same") & (pl.col("step") > 0))
        .group_by("customer_id")
        .agg((pl.col("step").cast(pl.Float64) / float(unit_us)).log().sum().alias("litt"))
    )
    joined = frame.lazy().join(sums, on="customer_id", how="left", maintain_order="left")
    return joined.with_columns(pl.col("litt").fill_null(0.0)).collect()


@overload
def summary(
    data: Any,
    *,
    as_of: AsOf | None = ...,
    unit: TimeUnit = ...,
    calibration_end: AsOf | None = ...,
    holdout_end: AsOf | None = ...,
    resolution: str | timedelta = ...,
    period: str = ...,
    customer_col: str = ...,
    time_col: str = ...,
    amount_col: str | None = ...,
    order_col: str | None = ...,
    tz: str | None = ...,
    on_invalid: OnInvalid = ...,
    time_format: str | None = ...,
    id_type: IdType = ...,
    num_threads: int | None = ...,
    memory_limit: int | str | None = ...,
    spill_dir: str | os.PathLike[str] | None = ...,
    progress: _spill.Progress | None = ...,
    litt: bool = ...,
    return_info: Literal[False] = ...,
) -> pl.DataFrame: ...


@overload
def summary(
    data: Any,
    *,
    as_of: AsOf | None = ...,
    unit: TimeUnit = ...,
    calibration_end: AsOf | None = ...,
    holdout_end: AsOf | None = ...,
    resolution: str | timedelta = ...,
    period: str = ...,
    customer_col: str = ...,
    time_col: str = ...,
    amount_col: str | None = ...,
    order_col: str | None = ...,
    tz: str | None = ...,
    on_invalid: OnInvalid = ...,
    time_format: str | None = ...,
    id_type: IdType = ...,
    num_threads: int | None = ...,
    memory_limit: int | str | None = ...,
    spill_dir: str | os.PathLike[str] | None = ...,
    progress: _spill.Progress | None = ...,
    litt: bool = ...,
    return_info: Literal[True],
) -> tuple[pl.DataFrame, SummaryInfo]: ...


def summary(
    data: Any,
    *,
    as_of: AsOf | None = None,
    unit: TimeUnit = UNIT,
    calibration_end: AsOf | None = None,
    holdout_end: AsOf | None = None,
    resolution: str | timedelta = RESOLUTION,
    period: str = PERIOD,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
    num_threads: int | None = None,
    memory_limit: int | str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    progress: _spill.Progress | None = None,
    litt: bool = False,
    return_info: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, SummaryInfo]:
    """Per-customer sufficient statistics of the frequency and spend models
    (docs/methods.md#summary).

    Purchases are counted as occasions (docs/methods.md#occasions: rows of a customer in one
    ``resolution`` bucket are one occasion dated at the bucket start, with their amounts summed).
    For a customer with occasions t_1 < … < t_n up to the calibration end c (``calibration_end``,
    else ``as_of``): x = n − 1 repeat occasions, t_x = t_n − t_1 and T = c − t_1 (c floored to its
    bucket).

    Parameters
    ----------
    data
        Transactions: a Polars/pandas DataFrame, PyArrow table or record-batch reader, DuckDB
        relation, anything with ``__arrow_c_stream__``, or a path/glob of Parquet/CSV/IPC files.
    as_of
        End of the snapshot. A date means the end of that day; default: ``holdout_end`` when
        given, else the end of the latest purchase's day (the same snapshot as passing that
        date). Later rows are left out and counted. One before all the data is refused, and so
        is a default set by rows dated far beyond the rest (docs/methods.md#as-of).
    unit
        Time unit of ``recency``, ``T`` and ``duration_holdout``: ``"W"`` weeks (default, as in
        the literature) or ``"D"`` days.
    calibration_end
        Splits the data: rows at or before it are the calibration period, later rows up to
        ``holdout_end`` the holdout. Default: no split (calibration end = ``as_of``).
    holdout_end
        End of the holdout period (default: ``as_of``); must be after ``calibration_end``.
    resolution
        Occasion bucket: ``"1d"`` (default), ``"1h"``, ``"7d"``… (durations: buckets from the
        epoch, so ``"7d"`` weeks start on Thursdays), or ``"week"``: calendar weeks from Monday
        00:00, which with ``unit="W"`` is lifetimes' ``freq="W"`` (docs/methods.md#occasions). A
        bucket holding the calibration end is cut there: its later rows form a holdout occasion
        of their own.
    period
        Periods of the panel (docs/methods.md#periods): ``"month"`` (calendar, default), ``"week"``
        (ISO, from Monday), ``"quarter"`` or ``"Nd"`` (N days from the day of the data's first
        occasion). Only periods complete by the calibration end count.
    customer_col, time_col, amount_col, order_col
        Input column names. Without an amount column the money columns are null. With
        ``order_col``, rows of one (customer, order) are one purchase.
    tz
        Time zone whose calendar defines buckets and periods of tz-aware timestamps.
    on_invalid
        ``"raise"`` (default): bad rows raise :class:`~winback.WinbackInputError`; ``"drop"``: they
        are removed and returned in ``info.rejects`` with a ``reason``.
    time_format, id_type
        How text times and customer ids are read, as in :func:`winback.prepare`: ISO 8601 or
        exactly ``time_format``; CSV ids as text unless ``id_type="int"``
        (docs/methods.md#input). Also on the out-of-core path.
    num_threads
        Worker threads (default: ``WINBACK_NUM_THREADS`` or all cores). Results never depend on it.
    memory_limit, spill_dir, progress
        Larger-than-memory input (docs/methods.md#out-of-core), as in :func:`winback.silence`: with
        ``memory_limit`` (bytes or ``"8GB"``), or a file input too large for half the available
        RAM, the input is partitioned by customer into spill files under ``spill_dir`` and
        summarised a part at a time, with the same cut-offs and panel edges as a whole; the
        result is identical.
    litt
        Also return ``litt`` (Float64, last column): the sum of the logs of the customer's
        calibration inter-occasion times t_j − t_{j−1} in ``unit`` (0 without a repeat
        occasion), which the regularity models BG/CNBD-k and MBG/CNBD-k need
        (docs/methods.md#cnbd-k). The other columns are unchanged.
    return_info
        Also return a :class:`SummaryInfo` with the rows read, rejected and excluded, and the
        customers born after the calibration end.

    Returns
    -------
    polars.DataFrame
        One row per customer whose first purchase is at or before the calibration end, sorted by
        ``customer_id``; customers born later are only counted (``info``). Columns
        :data:`SUMMARY_COLUMNS`:

        - ``frequency`` (Int64): x, repeat occasions in the calibration period;
        - ``recency``, ``T`` (Float64, in ``unit``): t_x = last − first occasion and
          T = calibration end − first occasion;
        - ``monetary_value``: z̄, mean amount of the repeat calibration occasions with a positive
          amount (0 when there are none; occasions with amount ≤ 0 are left out of spend models,
          docs/methods.md#hygiene); ``spend_frequency`` (Int64): their number, the x of Gamma–Gamma;
          ``first_amount``: amount of the first occasion;
        - ``n_periods`` (Int64): T_c, complete periods after the birth period (the period of
          the first occasion) up to the calibration end; ``period_frequency`` (Int64): X_c,
          occasions in them (docs/methods.md#nbd).

        With ``calibration_end``, also :data:`HOLDOUT_COLUMNS`: ``frequency_holdout`` (Int64,
        occasions after the calibration end), ``monetary_value_holdout`` (mean positive holdout
        occasion amount, 0 when none) and ``duration_holdout`` (holdout_end − calibration_end,
        both floored to their buckets, in ``unit``; the same for everyone).

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2, 3],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 15), date(2024, 2, 12), date(2024, 1, 8),
    ...            date(2024, 2, 20)],
    ...     "amount": [20.0, 30.0, 50.0, 10.0, 5.0]})
    >>> out = winback.summary(tx, calibration_end=date(2024, 2, 5), holdout_end=date(2024, 3, 4))
    >>> out.select("customer_id", "frequency", "recency", "T", "monetary_value",
    ...            "frequency_holdout", "duration_holdout").rows()
    [(1, 1, 2.0, 5.0, 30.0, 1, 4.0), (2, 0, 0.0, 4.0, 0.0, 0, 4.0)]
    """
    unit_us = _check_unit(unit)
    resolution_us, origin_us = _io.parse_buckets(resolution)
    check_period(period)
    _io.check_num_threads(num_threads)
    options = _spill.out_of_core_options(
        data,
        columns=[c for c in (customer_col, time_col, amount_col, order_col) if c is not None],
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=progress,
    )
    if options is not None:
        result = _summary_out_of_core(
            data,
            options,
            as_of=as_of,
            calibration_end=calibration_end,
            holdout_end=holdout_end,
            resolution_us=resolution_us,
            unit_us=unit_us,
            period=period,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            order_col=order_col,
            tz=tz,
            on_invalid=on_invalid,
            time_format=time_format,
            id_type=id_type,
            num_threads=num_threads,
            litt=litt,
            origin_us=origin_us,
        )
        frame, counts, rows_read, rejects, extent, window = result
    else:
        prepared = _io.prepare(
            data,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            order_col=order_col,
            tz=tz,
            on_invalid=on_invalid,
            time_format=time_format,
            id_type=id_type,
        )
        extent = _Extent.of(prepared)
        window = _window(extent, as_of, calibration_end, holdout_end)
        table, counts = _kernel_summary(
            prepared.frame,
            window,
            resolution_us=resolution_us,
            origin_us=origin_us,
            unit_us=unit_us,
            edges=_panel_edges(extent, window, resolution_us, period, origin_us),
            num_threads=num_threads,
        )
        frame = _summary_frame(pl.DataFrame(table), window, resolution_us, unit_us, origin_us)
        if litt:
            frame = _with_litt(frame, prepared.frame, window, resolution_us, unit_us, origin_us)
        rows_read, rejects = prepared.rows_read, prepared.rejects
    if not return_info:
        return frame
    known = bool(extent.rows) or as_of is not None or calibration_end is not None

    def moment(micros: int, shown: bool) -> datetime | None:
        return _io.micros_to_datetime(micros) if shown else None

    info = SummaryInfo(
        rows_read=rows_read,
        rows_rejected=rejects.height,
        rows_after_as_of=counts["rows_after_max_time"],
        rows_used=counts["rows_used"],
        customers=frame.height,
        customers_born_after_calibration=counts["customers_born_after_calibration"],
        rows_born_after_calibration=counts["rows_born_after_calibration"],
        as_of=moment(window.as_of_us, known),
        calibration_end=moment(window.calibration_end_us, window.split),
        holdout_end=moment(window.max_time_us, window.split),
        unit=unit,
        resolution=str(resolution),
        period=period,
        rejects=rejects,
    )
    return frame, info


def _summary_out_of_core(
    data: Any,
    options: _spill.OutOfCoreOptions,
    *,
    as_of: AsOf | None,
    calibration_end: AsOf | None,
    holdout_end: AsOf | None,
    resolution_us: int,
    unit_us: int,
    period: str,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    time_format: str | None,
    id_type: IdType,
    num_threads: int | None,
    litt: bool = False,
    origin_us: int = 0,
) -> tuple[pl.DataFrame, dict[str, int], int, pl.DataFrame, _Extent, _Window]:
    """:func:`summary` by parts (docs/methods.md#out-of-core): the windows and panel edges come from
    the whole input's first and latest purchase, then each group of spill files is summarised with
    them and the counts are added up. Returns (frame, counts, rows read, rejects, extent,
    window)."""
    sink = _spill.ResultSink(None)
    totals: dict[str, int] = {}
    with _spill.spill_input(
        data,
        options,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    ) as spilled:
        extent = _Extent(spilled.dates, spilled.time_zone)
        window = _window(extent, as_of, calibration_end, holdout_end)
        edges = _panel_edges(extent, window, resolution_us, period, origin_us)
        for prepared in spilled.groups():
            table, counts = _kernel_summary(
                prepared.frame,
                window,
                resolution_us=resolution_us,
                origin_us=origin_us,
                unit_us=unit_us,
                edges=edges,
                num_threads=num_threads,
            )
            part = _summary_frame(pl.DataFrame(table), window, resolution_us, unit_us, origin_us)
            if litt:
                part = _with_litt(part, prepared.frame, window, resolution_us, unit_us, origin_us)
            del prepared
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + int(value)
            sink.add(part)
        frame = sink.finish(pl.DataFrame())
    assert frame is not None
    return frame, totals, spilled.rows_read, spilled.rejects, extent, window


def compress_summary(
    summary_frame: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[str] = ("frequency", "recency", "T"),
) -> pl.DataFrame:
    """The distinct rows of some summary columns with how often each occurs
    (docs/methods.md#fitting: models are fitted on compressed sufficient statistics).

    Values are compared exactly (by their bits, so -0.0 and 0.0 stay apart); rows come sorted
    by the columns in order. Nulls and NaN are errors.

    Parameters
    ----------
    summary_frame
        A frame such as :func:`summary` returns.
    columns
        Numeric columns to compress; default the BTYD triple (x, t_x, T).

    Returns
    -------
    polars.DataFrame
        ``columns`` with their input types, then ``count`` (Int64); the counts sum to the rows.

    Examples
    --------
    >>> import polars as pl
    >>> from winback.summary import compress_summary
    >>> stats = pl.DataFrame({"frequency": [0, 2, 0], "recency": [0.0, 3.5, 0.0],
    ...                       "T": [10.0, 10.0, 10.0]})
    >>> compress_summary(stats).rows()
    [(0, 0.0, 10.0, 2), (2, 3.5, 10.0, 1)]
    """
    frame = summary_frame.collect() if isinstance(summary_frame, pl.LazyFrame) else summary_frame
    names = list(columns)
    if not names or len(set(names)) != len(names):
        raise WinbackConfigError(f"columns={tuple(columns)!r} must name distinct columns")
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise WinbackInputError(
            f"columns {missing} are not in the summary; available columns: {frame.columns}"
        )
    selected = frame.select(names)
    for name, dtype in selected.schema.items():
        if not dtype.is_numeric():
            raise WinbackInputError(f"column {name!r} has type {dtype}; use numeric columns")
    nulls = {k: v for k, v in selected.null_count().row(0, named=True).items() if v}
    if nulls:
        raise WinbackInputError(
            f"null values in {nulls} (column: count); monetary columns are null when the "
            "summary was built without an amount column. Drop or fill them first."
        )
    raw = pl.DataFrame(_winback.compress(selected))
    return raw.select(
        *(pl.col(name).cast(dtype) for name, dtype in selected.schema.items()),
        pl.col("count").cast(pl.Int64),
    )


def bgbb_summary(
    data: Any,
    *,
    period: str = PERIOD,
    n_periods: int | None = None,
    as_of: AsOf | None = None,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> pl.DataFrame:
    """The (x, t_x, n) pattern of each customer for the discrete-time BG/BB model
    (docs/methods.md#bg-bb): transactions counted as opportunities taken, one per period.

    Periods are those of the period panel (docs/methods.md#periods): calendar months, ISO weeks,
    quarters, years or N-day periods, indexed from the period of the data's first transaction;
    only **complete** periods (up to ``as_of``) count. A customer's first transaction opens
    their relationship in their birth period; each complete period after it is one
    opportunity. x = opportunities with at least one transaction, t_x = the last of them
    (numbered 1 … n from the birth period; 0 when x = 0) and n = the opportunities observed.

    Parameters
    ----------
    data
        Transactions, in any form :func:`winback.prepare` reads (or a ``PreparedTransactions``).
    period
        ``"month"`` (default), ``"week"``, ``"quarter"``, ``"year"`` or ``"Nd"``.
    n_periods
        A calibration window: only each customer's first ``n_periods`` opportunities make the
        pattern, and the complete periods after them are the holdout (``frequency_holdout``
        opportunities taken of ``n_holdout``). Default: every complete period, no holdout.
    as_of
        End of observation (default: the latest transaction); later rows are left out.
    customer_col, time_col, tz, on_invalid, time_format, id_type
        As in :func:`winback.prepare`.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``frequency`` (x), ``recency`` (t_x), ``n`` (all Int64), one row per
        customer sorted by id; with ``n_periods`` also ``frequency_holdout`` and ``n_holdout``.
        :func:`compress_summary` with ``columns=("frequency", "recency", "n")`` gives the
        pattern table with counts that ``BetaGeoBetaBinomModel.fit(..., weights_col="count")``
        takes.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback.summary import bgbb_summary
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2, 3],
    ...     "ts": [date(2020, 3, 1), date(2021, 5, 1), date(2023, 1, 9), date(2020, 7, 1),
    ...            date(2024, 2, 1)]})
    >>> bgbb_summary(tx, period="year").rows()
    [(1, 2, 3, 3), (2, 0, 0, 3), (3, 0, 0, 0)]
    """
    check_period(period)
    if n_periods is not None and (
        isinstance(n_periods, bool) or not isinstance(n_periods, int) or n_periods < 0
    ):
        raise WinbackConfigError(f"n_periods must be a whole number ≥ 0, got {n_periods!r}")
    prepared = _purchase_times(data, customer_col, time_col, tz, on_invalid, time_format, id_type)
    end_us = _io.snapshot_end(prepared, as_of)
    rows = prepared.frame.filter(pl.col("ts") <= end_us)
    columns = ["customer_id", "frequency", "recency", "n"]
    if n_periods is not None:
        columns += ["frequency_holdout", "n_holdout"]
    if rows.height == 0:
        customer = prepared.frame.schema["customer"]
        return pl.DataFrame(
            schema={name: (customer if name == "customer_id" else pl.Int64) for name in columns}
        )
    times = rows.get_column("ts").to_numpy()
    edges = period_edges(period, int(times.min()), end_us + 1)
    complete = len(edges) - 1  # periods 0 … complete − 1 are complete
    index = np.searchsorted(np.asarray(edges, dtype=np.int64), times, side="right") - 1
    panel = pl.DataFrame({"customer": rows.get_column("customer"), "k": index.astype(np.int64)})
    panel = panel.with_columns(pl.col("k").min().over("customer").alias("birth"))
    observed = pl.max_horizontal(pl.lit(complete - 1) - pl.col("birth"), pl.lit(0))
    calibration = observed if n_periods is None else pl.min_horizontal(observed, pl.lit(n_periods))
    taken = (
        panel.with_columns((pl.col("k") - pl.col("birth")).alias("rel"))
        .filter((pl.col("rel") >= 1) & (pl.col("k") < complete))
        .select("customer", "rel")
        .unique()
    )
    births = panel.group_by("customer").agg(pl.col("birth").first())
    births = births.with_columns(calibration.alias("n"), observed.alias("observed"))
    joined = taken.join(births.select("customer", "n"), on="customer")
    counted = joined.group_by("customer").agg(
        (pl.col("rel") <= pl.col("n")).sum().alias("frequency"),
        pl.col("rel").filter(pl.col("rel") <= pl.col("n")).max().alias("recency"),
        (pl.col("rel") > pl.col("n")).sum().alias("frequency_holdout"),
    )
    out = (
        births.join(counted, on="customer", how="left")
        .with_columns(
            pl.col("customer").alias("customer_id"),
            pl.col("frequency").fill_null(0).cast(pl.Int64),
            pl.col("recency").fill_null(0).cast(pl.Int64),
            pl.col("n").cast(pl.Int64),
            pl.col("frequency_holdout").fill_null(0).cast(pl.Int64),
            (pl.col("observed") - pl.col("n")).cast(pl.Int64).alias("n_holdout"),
        )
        .sort("customer_id")
    )
    return out.select(columns)


def expected_cumulative_transactions(
    model: Any,
    data: Any,
    *,
    periods: int,
    period: str = "7d",
    unit: TimeUnit | None = None,
    resolution: str | timedelta = RESOLUTION,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> pl.DataFrame:
    """The tracking curve (docs/methods.md#tracking): cumulative repeat purchases, actual and
    as a fitted count model expects them, at the end of each of ``periods`` periods.

    Every customer is born at their first occasion b (as in :func:`summary`); at a period end
    e the model expects Σ_{b < e} E[X(e − b)] repeat occasions (``expected_purchases_new_customer``
    at each customer's age, in the model's unit) and the data have the repeat occasions dated
    before e. lifetimes' ``expected_cumulative_transactions``.

    Parameters
    ----------
    model
        A fitted count model with ``expected_purchases_new_customer`` (BG/NBD, MBG/NBD,
        Pareto/NBD, the CNBD-k models).
    data
        Transactions (any input :func:`winback.prepare` reads), typically calibration and
        holdout together.
    periods
        Number of periods after the first (period 0 holds the data's first occasion).
    period
        ``"7d"`` (default: 7-day buckets from the day of the first occasion, lifetimes'
        ``freq="D", freq_multiplier=7``), ``"week"`` (calendar weeks from Monday, lifetimes'
        ``freq="W"``), ``"Nd"``, ``"month"``, ``"quarter"`` or ``"year"``.
    unit
        The model's time unit; default the one recorded by its fit (``model.unit_``), else
        weeks.
    resolution, customer_col, time_col, tz, on_invalid, time_format, id_type
        As in :func:`summary`.

    Returns
    -------
    polars.DataFrame
        ``period`` (Int64, 1 … periods), ``period_end`` (Datetime µs, local), ``actual``
        (Int64) and ``predicted`` (Float64), both cumulative.
    """
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise WinbackConfigError(f"periods must be a whole number ≥ 1, got {periods!r}")
    known = getattr(model, "unit_", None)
    if unit is not None and known is not None and unit != known:
        raise WinbackConfigError(
            f"unit={unit!r} contradicts the model's own unit {known!r} (from its fit)"
        )
    unit_us = _check_unit(unit or known or UNIT)
    kind = check_period(period)
    resolution_us, origin_us = _io.parse_buckets(resolution)
    prepared = _purchase_times(data, customer_col, time_col, tz, on_invalid, time_format, id_type)
    occasions = prepared.frame.select(
        "customer",
        (((pl.col("ts") - origin_us) // resolution_us) * resolution_us + origin_us).alias("bucket"),
    ).unique()
    if occasions.height == 0:
        raise WinbackInputError("expected_cumulative_transactions: the input has no transactions")
    births = occasions.group_by("customer").agg(pl.col("bucket").min().alias("birth"))
    repeats = (
        occasions.join(births, on="customer")
        .filter(pl.col("bucket") > pl.col("birth"))
        .get_column("bucket")
        .sort()
        .to_numpy()
    )
    birth_days = births.group_by("birth").len().sort("birth")
    birth_us = birth_days.get_column("birth").to_numpy()
    birth_count = birth_days.get_column("len").to_numpy().astype(np.float64)
    edge = _period_start(_io.micros_to_datetime(int(birth_us[0])), kind)
    ends: list[datetime] = []
    for _ in range(periods):
        edge = _next_period(edge, kind)
        ends.append(edge)
    actual, predicted = [], []
    for end in ends:
        end_us = _io.as_of_to_micros(end, None)
        actual.append(int(np.searchsorted(repeats, end_us, side="left")))
        born = birth_us < end_us
        ages = (end_us - birth_us[born]) / unit_us
        expected = np.asarray(model.expected_purchases_new_customer(ages), dtype=np.float64)
        predicted.append(float(expected @ birth_count[born]))
    return pl.DataFrame(
        {
            "period": np.arange(1, periods + 1, dtype=np.int64),
            "period_end": pl.Series(ends, dtype=pl.Datetime("us")),
            "actual": np.asarray(actual, dtype=np.int64),
            "predicted": np.asarray(predicted, dtype=np.float64),
        }
    )


def alive_path(
    model: Any,
    data: Any,
    customer_id: Any,
    *,
    as_of: AsOf | None = None,
    unit: TimeUnit | None = None,
    resolution: str | timedelta = RESOLUTION,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> pl.DataFrame:
    """One customer's P(alive) path (docs/methods.md#alive-path): a fitted count model's
    P(alive) as the customer's history stood at each whole time unit after their first occasion
    — lifetimes' ``calculate_alive_path``.

    With the first occasion at b (a bucket start, as in :func:`summary`) and e_i = b + i units
    (i = 0, 1, … while e_i is at or before the bucket of ``as_of``), point i uses the occasions
    dated at or before e_i: x_i repeat occasions, t_x the last one's age and T = i; it is the
    summary's (x, t_x, T) as of the end of day e_i at whole-day resolutions.

    Parameters
    ----------
    model
        A fitted count model with ``probability_alive_at`` (BG/NBD, MBG/NBD, Pareto/NBD,
        the CNBD-k models).
    data
        Transactions (any input :func:`winback.prepare` reads).
    customer_id
        The customer (refused when not in ``data`` up to ``as_of``).
    as_of, resolution, customer_col, time_col, tz, on_invalid, time_format, id_type
        As in :func:`summary`.
    unit
        The model's time unit (the step of the path); default the one recorded by its fit
        (``model.unit_``), else weeks.

    Returns
    -------
    polars.DataFrame
        ``T`` (Float64, age in ``unit``), ``moment`` (Datetime µs, local: e_i), ``frequency``,
        ``recency`` and ``probability_alive`` (Float64), one row per point.
    """
    known = getattr(model, "unit_", None)
    if unit is not None and known is not None and unit != known:
        raise WinbackConfigError(
            f"unit={unit!r} contradicts the model's own unit {known!r} (from its fit)"
        )
    unit_us = _check_unit(unit or known or UNIT)
    resolution_us, origin_us = _io.parse_buckets(resolution)
    prepared = _purchase_times(data, customer_col, time_col, tz, on_invalid, time_format, id_type)
    end_us = _io.snapshot_end(prepared, as_of)
    mine = prepared.frame.filter(
        (pl.col("customer") == customer_id) & (pl.col("ts") <= end_us)
    ).get_column("ts")
    if mine.len() == 0:
        raise WinbackInputError(
            f"alive_path: customer {customer_id!r} has no transaction in the data up to the "
            "end of observation; check the id and its type (ids are read as in winback.prepare)"
        )
    ts = mine.to_numpy()
    buckets = np.unique(ts - (ts - origin_us) % resolution_us)
    birth = int(buckets[0])
    points = (_bucket(end_us, resolution_us, origin_us) - birth) // unit_us
    edges = birth + np.arange(points + 1, dtype=np.int64) * unit_us
    # occasions at or before each edge, the first included
    seen = np.searchsorted(buckets, edges, side="right")
    x = (seen - 1).astype(np.float64)
    t_x = (buckets[seen - 1] - birth) / unit_us
    T = np.arange(points + 1, dtype=np.float64)
    alive = np.asarray(model.probability_alive_at(x, t_x, T), dtype=np.float64)
    return pl.DataFrame(
        {
            "T": T,
            "moment": pl.Series(edges, dtype=pl.Int64).cast(pl.Datetime("us")),
            "frequency": x,
            "recency": t_x,
            "probability_alive": alive,
        }
    )


def _purchase_times(
    data: Any,
    customer_col: str,
    time_col: str,
    tz: str | None,
    on_invalid: OnInvalid,
    time_format: str | None,
    id_type: IdType,
) -> _io.PreparedTransactions:
    """``data`` read as :func:`winback.prepare` reads it, customer ids and times only (the
    functions here that count occasions and never read amounts)."""
    return _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=None,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
