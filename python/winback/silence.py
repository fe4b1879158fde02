"""Silence scoring (docs/methods.md#silence): how long each customer has been quiet, against their
own rhythm."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, overload

import polars as pl

from winback import _io, _winback, coldstart
from winback._io import spill as _spill
from winback._options import (
    AMOUNT_COL,
    COLD_START_HORIZON_DAYS,
    CUSTOMER_COL,
    ID_TYPE,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TIME_FORMAT,
    TRF_CUTS,
    AsOf,
    IdType,
    OnInvalid,
)
from winback.errors import WinbackConfigError

__all__ = [
    "BAND_LABELS",
    "GROUP_LABELS",
    "SILENCE_COLUMNS",
    "STATUS_LABELS",
    "SilenceInfo",
    "check_parameters",
    "score_prepared",
    "silence",
    "silence_to_file",
]

STATUS_LABELS = ("scored", "single_purchase", "below_min_occasions")
GROUP_LABELS = ("a", "b", "c", "d", "e")
BAND_LABELS = ("not_silent", "silent", "deep_silent")
STATUS_DTYPE = pl.Enum(STATUS_LABELS)
GROUP_DTYPE = pl.Enum(GROUP_LABELS)
BAND_DTYPE = pl.Enum(BAND_LABELS)

#: Output columns of :func:`silence`, in order.
SILENCE_COLUMNS = (
    "customer_id",
    "status",
    "n_occasions",
    "first_ts",
    "last_ts",
    "tenure_days",
    "recency_days",
    "max_gap_days",
    "mean_gap_days",
    "median_gap_days",
    "recency_rank",
    "rank_ratio",
    "silence_score",
    "rank_ratio_group",
    "silence_band",
    "total_amount",
    "mean_amount",
)


@dataclass(frozen=True)
class SilenceInfo:
    """What a scoring run read, kept and rejected.

    Attributes
    ----------
    rows_read : rows in the input.
    rows_rejected : rows removed by ``on_invalid="drop"`` (see ``rejects``).
    rows_after_as_of : valid rows dated after ``as_of`` (outside the snapshot).
    rows_used : rows that entered the snapshot.
    customers : customers in the result.
    as_of : the snapshot time used (local wall clock; a date means the end of that day).
    resolution : the occasion bucket width.
    rejects : the rejected input rows with ``row_index`` and ``reason``.
    """

    rows_read: int
    rows_rejected: int
    rows_after_as_of: int
    rows_used: int
    customers: int
    as_of: datetime | None
    resolution: str
    rejects: pl.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for ``--json`` and logs)."""
        return {
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "rows_after_as_of": self.rows_after_as_of,
            "rows_used": self.rows_used,
            "customers": self.customers,
            "as_of": None if self.as_of is None else _io.describe_moment(self.as_of),
            "resolution": self.resolution,
        }


def _check_cuts(name: str, cuts: Sequence[float], count: int, upper: float | None) -> list[float]:
    values = [float(c) for c in cuts]
    ok = len(values) == count and all(a < b for a, b in pairwise(values))
    ok = ok and all(v > 0 for v in values) and (upper is None or values[-1] <= upper)
    if not ok:
        bound = f" in (0, {upper}]" if upper is not None else " and positive"
        raise WinbackConfigError(
            f"{name}={tuple(cuts)!r} must be {count} strictly increasing numbers{bound}"
        )
    return values


def check_parameters(
    resolution: str | timedelta | int,
    min_occasions: int,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    num_threads: int | None,
) -> tuple[int, list[float], list[float]]:
    """Validates scoring arguments before any data is read; returns resolution (µs) and cuts."""
    resolution_us = resolution if isinstance(resolution, int) else _io.parse_resolution(resolution)
    if min_occasions < 1:
        raise WinbackConfigError(f"min_occasions={min_occasions} must be at least 1")
    _io.check_num_threads(num_threads)
    trf = _check_cuts("trf_cuts", trf_cuts, 4, 1.0)
    s = _check_cuts("s_cuts", s_cuts, 2, None)
    return resolution_us, trf, s


