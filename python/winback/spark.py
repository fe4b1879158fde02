"""winback on Spark (docs/methods.md#spark): score, summarise and fit on a PySpark ≥ 4.0 DataFrame.

An optional extra (``pip install 'winback[spark]'``); PySpark is imported only when a function
here is called. The per-customer kernels run on the executors inside ``mapInArrow`` over
``repartition(n, customer).sortWithinPartitions(customer, time)``: each task streams its Arrow
batches through :func:`winback._engines.batches.stream_batches`, which holds the last customer of
each chunk over to the next and calls the local API (:func:`winback.silence`,
:func:`winback.summary`) on whole chunks — the same Rust code, never Python per customer. Results
equal the local API's bit for bit (after sorting by customer), with the column mapping of
:mod:`winback._engines.batches` (Enums → ``string``, ``Date`` → ``date``, naive ``Datetime`` →
``timestamp_ntz``).

Settings that depend on all the data are resolved once on the driver (by
:mod:`winback._engines.plan`, shared with the Dask engine), from one aggregate over a narrow
``mapInArrow``: the default ``as_of`` (the latest valid purchase) and, for the summary, the
first purchase (the period grid's anchor). The executors need winback installed (the wheel) and
the driver's time-zone view: Spark ``timestamp`` columns arrive in ``spark.sql.session.timeZone``
and are bucketed on that zone's calendar (or ``tz=``), exactly as the local API would bucket
``df.toArrow()``.

Model fitting (:func:`fit`) gathers only compressed sufficient statistics to the driver — the
distinct (x, t_x, T) with customer counts, t_x and T binned to whole weeks by default — and fits
them with the local model code (``weights_col``); :func:`predict` scores P(alive) and expected
purchases with the fitted parameters in another ``mapInArrow``.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from winback import _io
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
from winback.errors import WinbackConfigError, WinbackError, WinbackFitError, WinbackInputError

if TYPE_CHECKING:
    from pyspark.core.context import SparkContext
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from winback.models import BaseModel

__all__ = ["DEFAULT_MAX_DISTINCT", "check_workers", "fit", "predict", "score", "summary"]

#: Most distinct (x, t_x, T) rows :func:`fit` gathers to the driver before it asks for wider bins.
DEFAULT_MAX_DISTINCT = 1_000_000
_MIN_PYSPARK = (4, 0)
_ERROR_RE = re.compile(r"(Winback(?:Input|Config|Fit)Error): (.*)")


def _require_pyspark() -> None:
    """PySpark ≥ 4.0 or a clear ImportError naming the extra to install."""
    try:
        import pyspark
    except ImportError as exc:
        raise ImportError(
            "winback.spark needs PySpark ≥ 4.0, which is not installed: "
            "pip install 'winback[spark]' (or pip install 'pyspark>=4.0')"
        ) from exc
    found = tuple(int(p) for p in re.findall(r"\d+", pyspark.__version__)[:2])
    if found < _MIN_PYSPARK:
        raise ImportError(
            f"winback.spark needs PySpark ≥ 4.0, found {pyspark.__version__}: "
            "pip install -U 'winback[spark]'"
        )


def _reraise(exc: Exception) -> None:
    """Re-raises a winback error thrown on an executor as the same winback error type."""
    errors = {
        "WinbackInputError": WinbackInputError,
        "WinbackConfigError": WinbackConfigError,
        "WinbackFitError": WinbackFitError,
    }
    matches = _ERROR_RE.findall(str(exc))
    if matches:
        kind, message = matches[-1]
        raise errors[kind](f"{message} (raised on a Spark executor)") from exc
    raise exc


# -- the workers' Python -------------------------------------------------------------------------
#: Run on the workers by value (never by reference to this module, which they may lack): which
#: of winback and its libraries their Python imports, and winback's version.
_PROBE_SOURCE = """
def probe(_):
    import sys
    missing = []
    # winback._winback too: ``import winback`` alone is lazy (it loads no library and not the
    # compiled extension), so it would pass on a Python that cannot run winback.
    for name in ("pyarrow", "polars", "winback", "winback._winback"):
        try:
            __import__(name)
        except Exception as exc:
            missing.append(name + " (" + type(exc).__name__ + ": " + str(exc) + ")")
    version = None
    if not missing:
        import winback._version
        version = winback._version.__version__
    return sys.executable, missing, version
