"""Issue 13: can a regularised GLM stacker, a forecast combination or a different spend side beat
the periodic BG/NBD × Gamma–Gamma on CDNOW's next month and next 3 months?

Research bench, not a product path: every candidate reads the features the product's stacked
forecast builds (`winback.value.stacked.cutoff_features` + `with_model_features`, the periodic
BG/NBD and the Gamma–Gamma fitted on the periods before each cut-off;
docs/methods.md#stacked-forecast) on CDNOW master's monthly panel, and is fitted on the stacked
cut-offs before the forecast origin only (rolling origin, as `forecast="stacked"` does). Origins
and metrics are those of `backtest_value.py` (month ends 1997-09-30 … 1998-05-31 for the next
month, … 1998-03-31 for the next 3; `winback.backtest`'s top-decile capture and Spearman), and
the `model` row reproduces `dropout_gg`'s figures there (pooled −4.5 %, mean |error| 13.4 %,
RMSE 18.09, top decile 58.3 %; 3M 9.5 %, 36.49, 56.3 %).

Candidates (1M):

- ``model`` — the periodic BG/NBD's E[occasions] × Gamma–Gamma E[M′] (`dropout_gg`);
- ``scale`` — ``model`` × (training actual / training ``model``): a level correction;
- ``nnls`` — non-negative least squares of the training actual on (``model``, last month's
  revenue, last 3 months' revenue): a forecast combination;
- ``glm`` — scikit-learn's ``PoissonRegressor`` (log link, L2 ``alpha``, Newton–Cholesky) on
  16 standardised features: log ``model``, log P(alive), log E[M′], log E[occasions], log1p of
  last month's / last 3 months' / per-active-period revenue, recency, tenure, active periods,
  X, longest gap, gap regularity, and whether the last month / last 3 months had revenue;
- ``two_part`` — logistic P(active) × Gamma GLM E[revenue | active] on the same features;
- ``glm_avg`` — the mean of ``glm`` and ``model`` (a two-member combination);
- ``trees`` — scikit-learn's Poisson gradient-boosted trees on the same features, more
  regularised than `forecast="stacked"` (7 leaves, ≥ 1,000 customers a leaf, rate 0.05).

The spend side (c): top-decile capture of E[occasions] × each spend variant.

The calendar: the per-origin totals, and the smallest mean |total error| any constant rescaling
of ``model``'s totals could reach (the scale chosen with hindsight): if that is above 10 %, no
level correction can meet the mean-monthly-error target; only a month-of-year effect can.

    .venv/bin/python benches/backtest_stack_glm.py            # ≈ 3 min CPU
"""

from __future__ import annotations

import importlib
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import nnls

import winback
from winback.backtest import spearman, top_share_capture
from winback.datasets import read_cdnow_text
from winback.value.dropout import PeriodicBGNBD
from winback.value.stacked import cutoff_features, with_model_features

ROOT = Path(__file__).resolve().parents[1]
CDNOW_MASTER = ROOT.parent / "shared" / "data" / "CDNOW_master.txt"
#: Period 0 is January 1997; period c is forecast from the origin at the end of period c − 1.
FIRST_TARGET, LAST_TARGET = 9, 17  # October 1997 … June 1998: origins 1997-09-30 … 1998-05-31
LAST_TARGET_3M = 15  # April–June 1998: origins up to 1998-03-31
TRAIN_CUTOFFS = 6  # as the stacked forecast (STACK_ORIGINS), each with ≥ 3 periods before it
MIN_HISTORY = 3
EPS = 1e-3


def monthly_panel() -> tuple[pl.DataFrame, list[int]]:
    """CDNOW master's customer × month panel, exactly as `winback.value` builds it (taken from
    the call), and the month of year of each period."""
    tx = read_cdnow_text(CDNOW_MASTER).select("customer_id", "ts", "amount")
    headline = importlib.import_module("winback.value.headline")
    captured: dict[str, Any] = {}
    original = headline.add_headline

    def capture(result: Any, panel: Any, n_complete: int, forecast: str, months: Any = None) -> Any:
        captured["panel"], captured["months"] = panel, months
        return original(result, panel, n_complete, "nbd", months)

    headline.add_headline = capture
    try:
        winback.value(
            tx, as_of=datetime.combine(date(1998, 6, 30), datetime.max.time()), forecast="dropout"
        )
    finally:
        headline.add_headline = original
    return captured["panel"], captured["months"]


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame.get_column(name).cast(pl.Float64).to_numpy()


