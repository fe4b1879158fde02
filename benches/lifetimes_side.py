"""The lifetimes side of bench_models.py, run in the benchmark's own environment (`.venv-bench`,
made by `make bench-env`): lifetimes is never a dependency of winback.

Reads a transactions Parquet file (customer_id, ts, amount) and, optionally, winback's summary
(for the Gamma–Gamma fit on identical inputs); times lifetimes' summary and fits; prints JSON.

    .venv-bench/bin/python benches/lifetimes_side.py tx.parquet --end 2025-01-01 --out side.json

With ``--backtest SPLIT:DAYS[:LABEL],...`` it forecasts instead (backtest_value.py): for each split date,
BG/NBD + Gamma–Gamma calibrated on the days up to and including it, and each customer's expected
amount over the next DAYS days, written to ``--out`` as Parquet (split, label, customer_id,
forecast, expected_purchases, p_alive, p_active = P(≥ 1 purchase in the DAYS)).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from typing import Any

import numpy as np
import pandas as pd


def _timed(label: str, results: dict[str, Any], work: Any) -> Any:
    start = time.perf_counter()
    try:
        value = work()
    except Exception as exc:  # a failed fit is a result to report, not a crash
        results[label] = {
            "seconds": time.perf_counter() - start,
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "trace": traceback.format_exc(limit=2),
        }
        return None
    results[label] = {"seconds": time.perf_counter() - start}
    return value


def backtest(tx: pd.DataFrame, splits: list[tuple[str, int, str]], out: str) -> None:
    """Per split: BetaGeoFitter on lifetimes' daily summary up to the split, GammaGammaFitter on
    the customers with a positive repeat mean; forecast = E[purchases in the next ``days``]
    × E[mean spend] (the standard lifetimes CLV recipe without discounting)."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    frames = []
    for split, days, label in splits:
        end = pd.Timestamp(split)
        calibration = tx[tx["ts"] < end + pd.Timedelta(days=1)]
        summary = summary_data_from_transaction_data(
            calibration,
            "customer_id",
            "ts",
            monetary_value_col="amount",
            observation_period_end=end,
            freq="D",
        )
        started = time.perf_counter()
        bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        spend = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        ggf = GammaGammaFitter().fit(spend["frequency"], spend["monetary_value"])
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
            days, summary["frequency"], summary["recency"], summary["T"]
        )
        mean_spend = ggf.conditional_expected_average_profit(
            summary["frequency"], summary["monetary_value"]
        )
        alive = bgf.conditional_probability_alive(
            summary["frequency"], summary["recency"], summary["T"]
        )
        # P(no purchase in the next `days` | alive) = ((α+T)/(α+T+t))^(r+x) under the BG/NBD
        r, a = bgf.params_["r"], bgf.params_["alpha"]
        silent = ((a + summary["T"]) / (a + summary["T"] + days)) ** (r + summary["frequency"])
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "label": label,
                    "customer_id": summary.index.to_numpy(),
                    "forecast": np.asarray(purchases * mean_spend, dtype=float),
                    "expected_purchases": np.asarray(purchases, dtype=float),
                    "p_alive": np.asarray(alive, dtype=float),
                    "p_active": np.asarray(alive * (1.0 - silent), dtype=float),
                    "fit_seconds": time.perf_counter() - started,
                }
            )
        )
    pd.concat(frames, ignore_index=True).to_parquet(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transactions")
    parser.add_argument("--end", help="observation_period_end (ISO date)")
    parser.add_argument("--summary", help="winback's summary (Parquet) for the Gamma–Gamma fit")
    parser.add_argument("--models", default="bgnbd,mbgnbd,pareto,gg")
    parser.add_argument(
        "--rft", action="store_true", help="the input is already a frequency/recency/T summary"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--backtest", help="SPLIT:DAYS,...: forecast instead (see the doc)")
    args = parser.parse_args()
    if args.backtest:
        parts = [item.split(":") for item in args.backtest.split(",")]
        splits = [(p[0], int(p[1]), p[2] if len(p) > 2 else "1M") for p in parts]
        backtest(pd.read_parquet(args.transactions), splits, args.out)
        return

    import lifetimes
    from lifetimes import (
        BetaGeoFitter,
        GammaGammaFitter,
        ModifiedBetaGeoFitter,
        ParetoNBDFitter,
    )
    from lifetimes.utils import summary_data_from_transaction_data

    results: dict[str, Any] = {"lifetimes_version": lifetimes.__version__}
    tx = pd.read_parquet(args.transactions)
    if args.rft:
        summary = tx
    else:
        summary = _timed(
            "summary",
            results,
            lambda: summary_data_from_transaction_data(
                tx,
                "customer_id",
                "ts",
                monetary_value_col="amount",
                observation_period_end=args.end,
                freq="D",
            ),
        )
    models = set(args.models.split(","))
    fitters = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto": ParetoNBDFitter}
    if summary is not None:
        results["customers"] = len(summary)
        for name, fitter in fitters.items():
            if name not in models:
                continue
            model = _timed(
                name,
                results,
                lambda fitter=fitter: fitter().fit(
                    summary["frequency"], summary["recency"], summary["T"]
                ),
            )
            if model is not None:
                results[name]["params"] = {k: float(v) for k, v in model.params_.items()}
    if "gg" in models and args.summary:
        spend = pd.read_parquet(args.summary)
        spend = spend[spend["spend_frequency"] > 0]
        model = _timed(
            "gg",
            results,
            lambda: GammaGammaFitter().fit(spend["spend_frequency"], spend["monetary_value"]),
        )
        if model is not None:
            results["gg"]["params"] = {k: float(v) for k, v in model.params_.items()}
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
