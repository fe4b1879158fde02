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
    AsOf,
    IdType,
    OnInvalid,
    TimeUnit,
)
from winback.errors import WinbackConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["check_workers", "score", "summary"]


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


def _distributed_client() -> Any:
    """The ``distributed`` Client in use, or None (no ``distributed``, or no client: Dask's
    local schedulers run in this process, which has winback)."""
    try:
        from dask.distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


#: The distributed schedulers whose workers were found to import winback.
_PROBED: set[str] = set()


def _probe() -> tuple[str, list[str], str | None]:
    """Run on every worker: its Python, the modules it cannot import, winback's version. Sent by
    value (``__module__`` is reset below) so that a worker without winback can run it."""
    import sys

    missing = []
    # winback._winback too: ``import winback`` alone is lazy and loads no compiled extension.
    for name in ("pyarrow", "polars", "winback", "winback._winback"):
        try:
            __import__(name)
        except Exception as exc:
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    version = None
    if not missing:
        import winback._version

        version = winback._version.__version__
    return sys.executable, missing, version


_probe.__module__ = "__main__"  # cloudpickle sends __main__ functions by value


def check_workers(client: Any = None) -> None:
    """With a ``distributed`` Client in use, checks once per scheduler (``client.run`` on every
    worker) that the workers import winback and its libraries, raising one clear
    :class:`~winback.WinbackConfigError` otherwise (docs/spark.md#workers). Nothing to check
    for Dask's local schedulers."""
    from winback._version import __version__

    client = _distributed_client() if client is None else client
    if client is None:
        return
    key = str(getattr(client.scheduler, "address", id(client)))
    if key in _PROBED:
        return
    advice = (
        "Install winback (the same wheel as the client's) into the Dask workers' Python "
        "environment (their image or environment, e.g. the PipInstall worker plugin); see "
        "docs/spark.md#workers"
    )
    try:
        found = client.run(_probe)
    except Exception as exc:
        raise WinbackConfigError(
            f"the Dask workers could not run winback's check: {type(exc).__name__}: {exc}. {advice}"
        ) from None
    for worker, (executable, missing, version) in sorted(found.items()):
        if missing:
            raise WinbackConfigError(
                f"the Dask worker {worker} (Python {executable!r}) cannot import "
                f"{'; '.join(missing)}. {advice}"
            )
        if version != __version__:
            raise WinbackConfigError(
                f"the Dask worker {worker} (Python {executable!r}) has winback {version}, the "
                f"client {__version__}: results could differ. {advice}"
            )
    _PROBED.add(key)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _source(ddf: Any, npartitions: int | None) -> Source:
    """What the shared planning needs from a Dask DataFrame (checks run on the client, on the
    frame's meta)."""

    def require() -> Any:
        dd = _require_dask()
        _check_npartitions(npartitions)
        check_workers()
        return dd

    return Source(
        require=require,
        columns=lambda: ddf.columns,
        empty=lambda used: _arrow(ddf._meta[used]),
        bounds=lambda read, used: _bounds(ddf, used, read, npartitions),
        tally=lambda read, used: _tally(ddf, used, read),
    )


def _tally(
    ddf: Any, used: list[str], read: _batches.ReadSettings
) -> list[tuple[int, int, int, dict[str, Any]]]:
    """:func:`~winback._engines.batches.read_tally` of every input partition (one ``compute``);
    the partitions' order is the input's row order."""
    import dask

    def one(frame: pd.DataFrame, number: int) -> tuple[int, int, int, dict[str, Any]]:
        return number, 0, len(frame), _batches.read_tally(_arrow(frame), read)

    parts = [dask.delayed(one)(part, i) for i, part in enumerate(ddf[used].to_delayed())]  # type: ignore[attr-defined]
    return list(dask.compute(*parts))  # type: ignore[attr-defined, no-untyped-call]


