"""Back-test of winback's forecasts on CDNOW through `winback.backtest` (docs/methods.md#backtest),
next to lifetimes' BG/NBD + Gamma–Gamma on the same origins (issues 4 and 13).

For each split date (a month end) both sides are calibrated on the transactions up to and
including it and forecast every calibration customer's amount over the horizon (by default the
next calendar month); the forecasts are compared with what the customers spent then (0 for most).

- **winback** — every method `winback.backtest` offers: `nbd_gg` (value's `expected_amount`,
  monthly NBD × Gamma–Gamma, no dropout), `nbd_gg_alive` (× the BG/NBD P(alive)), `bgnbd_gg`,
  `mbgnbd_gg`, `pareto_gg` (the daily models × value's Gamma–Gamma), `markov` (the chain's next
  month: ``expected_amount × p_active_next_markov / p_active_next``), and the naive baselines
  `naive_mean3`, `naive_last`, `zero`.
- **lifetimes BG/NBD × GG** — `BetaGeoFitter` on lifetimes' daily summary,
  `conditional_expected_number_of_purchases_up_to_time(days in the next month)` ×
  `GammaGammaFitter.conditional_expected_average_profit` (fitted on the customers with a positive
  repeat mean), run in `.venv-bench` through lifetimes_side.py; scored with the back-test's
  metrics on its actual amounts (1M only).

Metrics (docs/methods.md#backtest): pooled total error, mean |per-origin total error|, RMSE, MAE,
Spearman's ρ, top-decile capture and (winback) the Brier score of P(active).
``winback_forecasts``/``evaluate`` keep the older per-split view of value's three columns.

    .venv/bin/python benches/backtest_value.py                 # 9 monthly splits, Sep 1997 – May 1998
    .venv/bin/python benches/backtest_value.py --horizons 1M,3M --splits 1997-09-30,1998-03-31
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
CDNOW_SAMPLE = ROOT.parent / "shared" / "data" / "CDNOW_sample.txt"
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


def _months_after(split: date, months: int) -> date:
    """The last day of the month ``months`` after ``split``'s month."""
    end = split
    for _ in range(months):
        end = next_month_end(end)
    return end


def lifetimes_forecasts(
    tx: pl.DataFrame, specs: list[tuple[date, int, str]]
) -> pl.DataFrame | None:
    """lifetimes' forecasts for every (split, days, label) (None without `.venv-bench`)."""
    if not LIFETIMES_PYTHON.exists():
        return None
    spec = ",".join(f"{s.isoformat()}:{days}:{label}" for s, days, label in specs)
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


