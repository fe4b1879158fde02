"""Benchmark: ``winback.report`` on CDNOW (23,570 customers, 69,659 rows), per section, for one or
more source trees of winback measured alternately in fresh processes in one run.

Each measurement is a fresh interpreter importing winback from the tree (``PYTHONPATH``): one
untimed report first (imports, Altair, Numba's cached kernels), then ``--repeat`` timed reports to
an HTML file; the median is reported, with the per-section build times of the last run (the
sections registered in ``winback.report._registry``; the rest is scoring and writing the page).

    .venv/bin/python benches/bench_report.py --tree after=python
    .venv/bin/python benches/bench_report.py --tree before=/tmp/base --tree after=python

``--data PATH`` times the report on another log instead (e.g. ``gen_data.py --customers
1000000``; the untimed first report stays on CDNOW), with ``--as-of`` (default: its last day).

``--cli`` times the command line instead, ``winback report cdnow.parquet -o x.html``, each run a
whole fresh process (start-up included), the trees alternated run by run: first once with an
empty ``NUMBA_CACHE_DIR`` per tree (what a fresh install pays; it fills the cache), then
``--repeat`` times with that cache filled::

    .venv/bin/python benches/bench_report.py --cli --tree before=/tmp/base --tree after=python

``--bytecode`` (with ``--cli``) lets each tree's processes write and reuse compiled bytecode in a
private ``PYTHONPYCACHEPREFIX`` (filled by the empty-cache run), as an installed wheel has it
(pip byte-compiles at install); without it the environment's ``PYTHONDONTWRITEBYTECODE=1``, if
set, makes every run compile winback's modules from source (≈ 0.2 s of CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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
data, as_of = (sys.argv[2], sys.argv[3] or None) if len(sys.argv) > 2 else (tx, "1998-06-30")
times = []
for _ in range(int(sys.argv[1])):
    began = time.perf_counter()
    winback.report(data, output=path, as_of=as_of)
    times.append(time.perf_counter() - began)
print(json.dumps({"times": times, "sections": sections}))
"""


def _cli_run(
    tree: str, cache: str, data: str, output: str, pycache: str | None = None
) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh ``winback report`` process on
    ``tree``'s package (with ``pycache``: bytecode written to and read from that directory).
    CPU time depends less on the machine's load than wall time."""
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()), NUMBA_CACHE_DIR=cache)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    command = [sys.executable, "-m", "winback.cli", "report", data, "-o", output, "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_main(trees: list[str], repeat: int, bytecode: bool = False) -> int:
    """The command line on CDNOW per tree: empty cache once, then ``repeat`` cached runs
    (``bytecode``: each tree's bytecode cached too, from the first run on)."""
    from winback.datasets import cdnow_path

    data = str(cdnow_path())
    named = [spec.split("=", 1) for spec in trees]
    with tempfile.TemporaryDirectory() as root:
        caches = {name: os.path.join(root, f"numba-{name}") for name, _ in named}
        pycs = {name: os.path.join(root, f"pyc-{name}") if bytecode else None for name, _ in named}
        out = os.path.join(root, "report.html")
        load_before = os.getloadavg()
        empty = {name: _cli_run(tree, caches[name], data, out, pycs[name]) for name, tree in named}
        cached: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in named}
        for _ in range(repeat):
            for name, tree in named:
                cached[name].append(_cli_run(tree, caches[name], data, out, pycs[name]))
        load_after = os.getloadavg()
    print(
        f"winback report {Path(data).name} -o x.html, fresh process per run"
        f"{', bytecode cached' if bytecode else ''}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cpus)\n"
    )
    for name, _ in named:
        runs = ", ".join(f"{wall:.2f}" for wall, _ in cached[name])
        wall = statistics.median(w for w, _ in cached[name])
        cpu = statistics.median(c for _, c in cached[name])
        print(
            f"{name}: empty cache {empty[name][0]:.2f} s wall, {empty[name][1]:.2f} s CPU; "
            f"cached median {wall:.2f} s wall (runs {runs}), {cpu:.2f} s CPU"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH (python/)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", help="transactions to time the report on (default: CDNOW)")
    parser.add_argument("--as-of", default="", help="with --data: the snapshot")
    parser.add_argument(
        "--cli", action="store_true", help="time the winback report command (fresh processes)"
    )
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="with --cli: cache each tree's bytecode (as an installed wheel has it)",
    )
    args = parser.parse_args(argv)
    if args.cli:
        return cli_main(args.tree, args.repeat, args.bytecode)
    load_before = os.getloadavg()
    results = {}
    for spec in args.tree:
        name, tree = spec.split("=", 1)
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(args.repeat),
                *([args.data, args.as_of] if args.data else []),
            ],
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
        top = sorted(r["sections"].items(), key=lambda kv: -kv[1])[: 5 if not args.data else 20]
        shown = ", ".join(f"{k} {v:.2f}" for k, v in top)
        print(f"{name}: {statistics.median(r['times']):.2f} s (runs {times}); sections: {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