def design(frame: pl.DataFrame, amount: str = "model_expected_amount") -> np.ndarray:
    """The GLM's 16 features (before standardising)."""

    def log(name: str) -> np.ndarray:
        return np.log(_col(frame, name) + EPS)

    def log1p(name: str) -> np.ndarray:
        return np.log1p(np.maximum(_col(frame, name), 0.0))

    return np.column_stack(
        [
            log(amount),
            log("model_p_alive"),
            log("model_mean_spend"),
            log("model_expected_count"),
            *(
                log1p(n)
                for n in (
                    "last_revenue",
                    "revenue_last3",
                    "revenue_per_active_period",
                    "recency",
                    "n_periods",
                    "active_periods",
                    "period_frequency",
                    "longest_gap",
                )
            ),
            _col(frame, "gap_regularity"),
            (_col(frame, "last_revenue") > 0).astype(float),
            (_col(frame, "revenue_last3") > 0).astype(float),
        ]
    )


def _glm(train: pl.DataFrame, target: pl.DataFrame, y: np.ndarray, amount: str) -> np.ndarray:
    from sklearn.linear_model import PoissonRegressor
    from sklearn.preprocessing import StandardScaler

    X, Xt = design(train, amount), design(target, amount)
    scaler = StandardScaler().fit(X)
    model = PoissonRegressor(alpha=1e-4, solver="newton-cholesky", max_iter=1000)
    model.fit(scaler.transform(X), y)
    return np.asarray(model.predict(scaler.transform(Xt)))


def _two_part(train: pl.DataFrame, target: pl.DataFrame, y: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import GammaRegressor, LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, Xt = design(train), design(target)
    scaler = StandardScaler().fit(X)
    Xs, Xts = scaler.transform(X), scaler.transform(Xt)
    active = (_col(train, "actual_occasions") > 0).astype(int)
    logistic = LogisticRegression(C=1e4, max_iter=1000).fit(Xs, active)
    spent = (active == 1) & (y > 0)
    gamma = GammaRegressor(alpha=1e-4, solver="newton-cholesky", max_iter=1000)
    gamma.fit(Xs[spent], y[spent])
    return np.asarray(logistic.predict_proba(Xts)[:, 1] * gamma.predict(Xts))


def _trees(train: pl.DataFrame, target: pl.DataFrame, y: np.ndarray) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.05,
        max_iter=100,
        max_leaf_nodes=7,
        min_samples_leaf=1000,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=0,
    ).fit(design(train), y)
    return np.asarray(model.predict(design(target)))


def forecasts_1m(train: pl.DataFrame, target: pl.DataFrame) -> dict[str, np.ndarray]:
    y = _col(train, "actual_revenue")
    model = _col(target, "model_expected_amount")
    members = ["model_expected_amount", "last_revenue", "revenue_last3"]
    weights, _ = nnls(train.select(members).to_numpy().astype(float), y)
    glm = _glm(train, target, y, "model_expected_amount")
    return {
        "model": model,
        "scale": model * y.sum() / _col(train, "model_expected_amount").sum(),
        "nnls": target.select(members).to_numpy().astype(float) @ weights,
        "glm": glm,
        "two_part": _two_part(train, target, y),
        "glm_avg": (glm + model) / 2,
        "trees": _trees(train, target, y),
    }