def score_prepared(
    prepared: _io.PreparedTransactions,
    *,
    as_of_us: int,
    resolution_us: int,
    min_occasions: int,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    num_threads: int | None = None,
) -> tuple[pl.DataFrame, int, int]:
    """Runs the Rust kernel on prepared columns; returns (frame, rows_used, rows_after_as_of).

    The result is kept on ``prepared`` (its two most recent snapshots): the report, RFM and
    migration score the same rows at the same ``as_of`` several times, and get the same frame.
    """
    _, trf, s = check_parameters(resolution_us, min_occasions, trf_cuts, s_cuts, num_threads)
    key = (as_of_us, resolution_us, min_occasions, tuple(trf), tuple(s), num_threads)
    scored: tuple[pl.DataFrame, int, int] = _io.remembered(
        prepared,
        "silence",
        key,
        lambda: _score_kernel(
            prepared, as_of_us, resolution_us, min_occasions, trf, s, num_threads
        ),
    )
    return scored


def _score_kernel(
    prepared: _io.PreparedTransactions,
    as_of_us: int,
    resolution_us: int,
    min_occasions: int,
    trf: Sequence[float],
    s: Sequence[float],
    num_threads: int | None,
) -> tuple[pl.DataFrame, int, int]:
    table, rows_used, rows_after = _winback.silence(
        prepared.frame,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        min_occasions=min_occasions,
        trf_cuts=(trf[0], trf[1], trf[2], trf[3]),
        s_cuts=(s[0], s[1]),
        num_threads=num_threads,
    )
    # The kernel gives the final types (dates at whole-day resolutions, Int64 counts), so the
    # columns are wrapped without a copy.
    raw = pl.DataFrame(table)
    customers = _io.customer_ids(raw)

    def labels(name: str, values: tuple[str, ...]) -> pl.Series:
        codes = raw.get_column(name).cast(pl.UInt32)
        return pl.Series(name, values, dtype=pl.Enum(values)).gather(codes)

    frame = pl.DataFrame(
        [
            customers.alias("customer_id"),
            labels("status", STATUS_LABELS),
            raw.get_column("n_occasions"),
            raw.get_column("first_ts"),
            raw.get_column("last_ts"),
            raw.get_column("tenure_days"),
            raw.get_column("recency_days"),
            raw.get_column("max_gap_days"),
            raw.get_column("mean_gap_days"),
            raw.get_column("median_gap_days"),
            raw.get_column("recency_rank"),
            raw.get_column("rank_ratio"),
            raw.get_column("silence_score"),
            labels("rank_ratio_group", GROUP_LABELS),
            labels("silence_band", BAND_LABELS),
            raw.get_column("total_amount"),
            raw.get_column("mean_amount"),
        ]
    )
    _io.refuse_overflowing_amounts(frame, ["total_amount", "mean_amount"])
    return frame, int(rows_used), int(rows_after)


@overload
def silence(
    data: Any,
    *,
    as_of: AsOf | None = ...,
    resolution: str | timedelta = ...,
    min_occasions: int = ...,
    trf_cuts: Sequence[float] = ...,
    s_cuts: Sequence[float] = ...,
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
    cold_start: bool = ...,
    cold_start_horizon_days: float = ...,
    return_info: Literal[False] = ...,
) -> pl.DataFrame: ...


@overload
def silence(
    data: Any,
    *,
    as_of: AsOf | None = ...,
    resolution: str | timedelta = ...,
    min_occasions: int = ...,
    trf_cuts: Sequence[float] = ...,
    s_cuts: Sequence[float] = ...,
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
    cold_start: bool = ...,
    cold_start_horizon_days: float = ...,
    return_info: Literal[True],
) -> tuple[pl.DataFrame, SilenceInfo]: ...


