"""Benchmark: `winback.value` (docs/methods.md#value, #markov) on 1M customers × 24 monthly periods,
next to a straightforward Polars implementation of the same customer × period panel, in one run.

The project's generator (gen_data.py, seed 0, two years from 2023-01-01, 15 rows a customer)
makes the log; ``as_of`` is the window's end, so the panel has 24 complete monthly periods.
Measured, one after the other on the same in-memory frame:

- **winback.value** — the whole engine: read and checks, the Rust panel, the NBD and
  Gamma–Gamma fits, every per-customer forecast, margin/expense rules, the Markov chain, CLV and
  tiers.
- **winback panel** — the panel stage alone (`_io.prepare` + the Rust kernel, as
  `value` calls it): customer × period occasions, revenue, positive occasions and revenue.
- **polars panel** — the same panel as a good Polars user would write it: filter ``ts <= as_of``,
  ``group_by(customer, day)`` summing amounts (an occasion is a customer-day), then
  ``group_by(customer, month)`` with the occasion count, revenue, positive occasions and
  revenue and the mean amount, sorted by customer and month. The two panels must agree
  (counts exactly, money within 1e-9 relative or 1e-6 absolute).

Wall time is ``time.perf_counter()`` around the call (best of ``--repeat``). Memory: the kernel's
resident high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` before each call),
reported as the process peak (input included) and as the extra over the resident size before
the call.

    .venv/bin/python benches/bench_value.py --size S          # 1M customers (the issue's target)
    .venv/bin/python benches/bench_value.py --size tiny       # smoke test (also run by pytest)
    .venv/bin/python benches/bench_value.py --size S --profile  # + the top of a cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import generate, window

import winback
from winback import _io
from winback.summary import period_edges
from winback.value.panel import customer_panel

SIZES = {"tiny": 20_000, "S": 1_000_000}
SEED = 0
MB = 1 << 20
#: The issue's targets at S.
TARGET_SECONDS = 30.0
TARGET_PEAK_GB = 4.0


def winback_value(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    return winback.value(df, as_of=as_of).frame


def winback_panel(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """The panel stage of `winback.value`, with the mean amount added."""
    prepared = _io.prepare(df, amount_col="amount")
    as_of_us = _io.snapshot_end(prepared, as_of)
    first = int(prepared.frame.get_column("ts").min())  # type: ignore[arg-type]
    day_us = _io.parse_resolution("1d")
    edges = period_edges("month", first - first % day_us, as_of_us + 1)
    panel, _ = customer_panel(prepared, edges, as_of_us, day_us, "revenue")
    return panel.with_columns((pl.col("revenue") / pl.col("occasions")).alias("mean_amount"))


def polars_panel(df: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Customer × calendar-month panel in plain Polars (periods as month starts)."""
    amount = pl.col("amount")
    return (
        df.lazy()
        .filter(pl.col("ts") <= as_of)
        .group_by("customer_id", pl.col("ts").dt.truncate("1d").alias("day"))
        .agg(amount.sum())
        .group_by("customer_id", pl.col("day").dt.truncate("1mo").alias("month"))
        .agg(
            pl.len().cast(pl.Int64).alias("occasions"),
            (amount > 0).sum().cast(pl.Int64).alias("positive_occasions"),
            amount.sum().alias("revenue"),
            amount.filter(amount > 0).sum().alias("positive_revenue"),
        )
        .with_columns((pl.col("revenue") / pl.col("occasions")).alias("mean_amount"))
        .sort("customer_id", "month")
        .collect()
    )


