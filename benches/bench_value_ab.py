"""Before/after benchmark of `winback.value` (docs/methods.md#value) on 1M customers × 24 monthly
periods: two source trees of winback, measured alternately in fresh processes in one run.

The log is generated once (gen_data.py, seed 0, 1M customers, as bench_value.py) and written to a
Parquet file; each measurement is a fresh interpreter that imports winback from the given tree
(``PYTHONPATH``), reads the file, calls ``value`` once on 5,000 customers (Numba loads or compiles
its kernels: not part of the figure), resets the resident high-water mark
(``/proc/self/clear_refs``) and times one ``value`` call on everything. Reported per tree: the
median wall time, CPU time (user + sys of the process, every thread) and peak RSS over
``--repeat`` runs (runs alternate between the trees, so both see the same machine load), the
process peak includes the input frame. The calling thread's own CPU time (``time.thread_time``,
"main-thread CPU") is the work no other thread shares: on an idle machine the wall time is at
least that, and at least half the CPU time on two cores. The load average is printed before and after: the
machine is shared.

    .venv/bin/python benches/bench_value_ab.py --tree before=/tmp/base --tree after=python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import generate, window

CHILD = r"""
import json, sys, time
import polars as pl
import winback
path, as_of = sys.argv[1], sys.argv[2]
df = pl.read_parquet(path)
winback.value(df.filter(pl.col("customer_id") <= 5_000), as_of=as_of)

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
began, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
result = winback.value(df, as_of=as_of)
seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
main = time.thread_time() - main
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "main_thread_cpu_seconds": main,
                  "peak_mb": status("VmHWM") / 1024, "customers": result.frame.height,
                  "file": winback.__file__}))
"""


def run_child(tree: str, path: str, as_of: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, as_of], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (python/)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.tree)
    _, as_of = window()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="value-ab-") as folder:
        path = str(Path(folder) / "log.parquet")
        generate(args.customers, seed=0).write_parquet(path)
        for _ in range(args.repeat):
            for name, tree in trees.items():
                runs[name].append(run_child(tree, path, as_of.isoformat()))
                print(name, runs[name][-1], flush=True)
    load_after = os.getloadavg()
    print(
        f"\n{args.customers:,} customers, medians of {args.repeat} alternating runs; load "
        f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cpus)\n"
    )
    print(
        "| tree | wall s (median) | runs s | CPU s (median) | main-thread CPU s (median) "
        "| peak RSS MB (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    summary = {}
    for name, rs in runs.items():
        seconds = [r["seconds"] for r in rs]
        cpu = statistics.median(r["cpu_seconds"] for r in rs)
        peak = statistics.median(r["peak_mb"] for r in rs)
        main = statistics.median(r.get("main_thread_cpu_seconds", float("nan")) for r in rs)
        summary[name] = {
            "seconds": statistics.median(seconds),
            "cpu_seconds": cpu,
            "main_thread_cpu_seconds": main,
            "peak_mb": peak,
            "runs": rs,
        }
        shown = ", ".join(f"{s:.1f}" for s in seconds)
        print(
            f"| {name} | {statistics.median(seconds):.2f} | {shown} | {cpu:.2f} | {main:.2f} "
            f"| {peak:,.0f} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"load": [load_before, load_after], **summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