def silence(
    data: Any,
    *,
    as_of: AsOf | None = None,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
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
    cold_start: bool = False,
    cold_start_horizon_days: float = COLD_START_HORIZON_DAYS,
    return_info: bool = False,
) -> pl.DataFrame | tuple[pl.DataFrame, SilenceInfo]:
    """Score how silent each customer is (docs/methods.md#silence), one row per customer.

    For a customer with purchase occasions t_1 < … < t_n (rows in one ``resolution`` bucket are one
    occasion), the gaps are T_i = t_{i+1} − t_i and the recency is Tr = as_of − t_n, in days.

    Parameters
    ----------
    data
        Transactions: a Polars/pandas DataFrame, PyArrow table or record-batch reader, DuckDB
        relation, anything with ``__arrow_c_stream__``, or a path/glob of Parquet/CSV/IPC files.
    as_of
        Snapshot time (the seed's "Today"). A date means the end of that day; default: the end
        of the latest purchase's day (the same snapshot as passing that date). Rows after it are
        left out and counted. An ``as_of`` before all the data is refused, and so is a default
        set by rows dated far beyond the rest (docs/methods.md#as-of).
    resolution
        Occasion bucket: ``"1d"`` (default), ``"1h"``, ``"7d"``… Buckets follow the local calendar.
    min_occasions
        Customers with fewer occasions are not scored (β of docs/methods.md#not-scored).
    trf_cuts, s_cuts
        Cuts of TrF into groups a–e and of S into the three bands.
    customer_col, time_col, amount_col, order_col
        Input column names. Without an amount column the amount outputs are null. With
        ``order_col``, rows of one (customer, order) are one purchase.
    tz
        Time zone whose calendar defines buckets of tz-aware timestamps (default: their own).
    on_invalid
        ``"raise"`` (default): bad rows raise :class:`~winback.WinbackInputError`; ``"drop"``: they
        are removed and returned in ``info.rejects`` with a ``reason``.
    time_format, id_type
        How text times and customer ids are read, as in :func:`winback.prepare`: ISO 8601 or
        exactly ``time_format``; CSV ids as text unless ``id_type="int"``
        (docs/methods.md#input). Also on the out-of-core path.
    num_threads
        Worker threads (default: ``WINBACK_NUM_THREADS`` or all cores). Results never depend on it.
    memory_limit
        Bytes (or ``"8GB"``, ``"512MiB"``) the scoring may use beyond the returned frame. Given,
        or when a file input's estimated working memory exceeds half the available RAM, the
        input is streamed, partitioned by customer into spill files and scored a part at a time
        (docs/methods.md#out-of-core, :mod:`winback._io.spill`); the result is identical.
    spill_dir
        Where the spill files go (default: the system's temporary directory); they are removed
        when the call ends, however it ends.
    progress
        ``progress(stage, done, total)`` called on the out-of-core path after each batch
        (``"partitioning"``, rows) and group of spill files (``"scoring"``); ``total`` is None
        when unknown. Quiet by default (also logged at INFO on ``winback.spill``).
    cold_start, cold_start_horizon_days
        Also measure the customers with fewer than ``min_occasions`` occasions against the
        population (docs/methods.md#cold-start): adds :data:`winback.coldstart.COLD_START_COLUMNS`
        (``population_trf``, ``population_trf_group``, ``p_next_so_far``, ``p_next_within`` over
        the next ``cold_start_horizon_days`` days, ``cold_start_extrapolated``), null for scored
        customers; the other columns are unchanged. Off by default, so the default output keeps
        its columns. The Kaplan–Meier reference is population-wide: on the out-of-core path each
        part's observed gaps are kept (at most ``min_occasions`` − 1 rows per customer) and the
        columns are added once all parts are scored; the result is identical.
    return_info
        Also return a :class:`SilenceInfo` with rows read, rejected and after ``as_of``.

    Returns
    -------
    polars.DataFrame
        One row per customer, sorted by ``customer_id``, columns :data:`SILENCE_COLUMNS`:
        ``status`` (``scored`` / ``single_purchase`` / ``below_min_occasions``), ``n_occasions``
        (the seed's cF), ``first_ts``/``last_ts`` (first and last occasion: dates at day
        resolutions, local datetimes otherwise), ``tenure_days`` (as_of − t_1),
        ``recency_days`` (**Tr**), ``max_gap_days``, ``mean_gap_days``, ``median_gap_days``,
        ``recency_rank`` (rank of Tr among the gaps and Tr, ties in Tr's favour),
        ``rank_ratio`` (**TrF** = rank / n), ``silence_score`` (**S** = Tr / max gap),
        ``rank_ratio_group`` (a–e), ``silence_band`` (``not_silent`` S < 1, ``silent`` 1 ≤ S < 2,
        ``deep_silent`` S ≥ 2), ``total_amount`` and ``mean_amount`` (per occasion).
        Gap-based columns are null for customers who are not scored.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 11), date(2024, 1, 31), date(2024, 1, 5)]})
    >>> out = winback.silence(tx, as_of=date(2024, 3, 1))
    >>> out.select("customer_id", "status", "recency_days", "rank_ratio", "silence_score").rows()
    [(1, 'scored', 30.0, 1.0, 1.5), (2, 'single_purchase', 56.0, None, None)]
    """
    resolution_us, _, _ = check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    if cold_start:  # cold-start (docs/methods.md#cold-start)
        coldstart.check_horizon(cold_start_horizon_days)
    options = _spill.out_of_core_options(
        data,
        columns=_used_columns(customer_col, time_col, amount_col, order_col),
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=progress,
    )
    if options is not None:
        scored, info = _silence_out_of_core(
            data,
            options,
            None,
            as_of=as_of,
            resolution=resolution,
            min_occasions=min_occasions,
            trf_cuts=trf_cuts,
            s_cuts=s_cuts,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            order_col=order_col,
            tz=tz,
            on_invalid=on_invalid,
            time_format=time_format,
            id_type=id_type,
            num_threads=num_threads,
            cold_start=cold_start,
            cold_start_horizon_days=cold_start_horizon_days,
        )
        assert scored is not None
        return (scored, info) if return_info else scored
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
    as_of_us = _io.snapshot_end(prepared, as_of)
    frame, rows_used, rows_after = score_prepared(
        prepared,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        num_threads=num_threads,
    )
    if cold_start:  # cold-start (docs/methods.md#cold-start): new columns appended
        gaps = coldstart.next_gaps(
            prepared, as_of_us=as_of_us, resolution_us=resolution_us, min_occasions=min_occasions
        )
        frame = frame.hstack(
            coldstart.cold_start_columns(
                frame,
                gaps,
                min_occasions=min_occasions,
                trf_cuts=trf_cuts,
                horizon_days=cold_start_horizon_days,
            )
        )
    if not return_info:
        return frame
    info = SilenceInfo(
        rows_read=prepared.rows_read,
        rows_rejected=prepared.rows_rejected,
        rows_after_as_of=rows_after,
        rows_used=rows_used,
        customers=frame.height,
        as_of=_io.micros_to_datetime(as_of_us) if prepared.frame.height or as_of else None,
        resolution=str(resolution),
        rejects=prepared.rejects,
    )
    return frame, info


