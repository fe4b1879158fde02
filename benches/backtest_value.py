"""Back-test of `winback.value`'s next-period forecast on CDNOW, next to lifetimes' BG/NBD +
Gamma–Gamma on the same splits (docs/methods.md#value; issue 4).

For each split date (a month end) both sides are calibrated on the transactions up to and
including it and forecast every calibration customer's amount in the next calendar month; the
forecasts are compared with what the customers spent in that month (0 for most):

- **winback expected_amount** — the forecast (docs/methods.md#forecasts) E[X']·E[M'] from the
  monthly NBD and the Gamma–Gamma model (no dropout: assumptions 3–6).
- **winback chain-adjusted** — the same amount given a purchase, E[X'M' | X' ≥ 1], times the
  Markov chain's probability of a purchase next period (docs/methods.md#p-active,
  ``p_active_next_markov``): ``expected_amount × p_active_next_markov / p_active_next``. The chain
  over recency is what brings lapse in (docs/methods.md#markov).
- **winback P(alive)-adjusted** — ``expected_amount × p_alive`` (value's ``p_alive``: the
  BG/NBD posterior that the customer has not dropped out, fitted on the same calibration data).
- **lifetimes BG/NBD × GG** — `BetaGeoFitter` on lifetimes' daily summary,
  `conditional_expected_number_of_purchases_up_to_time(days in the next month)` ×
  `GammaGammaFitter.conditional_expected_average_profit` (fitted on the customers with a positive
  repeat mean), run in `.venv-bench` through lifetimes_side.py.

Metrics per split over all calibration customers: MAE and RMSE of the per-customer amount,
forecast and actual totals with the total's relative error, and Spearman's rank correlation.

    .venv/bin/python benches/backtest_value.py                 # 9 monthly splits, Sep 1997 – May 1998
    .venv/bin/python benches/backtest_value.py --splits 1998-05-31 --json out.json
    .venv/bin/python benches/backtest_value.py --no-lifetimes  # winback's side only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

import winback
from winback.datasets import read_cdnow_text

ROOT = Path(__file__).resolve().parents[1]
CDNOW_MASTER = ROOT.parent / "shared" / "data" / "CDNOW_master.txt"
LIFETIMES_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
DEFAULT_SPLITS = (
    "1997-09-30,1997-10-31,1997-11-30,1997-12-31,1998-01-31,"
    "1998-02-28,1998-03-31,1998-04-30,1998-05-31"
)
WINBACK_METHODS = ("winback expected_amount", "winback chain-adjusted", "winback P(alive)-adjusted")
LIFETIMES_METHOD = "lifetimes BG/NBD × GG"


def load(path: Path = CDNOW_MASTER) -> pl.DataFrame:
    """The CDNOW transactions (customer_id, ts as a Date, amount)."""
    return read_cdnow_text(path).select("customer_id", "ts", "amount")


def next_month_end(split: date) -> date:
    """The last day of the month after ``split`` (a month end)."""
    first = split + timedelta(days=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def actual_amounts(tx: pl.DataFrame, split: date) -> pl.DataFrame:
    """Each customer's spend in the month after ``split`` (customers who spent nothing absent)."""
    return (
        tx.filter((pl.col("ts") > split) & (pl.col("ts") <= next_month_end(split)))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("actual"))
    )


def winback_forecasts(tx: pl.DataFrame, split: date) -> pl.DataFrame:
    """winback's forecasts for the month after ``split``, calibrated on the days up to it."""
    calibration = tx.filter(pl.col("ts") <= split)
    # The last instant of the split day: the split's month is the last complete period.
    frame = winback.value(calibration, as_of=datetime.combine(split, datetime.max.time())).frame
    amount = pl.col("expected_amount").fill_null(0.0)
    return frame.select(
        "customer_id",
        amount.alias(WINBACK_METHODS[0]),
        (amount * pl.col("p_active_next_markov") / pl.col("p_active_next"))
        .fill_null(0.0)
        .fill_nan(0.0)
        .alias(WINBACK_METHODS[1]),
        (amount * pl.col("p_alive").fill_null(1.0)).alias(WINBACK_METHODS[2]),
    )


def lifetimes_forecasts(tx: pl.DataFrame, splits: list[date]) -> pl.DataFrame | None:
    """lifetimes' forecasts for every split (None without `.venv-bench`)."""
    if not LIFETIMES_PYTHON.exists():
        return None
    spec = ",".join(f"{s.isoformat()}:{(next_month_end(s) - s).days}" for s in splits)
    with tempfile.TemporaryDirectory() as tmp:
        tx_path, out = Path(tmp) / "tx.parquet", Path(tmp) / "forecasts.parquet"
        tx.with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(tx_path)
        subprocess.run(
            [
                str(LIFETIMES_PYTHON),
                str(Path(__file__).with_name("lifetimes_side.py")),
                str(tx_path),
                "--backtest",
                spec,
                "--out",
                str(out),
            ],
            check=True,
        )
        return pl.read_parquet(out).with_columns(
            pl.col("split").str.to_date(), pl.col("customer_id").cast(pl.Int64)
        )


