"""Benchmark: segment scored customers and build a win-back campaign (docs/methods.md#rfm,
#campaign).

The target (issue 5): 5,000,000 scored customers segmented and a campaign built in under 10 s on
this machine. The data comes from ``gen_data.py`` (seeded), scored once by ``winback.silence``
(timed separately, not part of the figure); then, timed together, on the scored table:

1. ``winback.rfm(scored)`` — R/F/M scores, cells, named segments, tiers;
2. ``winback.quadrant(...)`` — bee/dragonfly/butterfly/mantis at the medians;
3. ``winback.classify(..., "auto_dealer")`` — a rules preset (lead grades);
4. ``winback.campaign(..., staff=<20 names>, holdout=0.1)`` — the default selection, strategy
   map, priority, stable hashes, staff dealing and follow-up dates.

Usage::

    .venv/bin/python benches/bench_campaign.py --size L            # the 5M figure
    .venv/bin/python benches/bench_campaign.py --size tiny         # smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import generate, window

import winback

__all__ = ["SIZES", "run"]

SIZES = {"tiny": 20_000, "S": 1_000_000, "L": 5_000_000}
SEED = 0
START = "2023-01-01"
YEARS = 2.0
STAFF = [f"staff_{i:02d}" for i in range(20)]
TARGET_SECONDS = 10.0


class _Clock:
    """Accumulates wall time per named step."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._began = 0.0

    def start(self) -> None:
        gc.collect()
        self._began = time.perf_counter()

    def stop(self, name: str) -> None:
        self.steps[name] = time.perf_counter() - self._began


def _scored(size: str, id_kind: str, cache: Path | None) -> tuple[pl.DataFrame, int, float, float]:
    """The scored table, its row count, and the generation and scoring times (read from
    ``cache`` when it exists — a Parquet file this function wrote — else made and saved there)."""
    if cache is not None and cache.exists():
        scored = pl.read_parquet(cache)
        meta = json.loads(cache.with_suffix(".json").read_text())
        return scored, int(meta["rows"]), float(meta["generated"]), float(meta["scoring"])
    began = time.perf_counter()
    tx = generate(SIZES[size], seed=SEED, years=YEARS, start=START, id_kind=id_kind)  # type: ignore[arg-type]
    generated = time.perf_counter() - began
    _, as_of = window(START, YEARS)
    clock = _Clock()
    clock.start()
    scored = winback.silence(tx, as_of=as_of)
    clock.stop("silence")
    rows = tx.height
    del tx
    gc.collect()
    if cache is not None:
        scored.write_parquet(cache)
        meta = {"rows": rows, "generated": generated, "scoring": clock.steps["silence"]}
        cache.with_suffix(".json").write_text(json.dumps(meta))
    return scored, rows, generated, clock.steps["silence"]


def run(
    size: str,
    *,
    id_kind: str = "int",
    repeat: int = 1,
    verbose: bool = False,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Generates and scores the ``size`` data (or reads it from ``cache``), then times
    segmenting and the campaign (best of ``repeat``). Returns the figures as a dict."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} must be one of {sorted(SIZES)}")
    scored, rows, generated, scoring = _scored(size, id_kind, cache)
    if verbose:
        print(
            f"{size}: {rows:,} rows, {scored.height:,} customers (generated {generated:.1f}s, "
            f"scored {scoring:.2f}s)",
            flush=True,
        )
    best: dict[str, float] | None = None
    targets = pl.DataFrame()
    for _ in range(repeat):
        clock = _Clock()
        clock.start()
        segmented = winback.rfm(scored)
        clock.stop("rfm")
        clock.start()
        segmented = winback.quadrant(segmented)
        clock.stop("quadrant")
        clock.start()
        segmented = winback.classify(segmented, "auto_dealer")
        clock.stop("classify")
        clock.start()
        targets = winback.campaign(segmented, campaign_id="bench", staff=STAFF, holdout=0.1)
        clock.stop("campaign")
        steps = dict(clock.steps)
        steps["total"] = sum(steps.values())
        del segmented
        if best is None or steps["total"] < best["total"]:
            best = steps
        if verbose:
            print("  " + ", ".join(f"{k} {v:.2f}s" for k, v in steps.items()), flush=True)
    assert best is not None
    arms = targets.get_column("arm").value_counts().rows()
    return {
        "size": size,
        "id_kind": id_kind,
        "customers": scored.height,
        "rows": rows,
        "targets": targets.height,
        "arms": {str(k): int(v) for k, v in arms},
        "scoring_seconds": scoring,
        "seconds": best,
        "target_seconds": TARGET_SECONDS,
        "meets_target": best["total"] < TARGET_SECONDS,
        "repeat": repeat,
        "cpus": os.cpu_count(),
        "threads": winback._winback.effective_threads(),
        "platform": platform.platform(),
        "versions": {"winback": winback.__version__, "polars": pl.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="L")
    parser.add_argument("--id-kind", choices=["int", "str"], default="int")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--cache", type=Path, help="keep the scored table in this Parquet file between runs"
    )
    args = parser.parse_args(argv)
    result = run(
        args.size, id_kind=args.id_kind, repeat=args.repeat, verbose=True, cache=args.cache
    )
    steps = result["seconds"]
    print(
        f"\n{result['customers']:,} scored customers → {result['targets']:,} targets: "
        f"{steps['total']:.2f} s (target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if result['meets_target'] else 'MISSED'})"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