def _used_columns(
    customer_col: str, time_col: str, amount_col: str | None, order_col: str | None
) -> list[str]:
    return [c for c in (customer_col, time_col, amount_col, order_col) if c is not None]


def _silence_out_of_core(
    data: Any,
    options: _spill.OutOfCoreOptions,
    output: Path | None,
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
    time_format: str | None,
    id_type: IdType,
    num_threads: int | None,
    cold_start: bool = False,
    cold_start_horizon_days: float = COLD_START_HORIZON_DAYS,
) -> tuple[pl.DataFrame | None, SilenceInfo]:
    """:func:`silence` by parts (docs/methods.md#out-of-core): spill, score each group of spill
    files with the global ``as_of``, and collect the results (or append them to ``output``)."""
    resolution_us, _, _ = check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    sink = _spill.ResultSink(output)
    rows_used = rows_after = 0
    gap_parts: list[pl.DataFrame] = []  # cold-start (docs/methods.md#cold-start)
    try:
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
            as_of_us = _io.snapshot_end_at(as_of, spilled.time_zone, spilled.dates)
            for prepared in spilled.groups():
                frame, used, after = score_prepared(
                    prepared,
                    as_of_us=as_of_us,
                    resolution_us=resolution_us,
                    min_occasions=min_occasions,
                    trf_cuts=trf_cuts,
                    s_cuts=s_cuts,
                    num_threads=num_threads,
                )
                if cold_start:  # cold-start: this part's observed gaps, one row per customer and k
                    gap_parts.append(
                        coldstart.next_gaps(
                            prepared,
                            as_of_us=as_of_us,
                            resolution_us=resolution_us,
                            min_occasions=min_occasions,
                        )
                    )
                del prepared
                rows_used += used
                rows_after += after
                sink.add(frame)
            customers = sink.rows
            scored = sink.finish(pl.DataFrame())
            if cold_start and scored is not None and gap_parts:  # cold-start: population-wide
                scored = scored.hstack(
                    coldstart.cold_start_columns(
                        scored,
                        pl.concat(gap_parts),
                        min_occasions=min_occasions,
                        trf_cuts=trf_cuts,
                        horizon_days=cold_start_horizon_days,
                    )
                )
    except BaseException:
        sink.abort()
        raise
    info = SilenceInfo(
        rows_read=spilled.rows_read,
        rows_rejected=spilled.rejects.height,
        rows_after_as_of=rows_after,
        rows_used=rows_used,
        customers=customers,
        as_of=_io.micros_to_datetime(as_of_us) if spilled.rows_clean or as_of else None,
        resolution=str(resolution),
        rejects=spilled.rejects,
    )
    return scored, info


