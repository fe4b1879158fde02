"""Slow, obviously-correct oracles written straight from SPEC §2 (no shared code with winback)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

DAY_US = 86_400_000_000
GROUPS = "abcde"
BANDS = ("not_silent", "silent", "deep_silent")


def silence(
    rows: Iterable[tuple[Any, int, float | None]],
    *,
    as_of_us: int,
    resolution_us: int = DAY_US,
    min_occasions: int = 2,
    trf_cuts: tuple[float, ...] = (0.4, 0.6, 0.8, 0.95),
    s_cuts: tuple[float, ...] = (1.0, 2.0),
) -> dict[Any, dict[str, Any]]:
    """Per customer: the SPEC §2 figures. ``rows`` are (customer, ts in µs, amount or None)."""
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