IMPLEMENTATIONS: dict[str, Callable[[pl.DataFrame, datetime], pl.DataFrame]] = {
    "winback.value": winback_value,
    "winback panel": winback_panel,
    "polars panel": polars_panel,
}


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
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def measure(
    fn: Callable[[pl.DataFrame, datetime], pl.DataFrame],
    df: pl.DataFrame,
    as_of: datetime,
    repeat: int,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Best wall time, the largest process peak and peak extra memory over ``repeat`` calls."""
    best, peak, extra = float("inf"), None, None
    result = None
    for _ in range(max(1, repeat)):
        result = None
        gc.collect()
        tracked = _reset_peak()
        before = _status_kib("VmRSS") if tracked else None
        began = time.perf_counter()
        result = fn(df, as_of)
        best = min(best, time.perf_counter() - began)
        high = _status_kib("VmHWM") if tracked else None
        if before is not None and high is not None:
            peak = max(peak or 0, high * 1024)
            extra = max(extra or 0, (high - before) * 1024)
    assert result is not None
    return {"seconds": best, "peak_rss_mb": _mb(peak), "peak_extra_mb": _mb(extra)}, result


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def disagreements(ours: pl.DataFrame, theirs: pl.DataFrame) -> list[str]:
    """Where winback's panel and the Polars panel differ (periods matched by month order)."""
    months = theirs.get_column("month").unique().sort()
    index = pl.DataFrame({"month": months, "period": pl.int_range(months.len(), eager=True)})
    theirs = theirs.join(index, on="month").drop("month")
    keys = ["customer_id", "period"]
    joined = ours.join(theirs.with_columns(pl.col("period").cast(pl.Int64)), on=keys, how="full")
    problems = []
    missing = joined.filter(pl.col("customer_id").is_null() | pl.col("customer_id_right").is_null())
    if missing.height:
        problems.append(f"{missing.height} (customer, period) rows are in only one panel")
    for column in ("occasions", "positive_occasions"):
        bad = joined.filter(pl.col(column) != pl.col(f"{column}_right")).height
        if bad:
            problems.append(f"{column}: {bad} rows differ")
    for column in ("revenue", "positive_revenue", "mean_amount"):
        a, b = pl.col(column), pl.col(f"{column}_right")
        bad = joined.filter((a - b).abs() > 1e-6 + 1e-9 * b.abs()).height
        if bad:
            problems.append(f"{column}: {bad} rows differ beyond 1e-9 relative")
    return problems


def run(size: str, *, repeat: int = 1, verbose: bool = False, profile: bool = False) -> dict:
    """Generates the ``size`` log, times the three implementations, checks the panels agree.

    Returns ``size``, ``customers``, ``rows``, ``periods``, ``results`` (per implementation:
    ``seconds``, ``peak_rss_mb``, ``peak_extra_mb``), ``ratios``, ``agree`` and ``problems``.
    """
    df = generate(SIZES[size], seed=SEED)
    _, as_of = window()
    if verbose:
        print(f"{size}: {df.height:,} rows, {SIZES[size]:,} customers", flush=True)
    # Numba loads its cached kernels (or compiles them) on the first call: not part of the figure.
    winback.value(df.filter(pl.col("customer_id") <= 5_000), as_of=as_of)
    results: dict[str, dict[str, Any]] = {}
    outputs: dict[str, pl.DataFrame] = {}
    for name, fn in IMPLEMENTATIONS.items():
        results[name], outputs[name] = measure(fn, df, as_of, repeat)
        if verbose:
            print(f"  {name}: {results[name]}", flush=True)
    value_frame = outputs.pop("winback.value")
    periods = outputs["polars panel"].get_column("month").n_unique()
    problems = disagreements(outputs["winback panel"], outputs["polars panel"])
    seconds = {name: r["seconds"] for name, r in results.items()}
    out: dict[str, Any] = {
        "size": size,
        "customers": value_frame.height,
        "modelled": value_frame.filter(pl.col("status") == "modelled").height,
        "rows": df.height,
        "months": periods,
        "repeat": repeat,
        "results": results,
        "ratios": {
            "polars_panel_vs_winback_panel": seconds["polars panel"] / seconds["winback panel"],
            "value_vs_polars_panel": seconds["winback.value"] / seconds["polars panel"],
        },
        "agree": not problems,
        "problems": problems,
        "threads": {
            "winback": winback._winback.effective_threads(),
            "polars": pl.thread_pool_size(),
        },
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "versions": {"winback": winback.__version__, "polars": pl.__version__},
    }
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(winback_value, df, as_of)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return out


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"size {result['size']}: {result['customers']:,} customers ({result['modelled']:,} "
        f"modelled), {result['rows']:,} rows, {result['months']} months, best of {result['repeat']}, threads "
        f"{result['threads']}, load average {result['load_average'][0]:.1f}",
        "",
        "| step | wall s | peak RSS MB | peak extra MB | time × polars panel |",
        "|---|---:|---:|---:|---:|",
    ]
    base = result["results"]["polars panel"]["seconds"]
    for name, r in result["results"].items():
        rss = "n/a" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:,.0f}"
        extra = "n/a" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:,.0f}"
        lines.append(
            f"| {name} | {r['seconds']:.2f} | {rss} | {extra} | {r['seconds'] / base:.2f} |"
        )
    ratios = result["ratios"]
    lines += [
        "",
        f"polars panel / winback panel: {ratios['polars_panel_vs_winback_panel']:.2f}×; "
        f"the whole value engine costs {ratios['value_vs_polars_panel']:.2f}× the Polars panel.",
    ]
    if result["size"] == "S":
        value = result["results"]["winback.value"]
        ok_time = value["seconds"] < TARGET_SECONDS
        peak = value["peak_rss_mb"]
        ok_memory = peak is not None and peak < TARGET_PEAK_GB * 1024
        lines.append(
            f"targets: value < {TARGET_SECONDS:.0f} s {'✓' if ok_time else '✗'}; "
            f"peak RSS < {TARGET_PEAK_GB:.0f} GB {'✓' if ok_memory else '✗'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of value")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    result = run(args.size, repeat=args.repeat, verbose=True, profile=args.profile)
    print()
    print(format_table(result))
    if result["problems"]:
        print("\nDISAGREEMENT:\n  " + "\n  ".join(result["problems"]))
    else:
        print("\nwinback's panel and the Polars panel agree on every (customer, period).")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0 if result["agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
