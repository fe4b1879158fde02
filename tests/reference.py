"""Slow, obviously-correct oracles written straight from docs/methods.md#silence, #summary (no
shared code with winback)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import reduce
from itertools import pairwise
from typing import Any

DAY_US = 86_400_000_000
GROUPS = "abcde"
BANDS = ("not_silent", "silent", "deep_silent")
EPOCH = datetime(1970, 1, 1)


def silence(
    rows: Iterable[tuple[Any, int, float | None]],
    *,
    as_of_us: int,
    resolution_us: int = DAY_US,
    min_occasions: int = 2,
    trf_cuts: tuple[float, ...] = (0.4, 0.6, 0.8, 0.95),
    s_cuts: tuple[float, ...] = (1.0, 2.0),
) -> dict[Any, dict[str, Any]]:
    """Per customer: the docs/methods.md#silence figures. ``rows`` are (customer, ts in µs, amount
    or None)."""
    occasions: dict[Any, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for customer, ts, amount in rows:
        if ts > as_of_us:
            continue
        bucket = (ts // resolution_us) * resolution_us
        occasions[customer][bucket].append(0.0 if amount is None else amount)
    as_of_bucket = (as_of_us // resolution_us) * resolution_us
    out: dict[Any, dict[str, Any]] = {}
    for customer, by_bucket in occasions.items():
        times = sorted(by_bucket)
        n = len(times)
        amounts = [math.fsum(by_bucket[t]) for t in times]
        recency = (as_of_bucket - times[-1]) / DAY_US
        row: dict[str, Any] = {
            "n_occasions": n,
            "first_us": times[0],
            "last_us": times[-1],
            "tenure_days": (as_of_bucket - times[0]) / DAY_US,
            "recency_days": recency,
            "total_amount": math.fsum(amounts),
            "mean_amount": math.fsum(amounts) / n,
            "status": "scored",
        }
        gaps = [(b - a) / DAY_US for a, b in pairwise(times)]
        if n == 1:
            row["status"] = "single_purchase"
        elif n < min_occasions:
            row["status"] = "below_min_occasions"
        if row["status"] != "scored":
            row.update(
                max_gap_days=None,
                mean_gap_days=None,
                median_gap_days=None,
                recency_rank=None,
                rank_ratio=None,
                silence_score=None,
                rank_ratio_group=None,
                silence_band=None,
            )
        else:
            rank = sum(1 for v in [*gaps, recency] if v <= recency)
            trf = rank / n
            s = recency / max(gaps)
            row.update(
                max_gap_days=max(gaps),
                mean_gap_days=statistics.fmean(gaps),
                median_gap_days=statistics.median(gaps),
                recency_rank=rank,
                rank_ratio=trf,
                silence_score=s,
                rank_ratio_group=GROUPS[sum(1 for c in trf_cuts if trf >= c)],
                silence_band=BANDS[sum(1 for c in s_cuts if s >= c)],
            )
        out[customer] = row
    return out


def _period_index(us: int, period: str, anchor_day: date) -> int:
    """Index of the period holding local wall-clock µs ``us`` (docs/methods.md#periods)."""
    moment = EPOCH + timedelta(microseconds=us)
    if period == "month":
        return moment.year * 12 + moment.month - 1
    if period == "quarter":
        return moment.year * 4 + (moment.month - 1) // 3
    if period == "week":  # ISO weeks: date(1, 1, 1) is a Monday
        return (moment.date().toordinal() - 1) // 7
    days = int(period.removesuffix("d"))
    return (moment.date() - anchor_day).days // days


def _ascending_sum(values: list[float]) -> float:
    """Sum in ascending order, from the first value: the canonical order docs/methods.md#determinism
    fixes for the amounts of one occasion, so results compare bit for bit."""
    ordered = sorted(values)
    return reduce(lambda a, b: a + b, ordered[1:], ordered[0])


def _positive_mean(amounts: Iterable[float]) -> tuple[float, int]:
    total, count = 0.0, 0
    for amount in amounts:
        if amount > 0:
            total, count = total + amount, count + 1
    return (total / count if count else 0.0), count


def summary(
    rows: Iterable[tuple[Any, int, float | None]],
    *,
    calibration_end_us: int,
    max_time_us: int,
    resolution_us: int = DAY_US,
    unit_us: int = 7 * DAY_US,
    period: str = "month",
) -> tuple[dict[Any, dict[str, Any]], int]:
    """Per customer born by the calibration end: the docs/methods.md#summary statistics; and the
    number of customers born after it. ``rows`` are (customer, ts in µs, amount or None).

    Calibration and holdout are two separate snapshots: rows at or before the calibration end,
    and rows after it up to ``max_time_us``, each bucketed into occasions on its own. Periods are
    calendar months, quarters, ISO weeks, or ``"Nd"`` from midnight of the day of the first
    occasion of the data; a period counts when it ends by the calibration end (+1 µs).
    """
    calibration: dict[Any, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    holdout: dict[Any, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for customer, ts, amount in rows:
        if ts > max_time_us:
            continue
        bucket = (ts // resolution_us) * resolution_us
        side = calibration if ts <= calibration_end_us else holdout
        side[customer][bucket].append(0.0 if amount is None else amount)
    firsts = [min(b) for side in (calibration, holdout) for b in side.values()]
    anchor = (EPOCH + timedelta(microseconds=min(firsts, default=0))).date()

    def index(us: int) -> int:
        return _period_index(us, period, anchor)

    last_complete = index(calibration_end_us + 1) - 1
    cal_bucket = (calibration_end_us // resolution_us) * resolution_us
    out: dict[Any, dict[str, Any]] = {}
    for customer, by_bucket in calibration.items():
        times = sorted(by_bucket)
        amounts = [_ascending_sum(by_bucket[t]) for t in times]
        held = holdout.get(customer, {})
        birth = index(times[0])
        monetary, spend_frequency = _positive_mean(amounts[1:])
        out[customer] = {
            "frequency": len(times) - 1,
            "recency": (times[-1] - times[0]) / unit_us,
            "T": (cal_bucket - times[0]) / unit_us,
            "monetary_value": monetary,
            "spend_frequency": spend_frequency,
            "first_amount": amounts[0],
            "n_periods": max(0, last_complete - birth),
            "period_frequency": sum(1 for t in times if birth < index(t) <= last_complete),
            "frequency_holdout": len(held),
            "monetary_value_holdout": _positive_mean(
                _ascending_sum(v) for _, v in sorted(held.items())
            )[0],
        }
    born_after = sum(1 for customer in holdout if customer not in calibration)
    return out, born_after
