"""Simulated responses for trying the loop (docs/loop.md#evaluation): purchases of a campaign's
targets after its start, with a known extra probability for the treated arm — the planted uplift
an evaluation should recover.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl

from winback.errors import WinbackConfigError

__all__ = ["simulate_responses"]


def simulate_responses(
    targets: pl.DataFrame,
    *,
    start: date,
    window_days: int,
    base_rate: float,
    uplift: float,
    amount: float = 50.0,
    seed: int = 0,
) -> pl.DataFrame:
    """One purchase within the window for each target who responds: a control target with
    probability ``base_rate``, a treatment target with ``base_rate + uplift``.

    ``targets`` has ``customer_id`` and ``arm`` (the ``targets`` state table, or
    :func:`winback.campaign`'s list). Returns ``customer_id, ts, amount`` — the purchases, on a
    day after ``start`` up to ``start + window_days``, at noon — to append to the transactions.
    The draws follow the targets sorted by id, so the same targets and seed give the same rows.
    """
    if not (0 <= base_rate <= 1 and 0 <= base_rate + uplift <= 1):
        raise WinbackConfigError(
            f"base_rate={base_rate!r} and base_rate + uplift={base_rate + uplift!r} must be "
            "probabilities in [0, 1]"
        )
    if window_days < 1:
        raise WinbackConfigError(f"window_days={window_days!r} must be ≥ 1")
    rng = np.random.default_rng(seed)
    listed = targets.select("customer_id", pl.col("arm").cast(pl.String)).sort("customer_id")
    chance = np.where(
        listed.get_column("arm").to_numpy() == "treatment", base_rate + uplift, base_rate
    )
    buys = rng.random(listed.height) < chance
    days = rng.integers(1, window_days + 1, listed.height)
    noon = datetime.combine(start, time(12))
    stamps = [noon + timedelta(days=int(d)) for d in days]
    return pl.DataFrame(
        {
            "customer_id": listed.get_column("customer_id"),
            "ts": pl.Series(stamps, dtype=pl.Datetime("us")),
            "amount": pl.Series([amount] * listed.height, dtype=pl.Float64),
        }
    ).filter(pl.Series(buys))
