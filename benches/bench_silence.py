"""Benchmark ``winback.silence`` against Polars, DuckDB and two floors.

Everything runs in one process on the same generated transactions (``benches/gen_data.py``):

(a) ``winback``: ``winback.silence(df, as_of=AS_OF)``;
(b) ``polars``: one lazy Polars query computing the same columns (occasions by a
    ``group_by(customer, day)``, a sort, gaps by ``shift`` within a customer, a ``group_by``);
(c) ``duckdb``: the same in SQL (``GROUP BY customer, day``; ``LAG`` window; aggregate), scanning
    the Polars frame in place and returning a Polars frame;
(d) ``sort+scan``: ``df.select(customer_id, ts).sort(customer_id, ts)`` and one scan of the sorted
    timestamps, the floor any sort-based method pays. It computes nothing comparable;
(e) ``floor``: ``rust/core/benches/floor.rs``, a separate Rust process (built with cargo on first
    use) timing one counting partition of the (customer, day) keys by a hash of the customer plus
    one scan: the floor of any method that groups by customer without a sort (issue 18). It reads
    the key and time columns from raw files written here; its own timer (not the process start)
    is the figure.

Shapes (``--shape``): ``dense`` is the generator's default (15 rows a customer, ids per
``--id-kind``); ``sparse`` is 6.3 rows a customer, ids spread over 31 bits (``sparse31``), µs
datetimes with a time of day; ``sparse_str`` the same ids as text; ``sparse_date`` the same with
a Date ``ts``. ``--shape all`` runs dense int, dense str and the three sparse shapes.

(a)–(c) must agree on every customer with at least two occasions (``status == "scored"``): the
same customers and, column by column, equal values (floats within 1e-9 relative; amounts also
within 1e-6 absolute, since summation order differs and refunds can cancel). The script exits
with status 1 when they do not.

Wall time is the median of ``--repeat`` runs (the best is kept too); peak memory is the kernel's resident high-water mark
(``VmHWM``, reset through ``/proc/self/clear_refs`` before each run) minus the resident size
just before the run (``VmRSS``), the largest over the runs. Linux only for memory; elsewhere the
column is empty.

Usage::

    python benches/bench_silence.py --size S [--id-kind int|sparse_int|str] [--repeat N]
                                     [--shape dense|sparse|sparse_str|sparse_date|all]
                                     [--json out.json]

``--size tiny`` (20k customers) is the CI smoke test; tests call :func:`run` directly.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import ID_KINDS, IdKind, TimeKind, generate, window

import winback
from winback.silence import SILENCE_COLUMNS

__all__ = ["SIZES", "DisagreementError", "run"]

#: Customers per named size (about 15 rows each).
SIZES = {"tiny": 20_000, "S": 1_000_000, "L": 5_000_000}
DEFAULT_REPEAT = {"tiny": 1, "S": 5, "L": 1}
#: Data shapes: (rows per customer, id kind or None for ``--id-kind``, time kind).
SHAPES: dict[str, tuple[float, str | None, str]] = {
    "dense": (15.0, None, "datetime"),
    "sparse": (6.3, "sparse31", "datetime"),
    "sparse_str": (6.3, "sparse31_str", "datetime"),
    "sparse_hex": (6.3, "sparse31_hex", "datetime"),
    "sparse_date": (6.3, "sparse31", "date"),
}
#: What ``--shape all`` runs: (shape, id kind).
ALL_SHAPES = (
    ("dense", "int"),
    ("dense", "str"),
    ("sparse", None),
    ("sparse_str", None),
    ("sparse_hex", None),
    ("sparse_date", None),
)
ROOT = Path(__file__).resolve().parents[1]
SEED = 0
START = "2023-01-01"
YEARS = 2.0
TRF_CUTS = (0.4, 0.6, 0.8, 0.95)
S_CUTS = (1.0, 2.0)
GROUP_LABELS = ("a", "b", "c", "d", "e")
BAND_LABELS = ("not_silent", "silent", "deep_silent")
RTOL = 1e-9
AMOUNT_ATOL = 1e-6
MB = 1 << 20

#: Columns compared between implementations on the scored customers: all but the id and status.
COMPARED_COLUMNS = SILENCE_COLUMNS[2:]
AMOUNT_COLUMNS = ("total_amount", "mean_amount")
#: Output columns of every implementation, in winback's order.
OUTPUT_COLUMNS = SILENCE_COLUMNS

Implementation = Callable[[pl.DataFrame, datetime], pl.DataFrame]


# --------------------------------------------------------------------------------------------
# The implementations


def _epoch_day(moment: datetime) -> int:
    """Days since 1970-01-01 of the calendar day containing ``moment``."""
    return (moment.date() - date(1970, 1, 1)).days


def winback_silence(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """(a) The library."""
    return winback.silence(df, as_of=as_of)


def _label(value: pl.Expr, cuts: tuple[float, ...], labels: tuple[str, ...]) -> pl.Expr:
    """Label of the interval [cut_{i-1}, cut_i) holding ``value`` (null stays null)."""
    labelled: pl.Expr = pl.when(value.is_not_null()).then(pl.lit(labels[-1]))
    for cut, label in zip(reversed(cuts), reversed(labels[:-1]), strict=True):
        labelled = pl.when(value < cut).then(pl.lit(label)).otherwise(labelled)
    return labelled


def _day(df: pl.DataFrame) -> pl.Expr:
    """Epoch day of ``ts`` as Int32 (a Date column is already one)."""
    if df.schema["ts"] == pl.Date:
        return pl.col("ts").cast(pl.Int32)
    return pl.col("ts").dt.date().cast(pl.Int32)


def _as_of_filter(df: pl.DataFrame, as_of: datetime) -> pl.Expr:
    if df.schema["ts"] == pl.Date:
        return pl.col("ts") <= as_of.date()
    return pl.col("ts") <= as_of


def polars_silence(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """(b) Tuned Polars (issue 18): the fastest formulation found, see :data:`POLARS_VARIANTS`."""
    return POLARS_VARIANTS[POLARS_VARIANT](df, as_of)


def polars_occasions_query(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Polars as a reader would check it against docs/methods.md#silence: an occasion table
    (``group_by`` customer + day), a sort, gaps by a masked ``shift``, one ``group_by``."""
    as_of_day = _epoch_day(as_of)
    day, gap = pl.col("day"), pl.col("gap")
    same_customer = pl.col("customer_id") == pl.col("customer_id").shift()
    return (
        df.lazy()
        .filter(_as_of_filter(df, as_of))
        # one row per purchase occasion (customer, calendar day), amounts summed
        .group_by("customer_id", day=_day(df))
        .agg(pl.col("amount").sum())
        .sort("customer_id", "day")
        .with_columns(gap=pl.when(same_customer).then(day - day.shift()))
        .group_by("customer_id")
        .agg(**_per_customer(day, gap, as_of_day))
        .pipe(_finish, as_of_day)
        .collect()
    )