def _score(forecast: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    return {
        "forecast": float(forecast.sum()),
        "actual": float(actual.sum()),
        "error": float(forecast.sum() / actual.sum() - 1),
        "rmse": float(np.sqrt(((forecast - actual) ** 2).mean())),
        "top": float(top_share_capture(forecast, actual) or 0.0),
        "spearman": float(spearman(forecast, actual) or 0.0),
    }


def _summary(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return (
        pl.DataFrame(rows)
        .group_by("method", maintain_order=True)
        .agg(
            (pl.col("forecast").sum() / pl.col("actual").sum() - 1).alias("pooled"),
            pl.col("error").abs().mean().alias("mean_abs"),
            pl.col("rmse").mean(),
            pl.col("spearman").mean(),
            pl.col("top").mean(),
        )
    )


def best_constant_scale(ratios: np.ndarray) -> tuple[float, float]:
    """The scale s minimising mean |s·r − 1| over the per-origin forecast/actual ratios r (a
    weighted median of 1/r, checked at every candidate), and that minimum."""
    candidates = 1.0 / ratios
    losses = [float(np.abs(s * ratios - 1).mean()) for s in candidates]
    best = int(np.argmin(losses))
    return float(candidates[best]), losses[best]


def main() -> int:
    began = time.process_time()
    panel, months = monthly_panel()
    features = {
        c: with_model_features(cutoff_features(panel, c))
        for c in range(MIN_HISTORY, LAST_TARGET + 1)
    }
    rows: list[dict[str, Any]] = []
    spend_rows: list[dict[str, Any]] = []
    for c in range(FIRST_TARGET, LAST_TARGET + 1):
        cuts = [k for k in range(c - TRAIN_CUTOFFS, c) if k >= MIN_HISTORY]
        train = pl.concat([features[k] for k in cuts], how="vertical_relaxed")
        target = features[c]
        actual = _col(target, "actual_revenue")
        for method, forecast in forecasts_1m(train, target).items():
            rows.append({"target": c, "method": method, **_score(forecast, actual)})
        count = _col(target, "model_expected_count")
        monetary = _col(target, "monetary_value")
        gg = _col(target, "model_mean_spend")
        spends = {
            "Gamma–Gamma E[M′] (the model)": gg,
            "revenue per active period": _col(target, "revenue_per_active_period"),
            "mean repeat spend (GG where none)": np.where(monetary > 0, monetary, gg),
            "√(E[M′] · revenue per active period)": np.sqrt(
                gg * _col(target, "revenue_per_active_period")
            ),
            "E[M′] + last-3-month revenue / 3": gg + _col(target, "revenue_last3") / 3,
            "1 (count alone)": np.ones_like(gg),
        }
        for name, spend in spends.items():
            spend_rows.append({"target": c, "method": name, **_score(count * spend + 0.0, actual)})
    # Next 3 months: 3-period targets, training cut-offs whose 3 periods end before the origin.
    features3 = {}
    for c in range(MIN_HISTORY, LAST_TARGET_3M + 1):
        frame = features[c]
        three = (
            panel.filter(pl.col("period").is_between(c, c + 2))
            .group_by("customer_id")
            .agg(pl.col("revenue").sum().alias("actual3"))
        )
        frame = frame.join(three, on="customer_id", how="left", maintain_order="left")
        fitted = PeriodicBGNBD().fit(frame)
        features3[c] = frame.with_columns(
            pl.col("actual3").fill_null(0.0),
            model_amount3=pl.Series(fitted.expected_count(3, frame)) * pl.col("model_mean_spend"),
        )
    rows3: list[dict[str, Any]] = []
    for c in range(FIRST_TARGET, LAST_TARGET_3M + 1):
        cuts = [k for k in range(c - 2 - TRAIN_CUTOFFS, c - 2) if k >= MIN_HISTORY]
        train = pl.concat([features3[k] for k in cuts], how="vertical_relaxed")
        target = features3[c]
        actual = _col(target, "actual3")
        model = _col(target, "model_amount3")
        glm = _glm(train, target, _col(train, "actual3"), "model_amount3")
        for method, forecast in (("model", model), ("glm", glm), ("glm_avg", (glm + model) / 2)):
            rows3.append({"target": c, "method": method, **_score(forecast, actual)})
    seconds = time.process_time() - began

    print("Next month, 9 origins (1997-09-30 … 1998-05-31)\n")
    print(
        "| forecast | pooled total error | mean \\|total error\\| | RMSE | Spearman | top decile |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for s in _summary(rows).iter_rows(named=True):
        print(
            f"| {s['method']} | {s['pooled']:+.1%} | {s['mean_abs']:.1%} | {s['rmse']:.2f} "
            f"| {s['spearman']:.3f} | {s['top']:.1%} |"
        )
    print("\nNext 3 months, 7 origins (1997-09-30 … 1998-03-31)\n")
    print(
        "| forecast | pooled total error | mean \\|total error\\| | RMSE | Spearman | top decile |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for s in _summary(rows3).iter_rows(named=True):
        print(
            f"| {s['method']} | {s['pooled']:+.1%} | {s['mean_abs']:.1%} | {s['rmse']:.2f} "
            f"| {s['spearman']:.3f} | {s['top']:.1%} |"
        )
    print("\nThe spend side: E[occasions] × spend, next month\n")
    print("| spend | top decile | Spearman |")
    print("|---|---:|---:|")
    for s in _summary(spend_rows).iter_rows(named=True):
        print(f"| {s['method']} | {s['top']:.1%} | {s['spearman']:.3f} |")
    frame = pl.DataFrame(rows)
    methods = list(dict.fromkeys(frame.get_column("method")))
    print("\nPer origin, next month: actual total and each forecast's total error\n")
    print("| target month | actual | " + " | ".join(methods) + " |")
    print("|---|---:|" + "---:|" * len(methods))
    for c in range(FIRST_TARGET, LAST_TARGET + 1):
        part = frame.filter(pl.col("target") == c)
        errors = dict(zip(part.get_column("method"), part.get_column("error"), strict=True))
        year = 1997 + c // 12
        print(
            f"| {year}-{months[c]:02d} | {part.get_column('actual')[0]:,.0f} | "
            + " | ".join(f"{errors[m]:+.1%}" for m in methods)
            + " |"
        )
    for method in ("model", "glm", "scale"):
        part = frame.filter(pl.col("method") == method)
        ratios = (part.get_column("forecast") / part.get_column("actual")).to_numpy()
        scale, loss = best_constant_scale(ratios)
        print(
            f"\n{method}: the best constant rescaling with hindsight (× {scale:.3f}) reaches a "
            f"mean |total error| of {loss:.1%}"
        )
    print(f"\n{seconds:.0f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
