"""How regular customers' purchase rhythms are: Wheat & Morrison's (1990) estimator of the Erlang
order k from ratios of consecutive inter-purchase times, docs/methods.md#regularity.

If a customer's gaps are independent Gamma(k, λ) (Erlang-k when k is whole, as in BG/CNBD-k), the
ratio M = g₁/(g₁ + g₂) of two consecutive gaps is Beta(k, k) whatever λ: mean ½ and variance
1/(4(2k+1)), so k = (1 − 4 Var M)/(8 Var M). k = 1 is Poisson purchasing (no rhythm); larger k
is more regular (gaps with coefficient of variation 1/√k); k < 1 is clumpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from winback import _io
from winback._options import (
    CUSTOMER_COL,
    ID_TYPE,
    ON_INVALID,
    REGULARITY_MAX_K,
    REGULARITY_MIN_PAIRS,
    RESOLUTION,
    TIME_COL,
    TIME_FORMAT,
    IdType,
    OnInvalid,
)
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = ["Regularity", "regularity"]


@dataclass(frozen=True)
class Regularity:
    """Result of :func:`regularity`.

    Attributes
    ----------
    k : the population estimate of the Erlang order (Wheat & Morrison: one pair per customer,
        the last two gaps), capped at ``REGULARITY_MAX_K``.
    n_customers : customers with at least two gaps, whose last pair makes ``k``.
    customers : per customer (sorted by ``customer_id``): ``n_intervals`` (gaps between
        occasions), ``n_pairs`` (consecutive gap pairs), ``regularity_k`` (Float64, null with
        fewer than ``min_pairs`` pairs).
    """

    k: float
    n_customers: int
    customers: pl.DataFrame


def _k_of_variance(variance: pl.Expr) -> pl.Expr:
    """k = (1 − 4V)/(8V) = 1/(8V) − ½, capped at REGULARITY_MAX_K (V = 0: every ratio ½)."""
    cap = float(REGULARITY_MAX_K)
    return (
        pl.when(variance * (8.0 * cap + 4.0) <= 1.0)
        .then(pl.lit(cap))
        .otherwise(1.0 / (8.0 * variance) - 0.5)
    )


def regularity(
    data: Any,
    *,
    resolution: str = RESOLUTION,
    min_pairs: int = REGULARITY_MIN_PAIRS,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> Regularity:
    """Wheat–Morrison regularity per customer and for the population (docs/methods.md#regularity).

    Parameters
    ----------
    data
        Transactions (any input :func:`winback.prepare` reads); all rows are used, so cut them at
        the calibration end first when the statistic is to describe a calibration period.
    resolution
        Occasion bucket (as in :func:`winback.summary`): rows of a customer in one bucket are one
        occasion; the gaps are between consecutive occasions. The ratios do not depend on the
        time unit.
    min_pairs
        Fewest consecutive gap pairs for a customer's own estimate (default 3: one pair's
        ratio says little about a rhythm); fewer give null.
    customer_col, time_col, tz, on_invalid, time_format, id_type
        As in :func:`winback.prepare`.

    Returns
    -------
    Regularity
        ``k`` for the population: from each customer's last two gaps, M = g₁/(g₁+g₂), with the
        sample variance V of M over customers, k = (1 − 4V)/(8V) (Wheat & Morrison 1990).
        Per customer, ``regularity_k`` uses all its consecutive pairs with V the mean of
        (M − ½)² (the model's mean is ½ exactly). Both are capped at ``REGULARITY_MAX_K`` (100):
        V → 0 means ever more exactly equal gaps.

    Raises
    ------
    WinbackInputError
        When no customer has two gaps (three occasions), so there is no pair to measure.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date, timedelta
    >>> from winback.models import regularity
    >>> days = [0, 7, 14, 21, 28, 0, 3, 20, 22, 40]
    >>> tx = pl.DataFrame({"customer_id": [1] * 5 + [2] * 5,
    ...                    "ts": [date(2024, 1, 1) + timedelta(d) for d in days]})
    >>> out = regularity(tx)
    >>> [round(k, 4) for k in out.customers["regularity_k"]]
    [100.0, 0.3555]
    >>> round(out.k, 4)
    1.0625
    """
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 1:
        raise WinbackConfigError(f"min_pairs must be a whole number ≥ 1, got {min_pairs!r}")
    resolution_us = _io.parse_resolution(resolution)
    prepared = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=None,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
    customer = pl.col("customer_id")
    same = customer == customer.shift(1)
    occasions = (
        prepared.frame.select(
            pl.col("customer").alias("customer_id"),
            ((pl.col("ts") // resolution_us) * resolution_us).alias("bucket"),
        )
        .unique()
        .sort("customer_id", "bucket")
    )
    gaps = (
        occasions.with_columns(
            gap=pl.when(same).then(pl.col("bucket") - pl.col("bucket").shift(1)).cast(pl.Float64)
        )
        .filter(pl.col("gap").is_not_null())
        .select("customer_id", "gap")
    )
    ratios = gaps.with_columns(
        ratio=pl.when(same).then(pl.col("gap").shift(1) / (pl.col("gap").shift(1) + pl.col("gap")))
    )
    per_customer = (
        ratios.group_by("customer_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_intervals"),
            pl.col("ratio").count().cast(pl.Int64).alias("n_pairs"),
            ((pl.col("ratio") - 0.5) ** 2).mean().alias("_v"),
            pl.col("ratio").drop_nulls().last().alias("_last"),
        )
        .sort("customer_id")
    )
    everyone = occasions.select("customer_id").unique().sort("customer_id")
    table = everyone.join(per_customer, on="customer_id", how="left", maintain_order="left")
    customers = table.select(
        customer,
        pl.col("n_intervals").fill_null(0),
        pl.col("n_pairs").fill_null(0),
        pl.when(pl.col("n_pairs").fill_null(0) >= min_pairs)
        .then(_k_of_variance(pl.col("_v")))
        .cast(pl.Float64)
        .alias("regularity_k"),
    )
    last = table.get_column("_last").drop_nulls()
    if last.len() < 2:
        raise WinbackInputError(
            f"regularity: {last.len()} customer(s) with three or more occasions; the estimator "
            "needs consecutive gap pairs from at least two customers"
        )
    spread = last.var()
    variance = float(spread) if isinstance(spread, (int, float)) else 0.0
    k = pl.select(_k_of_variance(pl.lit(variance))).item()
    return Regularity(k=float(k), n_customers=int(last.len()), customers=customers)
