"""winback on Dask (SPEC §10): score and summarise a Dask DataFrame of transactions.

An optional extra (``pip install 'winback[dask]'``), a second engine for Python-first teams;
Dask is imported only when a function here is called. The transactions are shuffled by customer
(``shuffle(on=customer)``), each partition is sorted by (customer, time) and streamed through the
same batch function as the Spark path (:mod:`winback._batches`): whole chunks of customers through
the local API, so the results equal :func:`winback.silence` / :func:`winback.summary` bit for bit
(after sorting by customer). Output partitions are pandas frames with Arrow-backed dtypes
(``pd.ArrowDtype``) holding the declared schemas of :mod:`winback._batches` exactly (Enums as
strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from winback import _batches, _io
from winback.errors import WinbackConfigError
from winback.silence import AsOf

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["score", "summary"]


def _require_dask() -> Any:
    """``dask.dataframe``, or a clear ImportError naming the extra to install."""
    try:
        import dask.dataframe as dd
    except ImportError as exc:
        raise ImportError(
            "winback.dask needs Dask with its DataFrame support, which is not installed: "
            "pip install 'winback[dask]' (or pip install 'dask[dataframe]')"
        ) from exc
    return dd


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _read_settings(
    ddf: Any,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: Literal["raise", "drop"],
) -> tuple[_batches.ReadSettings, list[str], _io.Prepared]:
    """Settings, columns to ship, and the empty read of the frame's meta (checks on the client)."""
    _require_dask()
    if amount_col == "amount" and "amount" not in ddf.columns:
        amount_col = None
    read = _batches.ReadSettings(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    wanted = [c for c in (customer_col, time_col, amount_col, order_col) if c is not None]
    used = list(dict.fromkeys(wanted))
    meta = ddf._meta
    if any(c not in ddf.columns for c in used):
        return read, used, read.read(_arrow(meta))  # raises, naming the missing column
    return read, used, read.read(_arrow(meta[used]))


def _bounds(
    ddf: Any, used: list[str], read: _batches.ReadSettings, npartitions: int | None
) -> dict[str, Any]:
    """Earliest/latest valid purchase over all partitions (one ``compute``). With ``order_col``
    an order's rows must be read together (it is dated at its first row), so the pre-pass then
    reads the customer-shuffled partitions."""
    import dask

    source = ddf[used] if read.order_col is None else _shuffled(ddf, used, read, npartitions)

    def one(frame: pd.DataFrame) -> pa.Table:
        return _batches.bounds_table([_arrow(frame)], read)

    parts = [dask.delayed(one)(part) for part in source.to_delayed()]
    tables = dask.compute(*parts)
    return _batches.combine_bounds(pa.concat_tables(tables))


def _sorted_partition(frame: pd.DataFrame, read: _batches.ReadSettings) -> pa.Table:
    table = _arrow(frame)
    names = (read.customer_col, read.time_col)
    if int(pa.__version__.split(".")[0]) >= 25:  # null placement per key since pyarrow 25
        order = pc.sort_indices(table, sort_keys=[(n, "ascending", "at_start") for n in names])
    else:  # pragma: no cover - older pyarrow
        keys = [(n, "ascending") for n in names]
        order = pc.sort_indices(table, sort_keys=keys, null_placement="at_start")
    return table.take(order)


def _pandas(table: pa.Table) -> pd.DataFrame:
    import pandas as pd

    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _shuffled(
    ddf: Any, used: list[str], read: _batches.ReadSettings, npartitions: int | None
) -> Any:
    if npartitions is not None and npartitions < 1:
        raise WinbackConfigError(f"npartitions={npartitions} must be at least 1")
    return ddf[used].shuffle(on=read.customer_col, npartitions=npartitions)


def score(
    ddf: Any,
    *,
    as_of: AsOf | None = None,
    resolution: str | timedelta = "1d",
    min_occasions: int = 2,
    trf_cuts: Sequence[float] = (0.4, 0.6, 0.8, 0.95),
    s_cuts: Sequence[float] = (1.0, 2.0),
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str | None = "amount",
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
) -> Any:
    """:func:`winback.silence` (SPEC §2) of a Dask DataFrame, partition by partition.

    Arguments are those of :func:`winback.silence`, plus ``npartitions`` (after the shuffle by
    customer; default: as many as the input), ``num_threads`` (Rust threads per partition task,
    default 1) and ``min_rows`` (rows per kernel call). Without ``as_of`` one ``compute`` first
    finds the latest purchase. Returns a lazy Dask DataFrame, one row per customer, with the
    columns of :data:`winback.silence.SILENCE_COLUMNS` as Arrow-backed pandas dtypes.
    """
    from winback.silence import check_parameters

    resolution_us, trf, s = check_parameters(
        resolution, min_occasions, trf_cuts, s_cuts, num_threads
    )
    read, used, empty = _read_settings(
        ddf,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    if as_of is None:
        bounds = _bounds(ddf, used, read, npartitions)
    else:
        bounds = {"time_zone": empty.time_zone, "max_ts_us": None}
    settings = _batches.ScoreSettings(
        **asdict(read),
        as_of_us=_batches.resolve_as_of(bounds, as_of),
        resolution=f"{resolution_us}us",
        min_occasions=min_occasions,
        trf_cuts=tuple(trf),
        s_cuts=tuple(s),
        num_threads=num_threads,
    )
    schema = _batches.silence_schema(
        _batches.customer_arrow_type(empty.frame.schema["customer"]),
        whole_days=resolution_us % _io.MICROS_PER_DAY == 0,
    )

    def kernel(frame: pd.DataFrame) -> pd.DataFrame:
        batches = _sorted_partition(frame, read).to_batches()
        out = _batches.silence_batches(batches, settings, min_rows=min_rows)
        return _pandas(pa.Table.from_batches(list(out), schema=schema))

    return _shuffled(ddf, used, read, npartitions).map_partitions(
        kernel, meta=_pandas(schema.empty_table())
    )


def summary(
    ddf: Any,
    *,
    as_of: AsOf | None = None,
    unit: Literal["D", "W"] = "W",
    calibration_end: AsOf | None = None,
    holdout_end: AsOf | None = None,
    resolution: str | timedelta = "1d",
    period: str = "month",
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str | None = "amount",
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
) -> Any:
    """:func:`winback.summary` (SPEC §5) of a Dask DataFrame, partition by partition.

    Arguments are those of :func:`winback.summary`, plus ``npartitions``, ``num_threads`` and
    ``min_rows`` as in :func:`score`. One ``compute`` first finds the earliest and latest
    purchase (the default ``as_of`` and the period grid's anchor); configuration errors are
    raised then. Returns a lazy Dask DataFrame with the columns of
    :data:`winback.summary.SUMMARY_COLUMNS` (and the holdout columns with ``calibration_end``).
    """
    from winback.summary import UNITS

    if unit not in UNITS:
        raise WinbackConfigError(f"unit={unit!r} is not a time unit; use 'D' (days) or 'W' (weeks)")
    _io.check_num_threads(num_threads)
    resolution_text = f"{_io.parse_resolution(resolution)}us"
    read, used, empty = _read_settings(
        ddf,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    bounds = _bounds(ddf, used, read, npartitions)
    settings, schema = _batches.summary_plan(
        bounds,
        read,
        time_zone=empty.time_zone,
        customer_dtype=empty.frame.schema["customer"],
        as_of=as_of,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        unit=unit,
        resolution=resolution_text,
        period=period,
        num_threads=num_threads,
    )

    def kernel(frame: pd.DataFrame) -> pd.DataFrame:
        batches = _sorted_partition(frame, read).to_batches()
        out = _batches.summary_batches(batches, settings, min_rows=min_rows)
        return _pandas(pa.Table.from_batches(list(out), schema=schema))

    return _shuffled(ddf, used, read, npartitions).map_partitions(
        kernel, meta=_pandas(schema.empty_table())
    )
