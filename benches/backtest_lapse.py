"""Out-of-time back-test of ``p_lapse`` on CDNOW master (docs/methods.md#p-lapse; issue 17).

For each origin o (a month end; default Jan, Feb and Mar 1998 — the last whose 90-day horizon is
inside the data) every side is fitted on what was known at o and predicts, for every customer
with a purchase by o, P(no purchase in (o, o + H]); the outcome is read from the data after o.

- **p_lapse (hgb)** — ``winback.LapseModel(model="hgb")`` fitted with ``as_of=o``: month-end
  snapshots whose horizon ends by o, the booster on the older ones, isotonic calibration on the
  latest ``calibration_snapshots``.
- **p_lapse (logistic)** — the same with ``model="logistic"``.
- **drift_snapshots=0 / 6** — the booster with the drift correction off / on a fixed six-snapshot
  window, beside the default ``"auto"`` (chosen by an out-of-time check; its choice and evidence
  are printed per origin; docs/methods.md#p-lapse-drift-auto).
- **TrF-group rate** — baseline (a): the lapse rate of each TrF group a–e (and of the
  ``single_purchase`` / ``below_min_occasions`` customers, who have no group) over the same
  training snapshots, applied to the customer's group at o.
- **BG/NBD** — baseline (b): BG/NBD fitted at o on (x, t_x, T) in days; P(no purchase in H) =
  (1 − P(alive)) + P(alive)·P(0 in H | alive) (``probability_of_n_purchases(H, 0)``).

Scores pooled over the origins: Brier, log loss, and reliability (mean predicted − observed
rate in each decile of the prediction; the target is |gap| ≤ 3 points in every decile). Then the
data-driven TrF cuts (``outcome_cuts`` on the training snapshots of the last origin) against the
fixed cuts, by η² of the outcome out of time.

    .venv/bin/python benches/backtest_lapse.py
    .venv/bin/python benches/backtest_lapse.py --origins 1998-03-31 --data /work/shared/data/CDNOW_sample.txt
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import numpy as np
import polars as pl

import winback
from winback.datasets import read_cdnow_text
from winback.lapse import LapseModel, lapse_snapshots, month_end_snapshots, outcome_cuts
from winback.models.beta_geo import BetaGeoModel

DATA = "/work/shared/data/CDNOW_master.txt"
ORIGINS = ("1998-01-31", "1998-02-28", "1998-03-31")
EPS = 1e-6


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def deciles(p: np.ndarray, y: np.ndarray) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, rows) per decile of p (ties kept together by a stable
    sort on p, then equal-count slices)."""
    order = np.argsort(p, kind="stable")
    return [
        (float(p[part].mean()), float(y[part].mean()), int(part.size))
        for part in np.array_split(order, 10)
    ]