"""

#: The (application, workers' Python) pairs already probed in this driver.
_PROBED: set[tuple[str, str]] = set()


def _probe_function() -> Any:
    namespace: dict[str, Any] = {"__name__": "__main__"}  # pickled by value
    exec(_PROBE_SOURCE, namespace)
    return namespace["probe"]


def _workers_python(sc: SparkContext) -> str:
    """The Python the workers run, chosen as documented (docs/spark.md#workers):
    ``PYSPARK_PYTHON`` when set; else ``spark.pyspark.python`` (which PySpark itself applies
    only under spark-submit); else, on a ``local`` master, the driver's interpreter."""
    conf = sc.getConf().get("spark.pyspark.python")
    if os.environ.get("PYSPARK_PYTHON"):
        return str(sc.pythonExec)
    if conf:
        sc.pythonExec = conf
    elif (sc.master or "").startswith("local"):
        sc.pythonExec = sys.executable
    return str(sc.pythonExec)


def _where_set(sc: SparkContext) -> str:
    if os.environ.get("PYSPARK_PYTHON"):
        return f"PYSPARK_PYTHON={os.environ['PYSPARK_PYTHON']!r}"
    conf = sc.getConf().get("spark.pyspark.python")
    if conf:
        return f"spark.pyspark.python={conf!r}"
    if (sc.master or "").startswith("local"):
        return f"the driver's interpreter ({sys.executable!r}, winback's default on a local master)"
    return "neither PYSPARK_PYTHON nor spark.pyspark.python is set, so Spark runs 'python3'"


def check_workers(df: DataFrame) -> None:
    """Checks once per Spark application (and workers' Python) that the workers import winback
    and its libraries, by a tiny probe job, so that a missing install is one clear
    :class:`~winback.WinbackConfigError` here rather than a long worker stack trace at the
    first action (docs/spark.md#workers). On a ``local`` master the workers default to the
    driver's interpreter. Nothing is checked on Spark Connect (no SparkContext)."""
    from winback._version import __version__

    try:
        sc = df.sparkSession.sparkContext
    except Exception:  # Spark Connect: no SparkContext, the server manages the workers
        return
    python = _workers_python(sc)
    key = (str(sc.applicationId), python)
    if key in _PROBED:
        return
    advice = (
        "Install winback (the same wheel as the driver's) into the workers' Python, or point "
        "PYSPARK_PYTHON (or spark.pyspark.python under spark-submit) to a Python that has it; "
        "see docs/spark.md#workers"
    )
    tasks = max(1, min(int(sc.defaultParallelism), 64))
    try:
        found = sc.parallelize(range(tasks), tasks).map(_probe_function()).collect()
    except Exception as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise WinbackConfigError(
            f"the Spark workers could not run Python {python!r} ({_where_set(sc)}): "
            f"{first.strip()[:300]}. {advice}"
        ) from None
    for executable, missing, version in found:
        if missing:
            raise WinbackConfigError(
                f"the Spark workers' Python {executable!r} ({_where_set(sc)}) cannot import "
                f"{'; '.join(missing)}. {advice}"
            )
        if version != __version__:
            raise WinbackConfigError(
                f"the Spark workers' Python {executable!r} has winback {version}, the driver "
                f"{__version__}: results could differ. {advice}"
            )
    _PROBED.add(key)


def _collect_arrow(df: DataFrame) -> pa.Table:
    try:
        return df.toArrow()
    except WinbackError:
        raise
    except Exception as exc:
        _reraise(exc)
        raise  # pragma: no cover - _reraise always raises


# -- schemas -------------------------------------------------------------------------------------
def _spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql import types as spark_types

    if pa.types.is_int64(arrow_type):
        return spark_types.LongType()
    if pa.types.is_float64(arrow_type):
        return spark_types.DoubleType()
    if pa.types.is_large_string(arrow_type) or pa.types.is_string(arrow_type):
        return spark_types.StringType()
    if pa.types.is_date32(arrow_type):
        return spark_types.DateType()
    if pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:
        return spark_types.TimestampNTZType()
    if pa.types.is_binary(arrow_type):
        return spark_types.BinaryType()
    raise TypeError(f"no Spark type for Arrow {arrow_type}")  # pragma: no cover


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of a declared Arrow output schema (see :mod:`winback._engines.batches`)."""
    from pyspark.sql import types as spark_types

    return spark_types.StructType(
        [spark_types.StructField(f.name, _spark_type(f.type), True) for f in schema]
    )


# -- reading -------------------------------------------------------------------------------------
def _source(df: DataFrame, *, num_partitions: int | None, min_rows: int) -> Source:
    """What the shared planning needs from a Spark DataFrame (checks run on the driver)."""

    def bounds(read: _batches.ReadSettings, used: list[str]) -> dict[str, Any]:
        return _bounds(df, used, read, num_partitions=num_partitions, min_rows=min_rows)

    def tally(read: _batches.ReadSettings, used: list[str]) -> list[Any]:
        return _tally(df, used, read, min_rows=min_rows)

    def require() -> None:
        _require_pyspark()
        _check_partitions(num_partitions)
        check_workers(df)

    return Source(
        require=require,
        columns=lambda: df.columns,
        empty=lambda used: df.select(used).limit(0).toArrow(),
        bounds=bounds,
        tally=tally,
    )


def _tally(
    df: DataFrame, used: list[str], read: _batches.ReadSettings, *, min_rows: int
) -> list[tuple[int, int, int, dict[str, Any]]]:
    """:func:`~winback._engines.batches.read_tally` of every chunk of every input partition, in
    the input's own partitions (one narrow ``mapInArrow`` job; Spark's partition index orders
    the rows as ``collect`` would)."""
    from pyspark import TaskContext

    def kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        start = 0
        for table in _gathered(batches, min_rows):
            found = pickle.dumps(_batches.read_tally(table, read))
            row = {"partition": partition, "start": start, "rows": table.num_rows, "tally": found}
            yield pa.RecordBatch.from_pylist([row], schema=_batches.TALLY_SCHEMA)
            start += table.num_rows

    rows = _collect_arrow(df.select(used).mapInArrow(kernel, spark_schema(_batches.TALLY_SCHEMA)))
    return [
        (int(r["partition"]), int(r["start"]), int(r["rows"]), pickle.loads(r["tally"]))
        for r in rows.to_pylist()
    ]


def _rejects(df: DataFrame, plan: Plan[Any], min_rows: int) -> DataFrame:
    """The rows ``on_invalid="drop"`` sets aside, with their whole-input ``row_index`` and
    ``reason``: a narrow ``mapInArrow`` over the input, each partition numbered from its offset
    in the driver's tally."""
    from pyspark import TaskContext
    from pyspark.sql import types as spark_types

    read, offsets = plan.read, plan.tally.offsets if plan.tally is not None else {}
    source = df.select(plan.used)
    schema = spark_types.StructType(
        [
            spark_types.StructField("row_index", spark_types.LongType(), False),
            *source.schema.fields,
            spark_types.StructField("reason", spark_types.StringType(), True),
        ]
    )

    def kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        start = offsets.get(context.partitionId() if context is not None else 0, 0)
        for table in _gathered(batches, min_rows):
            yield from _batches.rejects_table(table, read, start).to_batches()
            start += table.num_rows

    return source.mapInArrow(kernel, schema)


