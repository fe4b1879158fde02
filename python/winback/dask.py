"""winback on Dask (docs/methods.md#spark): score and summarise a Dask DataFrame of transactions.

An optional extra (``pip install 'winback[dask]'``), a second engine for Python-first teams;
Dask is imported only when a function here is called. The transactions are shuffled by customer
(``shuffle(on=customer)``), each partition is sorted by (customer, time) and streamed through the
same batch function as the Spark path (:mod:`winback._engines.batches`): whole chunks of
customers through the local API, so the results equal :func:`winback.silence` /
:func:`winback.summary` bit for bit (after sorting by customer). Output partitions are pandas
frames with Arrow-backed dtypes (``pd.ArrowDtype``) holding the declared schemas of
:mod:`winback._engines.batches` exactly (Enums as strings). Arguments are checked and the global
settings resolved on the client by :mod:`winback._engines.plan`, shared with the Spark engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from winback._engines import batches as _batches
from winback._engines.plan import Plan, Source, score_plan, summary_plan
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    MIN_OCCASIONS,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    UNIT,
    AsOf,
    OnInvalid,
    TimeUnit,
)
from winback.errors import WinbackConfigError

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


def _source(ddf: Any, npartitions: int | None) -> Source:
    """What the shared planning needs from a Dask DataFrame (checks run on the client, on the
    frame's meta)."""
    return Source(
        require=_require_dask,
        columns=lambda: ddf.columns,
        empty=lambda used: _arrow(ddf._meta[used]),
        bounds=lambda read, used: _bounds(ddf, used, read, npartitions),
    )


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

    parts = [dask.delayed(one)(part) for part in source.to_delayed()]  # type: ignore[attr-defined]
    tables = dask.compute(*parts)  # type: ignore[attr-defined, no-untyped-call]
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


def _map_customers(
    ddf: Any,
    npartitions: int | None,
    plan: Plan[Any],
    stream: Callable[..., Iterator[pa.RecordBatch]],
    min_rows: int,
) -> Any:
    """The customer-shuffled frame, each partition sorted by (customer, time) and streamed
    through ``stream`` (:func:`~winback._engines.batches.silence_batches` or
    :func:`~winback._engines.batches.summary_batches`) with the plan's settings."""
    read, settings, schema = plan.read, plan.settings, plan.schema

    def kernel(frame: pd.DataFrame) -> pd.DataFrame:
        batches = _sorted_partition(frame, read).to_batches()
        out = stream(batches, settings, min_rows=min_rows)
        return _pandas(pa.Table.from_batches(list(out), schema=schema))

    return _shuffled(ddf, plan.used, read, npartitions).map_partitions(
        kernel, meta=_pandas(schema.empty_table())
    )


def score(
    ddf: Any,
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
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
) -> Any:
    """:func:`winback.silence` (docs/methods.md#silence) of a Dask DataFrame, partition by
    partition.

    Arguments are those of :func:`winback.silence`, plus ``npartitions`` (after the shuffle by
    customer; default: as many as the input), ``num_threads`` (Rust threads per partition task,
    default 1) and ``min_rows`` (rows per kernel call). Without ``as_of`` one ``compute`` first
    finds the latest purchase. Returns a lazy Dask DataFrame, one row per customer, with the
    columns of :data:`winback.silence.SILENCE_COLUMNS` as Arrow-backed pandas dtypes.
    """
    plan = score_plan(
        _source(ddf, npartitions),
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
        num_threads=num_threads,
    )
    return _map_customers(ddf, npartitions, plan, _batches.silence_batches, min_rows)


def summary(
    ddf: Any,
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
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
) -> Any:
    """:func:`winback.summary` (docs/methods.md#summary) of a Dask DataFrame, partition by
    partition.

    Arguments are those of :func:`winback.summary`, plus ``npartitions``, ``num_threads`` and
    ``min_rows`` as in :func:`score`. One ``compute`` first finds the earliest and latest
    purchase (the default ``as_of`` and the period grid's anchor); configuration errors are
    raised then. Returns a lazy Dask DataFrame with the columns of
    :data:`winback.summary.SUMMARY_COLUMNS` (and the holdout columns with ``calibration_end``).
    """
    plan = summary_plan(
        _source(ddf, npartitions),
        as_of=as_of,
        unit=unit,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        resolution=resolution,
        period=period,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        num_threads=num_threads,
    )
    return _map_customers(ddf, npartitions, plan, _batches.summary_batches, min_rows)