def group_key(frame: pl.DataFrame) -> pl.Expr:
    return (
        pl.when(pl.col("status") == "scored")
        .then(pl.col("rank_ratio_group").cast(pl.String))
        .otherwise(pl.col("status").cast(pl.String))
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--origins", default=",".join(ORIGINS))
    parser.add_argument("--horizon", type=float, default=90.0)
    parser.add_argument("--calibration-snapshots", type=int, default=None)
    args = parser.parse_args()
    tx = read_cdnow_text(args.data)
    prepared = winback.prepare(tx)
    horizon = args.horizon
    origins = [date.fromisoformat(o) for o in args.origins.split(",")]
    kw = {}
    if args.calibration_snapshots is not None:
        kw["calibration_snapshots"] = args.calibration_snapshots
    print(f"load: {os.getloadavg()}  customers: {tx['customer_id'].n_unique():,}")
    variants: dict[str, dict[str, object]] = {
        "p_lapse (hgb)": {"model": "hgb"},  # the default: drift_snapshots="auto"
        "p_lapse (logistic)": {"model": "logistic"},
        "p_lapse (hgb, drift_snapshots=0)": {"model": "hgb", "drift_snapshots": 0},
        "p_lapse (hgb, drift_snapshots=6)": {"model": "hgb", "drift_snapshots": 6},
    }
    sides: dict[str, list[np.ndarray]] = {
        **{name: [] for name in variants},
        "TrF-group rate": [],
        "BG/NBD": [],
    }
    outcomes: list[np.ndarray] = []
    seconds: dict[str, float] = {k: 0.0 for k in sides}
    train_table = None
    for origin in origins:
        test = lapse_snapshots(prepared, as_of=[origin], horizon_days=horizon)
        y = test.get_column("lapsed").to_numpy().astype(np.float64)
        outcomes.append(y)
        for name, options in variants.items():
            start = time.perf_counter()
            model = LapseModel(horizon_days=horizon, **options, **kw)  # type: ignore[arg-type]
            scored = model.fit(prepared, as_of=origin).predict(prepared, as_of=origin)
            seconds[name] += time.perf_counter() - start
            if model.drift_evidence_ is not None:
                print(
                    f"{origin} {name}: drift_snapshots_={model.drift_snapshots_} "
                    f"drift_={model.drift_:.4f}\n{model.drift_evidence_}"
                )
            p = (
                test.select("customer_id")
                .join(scored, on="customer_id", how="left", maintain_order="left")
                .get_column("p_lapse")
                .to_numpy()
            )
            sides[name].append(p)
        # (a) the TrF group's lapse rate over the same training snapshots
        start = time.perf_counter()
        cutoff = winback._io.as_of_to_micros(origin, None)
        first = int(prepared.frame.get_column("ts").min())  # type: ignore[arg-type]
        train_cuts = month_end_snapshots(first, cutoff - round(horizon * 86_400e6), None)
        train = lapse_snapshots(
            prepared,
            as_of=[winback._io.micros_to_datetime(c) for c in train_cuts],
            horizon_days=horizon,
        )
        train_table = train
        rates = train.group_by(group_key(train).alias("g")).agg(pl.col("lapsed").mean().alias("r"))
        p = (
            test.select(group_key(test).alias("g"))
            .join(rates, on="g", how="left", maintain_order="left")
            .get_column("r")
            .fill_null(float(train.get_column("lapsed").mean()))  # type: ignore[arg-type]
            .to_numpy()
        )
        seconds["TrF-group rate"] += time.perf_counter() - start
        sides["TrF-group rate"].append(p)
        # (b) BG/NBD P(no purchase in H) from P(alive)
        start = time.perf_counter()
        rft = test.select(
            (pl.col("n_occasions") - 1).cast(pl.Float64).alias("frequency"),
            (pl.col("tenure_days") - pl.col("recency_days")).alias("recency"),
            pl.col("tenure_days").alias("T"),
        )
        bg = BetaGeoModel().fit(rft)
        p = bg.probability_of_n_purchases(horizon, 0, rft).to_numpy()
        seconds["BG/NBD"] += time.perf_counter() - start
        sides["BG/NBD"].append(p)
        print(
            f"origin {origin}: {y.size:,} customers, lapse rate {y.mean():.3f}; "
            + ", ".join(f"{name} Brier {brier(v[-1], y):.4f}" for name, v in sides.items())
        )
    y_all = np.concatenate(outcomes)
    print(
        f"\npooled over {len(origins)} origins: {y_all.size:,} customer-origins, "
        f"lapse rate {y_all.mean():.4f}\n"
    )
    print(
        "| side | Brier | log loss | max decile gap (pts) | deciles within ±3 pts | fit+predict s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, parts in sides.items():
        p = np.concatenate(parts)
        gaps = [abs(a - b) * 100 for a, b, _ in deciles(p, y_all)]
        within = sum(g <= 3 for g in gaps)
        print(
            f"| {name} | {brier(p, y_all):.4f} | {log_loss(p, y_all):.4f} | {max(gaps):.1f} | "
            f"{within}/10 | {seconds[name]:.1f} |"
        )
    print("\nreliability, p_lapse (hgb): decile | mean p | observed | rows")
    p = np.concatenate(sides["p_lapse (hgb)"])
    for i, (a, b, n) in enumerate(deciles(p, y_all), 1):
        print(f"| {i} | {a:.3f} | {b:.3f} | {n:,} |")
    # data-driven cuts on the last origin's training snapshots, judged out of time
    assert train_table is not None
    found = outcome_cuts(train_table)
    test = lapse_snapshots(prepared, as_of=[origins[-1]], horizon_days=horizon).filter(
        pl.col("status") == "scored"
    )
    from winback.lapse import _eta_squared

    x = test.get_column("rank_ratio").to_numpy()
    yy = test.get_column("lapsed").to_numpy().astype(np.float64)
    print(f"\noutcome cuts (train {found.rows:,} scored customer-snapshots): {found.cuts}")
    print(found.groups)
    print(
        f"η² in training: data-driven {found.separation:.4f}, fixed {found.separation_fixed:.4f}; "
        f"out of time ({origins[-1]}, {yy.size:,} scored): data-driven "
        f"{_eta_squared(x, yy, found.cuts):.4f}, fixed {_eta_squared(x, yy, found.fixed_cuts):.4f}"
    )
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
