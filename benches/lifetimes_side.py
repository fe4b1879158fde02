"""The lifetimes side of bench_models.py, run in the benchmark's own environment (`.venv-bench`,
made by `make bench-env`): lifetimes is never a dependency of winback.

Reads a transactions Parquet file (customer_id, ts, amount) and, optionally, winback's summary
(for the Gamma–Gamma fit on identical inputs); times lifetimes' summary and fits; prints JSON.

    .venv-bench/bin/python benches/lifetimes_side.py tx.parquet --end 2025-01-01 --out side.json

With ``--backtest SPLIT:DAYS[:LABEL],...`` it forecasts instead (backtest_value.py): for each split date,
BG/NBD + Gamma–Gamma calibrated on the days up to and including it, and each customer's expected
amount over the next DAYS days, written to ``--out`` as Parquet (split, label, customer_id,
forecast, expected_purchases, p_alive, p_active = P(≥ 1 purchase in the DAYS)).

With ``--parity CONFIG.json`` (bench_parity.py) it runs every lifetimes function that winback has
a counterpart of on CDNOW and the donations, times each (best of a few runs) and writes the values
as JSON to ``--out``.
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


def _best(work: Any, repeat: int) -> tuple[Any, float]:
    """The value of ``work()`` and its best time over ``repeat`` runs (s)."""
    best = float("inf")
    value = None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - start)
    return value, best


def _listed(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return {str(k): _listed(v) for k, v in value.items()}
    if hasattr(value, "params_"):  # a fitted fitter: its parameters
        return {str(k): float(v) for k, v in value.params_.items()}
    if isinstance(value, pd.Series | np.ndarray | list):
        return [float(v) for v in np.asarray(value, dtype=float).ravel()]
    return float(value)


def parity(config: dict[str, Any]) -> dict[str, Any]:
    """Every lifetimes function with a winback counterpart, on the inputs bench_parity.py wrote
    (see its doc); each result is ``{"seconds": best time, "value": ...}``."""
    import lifetimes
    from lifetimes import (
        BetaGeoBetaBinomFitter,
        BetaGeoFitter,
        GammaGammaFitter,
        ModifiedBetaGeoFitter,
        ParetoNBDFitter,
    )
    from lifetimes.utils import (
        calibration_and_holdout_data,
        expected_cumulative_transactions,
        summary_data_from_transaction_data,
    )

    repeat = int(config["repeat"])
    out: dict[str, Any] = {"lifetimes_version": lifetimes.__version__}

    def record(name: str, work: Any, n: int = repeat) -> Any:
        value, seconds = _best(work, n)
        out[name] = {"seconds": seconds, "value": _listed(value)}
        return value

    tx = pd.read_parquet(config["tx"])
    cal, end = config["calibration_end"], config["observation_end"]
    # lifetimes keeps rows up to the end of the observation end's period (with freq="W" the
    # rest of its week), so the rows after it are left out first, as calibration_and_holdout_data
    # does; winback's as_of is the end of that day.
    upto = tx[tx["ts"] <= pd.Timestamp(cal)]
    for freq in ("D", "W"):
        record(
            f"summary_data_from_transaction_data[{freq}]",
            lambda freq=freq: summary_data_from_transaction_data(
                upto, "customer_id", "ts", monetary_value_col="amount",
                observation_period_end=cal, freq=freq,
            )[["frequency", "recency", "T", "monetary_value"]],
        )  # fmt: skip
        record(
            f"calibration_and_holdout_data[{freq}]",
            lambda freq=freq: calibration_and_holdout_data(
                tx, "customer_id", "ts", calibration_period_end=cal,
                observation_period_end=end, freq=freq, monetary_value_col="amount",
            ),
        )  # fmt: skip
    rft = pd.read_csv(config["rft"])
    x, t_x, T = rft["frequency"], rft["recency"], rft["T"]
    horizon, periods, n_max = config["horizon"], config["periods"], config["n_max"]
    ages = np.arange(1.0, periods + 1.0)
    fitters = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto": ParetoNBDFitter}
    fitted: dict[str, Any] = {}
    for name, fitter in fitters.items():
        model = record(f"{name}.fit", lambda fitter=fitter: fitter().fit(x, t_x, T), n=1)
        fitted[name] = model
        record(
            f"{name}.conditional_expected_number_of_purchases_up_to_time",
            lambda m=model: m.conditional_expected_number_of_purchases_up_to_time(
                horizon, x, t_x, T
            ),
        )
        record(
            f"{name}.conditional_probability_alive",
            lambda m=model: m.conditional_probability_alive(x, t_x, T),
        )
        record(
            f"{name}.expected_number_of_purchases_up_to_time",
            lambda m=model: m.expected_number_of_purchases_up_to_time(ages),
        )
        if hasattr(model, "probability_of_n_purchases_up_to_time"):
            record(
                f"{name}.probability_of_n_purchases_up_to_time",
                lambda m=model: [
                    m.probability_of_n_purchases_up_to_time(horizon, n) for n in range(n_max + 1)
                ],
            )
        if hasattr(model, "conditional_probability_of_n_purchases_up_to_time"):
            record(
                f"{name}.conditional_probability_of_n_purchases_up_to_time",
                lambda m=model: np.concatenate(
                    [
                        np.asarray(
                            m.conditional_probability_of_n_purchases_up_to_time(
                                n, horizon, x, t_x, T
                            ),
                            dtype=float,
                        )
                        for n in range(n_max + 1)
                    ]
                ),
                n=1,
            )
    spend = pd.read_parquet(config["spend"])
    ggf = record(
        "gg.fit", lambda: GammaGammaFitter().fit(spend["frequency"], spend["monetary_value"]), n=1
    )
    clv = pd.read_parquet(config["clv"])
    record(
        "gg.conditional_expected_average_profit",
        lambda: ggf.conditional_expected_average_profit(clv["frequency"], clv["monetary_value"]),
    )
    record(
        "gg.customer_lifetime_value",
        lambda: ggf.customer_lifetime_value(
            fitted["bgnbd"], clv["frequency"], clv["recency"], clv["T"], clv["monetary_value"],
            time=12, discount_rate=0.01, freq="W",
        ),
    )  # fmt: skip
    record(
        "expected_cumulative_transactions[W]",
        lambda: expected_cumulative_transactions(
            fitted["bgnbd"], tx, "ts", "customer_id", t=periods, freq="W"
        ),
        n=1,
    )
    rows = config["donations"]
    dx, dt, dw = (np.array([r[i] for r in rows], dtype=float) for i in range(3))
    dn = np.full_like(dx, 6.0)
    bgbb = record("bgbb.fit", lambda: BetaGeoBetaBinomFitter().fit(dx, dt, dn, dw))
    record(
        "bgbb.conditional_expected_number_of_purchases_up_to_time",
        lambda: bgbb.conditional_expected_number_of_purchases_up_to_time(5, dx, dt, dn),
    )
    record(
        "bgbb.conditional_probability_alive",
        lambda: bgbb.conditional_probability_alive(0, dx, dt, dn),
    )
    record(
        "bgbb.conditional_probability_alive[5]",
        lambda: bgbb.conditional_probability_alive(5, dx, dt, dn),
    )
    record(
        "bgbb.expected_number_of_transactions_in_first_n_periods",
        lambda: bgbb.expected_number_of_transactions_in_first_n_periods(6)["model"],
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transactions", nargs="?")
    parser.add_argument("--end", help="observation_period_end (ISO date)")
    parser.add_argument("--summary", help="winback's summary (Parquet) for the Gamma–Gamma fit")
    parser.add_argument("--models", default="bgnbd,mbgnbd,pareto,gg")
    parser.add_argument(
        "--rft", action="store_true", help="the input is already a frequency/recency/T summary"
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--backtest", help="SPLIT:DAYS,...: forecast instead (see the doc)")
    parser.add_argument("--parity", help="CONFIG.json of bench_parity.py: parity run instead")
    args = parser.parse_args()
    if args.parity:
        with open(args.parity) as handle:
            config = json.load(handle)
        with open(args.out, "w") as handle:
            json.dump(parity(config), handle)
        return
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