def _rejects(ddf: Any, plan: Plan[Any]) -> Any:
    """The rows ``on_invalid="drop"`` sets aside, with their whole-input ``row_index`` (each
    input partition numbered from its offset in the client's tally) and ``reason``."""
    read, offsets = plan.read, plan.tally.offsets if plan.tally is not None else {}
    source = ddf[plan.used]
    schema = _batches.rejects_schema(_arrow(source._meta).schema)

    def kernel(frame: pd.DataFrame, partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
        number = 0 if partition_info is None else int(partition_info["number"])
        table = _batches.rejects_table(_arrow(frame), read, offsets.get(number, 0))
        return _pandas(table.cast(schema))

    return source.map_partitions(kernel, meta=_pandas(schema.empty_table()))


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


def _sorted_partition(frame: pd.DataFrame, key: str, read: _batches.ReadSettings) -> pa.Table:
    table = _arrow(frame)
    names = (key, read.time_col)
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
    _check_npartitions(npartitions)
    key = _key(ddf, read)
    source = ddf[used]
    if key != read.customer_col:  # ids parsed from text: shuffle on the parsed id

        def keyed(frame: pd.DataFrame) -> pd.DataFrame:
            return _pandas(_batches.customer_key(_arrow(frame), read))

        meta = _pandas(_batches.customer_key(_arrow(source._meta), read))
        source = source.map_partitions(keyed, meta=meta)
    return source.shuffle(on=key, npartitions=npartitions)


def _key(ddf: Any, read: _batches.ReadSettings) -> str:
    """The column the shuffle groups customers by (see
    :func:`~winback._engines.batches.needs_key`)."""
    customer_type = _arrow(ddf._meta[[read.customer_col]]).schema[0].type
    return _batches.KEY_COL if _batches.needs_key(read, customer_type) else read.customer_col


def _check_npartitions(npartitions: int | None) -> None:
    if npartitions is not None and npartitions < 1:
        raise WinbackConfigError(f"npartitions={npartitions} must be at least 1")


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
    key = _key(ddf, read)

    def kernel(frame: pd.DataFrame) -> pd.DataFrame:
        batches = _sorted_partition(frame, key, read).to_batches()
        out = stream(batches, settings, min_rows=min_rows, key_col=key)
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
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
    return_rejects: bool = False,
) -> Any:
    """:func:`winback.silence` (docs/methods.md#silence) of a Dask DataFrame, partition by
    partition.

    Arguments are those of :func:`winback.silence` (with ``time_format`` and ``id_type``),
    plus ``npartitions`` (after the shuffle by customer; default: as many as the input),
    ``num_threads`` (Rust threads per partition task, default 1), ``min_rows`` (rows per kernel
    call) and ``return_rejects``. Without ``as_of`` one ``compute`` first finds the latest
    purchase. With ``on_invalid="raise"`` one ``compute`` reads the input first and raises the
    local API's error word for word (row numbers in the whole input, partitions in order);
    with ``"drop"`` and ``return_rejects=True`` the result is ``(scores, rejects)``, the rejects
    as the local ``info.rejects`` (``row_index``, the used columns, ``reason``). With a
    ``distributed`` Client the first call checks that the workers have winback.

    Returns a lazy Dask DataFrame, one row per customer, with the columns of
    :data:`winback.silence.SILENCE_COLUMNS` as Arrow-backed pandas dtypes.
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
        time_format=time_format,
        id_type=id_type,
        rejects=return_rejects,
    )
    result = _map_customers(ddf, npartitions, plan, _batches.silence_batches, min_rows)
    return (result, _rejects(ddf, plan)) if return_rejects else result


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
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
    npartitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
    return_rejects: bool = False,
) -> Any:
    """:func:`winback.summary` (docs/methods.md#summary) of a Dask DataFrame, partition by
    partition.

    Arguments are those of :func:`winback.summary`, plus ``npartitions``, ``num_threads``,
    ``min_rows`` and ``return_rejects`` as in :func:`score`. One ``compute`` first finds the
    earliest and latest purchase (the default ``as_of`` and the period grid's anchor);
    configuration errors are raised then. Returns a lazy Dask DataFrame with the columns of
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
        time_format=time_format,
        id_type=id_type,
        rejects=return_rejects,
    )
    result = _map_customers(ddf, npartitions, plan, _batches.summary_batches, min_rows)
    return (result, _rejects(ddf, plan)) if return_rejects else result