def lifetimes_rows(
    theirs: pl.DataFrame, details: pl.DataFrame, splits: list[date], horizon: str
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """lifetimes' forecasts at ``horizon`` scored by winback.backtest's metrics, per split, over
    the same customers and actual amounts (the back-test's details); and its P(active) with the
    observed activity (for the reliability table)."""
    from winback.backtest import spearman, top_share_capture

    rows, activity = [], []
    for split in splits:
        part = details.filter((pl.col("origin") == split) & (pl.col("horizon") == horizon))
        side = theirs.filter((pl.col("split") == split) & (pl.col("label") == horizon))
        joined = part.select("customer_id", "actual_amount", "active").join(
            side.select("customer_id", "forecast", "p_active"),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        forecast = joined.get_column("forecast").fill_null(0.0).to_numpy()
        actual = joined.get_column("actual_amount").to_numpy()
        p_active = joined.get_column("p_active").fill_null(0.0).to_numpy()
        active = joined.get_column("active").cast(pl.Float64).to_numpy()
        m = metrics(forecast, actual)
        rows.append(
            {
                "origin": split,
                "horizon": horizon,
                "method": LIFETIMES_METHOD,
                "customers": part.height,
                "actual_total": m["total_actual"],
                "forecast_total": m["total_forecast"],
                "total_error": m["total_error"],
                "rmse": m["rmse"],
                "mae": m["mae"],
                "spearman": spearman(forecast, actual),
                "top_decile_capture": top_share_capture(forecast, actual),
                "brier": float(((p_active - active) ** 2).mean()),
            }
        )
        activity.append(pl.DataFrame({"p": p_active, "active": active}))
    return rows, pl.concat(activity)


def reliability_table(p: np.ndarray, active: np.ndarray) -> list[dict[str, Any]]:
    """P(active) by decile (ties in input order), as winback.backtest's reliability frame."""
    order = np.argsort(p, kind="stable")
    decile = np.empty(p.size, dtype=np.int64)
    decile[order] = np.arange(p.size) * 10 // max(p.size, 1)
    out = []
    for d in range(10):
        at = decile == d
        out.append(
            {
                "decile": d + 1,
                "mean_p_active": float(p[at].mean()),
                "observed_rate": float(active[at].mean()),
                "gap": float(active[at].mean() - p[at].mean()),
            }
        )
    return out


def _dropout_counts(result: winback.value.ValueResult, months: int) -> np.ndarray:
    frame = result.frame.filter(pl.col("status") == "modelled")
    assert result.dropout is not None
    return result.dropout.expected_count(months, frame)


def holdout_sample(with_lifetimes: bool) -> dict[str, Any]:
    """The classic 39-week holdout on the 2,357-customer sample: calibration to 1997-09-30,
    repeat occasions (distinct purchase days) from 1997-10-01 to 1998-06-30 (273 days = 9
    calendar months)."""
    tx = load(CDNOW_SAMPLE)
    split, end = date(1997, 9, 30), date(1998, 6, 30)
    calibration = tx.filter(pl.col("ts") <= split)
    holdout = tx.filter((pl.col("ts") > split) & (pl.col("ts") <= end))
    actual_days = holdout.select(pl.struct("customer_id", "ts").n_unique()).item()
    actual_rows = holdout.height
    result = winback.value(calibration, as_of=split, forecast="dropout")
    out: dict[str, Any] = {
        "customers": calibration.get_column("customer_id").n_unique(),
        "actual_occasions": actual_days,
        "actual_rows": actual_rows,
        "winback periodic BG/NBD": float(_dropout_counts(result, 9).sum()),
    }
    daily = winback.summary(calibration, as_of=split, unit="D", return_info=True)
    from winback.models import BetaGeoModel, ParetoNBDModel

    for name, cls in (("winback BG/NBD", BetaGeoModel), ("winback Pareto/NBD", ParetoNBDModel)):
        model = cls().fit(daily)
        out[name] = float(model.expected_purchases((end - split).days, daily).sum())
    if with_lifetimes:
        theirs = lifetimes_forecasts(tx, [(split, (end - split).days, "holdout")])
        if theirs is not None:
            out[LIFETIMES_METHOD] = float(theirs.get_column("expected_purchases").sum())
    return out


def clv_twelve_months(with_lifetimes: bool) -> dict[str, Any]:
    """12-month value from 1997-06-30 on CDNOW master: the forecasts' totals and top-decile
    capture against the realized revenue of July 1997 – June 1998 per customer."""
    from winback.backtest import spearman, top_share_capture

    tx = load()
    split, end = date(1997, 6, 30), date(1998, 6, 30)
    calibration = tx.filter(pl.col("ts") <= split)
    realized = (
        tx.filter((pl.col("ts") > split) & (pl.col("ts") <= end))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("realized"))
    )
    result = winback.value(calibration, as_of=split, forecast="dropout", discount_rate=0.0)
    frame = result.frame.filter(pl.col("status") == "modelled")
    spend = frame.get_column("expected_mean_amount").to_numpy()
    nbd = result.nbd
    assert nbd is not None
    forecasts = pl.DataFrame(
        {
            "customer_id": frame.get_column("customer_id"),
            "winback periodic BG/NBD × GG": _dropout_counts(result, 12) * spend,
            "winback NBD × GG": nbd.expected_purchases(12, frame).to_numpy() * spend,
            "winback value clv (undiscounted)": frame.get_column("clv").to_numpy(),
        }
    )
    if with_lifetimes:
        theirs = lifetimes_forecasts(tx, [(split, (end - split).days, "clv12")])
        if theirs is not None:
            forecasts = forecasts.join(
                theirs.select("customer_id", pl.col("forecast").alias(LIFETIMES_METHOD)),
                on="customer_id",
                how="left",
            )
    joined = forecasts.join(realized, on="customer_id", how="left").fill_null(0.0)
    actual = joined.get_column("realized").to_numpy()
    rows = []
    for name in forecasts.columns[1:]:
        f = joined.get_column(name).to_numpy()
        rows.append(
            {
                "method": name,
                "forecast_total": float(f.sum()),
                "realized_total": float(actual.sum()),
                "total_error": float(f.sum() / actual.sum() - 1.0),
                "top_decile_capture": top_share_capture(f, actual),
                "spearman": spearman(f, actual),
            }
        )
    return {"rows": rows}


def run(
    splits: list[date], *, with_lifetimes: bool = True, horizons: tuple[str, ...] = ("1M",)
) -> dict[str, Any]:
    """The back-test on CDNOW: winback's forecasts through `winback.backtest` (every method it
    offers), lifetimes' BG/NBD × GG next to them at every horizon (each horizon on the splits
    whose horizon ends inside the data); per origin and pooled over origins."""
    tx = load()
    data_end = date(1998, 6, 30)
    frames, reliability, side_rows, lifetimes_seconds, winback_seconds = [], [], [], 0.0, 0.0
    lifetimes_activity = {}
    for horizon in horizons:
        months = int(horizon.rstrip("Mm"))
        chosen = [s for s in splits if _months_after(s, months) <= data_end]
        began = time.perf_counter()
        theirs = (
            lifetimes_forecasts(
                tx, [(s, (_months_after(s, months) - s).days, horizon) for s in chosen]
            )
            if with_lifetimes
            else None
        )
        lifetimes_seconds += time.perf_counter() - began
        began = time.perf_counter()
        result = winback.backtest(
            tx, origins=chosen, horizons=[horizon], details=theirs is not None
        )
        winback_seconds += time.perf_counter() - began
        frames.append(result.frame)
        reliability.append(result.reliability)
        if theirs is not None and result.details is not None:
            rows, activity = lifetimes_rows(theirs, result.details, chosen, horizon)
            side_rows += rows
            lifetimes_activity[horizon] = reliability_table(
                activity.get_column("p").to_numpy(), activity.get_column("active").to_numpy()
            )
    frame = pl.concat(frames)
    if side_rows:
        frame = pl.concat([frame, pl.DataFrame(side_rows)], how="diagonal_relaxed")
    summary = (
        frame.filter(pl.col("note").is_null())
        .group_by("horizon", "method", maintain_order=True)
        .agg(
            pl.len().alias("origins"),
            (pl.col("forecast_total").sum() / pl.col("actual_total").sum() - 1).alias(
                "pooled_total_error"
            ),
            pl.col("total_error").abs().mean().alias("mean_abs_total_error"),
            pl.col("rmse").mean(),
            pl.col("mae").mean(),
            pl.col("spearman").mean(),
            pl.col("top_decile_capture").mean(),
            pl.col("brier").mean(),
        )
        .sort("horizon", maintain_order=True)
    )
    return {
        "splits": [s.isoformat() for s in splits],
        "per_split": frame.with_columns(pl.col("origin").cast(pl.String)).to_dicts(),
        "summary": summary.to_dicts(),
        "reliability": pl.concat(reliability).to_dicts(),
        "lifetimes_reliability": lifetimes_activity,
        "holdout": holdout_sample(with_lifetimes),
        "clv": clv_twelve_months(with_lifetimes),
        "winback_seconds": winback_seconds,
        "lifetimes_seconds": lifetimes_seconds if with_lifetimes else None,
    }


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_tables(result: dict[str, Any]) -> str:
    lines = [
        "| horizon | forecast | pooled total error | mean \\|total error\\| | RMSE | MAE "
        "| Spearman | top-decile capture | Brier |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["summary"]:
        lines.append(
            f"| {s['horizon']} | {s['method']} | {_pct(s['pooled_total_error'], True)} "
            f"| {_pct(s['mean_abs_total_error'])} | {_num(s['rmse'], 2)} | {_num(s['mae'], 2)} "
            f"| {_num(s['spearman'], 3)} | {_pct(s['top_decile_capture'])} "
            f"| {_num(s['brier'], 4)} |"
        )
    lines += [
        "",
        "| origin | horizon | method | actual total | forecast total | total error |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in result["per_split"]:
        if row.get("note"):
            continue
        lines.append(
            f"| {row['origin']} | {row['horizon']} | {row['method']} "
            f"| {row['actual_total']:,.0f} | {row['forecast_total']:,.0f} "
            f"| {_pct(row['total_error'], True)} |"
        )
    hold = result.get("holdout")
    if hold:
        lines += [
            "",
            f"39-week holdout, {hold['customers']:,} sample customers, calibration to 1997-09-30: "
            f"actual {hold['actual_occasions']:,} repeat occasions (distinct purchase days; "
            f"{hold['actual_rows']:,} rows)",
            "",
            "| forecast | repeat occasions | error vs occasions | error vs 1,882 |",
            "|---|---:|---:|---:|",
        ]
        for name, value in hold.items():
            if name in ("customers", "actual_occasions", "actual_rows"):
                continue
            lines.append(
                f"| {name} | {value:,.0f} | {_pct(value / hold['actual_occasions'] - 1, True)} "
                f"| {_pct(value / 1882 - 1, True)} |"
            )
    clv = result.get("clv")
    if clv:
        lines += [
            "",
            "12-month value from 1997-06-30 (CDNOW master) against the realized July 1997 – June 1998",
            "",
            "| forecast | forecast total | realized total | total error | top-decile capture | Spearman |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in clv["rows"]:
            lines.append(
                f"| {row['method']} | {row['forecast_total']:,.0f} | {row['realized_total']:,.0f} "
                f"| {_pct(row['total_error'], True)} | {_pct(row['top_decile_capture'])} "
                f"| {_num(row['spearman'], 3)} |"
            )
    lines += [
        "",
        "P(active) reliability by decile, pooled over the origins (gap = observed − predicted)",
        "",
        "| horizon | forecast | decile gaps 1 … 10 (points) | max \\|gap\\| |",
        "|---|---|---|---:|",
    ]
    reliability = pl.DataFrame(result["reliability"])
    for (horizon, method), part in reliability.group_by("horizon", "method", maintain_order=True):
        gaps = part.sort("decile").get_column("gap").to_numpy() * 100
        lines.append(
            f"| {horizon} | {method} | {' '.join(f'{g:+.1f}' for g in gaps)} "
            f"| {np.abs(gaps).max():.1f} |"
        )
    for horizon, table in (result.get("lifetimes_reliability") or {}).items():
        gaps = np.array([row["gap"] for row in table]) * 100
        lines.append(
            f"| {horizon} | {LIFETIMES_METHOD} | {' '.join(f'{g:+.1f}' for g in gaps)} "
            f"| {np.abs(gaps).max():.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="comma list of month ends")
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--horizons", default="1M,3M", help="comma list: 1M,3M")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not CDNOW_MASTER.exists():
        print(f"CDNOW not found at {CDNOW_MASTER}", file=sys.stderr)
        return 1
    splits = [date.fromisoformat(s) for s in args.splits.split(",")]
    if not args.no_lifetimes and not LIFETIMES_PYTHON.exists():
        print(f"note: {LIFETIMES_PYTHON} not found (make bench-env); winback only")
    horizons = tuple(h.strip() for h in args.horizons.split(","))
    result = run(splits, with_lifetimes=not args.no_lifetimes, horizons=horizons)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    print(format_tables(result))
    print(
        f"\nwinback {result['winback_seconds']:.1f} s for {len(splits)} splits"
        + (
            f"; lifetimes {result['lifetimes_seconds']:.1f} s"
            if result["lifetimes_seconds"] is not None
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