def silence_to_file(
    data: Any,
    output: str | os.PathLike[str],
    *,
    as_of: AsOf | None = None,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
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
) -> SilenceInfo:
    """:func:`silence` for inputs larger than memory, written to ``output`` (.parquet or .csv).

    On the out-of-core path (``memory_limit`` given, or a file input too large for the default
    limit; see :func:`silence`) results are appended to the file a group of customers at a
    time, so the whole result is never in memory: rows are then sorted by ``customer_id``
    within each group only. Otherwise :func:`silence`'s frame is written, sorted. The file is
    written under a temporary name and renamed when complete. The arguments are
    :func:`silence`'s; returns the run's :class:`SilenceInfo`.
    """
    check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    target = Path(output)
    arguments: dict[str, Any] = {
        "as_of": as_of,
        "resolution": resolution,
        "min_occasions": min_occasions,
        "trf_cuts": trf_cuts,
        "s_cuts": s_cuts,
        "customer_col": customer_col,
        "time_col": time_col,
        "amount_col": amount_col,
        "order_col": order_col,
        "tz": tz,
        "on_invalid": on_invalid,
        "time_format": time_format,
        "id_type": id_type,
        "num_threads": num_threads,
    }
    options = _spill.out_of_core_options(
        data,
        columns=_used_columns(customer_col, time_col, amount_col, order_col),
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=progress,
    )
    if options is not None:
        _, info = _silence_out_of_core(data, options, target, **arguments)
        return info
    frame, info = silence(data, return_info=True, **arguments)
    sink = _spill.ResultSink(target)
    try:
        sink.add(frame)
        sink.finish(frame)
    except BaseException:
        sink.abort()
        raise
    return info
