"""Benchmark: winback's summary and model fits against lifetimes, side by side in one run.

For each size, the project's generator (gen_data.py, 6.3 rows per customer) makes a transaction log;
winback computes the summary (`winback.summary`, unit days) and fits BG/NBD, MBG/NBD, Pareto/NBD,
Gamma–Gamma and the period NBD; lifetimes (in its own environment, `.venv-bench`, made by
`make bench-env`) computes its summary and fits the same models on the same log. The script
reports times, ratios and the largest relative parameter difference. CDNOW (the literature's
2,357-customer summary from ../shared/data) is fitted by both as well.

    .venv/bin/python benches/bench_models.py --size S            # 1M customers
    .venv/bin/python benches/bench_models.py --size L --skip-lifetimes-models pareto
    .venv/bin/python benches/bench_models.py --size tiny         # CI smoke (no lifetimes needed)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import generate, window

import winback
from winback.errors import WinbackFitError
from winback.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    NBDModel,
    ParetoNBDModel,
)

SIZES = {"tiny": 20_000, "S": 1_000_000, "L": 10_000_000}
ROWS_PER_CUSTOMER = 6.3
#: Heterogeneous dropout rates (Pareto/NBD's assumption), so every model has an interior optimum.
DROPOUT_SHAPE = 2.0
ROOT = Path(__file__).resolve().parents[1]
LIFETIMES_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
CDNOW_SUMMARY = ROOT.parent / "shared" / "data" / "cdnow_customers_summary.csv"
#: lifetimes' parameter names for each winback model.
LIFETIMES_NAMES = {
    "bgnbd": {"r": "r", "alpha": "alpha", "a": "a", "b": "b"},
    "mbgnbd": {"r": "r", "alpha": "alpha", "a": "a", "b": "b"},
    "pareto": {"r": "r", "alpha": "alpha", "s": "s", "beta": "beta"},
    "gg": {"p": "p", "q": "q", "gamma": "v"},
}
COUNT_MODELS: dict[str, Callable[[], Any]] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pareto": ParetoNBDModel,
}


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


#: Fits under a second are timed this many times (a fresh model each time; longer ones 3 times);
#: the median is reported, since a single run of ~0.1 s varies by ±20% on a shared two-core
#: machine.
REPEATS = 5


def _fit(model: Any, fit: Callable[[], Any]) -> dict[str, Any]:
    try:
        _, seconds = _timed(fit)
        runs = [seconds]
        # On a shared machine a single fit can take several times its median (another job's
        # burst): fits over a second are timed 3 times, shorter ones REPEATS times.
        runs += [_timed(fit)[1] for _ in range((REPEATS if seconds < 1.0 else 3) - 1)]
    except WinbackFitError as exc:
        return {"error": str(exc)}
    return {
        "seconds": statistics.median(runs),
        "seconds_min": min(runs),
        "runs": len(runs),
        "seconds_first": runs[0],
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "n_unique": model.data_summary_.get("n_unique"),
    }


def _winback_fits(summary: pl.DataFrame, models: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, factory in COUNT_MODELS.items():
        if name in models:
            model = factory()
            out[name] = _fit(model, lambda model=model: model.fit(summary))
    if "gg" in models and "spend_frequency" in summary.columns:
        model = GammaGammaModel()
        out["gg"] = _fit(model, lambda: model.fit(summary))
    if "nbd" in models and "n_periods" in summary.columns:
        model = NBDModel()
        out["nbd"] = _fit(model, lambda: model.fit(summary))
    return out


def warm_up() -> float:
    """Fits every model once on small simulated data, so the timings below measure fitting, not
    Numba loading its compiled kernels from the on-disk cache (or compiling them on a first run)."""
    from winback.models import simulate

    start = time.perf_counter()
    rft = simulate.pareto_nbd(2_000, r=0.5, alpha=5.0, s=0.8, beta=10.0, T=30.0, seed=1)
    for factory in COUNT_MODELS.values():
        factory().fit(rft)
    GammaGammaModel().fit(
        simulate.gamma_gamma(2_000, p=5.0, q=4.0, gamma=20.0, frequency=3, seed=1)
    )
    NBDModel().fit(simulate.nbd_periods(2_000, r=0.5, alpha=2.0, periods=12, seed=1))
    ModifiedBetaGeoCNBDModel().fit(
        simulate.mbgcnbd(2_000, k=2, r=2.0, alpha=6.0, a=0.5, b=3.0, T=52.0, seed=1)
    )
    return time.perf_counter() - start


def _lifetimes(args: list[str]) -> dict[str, Any] | None:
    if not LIFETIMES_PYTHON.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "side.json"
        subprocess.run(
            [
                str(LIFETIMES_PYTHON),
                str(Path(__file__).with_name("lifetimes_side.py")),
                *args,
                "--out",
                str(out),
            ],
            check=True,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _max_rel_diff(ours: dict[str, float], theirs: dict[str, float], names: dict[str, str]) -> float:
    return max(abs(ours[k] / theirs[v] - 1.0) for k, v in names.items())


def _loglik_at(name: str, summary: pl.DataFrame, params: dict[str, float]) -> float:
    """winback's log-likelihood of ``summary`` at another tool's estimates (same data, same
    likelihood), so differing parameters can be judged by which fits better."""
    from winback._kernels import likelihood as lik

    names = LIFETIMES_NAMES[name]
    values = np.array([params[names[k]] for k in names])
    if name == "gg":
        spend = summary.filter(pl.col("spend_frequency") > 0)
        x = spend["spend_frequency"].cast(pl.Float64).to_numpy()
        return float(
            lik.gamma_gamma_loglik(values, x, spend["monetary_value"].to_numpy(), np.ones_like(x))
        )
    x, t_x, T = (summary[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T"))
    function = {
        "bgnbd": lik.bgnbd_loglik,
        "mbgnbd": lik.mbgnbd_loglik,
        "pareto": lik.pareto_nbd_loglik,
    }[name]
    return float(function(values, x, t_x, T, np.ones_like(x)))


def _compare(
    winback_fits: dict[str, Any], lifetimes: dict[str, Any] | None, summary: pl.DataFrame
) -> list[dict[str, Any]]:
    rows = []
    for name, ours in winback_fits.items():
        row: dict[str, Any] = {
            "model": name,
            "winback_s": ours.get("seconds"),
            "winback_error": ours.get("error"),
        }
        theirs = (lifetimes or {}).get(name)
        if theirs is not None:
            row["lifetimes_s"] = theirs.get("seconds")
            row["lifetimes_error"] = theirs.get("error")
            if "params" in theirs and "params" in ours:
                row["max_rel_param_diff"] = _max_rel_diff(
                    ours["params"], theirs["params"], LIFETIMES_NAMES[name]
                )
                row["loglik_gain_vs_lifetimes"] = ours["log_likelihood"] - _loglik_at(
                    name, summary, theirs["params"]
                )
            if row.get("winback_s") and row.get("lifetimes_s") and not row["lifetimes_error"]:
                row["speedup"] = row["lifetimes_s"] / row["winback_s"]
        rows.append(row)
    return rows


def run_cdnow(models: set[str]) -> dict[str, Any] | None:
    if not CDNOW_SUMMARY.exists():
        return None
    summary = pl.read_csv(CDNOW_SUMMARY)
    fits = _winback_fits(summary, models - {"gg", "nbd"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cdnow.parquet"
        summary.write_parquet(path)
        side = _lifetimes(
            [str(path), "--rft", "--models", ",".join(sorted(models - {"gg", "nbd"}))]
        )
    return {"fits": fits, "lifetimes": side, "comparison": _compare(fits, side, summary)}


def run(size: str, *, models: set[str], lifetimes_models: set[str]) -> dict[str, Any]:
    n = SIZES[size]
    data, gen_seconds = _timed(
        lambda: generate(
            n, seed=0, rows_per_customer=ROWS_PER_CUSTOMER, dropout_shape=DROPOUT_SHAPE
        )
    )
    _, end = window()
    summary, summary_seconds = _timed(lambda: winback.summary(data, as_of=end, unit="D"))
    fits = _winback_fits(summary, models)
    if "mbgcnbd" in models:
        # MBG/CNBD-k with the k search needs the summary's litt column (an extra pass). No
        # Python library fits it (BTYDplus in R does); MBG/NBD above is the reference.
        with_litt, litt_summary_s = _timed(
            lambda: winback.summary(data, as_of=end, unit="D", litt=True)
        )
        cnbd = ModifiedBetaGeoCNBDModel()
        fits["mbgcnbd"] = _fit(cnbd, lambda: cnbd.fit(with_litt))
        fits["mbgcnbd"]["summary_with_litt_s"] = litt_summary_s
        fits["mbgcnbd"]["k"] = cnbd.k_
        fits["mbgcnbd"]["k_log_likelihoods"] = cnbd.k_log_likelihoods_
    side = None
    if lifetimes_models and LIFETIMES_PYTHON.exists():
        with tempfile.TemporaryDirectory() as tmp:
            tx_path, summary_path = Path(tmp) / "tx.parquet", Path(tmp) / "summary.parquet"
            data.write_parquet(tx_path)
            summary.write_parquet(summary_path)
            side = _lifetimes(
                [
                    str(tx_path),
                    "--end",
                    end.date().isoformat(),
                    "--summary",
                    str(summary_path),
                    "--models",
                    ",".join(sorted(lifetimes_models)),
                ]
            )
    comparison = _compare(fits, side, summary)
    result = {
        "size": size,
        "customers": summary.height,
        "rows": data.height,
        "generate_s": gen_seconds,
        "winback_summary_s": summary_seconds,
        "lifetimes_summary_s": (side or {}).get("summary", {}).get("seconds"),
        "fits": fits,
        "lifetimes": side,
        "comparison": comparison,
    }
    bg = fits.get("bgnbd", {})
    if side and "seconds" in bg and "bgnbd" in side and "seconds" in side["bgnbd"]:
        ours = summary_seconds + bg["seconds"]
        theirs = side["summary"]["seconds"] + side["bgnbd"]["seconds"]
        result["end_to_end_bgnbd"] = {
            "winback_s": ours,
            "lifetimes_s": theirs,
            "speedup": theirs / ours,
        }
    return result


def run_cnbd_regular(n: int) -> dict[str, Any]:
    """MBG/CNBD-k with the k search on n customers simulated with k = 3 (continuous times: every
    tuple distinct, the hardest case for the compression; k = 1 runs to a boundary)."""
    from winback.models import simulate

    data = simulate.mbgcnbd(n, k=3, r=3.0, alpha=30.0, a=0.5, b=3.0, T=104.0, seed=5)
    model = ModifiedBetaGeoCNBDModel()
    fit = _fit(model, lambda: model.fit(data))
    fit["k"] = model.k_
    fit["k_log_likelihoods"] = model.k_log_likelihoods_
    return fit


def _print(result: dict[str, Any], title: str) -> None:
    print(f"\n== {title}")
    for key in (
        "customers",
        "rows",
        "winback_summary_s",
        "lifetimes_summary_s",
        "end_to_end_bgnbd",
    ):
        if result.get(key) is not None:
            print(f"  {key}: {result[key]}")
    for row in result["comparison"]:
        shown = {
            k: (f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in row.items()
            if v is not None
        }
        print("  ", shown)
    for name, fit in result["fits"].items():
        if "seconds" in fit:
            print(
                f"   {name}: median {fit['seconds']:.3f} s, min {fit['seconds_min']:.3f} s, "
                f"first {fit['seconds_first']:.3f} s ({fit['runs']} fits)"
            )
        if "params" in fit:
            print(
                f"   winback {name}: " + ", ".join(f"{k}={v:.6g}" for k, v in fit["params"].items())
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--models", default="bgnbd,mbgnbd,pareto,gg,nbd")
    parser.add_argument(
        "--skip-lifetimes-models", default="", help="comma list not to run in lifetimes"
    )
    parser.add_argument("--no-cdnow", action="store_true")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    models = set(args.models.split(","))
    lifetimes_models = (models & {"bgnbd", "mbgnbd", "pareto", "gg"}) - set(
        args.skip_lifetimes_models.split(",")
    )
    if not LIFETIMES_PYTHON.exists():
        print(f"note: {LIFETIMES_PYTHON} not found (make bench-env); running winback only")
    report: dict[str, Any] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": winback._winback.effective_threads(),
        "winback_version": winback.__version__,
    }
    report["load_average_before"] = os.getloadavg()
    report["warm_up_s"] = warm_up()
    print(
        f"warm-up (Numba kernels loaded or compiled once per process): {report['warm_up_s']:.2f} s"
    )
    if not args.no_cdnow:
        cdnow = run_cdnow(models - {"mbgcnbd"})
        if cdnow is not None:
            report["cdnow"] = cdnow
            _print({**cdnow}, "CDNOW (2,357 customers, weeks)")
    if "mbgcnbd" in models:
        regular = run_cnbd_regular(SIZES[args.size])
        report["cnbd_regular"] = regular
        print(f"\n== MBG/CNBD-k, k search, simulated k = 3, {SIZES[args.size]:,} customers")
        print(f"   {regular}")
    result = run(args.size, models=models, lifetimes_models=lifetimes_models)
    report["synthetic"] = result
    report["load_average_after"] = os.getloadavg()
    _print(result, f"synthetic {args.size}")
    print(
        "load average (1, 5, 15 min) before: {:.1f} {:.1f} {:.1f}, after: {:.1f} {:.1f} {:.1f}".format(
            *report["load_average_before"], *report["load_average_after"]
        )
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