def metrics(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, totals, the total's relative error and Spearman's ρ."""
    error = forecast - actual
    total_forecast, total_actual = float(forecast.sum()), float(actual.sum())
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "total_forecast": total_forecast,
        "total_actual": total_actual,
        "total_error": total_forecast / total_actual - 1.0,
        "spearman": float(stats.spearmanr(forecast, actual).statistic),
    }


def evaluate(forecasts: pl.DataFrame, actual: pl.DataFrame, methods: list[str]) -> dict[str, Any]:
    """Metrics of each forecast column over the customers of ``forecasts``."""
    joined = forecasts.join(actual, on="customer_id", how="left").with_columns(
        pl.col("actual").fill_null(0.0)
    )
    truth = joined.get_column("actual").to_numpy()
    return {m: metrics(joined.get_column(m).to_numpy(), truth) for m in methods}


def run(splits: list[date], *, with_lifetimes: bool = True) -> dict[str, Any]:
    """The back-test on CDNOW: per split, each method's metrics; and their means over splits."""
    tx = load()
    began = time.perf_counter()
    theirs = lifetimes_forecasts(tx, splits) if with_lifetimes else None
    lifetimes_seconds = time.perf_counter() - began
    per_split: dict[str, dict[str, Any]] = {}
    winback_seconds = 0.0
    for split in splits:
        began = time.perf_counter()
        ours = winback_forecasts(tx, split)
        winback_seconds += time.perf_counter() - began
        methods = list(WINBACK_METHODS)
        if theirs is not None:
            side = theirs.filter(pl.col("split") == split).select(
                "customer_id", pl.col("forecast").alias(LIFETIMES_METHOD)
            )
            ours = ours.join(side, on="customer_id", how="left")
            methods.append(LIFETIMES_METHOD)
        per_split[split.isoformat()] = {
            "customers": ours.height,
            **evaluate(ours, actual_amounts(tx, split), methods),
        }
    methods = [m for m in per_split[splits[0].isoformat()] if m != "customers"]
    summary = {}
    for method in methods:
        rows = [per_split[s.isoformat()][method] for s in splits]
        summary[method] = {
            key: float(np.mean([r[key] for r in rows])) for key in ("mae", "rmse", "spearman")
        } | {
            "mean_abs_total_error": float(np.mean([abs(r["total_error"]) for r in rows])),
            "pooled_total_error": sum(r["total_forecast"] for r in rows)
            / sum(r["total_actual"] for r in rows)
            - 1.0,
        }
    return {
        "splits": [s.isoformat() for s in splits],
        "per_split": per_split,
        "summary": summary,
        "winback_seconds": winback_seconds,
        "lifetimes_seconds": lifetimes_seconds if theirs is not None else None,
    }


def format_tables(result: dict[str, Any]) -> str:
    lines = [
        "| method | mean MAE | mean RMSE | mean Spearman | mean abs total error | pooled total error |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, s in result["summary"].items():
        lines.append(
            f"| {method} | {s['mae']:.3f} | {s['rmse']:.3f} | {s['spearman']:.3f} "
            f"| {s['mean_abs_total_error']:.1%} | {s['pooled_total_error']:+.1%} |"
        )
    lines += [
        "",
        "| split | customers | actual total | method | forecast total | total error | MAE | RMSE | Spearman |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for split, row in result["per_split"].items():
        for method, m in row.items():
            if method == "customers":
                continue
            lines.append(
                f"| {split} | {row['customers']:,} | {m['total_actual']:,.0f} | {method} "
                f"| {m['total_forecast']:,.0f} | {m['total_error']:+.1%} | {m['mae']:.3f} "
                f"| {m['rmse']:.3f} | {m['spearman']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="comma list of month ends")
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not CDNOW_MASTER.exists():
        print(f"CDNOW not found at {CDNOW_MASTER}", file=sys.stderr)
        return 1
    splits = [date.fromisoformat(s) for s in args.splits.split(",")]
    if not args.no_lifetimes and not LIFETIMES_PYTHON.exists():
        print(f"note: {LIFETIMES_PYTHON} not found (make bench-env); winback only")
    result = run(splits, with_lifetimes=not args.no_lifetimes)
    print(format_tables(result))
    print(
        f"\nwinback {result['winback_seconds']:.1f} s for {len(splits)} splits"
        + (
            f"; lifetimes {result['lifetimes_seconds']:.1f} s"
            if result["lifetimes_seconds"] is not None
            else ""
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
