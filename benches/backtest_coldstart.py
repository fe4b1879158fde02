"""Out-of-time back-test of the cold-start probabilities on CDNOW master (docs/methods.md#cold-start,
docs/methods.md#second-purchase; issue 17's target "AUC of P(second purchase within 90 days) for
one-purchase customers, against the population base rate; every one-purchase customer scored").

For each origin o the **one-purchase customers at o** (one occasion by o) are scored with what
was known at o only, and the outcome is read from the data after o: a second purchase in
(o, o + 90 d]. Two probabilities:

- **p_next_within** — ``winback.silence(tx, as_of=o, cold_start=True)``: the population's
  Kaplan–Meier time to the second purchase, conditioned on the customer's recency Tr
  (P(second within Tr + 90 | none by Tr)); a function of Tr only.
- **p_second_within** — ``winback.coldstart.second_purchase_model`` fitted at o: P(second within
  90 d of the first | the first purchase's amount, rows, weekday), trained on the customers
  whose first purchase is at least 90 days before o. It answers "within 90 days of the first",
  so it is judged here on the same customers with that outcome (second occasion ≤ t₁ + 90 d),
  for the one-purchase customers at o whose t₁ + 90 d lies after o (the label is not known at o).

Each is compared with the **base rate**: the constant share, among the one-purchase customers at
o − 90 d, who bought again in (o − 90 d, o] (known at o). Reported: customers scored (every
one-purchase customer must get a value), AUC (rank-sum, ties half; 0.5 = the base rate), Brier
against the base rate's Brier.

    .venv/bin/python benches/backtest_coldstart.py
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

import winback
from winback import _io
from winback.coldstart import second_purchase_model
from winback.datasets import read_cdnow_text

DATA = "/work/shared/data/CDNOW_master.txt"
ORIGINS = (
    "1997-02-28",
    "1997-03-31",
    "1997-04-30",
    "1997-05-31",
    "1997-06-30",
    "1997-09-30",
    "1997-12-31",
    "1998-03-31",
)
H = 90
DAY = timedelta(days=1)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula, ties counted half (independent of winback's)."""
    from scipy.stats import rankdata

    pos = int(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _occasion_days(tx: pl.DataFrame) -> pl.DataFrame:
    """One row per customer and purchase day."""
    return tx.select("customer_id", pl.col("ts").cast(pl.Date).alias("day")).unique()


def _one_purchase_at(days: pl.DataFrame, o: date) -> pl.DataFrame:
    known = days.filter(pl.col("day") <= o)
    counts = known.group_by("customer_id").agg(pl.len().alias("n"), pl.col("day").min())
    return counts.filter(pl.col("n") == 1).select("customer_id", pl.col("day").alias("t1"))


def _bought_in(days: pl.DataFrame, lo: date, hi: date) -> pl.DataFrame:
    """Customers with a purchase day in (lo, hi]."""
    return (
        days.filter((pl.col("day") > lo) & (pl.col("day") <= hi))
        .select("customer_id")
        .unique()
        .with_columns(pl.lit(True).alias("y"))
    )


def run(data: str = DATA, origins: tuple[str, ...] = ORIGINS) -> list[dict[str, object]]:
    """One row of figures per origin (printed as it is done)."""
    tx = read_cdnow_text(data)
    prepared = winback.prepare(tx)
    days = _occasion_days(tx)
    rows: list[dict[str, object]] = []
    for text in origins:
        o = date.fromisoformat(text)
        began = time.perf_counter()
        ones = _one_purchase_at(days, o)
        outcome = _bought_in(days, o, o + H * DAY)
        # base rate known at o: one-purchase customers at o − H who bought in (o − H, o]
        before = _one_purchase_at(days, o - H * DAY)
        base = (
            before.join(_bought_in(days, o - H * DAY, o), on="customer_id", how="left")
            .get_column("y")
            .fill_null(False)
            .mean()
        )
        scores = winback.silence(prepared, as_of=o, cold_start=True)
        judged = (
            ones.join(scores.select("customer_id", "p_next_within"), on="customer_id", how="left")
            .join(outcome, on="customer_id", how="left")
            .with_columns(pl.col("y").fill_null(False))
        )
        scored = int(judged.get_column("p_next_within").is_not_null().sum())
        y = judged.get_column("y").to_numpy()
        p = judged.get_column("p_next_within").fill_null(np.nan).to_numpy()
        base_p = float(base) if base is not None else float("nan")
        row = {
            "origin": text,
            "one_purchase": ones.height,
            "scored": scored,
            "rate": float(y.mean()),
            "base_rate": base_p,
            "auc_p_next": auc(y, p) if scored == ones.height else float("nan"),
            "brier_p_next": brier(p, y),
            "brier_base": brier(np.full(y.size, base_p), y),
        }
        # p_second_within: fitted at o, judged on the outcome "second within 90 d of the first"
        as_of_us = _io.as_of_to_micros(o, None)
        try:
            model = second_purchase_model(
                prepared, as_of_us=as_of_us, resolution_us=_io.MICROS_PER_DAY, horizon_days=H
            )
        except winback.WinbackFitError as exc:
            row |= {"auc_second": float("nan"), "note": str(exc)[:60]}
        else:
            pending = ones.filter(pl.col("t1") + H * DAY > o)
            second = (
                days.join(pending, on="customer_id")
                .filter((pl.col("day") > pl.col("t1")) & (pl.col("day") <= pl.col("t1") + H * DAY))
                .select("customer_id")
                .unique()
                .with_columns(pl.lit(True).alias("y2"))
            )
            judged2 = (
                pending.join(model.frame.select("customer_id", "p_second_within"), on="customer_id")
                .join(second, on="customer_id", how="left")
                .with_columns(pl.col("y2").fill_null(False))
            )
            y2 = judged2.get_column("y2").to_numpy()
            p2 = judged2.get_column("p_second_within").to_numpy()
            row |= {
                "pending": judged2.height,
                "rate2": float(y2.mean()) if y2.size else float("nan"),
                "train_base": model.base_rate,
                "auc_second": auc(y2, p2) if y2.size else float("nan"),
                "brier_second": brier(p2, y2) if y2.size else float("nan"),
                "brier_second_base": brier(np.full(y2.size, model.base_rate), y2)
                if y2.size
                else float("nan"),
                "oof_auc": model.auc,
            }
        row["seconds"] = time.perf_counter() - began
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--origins", default=",".join(ORIGINS))
    args = parser.parse_args(argv)
    rows = run(args.data, tuple(args.origins.split(",")))
    with pl.Config(tbl_cols=-1, tbl_width_chars=250, float_precision=4):
        print(pl.DataFrame(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