def _check_partitions(num_partitions: int | None) -> None:
    if num_partitions is not None and num_partitions < 1:
        raise WinbackConfigError(f"num_partitions={num_partitions} must be at least 1")


def _partitioned(
    df: DataFrame, used: list[str], read: _batches.ReadSettings, num_partitions: int | None
) -> DataFrame:
    """The used columns hash-partitioned by customer, sorted by (customer, time) in partitions."""
    _check_partitions(num_partitions)
    selected = df.select(used)
    key = _key(selected, read)
    if key != read.customer_col:  # ids parsed from text: shuffle on the parsed id
        from pyspark.sql import types as spark_types

        def keyed(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                yield from _batches.customer_key(batch, read).to_batches()

        key_field = spark_types.StructField(_batches.KEY_COL, spark_types.LongType(), True)
        schema = spark_types.StructType([*selected.schema.fields, key_field])  # a new one
        selected = selected.mapInArrow(keyed, schema)
    parts = (
        selected.repartition(num_partitions, key)
        if num_partitions is not None
        else selected.repartition(key)
    )
    return parts.sortWithinPartitions(key, read.time_col)


def _key(df: DataFrame, read: _batches.ReadSettings) -> str:
    """The column the shuffle groups customers by (see
    :func:`~winback._engines.batches.needs_key`)."""
    customer_type = df.select(read.customer_col).limit(0).toArrow().schema[0].type
    return _batches.KEY_COL if _batches.needs_key(read, customer_type) else read.customer_col


def _gathered(batches: Iterable[pa.RecordBatch], min_rows: int) -> Iterator[pa.Table]:
    """Batches gathered into tables of at least ``min_rows`` rows (the last may be smaller)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= min_rows:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _bounds(
    df: DataFrame,
    used: list[str],
    read: _batches.ReadSettings,
    *,
    num_partitions: int | None,
    min_rows: int,
) -> dict[str, Any]:
    """Earliest/latest valid purchase over all the data: one aggregate over a ``mapInArrow``.

    With ``order_col`` an order's rows must be read together (it is dated at its first row), so
    the pre-pass then runs over the customer-partitioned data; otherwise over the input as is.
    """
    from pyspark.sql import functions as sql

    native = _native_bounds(df, read)
    if native is not None:
        return native
    schema = spark_schema(_batches.BOUNDS_SCHEMA)
    if read.order_col is None:
        source = df.select(used)

        def bounds(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            yield from _batches.bounds_table(_gathered(batches, min_rows), read).to_batches()

    else:
        source = _partitioned(df, used, read, num_partitions)
        key = _key(df, read)

        def bounds(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            def one(table: pa.Table) -> pa.Table:
                return _batches.bounds_table([table], read)

            yield from _batches.stream_batches(batches, one, customer_col=key, min_rows=min_rows)

    totals = source.mapInArrow(bounds, schema).agg(
        sql.min("min_ts_us").alias("min_ts_us"),
        sql.max("max_ts_us").alias("max_ts_us"),
        sql.sum("rows_read").alias("rows_read"),
        sql.sum("rows_rejected").alias("rows_rejected"),
        sql.max("time_zone").alias("time_zone"),
    )
    return _batches.combine_bounds(_collect_arrow(totals))


def _native_bounds(df: DataFrame, read: _batches.ReadSettings) -> dict[str, Any] | None:
    """The same bounds from Spark's own ``min``/``max`` when that is exact: a ``date`` or
    ``timestamp_ntz`` time column (its value is the local wall clock the local API uses) and no
    ``order_col``. Rows the local API would reject (null id or time; null, NaN or infinite
    amount) are left out, as locally. None when not applicable."""
    from pyspark.sql import functions as sql
    from pyspark.sql import types as spark_types

    kind = df.schema[read.time_col].dataType
    exact = isinstance(kind, spark_types.DateType | spark_types.TimestampNTZType)
    if read.order_col is not None or not exact:
        return None
    valid = sql.col(read.customer_col).isNotNull() & sql.col(read.time_col).isNotNull()
    if read.amount_col is not None:
        amount = sql.col(read.amount_col).cast("double")
        finite = ~sql.isnan(amount) & (sql.abs(amount) != sql.lit(float("inf")))
        valid = valid & amount.isNotNull() & finite
    first, last = (
        df.where(valid)
        .agg(sql.min(read.time_col).alias("first"), sql.max(read.time_col).alias("last"))
        .collect()[0]
    )

    def micros(value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # a date: its midnight, as the local API reads it
            value = datetime.combine(value, time())
        return _io.as_of_to_micros(value, None)

    return {
        "min_ts_us": micros(first),
        "max_ts_us": micros(last),
        "rows_read": None,
        "rows_rejected": None,
        "time_zone": read.tz if isinstance(kind, spark_types.TimestampNTZType) else None,
    }


# -- public functions ----------------------------------------------------------------------------
def score(
    df: DataFrame,
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
    num_partitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
    return_rejects: bool = False,
) -> Any:
    """:func:`winback.silence` (docs/methods.md#silence) of a Spark DataFrame of transactions, on
    the executors.

    Arguments are those of :func:`winback.silence` (with its reading options ``time_format``
    and ``id_type``), plus ``num_partitions`` (the customer partitions; default
    ``spark.sql.shuffle.partitions``), ``num_threads`` (Rust threads per task; default 1 since
    Spark already runs one task per core), ``min_rows`` (rows gathered per kernel call) and
    ``return_rejects``. Without ``as_of`` a Spark job finds the latest purchase first, so every
    partition scores at the same snapshot. A first call checks that the workers' Python has
    winback (docs/spark.md#workers).

    Returns a lazy DataFrame with one row per customer and the columns of
    :data:`winback.silence.SILENCE_COLUMNS` (schema:
    :func:`winback._engines.batches.silence_schema`). With ``on_invalid="raise"`` a job reads
    the input first and raises the local API's :class:`~winback.WinbackInputError`, word for
    word (row numbers count in the whole input, in its partition order); ``"drop"`` drops
    them, and ``return_rejects=True`` returns ``(scores, rejects)``, the rejects a lazy
    DataFrame as the local ``info.rejects``: ``row_index``, the used columns, ``reason``.
    """
    plan = score_plan(
        _source(df, num_partitions=num_partitions, min_rows=min_rows),
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
    settings = plan.settings

    key = _key(df, plan.read)

    def kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _batches.silence_batches(batches, settings, min_rows=min_rows, key_col=key)

    partitioned = _partitioned(df, plan.used, plan.read, num_partitions)
    result = partitioned.mapInArrow(kernel, spark_schema(plan.schema))
    return (result, _rejects(df, plan, min_rows)) if return_rejects else result


def summary(
    df: DataFrame,
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
    num_partitions: int | None = None,
    num_threads: int | None = 1,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
    return_rejects: bool = False,
) -> Any:
    """:func:`winback.summary` (docs/methods.md#summary) of a Spark DataFrame of transactions, on
    the executors.

    Arguments are those of :func:`winback.summary`, plus ``num_partitions``, ``num_threads``,
    ``min_rows`` and ``return_rejects`` as in :func:`score`. One Spark job first finds the
    data's earliest and latest purchase (the default ``as_of`` and the anchor of the period
    grid); configuration errors (e.g. a ``calibration_end`` before the first purchase) are
    raised then, on the driver.

    Returns a lazy DataFrame with the columns of :data:`winback.summary.SUMMARY_COLUMNS` (and
    :data:`~winback.summary.HOLDOUT_COLUMNS` with ``calibration_end``), schema
    :func:`winback._engines.batches.summary_schema`; with ``return_rejects=True`` also the
    rejects, as in :func:`score`.
    """
    plan = summary_plan(
        _source(df, num_partitions=num_partitions, min_rows=min_rows),
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
    settings = plan.settings

    key = _key(df, plan.read)

    def kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _batches.summary_batches(batches, settings, min_rows=min_rows, key_col=key)

    partitioned = _partitioned(df, plan.used, plan.read, num_partitions)
    result = partitioned.mapInArrow(kernel, spark_schema(plan.schema))
    return (result, _rejects(df, plan, min_rows)) if return_rejects else result


def _model_columns(model: BaseModel) -> tuple[str, ...]:
    from winback.models import BetaGeoModel, ModifiedBetaGeoModel, NBDModel, ParetoNBDModel

    if isinstance(model, BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel):
        return ("frequency", "recency", "T")
    if isinstance(model, NBDModel):
        return ("period_frequency", "n_periods")
    raise WinbackConfigError(
        f"winback.spark.fit fits BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel and "
        f"NBDModel, not {type(model).__name__}: its statistics (continuous spend) do not "
        "compress; fit it locally on a sample of the summary (summary_df.sample(...).toArrow())"
    )


def fit(
    df: DataFrame,
    model: BaseModel,
    *,
    bin_width: float | None = None,
    max_distinct: int = DEFAULT_MAX_DISTINCT,
    unit: TimeUnit = UNIT,
    min_rows: int = _batches.DEFAULT_MIN_ROWS,
    **summary_args: Any,
) -> BaseModel:
    """Fits ``model`` (docs/methods.md#fitting) on a Spark summary (or on transactions, summarised
    first with :func:`summary` and ``summary_args``), gathering only compressed statistics to the
    driver.

    For the purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD) each executor bins t_x
    (``recency``) and T to the nearest multiple of ``bin_width`` (in the summary's ``unit``;
    default one week, ``0`` keeps them exact: see :func:`winback._engines.batches.bin_compress`) and
    counts the distinct (x, t_x, T); Spark sums the counts and the driver fits them with the local
    code (``weights_col="count"``). The result equals the local fit of the binned summary bit
    for bit. At day resolution the tuples barely repeat (88k customers gave 75k tuples), hence the
    weekly default. :class:`~winback.models.NBDModel` is fitted on the exact
    (``period_frequency``, ``n_periods``) pairs. More than ``max_distinct`` distinct rows raise a
    :class:`~winback.WinbackConfigError` asking for a wider ``bin_width``.

    Returns ``model``, fitted (its ``_fit_frame`` is the gathered compressed table).
    """
    from pyspark.sql import functions as sql

    _require_pyspark()
    check_workers(df)
    columns = _model_columns(model)
    if not all(c in df.columns for c in columns):
        df = summary(df, unit=unit, min_rows=min_rows, **summary_args)
    elif summary_args:
        raise WinbackConfigError(
            f"{sorted(summary_args)} apply to transactions, but df is already a summary"
        )
    if max_distinct < 1:
        raise WinbackConfigError(f"max_distinct={max_distinct} must be at least 1")
    binned = columns[1:] if len(columns) == 3 else ()
    width = _batches.bin_width_for(unit, bin_width) if binned else 0.0
    stats_schema = df.select(*columns).schema.add("count", "long")

    def compress(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for table in _gathered(batches, min_rows):
            yield from _batches.bin_compress(
                table, columns=columns, binned=binned, width=width
            ).to_batches()

    compressed = df.select(*columns).mapInArrow(compress, stats_schema)
    grouped = compressed.groupBy(*columns).agg(sql.sum("count").alias("count"))
    stats = _collect_arrow(grouped.limit(max_distinct + 1))
    if stats.num_rows > max_distinct:
        raise WinbackConfigError(
            f"more than max_distinct={max_distinct} distinct {columns} rows would reach the "
            f"driver; pass a wider bin_width (now {width} in unit {unit!r}) or a larger "
            "max_distinct"
        )
    frame = pl.DataFrame(pl.from_arrow(stats)).sort(columns)
    if binned:
        model.fit(  # type: ignore[attr-defined]
            frame,
            frequency_col=columns[0],
            recency_col=columns[1],
            T_col=columns[2],
            weights_col="count",
        )
    else:
        model.fit(frame, weights_col="count")  # type: ignore[attr-defined]
    return model


def predict(
    df: DataFrame,
    model: BaseModel,
    *,
    t: float,
    customer_col: str = CUSTOMER_COL,
) -> DataFrame:
    """P(alive) and the expected purchases in the next ``t`` time units (docs/methods.md#models) of
    every customer of a Spark summary, with a fitted purchase-count model, on the executors.

    The model travels as its JSON-ready parameters (:meth:`~winback.models.BaseModel.to_dict`)
    and each Arrow batch is scored by the local model code: the values equal the local
    ``model.probability_alive(summary)`` and ``model.expected_purchases(t, summary)`` bit for
    bit. Returns a lazy DataFrame ``customer_id``, ``p_alive``, ``expected_purchases`` (double).
    """
    from winback.models import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel

    _require_pyspark()
    check_workers(df)
    if not isinstance(model, BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel):
        raise WinbackConfigError(
            f"winback.spark.predict needs BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel, "
            f"not {type(model).__name__}"
        )
    payload = model.to_dict()
    name = type(model).__name__
    columns = (model.frequency_col, model.recency_col, model.T_col)
    horizon = float(t)
    ids = df.select(customer_col).schema[0].dataType
    from pyspark.sql import types as spark_types

    out = spark_types.StructType(
        [
            spark_types.StructField("customer_id", ids, True),
            spark_types.StructField("p_alive", spark_types.DoubleType(), True),
            spark_types.StructField("expected_purchases", spark_types.DoubleType(), True),
        ]
    )

    def kernel(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import winback.models

        fitted = getattr(winback.models, name).from_dict(payload)
        for batch in batches:
            frame = pl.DataFrame(pl.from_arrow(batch))
            scored = pl.DataFrame(
                [
                    frame.get_column(customer_col).alias("customer_id"),
                    fitted.probability_alive(frame).alias("p_alive"),
                    fitted.expected_purchases(horizon, frame).alias("expected_purchases"),
                ]
            )
            yield from scored.to_arrow().to_batches()

    return df.select(customer_col, *columns).mapInArrow(kernel, out)
