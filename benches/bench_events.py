"""Benchmark silence over engagement events (docs/methods.md#events-silence): winback against
a Polars formulation, side by side in one process on the same generated events.

The events come from ``benches/gen_events.py`` (the purchases of ``gen_data.generate`` and the
sessions, e-mails and app opens around them; about 21 events per purchase). The timed question
is "how long has each customer not browsed?": silence over the types ``visit`` and ``view``
(about 75 % of the events) at the window's end.

(a) ``winback``: ``winback.events.silence(prepared, event_types=["visit", "view"])`` on the
    events read once by ``winback.events.prepare_events`` (the filter on the event type's Enum
    codes, then the Rust silence kernel); the reading is timed separately (``prepare``);
(b) ``polars``: one lazy query over the same prepared frame: filter the types, one occasion per
    (customer, day), sort, gaps by ``shift``, a ``group_by`` for n, first/last day, max and
    median gap and the recency rank, then TrF and S.

(a) and (b) must agree on every customer (same customers; equal n, recency, max gap, rank, TrF,
S); the script exits with status 1 when they do not. Wall time is the best of ``--repeat`` runs;
CPU time is that run's process CPU time over all threads (less sensitive to the machine's load
than the wall time: on an otherwise idle 2-core machine the wall time is about CPU ÷ 2 for a
kernel that keeps both cores busy).

Usage::

    python benches/bench_events.py --events 100000000 [--repeat 1]
    python benches/bench_events.py --events 2000000      # a quick check
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_data
import gen_events

import winback
from winback import events

__all__ = ["polars_silence", "run"]

TYPES = ("visit", "view")
#: Events per customer of gen_events with the defaults (15 purchases × ≈ 21 events each).
EVENTS_PER_CUSTOMER = 315


def polars_silence(frame: pl.DataFrame, codes: list[int], as_of_us: int) -> pl.DataFrame:
    """(b) Polars over the prepared frame (``customer``, ``ts`` µs, ``event`` Enum)."""
    day_us = 86_400_000_000
    as_of_day = as_of_us // day_us
    day, gap, n = pl.col("day"), pl.col("gap"), pl.col("n_occasions")
    same = pl.col("customer") == pl.col("customer").shift()
    return (
        frame.lazy()
        .filter(pl.col("event").to_physical().is_in(codes) & (pl.col("ts") <= as_of_us))
        .select("customer", day=pl.col("ts") // day_us)
        .unique()
        .sort("customer", "day")
        .with_columns(gap=pl.when(same).then(day - day.shift()))
        .group_by("customer")
        .agg(
            n_occasions=pl.len().cast(pl.Int64),
            last_day=day.last(),
            max_gap=gap.max(),
            median_gap_days=gap.median(),
            within=(gap <= as_of_day - day.last()).sum(),
        )
        .select(
            pl.col("customer").alias("customer_id"),
            "n_occasions",
            recency_days=(pl.lit(as_of_day) - pl.col("last_day")).cast(pl.Float64),
            max_gap_days=pl.col("max_gap").cast(pl.Float64),
            median_gap_days="median_gap_days",
            recency_rank=pl.when(n >= 2).then(1 + pl.col("within").cast(pl.Int64)),
        )
        .with_columns(
            rank_ratio=pl.col("recency_rank") / n,
            silence_score=pl.col("recency_days") / pl.col("max_gap_days"),
        )
        .sort("customer_id")
        .collect()
    )


def _timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Best wall seconds, the CPU seconds (all threads) of that run, and the result."""
    best, cpu, result = float("inf"), float("nan"), None
    for _ in range(max(1, repeat)):
        result = None
        gc.collect()
        began, began_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - began
        if wall < best:
            best, cpu = wall, time.process_time() - began_cpu
    return best, cpu, result


COMPARED = (
    "customer_id",
    "n_occasions",
    "recency_days",
    "max_gap_days",
    "median_gap_days",
    "recency_rank",
    "rank_ratio",
    "silence_score",
)


def run(n_events: int, *, seed: int = 0, repeat: int = 1) -> list[dict[str, Any]]:
    """Generates about ``n_events`` events, times (a) and (b); raises when they disagree."""
    customers = max(100, n_events // EVENTS_PER_CUSTOMER)
    began = time.perf_counter()
    tx, ev = gen_events.generate_pair(customers, seed=seed, items=False, shuffle=True)
    ev = ev.select("customer_id", "ts", "event")
    generated = time.perf_counter() - began
    _, end = gen_data.window()
    as_of = end - timedelta(microseconds=1)
    print(
        f"{ev.height:,} events ({ev.height / tx.height:.1f}× the {tx.height:,} purchases) of "
        f"{customers:,} customers generated in {generated:.1f}s; load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    del tx
    began, began_cpu = time.perf_counter(), time.process_time()
    prepared = events.prepare_events(ev)
    prep_s, prep_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    del ev
    gc.collect()
    selected = prepared.frame.filter(pl.col("event").is_in(list(TYPES))).height
    as_of_us = winback._io.as_of_to_micros(as_of, None)
    codes = prepared.codes(list(TYPES))
    loads = [os.getloadavg()[0]]
    wb_s, wb_cpu, wb = _timed(
        lambda: events.silence(prepared, event_types=list(TYPES), as_of=as_of), repeat
    )
    loads.append(os.getloadavg()[0])
    pl_s, pl_cpu, pq = _timed(lambda: polars_silence(prepared.frame, codes, as_of_us), repeat)
    loads.append(os.getloadavg()[0])
    a = wb.select(COMPARED).with_columns(pl.col("n_occasions").cast(pl.Int64))
    b = pq.select(COMPARED)
    if not a.equals(b):
        raise AssertionError(
            f"winback and polars disagree: {a.height} vs {b.height} customers; first rows:\n"
            f"{a.join(b, on='customer_id', how='anti').head()}"
        )
    rows = prepared.frame.height
    common = {"events": rows, "selected": selected, "customers": customers}
    return [
        {
            **common,
            "implementation": "prepare_events (reading, once)",
            "seconds": prep_s,
            "cpu": prep_cpu,
        },
        {**common, "implementation": "winback", "seconds": wb_s, "cpu": wb_cpu, "load": loads[:2]},
        {**common, "implementation": "polars", "seconds": pl_s, "cpu": pl_cpu, "load": loads[1:]},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        rows = run(args.events, seed=args.seed, repeat=args.repeat)
    except AssertionError as exc:
        print(exc, file=sys.stderr)
        return 1
    winback_s = next(r["seconds"] for r in rows if r["implementation"] == "winback")
    print("| implementation | wall s | CPU s | events/s | × winback | load (before, after) |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        load = r.get("load")
        shown = "" if load is None else f"{load[0]:.1f}, {load[1]:.1f}"
        print(
            f"| {r['implementation']} | {r['seconds']:.2f} | {r['cpu']:.2f} "
            f"| {r['events'] / r['seconds'] / 1e6:.1f}M "
            f"| {r['seconds'] / winback_s:.2f} | {shown} |"
        )
    print(f"events {rows[0]['events']:,}, selected (visit, view) {rows[0]['selected']:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