def _per_customer(day: pl.Expr, gap: pl.Expr, as_of_day: int) -> dict[str, pl.Expr]:
    """The per-customer aggregates :func:`_finish` takes, over occasions ``day`` and their
    ``gap`` to the previous one (every formulation aggregates the same way)."""
    return {
        "n_occasions": pl.len().cast(pl.Int64),
        "first_day": day.first(),
        "last_day": day.last(),
        "max_gap": gap.max(),
        "median_gap_days": gap.median(),
        "gaps_within_recency": (gap <= as_of_day - day.last()).sum(),
        "total_amount": pl.col("amount").sum(),
    }


def _finish(per_customer: pl.LazyFrame, as_of_day: int) -> pl.LazyFrame:
    """From per-customer aggregates (``n_occasions``, ``first_day``, ``last_day``, ``max_gap``,
    ``median_gap_days``, ``gaps_within_recency``, ``total_amount``) to the output columns."""
    n = pl.col("n_occasions")
    scored = n >= 2
    recency = pl.lit(as_of_day) - pl.col("last_day")
    rank_ratio = pl.col("recency_rank") / n
    silence_score = pl.col("recency_days") / pl.col("max_gap_days")
    return (
        per_customer.select(
            "customer_id",
            status=pl.when(scored).then(pl.lit("scored")).otherwise(pl.lit("single_purchase")),
            n_occasions=n,
            first_ts=pl.col("first_day").cast(pl.Date),
            last_ts=pl.col("last_day").cast(pl.Date),
            tenure_days=(pl.lit(as_of_day) - pl.col("first_day")).cast(pl.Float64),
            recency_days=recency.cast(pl.Float64),
            max_gap_days=pl.col("max_gap").cast(pl.Float64),
            mean_gap_days=pl.when(scored).then(
                (pl.col("last_day") - pl.col("first_day")) / (n - 1)
            ),
            median_gap_days="median_gap_days",
            recency_rank=pl.when(scored).then(1 + pl.col("gaps_within_recency").cast(pl.Int64)),
            total_amount="total_amount",
            mean_amount=pl.col("total_amount") / n,
        )
        .with_columns(rank_ratio=rank_ratio, silence_score=silence_score)
        .with_columns(
            rank_ratio_group=_label(pl.col("rank_ratio"), TRF_CUTS, GROUP_LABELS),
            silence_band=_label(pl.col("silence_score"), S_CUTS, BAND_LABELS),
        )
        .select(OUTPUT_COLUMNS)
        .sort("customer_id")
    )


