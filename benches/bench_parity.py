"""Benchmark: lifetimes parity — every lifetimes function with a winback counterpart, on CDNOW
(and Hardie's donations for BG/BB), the largest relative difference and the speed ratio, in one
run. lifetimes runs in its own environment (`.venv-bench`, `make bench-env`), through
`lifetimes_side.py --parity`.

    .venv/bin/python benches/bench_parity.py                 # prints the table
    .venv/bin/python benches/bench_parity.py --json out.json

What is compared:

- **fits** (BG/NBD, MBG/NBD, Pareto/NBD on the literature's 2,357-customer summary in weeks;
  Gamma–Gamma on the customers with a repeat purchase; BG/BB on the donations): the largest
  relative parameter difference, and winback's log-likelihood at its optimum minus its
  log-likelihood at lifetimes' parameters (> 0: winback's optimum fits better);
- **predictions** at lifetimes' fitted parameters (``Model.from_params``), so the figure measures
  the functions, not the optimisers;
- **summaries** (``summary_data_from_transaction_data``, ``calibration_and_holdout_data`` with
  ``freq="D"`` and ``freq="W"``) against ``winback.summary`` with ``unit="D"`` / ``resolution="1d"``
  and ``unit="W"`` / ``resolution="week"`` on CDNOW's transactions (calibration to 1997-09-30,
  holdout to 1998-06-30);
- the **tracking curve** (``expected_cumulative_transactions``, ``freq="W"``, 78 weeks).

Relative differences are |w − l| / max(|l|, 1e-12) over every value (customers × columns); the
speed ratio is lifetimes' best time over winback's (> 1: winback is faster), each the best of
``--repeat`` runs after a warm-up (fits: one run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bgbb import DONATIONS, patterns

import winback
from winback.datasets import read_cdnow_text
from winback.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
)
from winback.summary import expected_cumulative_transactions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LIFETIMES_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
CALIBRATION_END, OBSERVATION_END = date(1997, 9, 30), date(1998, 6, 30)
HORIZON, PERIODS, N_MAX = 39.0, 78, 10
AGES = np.arange(1.0, PERIODS + 1.0)
COUNT_MODELS: dict[str, Any] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pareto": ParetoNBDModel,
}
#: winback's parameter name → lifetimes'.
NAMES = {
    "bgnbd": {"r": "r", "alpha": "alpha", "a": "a", "b": "b"},
    "mbgnbd": {"r": "r", "alpha": "alpha", "a": "a", "b": "b"},
    "pareto": {"r": "r", "alpha": "alpha", "s": "s", "beta": "beta"},
    "gg": {"p": "p", "q": "q", "gamma": "v"},
    "bgbb": {"alpha": "alpha", "beta": "beta", "gamma": "gamma", "delta": "delta"},
}


def _best(work: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    work()  # warm-up: Numba kernels loaded from the cache
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = work()
        best = min(best, time.perf_counter() - start)
    return value, best


def _rel(ours: Any, theirs: Any) -> float:
    a = np.asarray(ours, dtype=float).ravel()
    b = np.asarray(theirs, dtype=float).ravel()
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: winback {a.shape}, lifetimes {b.shape}")
    if not a.size:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


class Table:
    """The rows of the parity table: function, largest relative difference, times."""

    def __init__(self, side: dict[str, Any], repeat: int) -> None:
        self.side, self.repeat, self.rows = side, repeat, []

    def add(
        self,
        function: str,
        key: str,
        work: Callable[[], Any],
        theirs: Callable[[Any], Any] | None = None,
        ours: Callable[[Any], Any] | None = None,
        *,
        repeat: int | None = None,
        note: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Any:
        value, seconds = _best(work, self.repeat if repeat is None else repeat)
        other = self.side.get(key, {})
        row: dict[str, Any] = {"function": function, "winback_s": seconds, "note": note}
        if "value" in other:
            compared = ours(value) if ours else value
            target = theirs(other["value"]) if theirs else other["value"]
            row["max_rel_diff"] = _rel(compared, target)
            row["lifetimes_s"] = other["seconds"]
            row["speed_ratio"] = other["seconds"] / seconds
        row.update(extra or {})
        self.rows.append(row)
        return value


def _lifetimes(config: dict[str, Any]) -> dict[str, Any]:
    if not LIFETIMES_PYTHON.exists():
        raise SystemExit("no .venv-bench: run `make bench-env` first")
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "config.json", Path(tmp) / "side.json"
        path.write_text(json.dumps(config))
        side = Path(__file__).with_name("lifetimes_side.py")
        subprocess.run(
            [str(LIFETIMES_PYTHON), str(side), "--parity", str(path), "--out", str(out)],
            check=True,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _columns(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    return np.column_stack([frame[c].cast(pl.Float64).to_numpy() for c in names])


def _their_columns(value: dict[str, list[float]], names: list[str]) -> np.ndarray:
    return np.column_stack([np.asarray(value[c], dtype=float) for c in names])


def run(repeat: int = 5) -> dict[str, Any]:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt").select("customer_id", "ts", "amount")
    rft = pl.read_csv(DATA / "cdnow_customers_summary.csv")
    spend_summary = winback.summary(tx, as_of=CALIBRATION_END, unit="W")
    spend = spend_summary.filter(pl.col("spend_frequency") > 0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: str(Path(tmp) / f"{name}.parquet") for name in ("tx", "spend", "clv")}
        tx.with_columns(pl.col("ts").cast(pl.Datetime("us"))).write_parquet(paths["tx"])
        spend.select(pl.col("spend_frequency").alias("frequency"), "monetary_value").write_parquet(
            paths["spend"]
        )
        spend_summary.select(
            pl.col("spend_frequency").alias("frequency"), "recency", "T", "monetary_value"
        ).write_parquet(paths["clv"])
        started = time.perf_counter()
        side = _lifetimes(
            {
                **paths,
                "rft": str(DATA / "cdnow_customers_summary.csv"),
                "calibration_end": CALIBRATION_END.isoformat(),
                "observation_end": OBSERVATION_END.isoformat(),
                "horizon": HORIZON,
                "periods": PERIODS,
                "n_max": N_MAX,
                "donations": DONATIONS,
                "repeat": repeat,
            }
        )
        side_seconds = time.perf_counter() - started
    table = Table(side, repeat)
    stats = ["frequency", "recency", "T", "monetary_value"]
    for freq, resolution in (("D", "1d"), ("W", "week")):
        table.add(
            f'summary_data_from_transaction_data(freq="{freq}")',
            f"summary_data_from_transaction_data[{freq}]",
            lambda freq=freq, resolution=resolution: winback.summary(
                tx, as_of=CALIBRATION_END, unit=freq, resolution=resolution
            ),
            lambda value: _their_columns(value, stats),
            lambda frame: _columns(frame, stats),
            note=f'unit="{freq}", resolution="{resolution}"',
        )
        cal = ["frequency", "recency", "T", "monetary_value", "frequency_holdout"]
        their_cal = [f"{c}_cal" for c in cal[:4]] + ["frequency_holdout", "duration_holdout"]
        split = table.add(
            f'calibration_and_holdout_data(freq="{freq}")',
            f"calibration_and_holdout_data[{freq}]",
            lambda freq=freq, resolution=resolution: winback.summary(
                tx,
                calibration_end=CALIBRATION_END,
                holdout_end=OBSERVATION_END,
                unit=freq,
                resolution=resolution,
            ),
            lambda value, their_cal=their_cal: _their_columns(value, their_cal),
            lambda frame, cal=cal: _columns(frame, [*cal, "duration_holdout"]),
            note="frequency, recency, T, monetary_value (cal), frequency_holdout, duration",
        )
        their = side.get(f"calibration_and_holdout_data[{freq}]", {}).get("value")
        if their is not None:
            table.rows[-1]["monetary_value_holdout_max_rel_diff"] = _rel(
                split["monetary_value_holdout"].to_numpy(), their["monetary_value_holdout"]
            )
            # lifetimes' holdout mean is per row, not per occasion (its calibration mean is per
            # period): the per-row mean, by Polars, shows the difference is only that.
            rows = (
                tx.filter((pl.col("ts") > CALIBRATION_END) & (pl.col("ts") <= OBSERVATION_END))
                .group_by("customer_id")
                .agg(pl.col("amount").mean().alias("row_mean"))
            )
            row_mean = split.select("customer_id").join(
                rows, on="customer_id", how="left", maintain_order="left"
            )
            table.rows[-1]["holdout_row_mean_max_rel_diff"] = _rel(
                row_mean["row_mean"].fill_null(0.0).to_numpy(), their["monetary_value_holdout"]
            )

    models: dict[str, Any] = {}
    for name, factory in COUNT_MODELS.items():
        fitted = table.add(
            f"{name}: fit (params)",
            f"{name}.fit",
            lambda factory=factory: factory().fit(rft),
            lambda value, name=name: [value[v] for v in NAMES[name].values()],
            lambda model, name=name: [model.params_[k] for k in NAMES[name]],
            repeat=1,
        )
        theirs = side.get(f"{name}.fit", {}).get("value")
        if theirs is None:
            continue
        at_theirs = factory.from_params({k: theirs[v] for k, v in NAMES[name].items()})
        table.rows[-1]["loglik_gain"] = fitted.log_likelihood_ - float(
            at_theirs.log_likelihood(rft).sum()
        )
        models[name] = at_theirs
        prefix = f"{name}."
        table.add(
            f"{name}: conditional_expected_number_of_purchases_up_to_time(39)",
            prefix + "conditional_expected_number_of_purchases_up_to_time",
            lambda m=at_theirs: m.expected_purchases(HORIZON, rft),
        )
        table.add(
            f"{name}: conditional_probability_alive",
            prefix + "conditional_probability_alive",
            lambda m=at_theirs: m.probability_alive(rft),
        )
        table.add(
            f"{name}: expected_number_of_purchases_up_to_time(1…78)",
            prefix + "expected_number_of_purchases_up_to_time",
            lambda m=at_theirs: m.expected_purchases_new_customer(AGES),
        )
        table.add(
            f"{name}: probability_of_n_purchases_up_to_time(39, 0…10)",
            prefix + "probability_of_n_purchases_up_to_time",
            lambda m=at_theirs: [
                m.probability_of_n_purchases_up_to_time(HORIZON, n) for n in range(N_MAX + 1)
            ],
        )
        if name == "pareto":
            table.add(
                f"{name}: conditional_probability_of_n_purchases_up_to_time(0…10, 39)",
                prefix + "conditional_probability_of_n_purchases_up_to_time",
                lambda m=at_theirs: np.concatenate(
                    [
                        m.probability_of_n_purchases(HORIZON, n, rft).to_numpy()
                        for n in range(N_MAX + 1)
                    ]
                ),
                repeat=1,
            )

    gg = GammaGammaModel()
    table.add(
        "gg: fit (params)",
        "gg.fit",
        lambda: gg.fit(spend),
        lambda value: [value[v] for v in NAMES["gg"].values()],
        lambda model: [model.params_[k] for k in NAMES["gg"]],
        repeat=1,
    )
    theirs_gg = side.get("gg.fit", {}).get("value")
    if theirs_gg is not None:
        gg_at = GammaGammaModel.from_params({k: theirs_gg[v] for k, v in NAMES["gg"].items()})
        table.rows[-1]["loglik_gain"] = gg.log_likelihood_ - float(
            gg_at.log_likelihood(spend).sum()
        )
        table.add(
            "gg: conditional_expected_average_profit",
            "gg.conditional_expected_average_profit",
            lambda: gg_at.expected_spend(spend_summary),
        )
        if "bgnbd" in models:
            table.add(
                "gg: customer_lifetime_value(BG/NBD, 12 months, 1 %/month, W)",
                "gg.customer_lifetime_value",
                lambda: customer_lifetime_value(
                    models["bgnbd"], gg_at, spend_summary, months=12, discount_rate=0.01, freq="W"
                ),
            )
    if "bgnbd" in models:
        table.add(
            'expected_cumulative_transactions(BG/NBD, t=78, freq="W")',
            "expected_cumulative_transactions[W]",
            lambda: expected_cumulative_transactions(
                models["bgnbd"], tx, periods=PERIODS, period="week", unit="W", resolution="week"
            ),
            lambda value: np.column_stack([value["actual"], value["predicted"]]),
            lambda frame: _columns(frame, ["actual", "predicted"]),
            repeat=1,
            note="actual and predicted cumulative repeat purchases",
        )

    donations = patterns()
    bgbb = table.add(
        "bgbb: fit (params, donations)",
        "bgbb.fit",
        lambda: BetaGeoBetaBinomModel().fit(donations, weights_col="count"),
        lambda value: [value[v] for v in NAMES["bgbb"].values()],
        lambda model: [model.params_[k] for k in NAMES["bgbb"]],
    )
    theirs_bgbb = side.get("bgbb.fit", {}).get("value")
    if theirs_bgbb is not None:
        at = BetaGeoBetaBinomModel.from_params(
            {k: theirs_bgbb[v] for k, v in NAMES["bgbb"].items()}
        )
        table.rows[-1]["loglik_gain"] = bgbb.log_likelihood_ - float(
            (at.log_likelihood(donations) * donations["count"]).sum()
        )
        table.add(
            "bgbb: conditional_expected_number_of_purchases_up_to_time(5)",
            "bgbb.conditional_expected_number_of_purchases_up_to_time",
            lambda: at.conditional_expected_purchases(5, donations),
        )
        for ahead, key in ((0, ""), (5, "[5]")):
            table.add(
                f"bgbb: conditional_probability_alive({ahead})",
                "bgbb.conditional_probability_alive" + key,
                lambda ahead=ahead: at.probability_alive(donations, periods_ahead=ahead),
            )
        customers = float(donations["count"].sum())
        table.add(
            "bgbb: expected_number_of_transactions_in_first_n_periods(6)",
            "bgbb.expected_number_of_transactions_in_first_n_periods",
            lambda: at.frequency_distribution_new_customer(6),
            ours=lambda frame: frame["probability"].to_numpy() * customers,
        )
    return {
        "rows": table.rows,
        "lifetimes_version": side.get("lifetimes_version"),
        "lifetimes_process_s": side_seconds,
        "winback_version": winback.__version__,
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def _format(row: dict[str, Any]) -> str:
    def g(value: Any, spec: str) -> str:
        return "—" if value is None else format(value, spec)

    parts = [
        row["function"],
        g(row.get("max_rel_diff"), ".2g"),
        g(row.get("speed_ratio"), ".3g"),
        g(row.get("winback_s"), ".3g"),
        g(row.get("lifetimes_s"), ".3g"),
    ]
    extra = {k: v for k, v in row.items() if k in ("loglik_gain", "note") and v}
    extra.update({k: v for k, v in row.items() if k.startswith(("monetary", "holdout"))})
    return (
        "| "
        + " | ".join(parts)
        + " | "
        + "; ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in extra.items()
        )
        + " |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = run(args.repeat)
    result["load_average_before"] = load_before
    print(
        f"lifetimes {result['lifetimes_version']}, winback {result['winback_version']}, "
        f"load {load_before[0]:.1f} → {result['load_average'][0]:.1f}"
    )
    print("| function | max rel. diff | speed ratio | winback s | lifetimes s | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for row in result["rows"]:
        print(_format(row))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
