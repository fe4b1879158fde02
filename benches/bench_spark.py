"""Throughput of winback on Spark ``local[N]`` (and Dask) per core, side by side with local winback.

Everything runs on the same generated transactions (``benches/gen_data.py``), written once as
Parquet files to a temporary directory (removed at the end; no data is committed):

(a) ``local``: ``winback.silence(<parquet dir>)``, the in-process path with all cores;
(b) ``spark``: ``winback.spark.score(spark.read.parquet(dir))`` in ``local[N]``, forced with the
    ``noop`` writer; once with the default ``as_of`` (a pre-pass job finds the latest purchase)
    and once with an explicit ``as_of`` (the scoring job alone);
(c) ``spark summary``: ``winback.spark.summary`` the same way (always with its pre-pass);
(d) ``dask``: ``winback.dask.score`` on ``dd.read_parquet(dir)`` with the threaded scheduler.

The Spark and Dask results are checked against (a), sorted by customer (same rows, same
values); the script exits with status 1 when they differ. Reported: wall time (best of
``--repeat``), rows/s, rows/s per core (wall time × cores used), the ratio to local, and the
core-hours a billion rows would take at that per-core rate. The Spark session's start-up (≈ 10 s)
is not counted.

Usage::

    python benches/bench_spark.py --customers 300000 [--cores 2] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import generate

import winback

AS_OF = "2024-12-31"
ENUMS = ("status", "rank_ratio_group", "silence_band")


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def spark_session(cores: int, arrow_batch: int) -> Any:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("winback-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(4 * cores))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def run(
    customers: int, *, cores: int, repeat: int, seed: int, arrow_batch: int = 10_000
) -> list[dict[str, Any]]:
    from winback import dask as winback_dask
    from winback import spark as winback_spark

    tx = generate(customers, seed=seed)
    rows = tx.height
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="winback-bench-spark-") as folder:
        for part, index in enumerate(np.array_split(np.arange(rows), 2 * cores)):
            tx[index].write_parquet(Path(folder) / f"part-{part:03d}.parquet")
        del tx

        def add(name: str, seconds: float, used_cores: int) -> None:
            results.append(
                {
                    "implementation": name,
                    "rows": rows,
                    "cores": used_cores,
                    "seconds": seconds,
                    "rows_per_s": rows / seconds,
                    "rows_per_s_per_core": rows / seconds / used_cores,
                }
            )

        seconds, local = best_of(
            repeat, lambda: winback.silence(folder, as_of=AS_OF, num_threads=cores)
        )
        add("local winback.silence", seconds, cores)
        local = local.with_columns(pl.col(ENUMS).cast(pl.String)).sort("customer_id")
        seconds, _ = best_of(repeat, lambda: winback.summary(folder, num_threads=cores))
        add("local winback.summary", seconds, cores)

        spark = spark_session(cores, arrow_batch)
        df = spark.read.parquet(folder)
        df.count()  # warm the reader and the Python workers
        for label, kwargs in (("default as_of", {}), ("as_of given", {"as_of": AS_OF})):
            seconds, _ = best_of(
                repeat,
                lambda kwargs=kwargs: (
                    winback_spark.score(df, **kwargs).write.format("noop").mode("overwrite").save()
                ),
            )
            add(f"spark score ({label})", seconds, cores)
        got = pl.DataFrame(pl.from_arrow(winback_spark.score(df, as_of=AS_OF).toArrow()))
        check("spark score", got.sort("customer_id"), local)
        seconds, _ = best_of(
            repeat,
            lambda: winback_spark.summary(df).write.format("noop").mode("overwrite").save(),
        )
        add("spark summary", seconds, cores)
        spark.stop()

        import dask
        import dask.dataframe as dd

        with dask.config.set(scheduler="threads", num_workers=cores):
            ddf = dd.read_parquet(folder)
            seconds, scored_dask = best_of(
                repeat, lambda: winback_dask.score(ddf, as_of=AS_OF).compute()
            )
        add("dask score (as_of given)", seconds, cores)
        import pyarrow as pa

        got = pl.DataFrame(pl.from_arrow(pa.Table.from_pandas(scored_dask, preserve_index=False)))
        check("dask score", got.sort("customer_id"), local)
    base = results[0]["rows_per_s_per_core"]
    for row in results:
        row["ratio_to_local"] = base / row["rows_per_s_per_core"]
        row["core_hours_per_billion_rows"] = 1e9 / row["rows_per_s_per_core"] / 3600
    return results


class DisagreementError(AssertionError):
    """An engine's result differs from the local one."""


def check(name: str, got: pl.DataFrame, expected: pl.DataFrame) -> None:
    if not got.equals(expected):
        raise DisagreementError(f"{name} differs from local winback.silence")


def format_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| implementation | cores | wall s | rows/s | rows/s/core | × local time/core "
        "| core-hours / 10⁹ rows |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['implementation']} | {r['cores']} | {r['seconds']:.2f} | "
            f"{r['rows_per_s']:,.0f} | {r['rows_per_s_per_core']:,.0f} | "
            f"{r['ratio_to_local']:.1f} | {r['core_hours_per_billion_rows']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="winback on Spark/Dask vs local (module doc).")
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--arrow-batch", type=int, default=10_000, help="maxRecordsPerBatch (Spark's default)"
    )
    args = parser.parse_args(argv)
    try:
        results = run(
            args.customers,
            cores=args.cores,
            repeat=args.repeat,
            seed=args.seed,
            arrow_batch=args.arrow_batch,
        )
    except DisagreementError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"load average before/after: {os.getloadavg()}")
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