def polars_sorted_rows(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Sort the raw rows by (customer, day) once; occasions are where (customer, day) changes,
    gaps a masked ``shift`` of the occasion days; one ``group_by`` on the sorted customer."""
    as_of_day = _epoch_day(as_of)
    day, gap = pl.col("day"), pl.col("gap")
    new_customer = pl.col("customer_id") != pl.col("customer_id").shift()
    new_occasion = new_customer.fill_null(True) | (day != day.shift()).fill_null(True)
    occasion_gap = pl.when(new_occasion & ~new_customer.fill_null(True)).then(day - day.shift())
    return (
        df.lazy()
        .filter(_as_of_filter(df, as_of))
        .select("customer_id", "amount", day=_day(df))
        .sort("customer_id", "day")
        .with_columns(gap=occasion_gap, occasion=new_occasion)
        .group_by("customer_id", maintain_order=True)
        .agg(
            n_occasions=pl.col("occasion").sum().cast(pl.Int64),
            first_day=day.first(),
            last_day=day.last(),
            max_gap=gap.max(),
            median_gap_days=gap.median(),
            gaps_within_recency=(gap <= as_of_day - day.last()).sum(),
            total_amount=pl.col("amount").sum(),
        )
        .pipe(_finish, as_of_day)
        .collect()
    )


def polars_over(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Occasions by ``group_by`` customer + day, a sort, gaps by ``shift().over(customer)``,
    one ``group_by`` keeping the sorted order."""
    as_of_day = _epoch_day(as_of)
    day, gap = pl.col("day"), pl.col("gap")
    return (
        df.lazy()
        .filter(_as_of_filter(df, as_of))
        .group_by("customer_id", day=_day(df))
        .agg(pl.col("amount").sum())
        .sort("customer_id", "day")
        .with_columns(gap=day - day.shift().over("customer_id"))
        .group_by("customer_id", maintain_order=True)
        .agg(**_per_customer(day, gap, as_of_day))
        .pipe(_finish, as_of_day)
        .collect()
    )


def polars_masked_ordered(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """As :func:`polars_occasions_query` with the last ``group_by`` keeping the sorted order
    (so the final sort finds sorted input)."""
    as_of_day = _epoch_day(as_of)
    day, gap = pl.col("day"), pl.col("gap")
    same_customer = pl.col("customer_id") == pl.col("customer_id").shift()
    return (
        df.lazy()
        .filter(_as_of_filter(df, as_of))
        .group_by("customer_id", day=_day(df))
        .agg(pl.col("amount").sum())
        .sort("customer_id", "day")
        .with_columns(gap=pl.when(same_customer).then(day - day.shift()))
        .group_by("customer_id", maintain_order=True)
        .agg(**_per_customer(day, gap, as_of_day))
        .pipe(_finish, as_of_day)
        .collect()
    )


#: Polars formulations tried (``--polars-variant all`` times each); the fastest is the default.
POLARS_VARIANTS: dict[str, Implementation] = {
    "occasions": polars_occasions_query,
    "masked_ordered": polars_masked_ordered,
    "over": polars_over,
    "sorted_rows": polars_sorted_rows,
}
POLARS_VARIANT = "masked_ordered"


DUCKDB_SQL = """
WITH occasions AS (
    SELECT customer_id, CAST(ts AS DATE) AS day, SUM(amount) AS amount
    FROM tx
    WHERE ts <= $as_of
    GROUP BY customer_id, day
), gaps AS (
    SELECT customer_id, day, amount,
           day - LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap,
           MAX(day) OVER (PARTITION BY customer_id) AS last_day
    FROM occasions
), per_customer AS (
    SELECT customer_id,
           COUNT(*) AS n_occasions,
           MIN(day) AS first_ts,
           MAX(day) AS last_ts,
           CAST($as_of_day - MIN(day) AS DOUBLE) AS tenure_days,
           CAST($as_of_day - MAX(day) AS DOUBLE) AS recency_days,
           CAST(MAX(gap) AS DOUBLE) AS max_gap_days,
           MEDIAN(CAST(gap AS DOUBLE)) AS median_gap_days,
           1 + COUNT(*) FILTER (WHERE gap <= $as_of_day - last_day) AS recency_rank,
           SUM(amount) AS total_amount
    FROM gaps
    GROUP BY customer_id
), scored AS (
    SELECT customer_id,
           CASE WHEN n_occasions >= 2 THEN 'scored' ELSE 'single_purchase' END AS status,
           n_occasions, first_ts, last_ts, tenure_days, recency_days, max_gap_days,
           CASE WHEN n_occasions >= 2
                THEN CAST(last_ts - first_ts AS DOUBLE) / (n_occasions - 1) END AS mean_gap_days,
           median_gap_days,
           CASE WHEN n_occasions >= 2 THEN recency_rank END AS recency_rank,
           CASE WHEN n_occasions >= 2 THEN recency_rank / n_occasions END AS rank_ratio,
           recency_days / max_gap_days AS silence_score,
           total_amount,
           total_amount / n_occasions AS mean_amount
    FROM per_customer
)
SELECT customer_id, status, n_occasions, first_ts, last_ts, tenure_days, recency_days,
       max_gap_days, mean_gap_days, median_gap_days, recency_rank, rank_ratio, silence_score,
       CASE WHEN rank_ratio < $t1 THEN 'a' WHEN rank_ratio < $t2 THEN 'b'
            WHEN rank_ratio < $t3 THEN 'c' WHEN rank_ratio < $t4 THEN 'd'
            WHEN rank_ratio IS NOT NULL THEN 'e' END AS rank_ratio_group,
       CASE WHEN silence_score < $s1 THEN 'not_silent' WHEN silence_score < $s2 THEN 'silent'
            WHEN silence_score IS NOT NULL THEN 'deep_silent' END AS silence_band,
       total_amount, mean_amount
FROM scored
ORDER BY customer_id
"""


def duckdb_silence(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """(c) DuckDB SQL over the Polars frame (registered in place, no copy), result as Polars."""
    params: dict[str, Any] = {"as_of": as_of, "as_of_day": as_of.date()}
    params.update({f"t{i + 1}": cut for i, cut in enumerate(TRF_CUTS)})
    params.update({f"s{i + 1}": cut for i, cut in enumerate(S_CUTS)})
    if df.schema["ts"] == pl.Date:
        params["as_of"] = as_of.date()
    con = duckdb.connect()
    try:
        con.register("tx", df)
        result: pl.DataFrame = con.sql(DUCKDB_SQL, params=params).pl()
        return result
    finally:
        con.close()


def sort_scan(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """(d) The floor: sort the (customer, ts) keys, then one scan of the sorted timestamps."""
    del as_of
    ordered = df.select("customer_id", "ts").sort("customer_id", "ts")
    return ordered.select(pl.col("ts").diff().max())


class Floor:
    """(e) The Rust floor binary (``rust/core/benches/floor.rs``) on this frame's keys and times:
    the columns are written once to raw files in a temporary directory, the binary times
    ``repeat`` runs of one counting partition plus one scan on ``threads`` threads."""

    def __init__(self, df: pl.DataFrame, threads: int) -> None:
        self.threads = threads
        self.dir = Path(tempfile.mkdtemp(prefix="winback-floor-"))
        self.args: list[str] = []
        ids = df.get_column("customer_id")
        if ids.dtype == pl.String:
            arrow = ids.to_arrow().cast("large_string")
            chunk = arrow.combine_chunks() if hasattr(arrow, "combine_chunks") else arrow
            _validity, offsets, data = chunk.buffers()
            n = len(chunk)
            start = chunk.offset
            import numpy as np

            offs = np.frombuffer(offsets, dtype=np.int64)[start : start + n + 1]
            (self.dir / "offsets").write_bytes(offs.tobytes())
            (self.dir / "keys").write_bytes(bytes(data))
            self.args += ["--offsets", str(self.dir / "offsets")]
        else:
            (self.dir / "keys").write_bytes(ids.cast(pl.Int64).to_numpy().tobytes())
        ts = df.get_column("ts")
        if ts.dtype == pl.Date:
            (self.dir / "times").write_bytes(ts.cast(pl.Int32).to_numpy().tobytes())
            self.args.append("--days")
        else:
            (self.dir / "times").write_bytes(ts.dt.epoch("us").to_numpy().tobytes())
        self.args += ["--keys", str(self.dir / "keys"), "--times", str(self.dir / "times")]

    def run(self, repeat: int) -> dict[str, Any]:
        """The binary's JSON: ``seconds`` per run, ``median``, ``rows``, ``threads``."""
        try:
            command = [
                str(floor_binary()),
                *self.args,
                "--threads",
                str(self.threads),
                "--repeat",
                str(repeat),
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            return result
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def floor_binary() -> Path:
    """Builds the floor binary (release, ``CARGO_TARGET_DIR`` honoured) and returns its path."""
    out = subprocess.run(
        [
            "cargo",
            "build",
            "--release",
            "-p",
            "winback-core",
            "--bench",
            "floor",
            "--message-format=json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(out.stdout.splitlines()):
        message = json.loads(line)
        if message.get("executable"):
            return Path(message["executable"])
    raise RuntimeError("cargo built no floor executable")


IMPLEMENTATIONS: dict[str, Implementation] = {
    "winback": winback_silence,
    "polars": polars_silence,
    "duckdb": duckdb_silence,
    "sort+scan": sort_scan,
}
COMPARED = ("polars", "duckdb")


# --------------------------------------------------------------------------------------------
# Measuring


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Resets the kernel's resident high-water mark (VmHWM) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


@dataclass
class Measurement:
    """Median and best wall time over the runs, largest peak extra memory, the last result."""

    seconds: float
    peak_extra_bytes: int | None
    result: pl.DataFrame
    best: float = 0.0
    runs: tuple[float, ...] = ()


def measure(fn: Implementation, df: pl.DataFrame, as_of: datetime, repeat: int) -> Measurement:
    """Runs ``fn(df, as_of)`` ``repeat`` times after a ``gc.collect()`` each."""
    times: list[float] = []
    peak: int | None = None
    result: pl.DataFrame | None = None
    for _ in range(max(1, repeat)):
        result = None
        gc.collect()
        tracked = _reset_peak()
        baseline = _status_kib("VmRSS") if tracked else None
        began = time.perf_counter()
        result = fn(df, as_of)
        elapsed = time.perf_counter() - began
        high = _status_kib("VmHWM") if tracked else None
        times.append(elapsed)
        if baseline is not None and high is not None:
            extra = max(0, high - baseline) * 1024
            peak = extra if peak is None else max(peak, extra)
    assert result is not None
    return Measurement(statistics.median(times), peak, result, min(times), tuple(times))


# --------------------------------------------------------------------------------------------
# Checking


class DisagreementError(AssertionError):
    """The implementations disagree; ``results`` holds the measurements anyway."""

    def __init__(self, problems: list[str], results: list[dict[str, Any]]) -> None:
        super().__init__("implementations disagree:\n  " + "\n  ".join(problems))
        self.problems = problems
        self.results = results


def _scored(frame: pl.DataFrame, by_status: bool) -> pl.DataFrame:
    keep = pl.col("status").cast(pl.String) == "scored" if by_status else pl.col("n_occasions") >= 2
    return frame.filter(keep).sort("customer_id")


def disagreements(reference: pl.DataFrame, other: pl.DataFrame, name: str) -> list[str]:
    """How ``other`` (an implementation's output) differs from winback's on scored customers."""
    problems: list[str] = []
    if other.height != reference.height:
        problems.append(f"{name}: {other.height} customers, winback {reference.height}")
    a = _scored(reference, by_status=True)
    b = _scored(other, by_status=False)
    if a.height != b.height or not a.get_column("customer_id").equals(b.get_column("customer_id")):
        return [*problems, f"{name}: scored customers differ ({b.height} vs winback {a.height})"]
    for column in COMPARED_COLUMNS:
        x, y = a.get_column(column), b.get_column(column)
        if x.dtype.is_float() or y.dtype.is_float():
            x, y = x.cast(pl.Float64), y.cast(pl.Float64)
            atol = AMOUNT_ATOL if column in AMOUNT_COLUMNS else 0.0
            pair = pl.DataFrame({"x": x, "y": y})
            vx, vy = pl.col("x"), pl.col("y")
            close = (vx - vy).abs() <= RTOL * pl.max_horizontal(vx.abs(), vy.abs()) + atol
            both_null = vx.is_null() & vy.is_null()
            bad = pair.select((close.fill_null(False) | both_null).not_()).to_series()
        elif x.dtype.is_integer() and y.dtype.is_integer():
            bad = x.cast(pl.Int64).ne_missing(y.cast(pl.Int64))
        else:
            bad = x.cast(pl.String).ne_missing(y.cast(pl.String))
        count = int(bad.sum())
        if count:
            first = int(bad.arg_true()[0])
            problems.append(
                f"{name}: {column} differs for {count} customers, e.g. customer "
                f"{a.get_column('customer_id')[first]!r}: winback {x[first]!r}, {name} {y[first]!r}"
            )
    return problems


# --------------------------------------------------------------------------------------------
# Running


def thread_counts() -> dict[str, int]:
    """Worker threads each engine will use."""
    with duckdb.connect() as con:
        rows = con.sql("SELECT current_setting('threads')").fetchall()
    return {
        "winback": int(winback._winback.effective_threads()),
        "polars": pl.thread_pool_size(),
        "duckdb": int(rows[0][0]) if rows else -1,
    }


def run(
    size: str,
    id_kind: str = "int",
    repeat: int = 1,
    *,
    shape: str = "dense",
    seed: int = SEED,
    floor: bool = False,
    polars_variants: tuple[str, ...] = (),
    verbose: bool = False,
) -> list[dict[str, Any]]:
    """Generates the ``size`` data of ``shape``, times every implementation, checks (a)–(c) agree.

    ``floor`` also runs the Rust floor binary (needs cargo). ``polars_variants`` times these
    extra Polars formulations (:data:`POLARS_VARIANTS`) too, each checked like the others.
    Returns one dict per implementation (``implementation``, ``seconds`` (median), ``best``,
    ``runs``, ``rows_per_s``, ``peak_extra_mb``, ``time_vs_winback``, ``memory_vs_winback``, and
    the run's ``size``, ``shape``, ``id_kind``, ``rows``, ``customers``, ``input_mb``,
    ``threads``, ``load``…). Raises :class:`DisagreementError` when the outputs differ.
    """
    if size not in SIZES:
        raise ValueError(f"size={size!r} must be one of {sorted(SIZES)}")
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r} must be one of {sorted(SHAPES)}")
    rows_per_customer, shape_ids, time_kind = SHAPES[shape]
    id_kind = shape_ids or id_kind
    if id_kind not in ID_KINDS:
        raise ValueError(f"id_kind={id_kind!r} must be one of {ID_KINDS}")
    began = time.perf_counter()
    df = generate(
        SIZES[size],
        seed=seed,
        years=YEARS,
        start=START,
        id_kind=cast(IdKind, id_kind),
        rows_per_customer=rows_per_customer,
        time_kind=cast(TimeKind, time_kind),
    )
    generated = time.perf_counter() - began
    _, as_of = window(START, YEARS)
    threads = thread_counts()
    context: dict[str, Any] = {
        "size": size,
        "shape": shape,
        "id_kind": id_kind,
        "time_kind": time_kind,
        "customers": SIZES[size],
        "rows": df.height,
        "input_mb": df.estimated_size() / MB,
        "as_of": as_of.isoformat(),
        "repeat": repeat,
        "threads": threads,
        "load_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "generate_seconds": generated,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": {
            "winback": winback.__version__,
            "polars": pl.__version__,
            "duckdb": duckdb.__version__,
        },
    }
    if verbose:
        print(
            f"{size}/{shape}: {df.height:,} rows, {SIZES[size]:,} customers, ids {id_kind}, "
            f"ts {time_kind}, input {context['input_mb']:.0f} MB, generated in "
            f"{generated:.1f}s; threads {threads}; load {context['load_before']}",
            flush=True,
        )
    implementations = dict(IMPLEMENTATIONS)
    for variant in polars_variants:
        implementations[f"polars:{variant}"] = POLARS_VARIANTS[variant]
    compared = [name for name in implementations if name.startswith("polars") or name in COMPARED]
    outputs: dict[str, pl.DataFrame] = {}
    rows: list[dict[str, Any]] = []
    for name, fn in implementations.items():
        m = measure(fn, df, as_of, repeat)
        if name == "winback" or name in compared:
            outputs[name] = m.result
        del m.result
        peak_mb = None if m.peak_extra_bytes is None else m.peak_extra_bytes / MB
        rows.append(
            {
                "implementation": name,
                "seconds": m.seconds,
                "best": m.best,
                "runs": list(m.runs),
                "rows_per_s": df.height / m.seconds,
                "peak_extra_mb": peak_mb,
                **context,
            }
        )
        if verbose:
            shown = "n/a" if peak_mb is None else f"{peak_mb:.0f} MB"
            runs = ", ".join(f"{t:.3f}" for t in m.runs)
            print(f"  {name}: median {m.seconds:.3f}s ({runs}), peak extra {shown}", flush=True)
    if floor:
        result = Floor(df, threads["winback"]).run(max(repeat, 3))
        rows.append(
            {
                "implementation": "floor",
                "seconds": result["median"],
                "best": min(result["seconds"]),
                "runs": result["seconds"],
                "rows_per_s": df.height / result["median"],
                "peak_extra_mb": None,
                **context,
            }
        )
        if verbose:
            print(f"  floor: median {result['median']:.3f}s {result['seconds']}", flush=True)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    base = rows[0]
    for row in rows:
        row["load_after"] = load_after
        row["time_vs_winback"] = row["seconds"] / base["seconds"]
        if row["peak_extra_mb"] is not None and base["peak_extra_mb"]:
            row["memory_vs_winback"] = row["peak_extra_mb"] / base["peak_extra_mb"]
        else:
            row["memory_vs_winback"] = None
    problems: list[str] = []
    for name in compared:
        problems += disagreements(outputs["winback"], outputs[name], name)
    for row in rows:
        name = row["implementation"]
        row["agrees"] = None if name not in ("winback", *compared) else True
        if name in compared:
            row["agrees"] = not any(p.startswith(name + ":") for p in problems)
    if problems:
        raise DisagreementError(problems, rows)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the measurements."""
    head = rows[0]
    lines = [
        f"size {head['size']}, shape {head['shape']}: {head['rows']:,} rows, "
        f"{head['customers']:,} customers, ids {head['id_kind']}, ts {head['time_kind']}, "
        f"input {head['input_mb']:.0f} MB (Arrow), median of {head['repeat']}, "
        f"threads {head['threads']}, load {head['load_before']:.1f} → {head['load_after']:.1f}",
        "",
        "| implementation | wall s (median) | best s | rows/s | peak extra MB "
        "| time × winback | memory × winback |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        peak = "n/a" if row["peak_extra_mb"] is None else f"{row['peak_extra_mb']:,.0f}"
        mem = "n/a" if row["memory_vs_winback"] is None else f"{row['memory_vs_winback']:.2f}"
        lines.append(
            f"| {row['implementation']} | {row['seconds']:.3f} | {row['best']:.3f} "
            f"| {row['rows_per_s'] / 1e6:,.1f}M | {peak} | {row['time_vs_winback']:.2f} | {mem} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark winback.silence (see module doc).")
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--id-kind", choices=ID_KINDS, default="int")
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="dense")
    parser.add_argument("--repeat", type=int, default=None, help="runs per implementation")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-floor", action="store_true", help="skip the Rust floor binary")
    parser.add_argument(
        "--polars-variant",
        action="append",
        default=[],
        choices=[*POLARS_VARIANTS, "all"],
        help="also time these Polars formulations",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else DEFAULT_REPEAT[args.size]
    variants = tuple(POLARS_VARIANTS) if "all" in args.polars_variant else args.polars_variant
    runs = ALL_SHAPES if args.shape == "all" else ((args.shape, args.id_kind),)
    status = 0
    everything: list[dict[str, Any]] = []
    all_problems: list[str] = []
    for shape, id_kind in runs:
        try:
            rows = run(
                args.size,
                id_kind or "int",
                repeat,
                shape=shape,
                seed=args.seed,
                floor=not args.no_floor,
                polars_variants=variants,
                verbose=True,
            )
            problems: list[str] = []
        except DisagreementError as error:
            rows, problems, status = error.results, error.problems, 1
        print()
        print(format_table(rows))
        if problems:
            print("\nDISAGREEMENT:\n  " + "\n  ".join(problems))
        else:
            print("\nwinback and every Polars/DuckDB query agree on every scored customer.")
        print(flush=True)
        everything += rows
        all_problems += problems
    if args.json is not None:
        args.json.write_text(
            json.dumps({"ok": status == 0, "problems": all_problems, "results": everything})
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
