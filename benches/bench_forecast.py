"""`winback.value` with the headline forecasts (docs/methods.md#headline-forecast) on the
generated 1M customers × 24 months (`gen_data.py`, seed 0): the default (`forecast="nbd"`)
against `forecast="dropout"` (the periodic BG/NBD) in the same run, wall and CPU seconds.
Issue 13's target: under 30 s with the new forecast.

    .venv/bin/python benches/bench_forecast.py                      # 1M customers
    .venv/bin/python benches/bench_forecast.py --customers 20000 --forecasts nbd,dropout,auto
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import generate, window

import winback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--forecasts", default="nbd,dropout")
    args = parser.parse_args(argv)
    df = generate(args.customers, seed=0)
    _, as_of = window()
    print(f"{df.height:,} rows, {args.customers:,} customers; load {os.getloadavg()[0]:.1f}")
    winback.value(df.filter(pl.col("customer_id") <= 5_000), as_of=as_of)  # Numba warm-up
    for forecast in args.forecasts.split(","):
        wall, cpu = time.perf_counter(), time.process_time()
        result = winback.value(df, as_of=as_of, forecast=forecast)  # type: ignore[arg-type]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"forecast={forecast}: {wall:.1f} s wall, {cpu:.1f} s CPU, chose {result.forecast}; "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
