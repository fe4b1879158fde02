"""Benchmark: the cold-start (Numba compile) tax of each public function, in fresh processes.

winback's statistical kernels are Numba functions compiled on first use and cached on disk
(``NUMBA_CACHE_DIR``, else ``__pycache__`` next to the sources). A fresh install, a new container
or a read-only site-packages starts with no cache, so the first call of a model pays the
compilation. For each workload this script runs, each in its own interpreter:

- **cold** — a fresh process with an empty ``NUMBA_CACHE_DIR``: the first call after
  ``import winback`` (which loads Numba, SciPy and the models lazily, on first use);
- **cached** — a fresh process reusing the cache the cold run filled, first call after
  ``import winback``;
- **service** — the start-up docs/serving.md recommends: the cache filled beforehand (a warm-up
  run at image build), and :func:`winback.preload` (Numba, SciPy, the models, every cached
  kernel) run at start-up, untimed as a call (its time is the ``preload`` column); then the
  first call;
- **warm** — the second call in the cold process (everything compiled and loaded).

The import of winback is timed apart (``import``) and not included in the call figures. Each
figure is the median of ``--repeat`` runs (each cold run gets its own new cache directory).
Workloads run on the bundled CDNOW data (23,570 customers, ``winback.datasets.load_cdnow``):

- ``silence`` — ``winback.silence`` (Rust only: no Numba);
- ``summary+bgnbd`` — ``winback.summary`` then ``BetaGeoModel().fit``;
- ``value`` — ``winback.value`` (period NBD, Gamma–Gamma, BG/NBD, the Markov chain);
- ``pareto`` — ``winback.summary`` then ``ParetoNBDModel().fit``.

    .venv/bin/python benches/bench_coldstart.py --repeat 3
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
from typing import Any

WORKLOADS = ("silence", "summary+bgnbd", "value", "pareto")

CHILD = r"""
import json, sys, time
began = time.perf_counter()
import polars as pl
import winback
from winback.datasets import load_cdnow
imported = time.perf_counter() - began
workload, preload = sys.argv[1], sys.argv[2] == "preload"
tx = load_cdnow()
began = time.perf_counter()
if preload:
    winback.preload()
preloaded = time.perf_counter() - began


def run():
    if workload == "silence":
        winback.silence(tx, as_of="1998-06-30")
    elif workload == "summary+bgnbd":
        from winback.models import BetaGeoModel
        BetaGeoModel().fit(winback.summary(tx, unit="D"))
    elif workload == "value":
        winback.value(tx, as_of="1998-06-30")
    elif workload == "pareto":
        from winback.models import ParetoNBDModel
        ParetoNBDModel().fit(winback.summary(tx, unit="D"))


t = time.perf_counter(); run(); first = time.perf_counter() - t
t = time.perf_counter(); run(); second = time.perf_counter() - t
print(json.dumps({"import": imported, "preload": preloaded, "first": first, "second": second}))
"""


def _child(workload: str, cache_dir: str, preload: bool = False) -> dict[str, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, workload, "preload" if preload else "-"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(workload: str, repeat: int, image_cache: str) -> dict[str, float]:
    """Median cold first call, cached first call, service first call, warm call, import and
    preload time (seconds); ``image_cache`` is the cache a preload filled (the image build)."""
    runs: dict[str, list[float]] = {
        k: [] for k in ("cold", "cached", "service", "warm", "import", "preload")
    }
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache_dir:
            first = _child(workload, cache_dir)
            again = _child(workload, cache_dir)
        service = _child(workload, image_cache, preload=True)
        runs["cold"].append(first["first"])
        runs["warm"].append(first["second"])
        runs["cached"].append(again["first"])
        runs["service"].append(service["first"])
        runs["import"].append(first["import"])
        runs["preload"].append(service["preload"])
    return {k: statistics.median(v) for k, v in runs.items()}


def format_table(results: dict[str, dict[str, float]], repeat: int, load: tuple) -> str:
    lines = [
        f"medians of {repeat} runs; load average before {load[0]:.1f}, after "
        f"{os.getloadavg()[0]:.1f} ({os.cpu_count()} cpus)",
        "",
        "| workload | import s | cold first call s | cached first call s | preload s "
        "| service first call s | warm call s | cold − warm s | service − warm s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['import']:.2f} | {r['cold']:.2f} | {r['cached']:.2f} | "
            f"{r['preload']:.2f} | {r['service']:.2f} | {r['warm']:.2f} | "
            f"{r['cold'] - r['warm']:.2f} | {r['service'] - r['warm']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workload", choices=WORKLOADS, action="append")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="numba-image-") as image_cache:
        # The image build: one preload fills the cache the service runs start from.
        build = _child("silence", image_cache, preload=True)
        print(f"image build: preload {build['preload']:.2f} s on an empty cache", flush=True)
        for name in args.workload or WORKLOADS:
            results[name] = measure(name, args.repeat, image_cache)
            print(name, results[name], flush=True)
    print()
    print(format_table(results, args.repeat, load))
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "load": load}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
