"""Benchmark: ``winback.report`` on CDNOW (23,570 customers, 69,659 rows), per section, for one or
more source trees of winback measured alternately in fresh processes in one run.

Each measurement is a fresh interpreter importing winback from the tree (``PYTHONPATH``): one
untimed report first (imports, Altair, Numba's cached kernels), then ``--repeat`` timed reports to
an HTML file; the median is reported, with the per-section build times of the last run (the
sections registered in ``winback.report._registry``; the rest is scoring and writing the page).

    .venv/bin/python benches/bench_report.py --tree after=python
    .venv/bin/python benches/bench_report.py --tree before=/tmp/base --tree after=python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import importlib, json, statistics, sys, tempfile, time
import winback
from winback.datasets import load_cdnow
registry = importlib.import_module("winback.report._registry")
build = importlib.import_module("winback.report._build")
tx = load_cdnow()
sections = {}
listed = registry.registered_sections

def timed_sections():
    out = []
    for section in listed():
        def run(ctx, _build=section.build, _key=section.key):
            began = time.perf_counter()
            try:
                return _build(ctx)
            finally:
                sections[_key] = time.perf_counter() - began
        object.__setattr__(section, "build", run)
        out.append(section)
    return out

build.registered_sections = timed_sections
path = tempfile.mktemp(suffix=".html")
winback.report(tx, output=path, as_of="1998-06-30")
times = []
for _ in range(int(sys.argv[1])):
    began = time.perf_counter()
    winback.report(tx, output=path, as_of="1998-06-30")
    times.append(time.perf_counter() - began)
print(json.dumps({"times": times, "sections": sections}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (python/)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = {}
    for spec in args.tree:
        name, tree = spec.split("=", 1)
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.repeat)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"medians of {args.repeat} reports; load average {load_before[0]:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cpus)\n"
    )
    for name, r in results.items():
        times = ", ".join(f"{t:.2f}" for t in r["times"])
        top = sorted(r["sections"].items(), key=lambda kv: -kv[1])[:5]
        shown = ", ".join(f"{k} {v:.2f}" for k, v in top)
        print(f"{name}: {statistics.median(r['times']):.2f} s (runs {times}); sections: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
