"""Staff scorecards (docs/methods.md#staff-scorecards): per staff member and campaign period,
the contacts made, the reactivations and revenue of their targets, the incremental effect
against the campaign's holdout, and the reward of the incentive scheme.

Pure functions over frames (the pipeline reads them from the state and the transactions).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from winback._io.times import MICROS_PER_DAY

__all__ = ["SCORECARD_COLUMNS", "SCORECARD_SCHEMA", "purchase_days", "scorecards"]

#: Columns of :func:`scorecards` (and of ``scorecards-D.csv``).
SCORECARD_COLUMNS = (
    "campaign_id",
    "period_start",
    "period_end",
    "staff",
    "targets",
    "contacts",
    "reactivated",
    "reactivation_rate",
    "reactivated_visits",
    "revenue",
    "control_targets",
    "control_rate",
    "incremental_reactivations",
    "incremental_revenue",
    "reward",
)

#: The column types of :func:`scorecards`.
SCORECARD_SCHEMA: dict[str, Any] = {
    "campaign_id": pl.String,
    "period_start": pl.Date,
    "period_end": pl.Date,
    "staff": pl.String,
    "targets": pl.Int64,
    "contacts": pl.Int64,
    "reactivated": pl.Int64,
    "reactivation_rate": pl.Float64,
    "reactivated_visits": pl.Int64,
    "revenue": pl.Float64,
    "control_targets": pl.Int64,
    "control_rate": pl.Float64,
    "incremental_reactivations": pl.Float64,
    "incremental_revenue": pl.Float64,
    "reward": pl.Float64,
}


def purchase_days(frame: pl.DataFrame) -> pl.DataFrame:
    """A prepared transactions frame (``customer``, ``ts`` in local µs, optional ``amount``) as
    one row per customer and purchase day: ``customer_id`` (text), ``day`` (Date), ``amount``
    (the day's total, null without amounts). Sums run in ascending order (bit-identical for any
    row order)."""
    amount = (
        pl.col("amount").sort().cum_sum().last()
        if "amount" in frame.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    return (
        frame.select(
            pl.col("customer").cast(pl.String).alias("customer_id"),
            (pl.col("ts") // MICROS_PER_DAY).cast(pl.Int32).cast(pl.Date).alias("day"),
            *([pl.col("amount")] if "amount" in frame.columns else []),
        )
        .group_by("customer_id", "day")
        .agg(amount.cast(pl.Float64).alias("amount"))
        .sort("customer_id", "day")
    )


def scorecards(
    targets: pl.DataFrame,
    campaigns: pl.DataFrame,
    contacts: pl.DataFrame,
    purchases: pl.DataFrame,
    *,
    window_days: int,
    as_of: date,
    reward_per_visit: float = 0.0,
    reward_revenue_share: float = 0.0,
) -> pl.DataFrame:
    """One row per campaign and staff member (docs/methods.md#staff-scorecards).

    Parameters
    ----------
    targets
        The ``targets`` state table: ``campaign_id``, ``customer_id``, ``arm``, ``contact``,
        ``staff``, ``strategy``.
    campaigns
        The ``campaigns`` state table: ``campaign_id``, ``start_date``.
    contacts
        The ``contacts`` state table: ``customer_id``, ``contact_date``, ``campaign_id``.
    purchases
        :func:`purchase_days` of the transactions.
    window_days
        The campaign's measurement window in days after its start (the evaluation window).
    as_of
        The last day counted: a period is the start's next day up to the window's end or
        ``as_of``, whichever is earlier (a running campaign's card is to date).
    reward_per_visit, reward_revenue_share
        The incentive scheme: ``reward = reward_per_visit · reactivated_visits +
        reward_revenue_share · revenue`` (money units of the amounts).

    Returns
    -------
    polars.DataFrame
        :data:`SCORECARD_COLUMNS`, ordered by period start, campaign and staff. A staff
        member's targets are their contact targets (treatment arm, strategy ≠ ``no_action``);
        the holdout is the campaign's control arm with strategy ≠ ``no_action``: the customers
        who would have been contacted. ``incremental_reactivations = reactivated − targets ·
        control_rate`` and ``incremental_revenue = revenue − targets · control revenue per
        target``; null when the campaign has no such control customer.
    """
    rows: list[dict[str, Any]] = []
    t = targets.with_columns(pl.col("customer_id").cast(pl.String))
    for campaign_id, start in (
        campaigns.select("campaign_id", "start_date").sort("start_date", "campaign_id").iter_rows()
    ):
        end = min(start + timedelta(days=window_days), as_of)
        if end <= start:
            continue
        window = purchases.filter((pl.col("day") > start) & (pl.col("day") <= end))
        outcome = window.group_by("customer_id").agg(
            pl.len().alias("visits"),
            pl.col("amount").sort().cum_sum().last().fill_null(0.0).alias("revenue"),
        )
        own = (
            t.filter(pl.col("campaign_id") == campaign_id)
            .filter(pl.col("strategy").ne_missing("no_action"))
            .join(outcome, on="customer_id", how="left")
            .with_columns(pl.col("visits").fill_null(0), pl.col("revenue").fill_null(0.0))
        )
        control = own.filter(pl.col("arm") == "control")
        n_control = control.height
        control_rate = (control["visits"] > 0).sum() / n_control if n_control else None
        control_revenue = _ordered_sum(control["revenue"]) / n_control if n_control else None
        made = contacts.filter(
            (pl.col("contact_date") >= start)
            & (pl.col("contact_date") <= end)
            & (pl.col("campaign_id").is_null() | (pl.col("campaign_id") == campaign_id))
        ).select(pl.col("customer_id").cast(pl.String))
        treated = own.filter(pl.col("contact") & pl.col("staff").is_not_null())
        for staff in sorted(set(treated["staff"].to_list())):
            mine = treated.filter(pl.col("staff") == staff)
            n = mine.height
            reactivated = int((mine["visits"] > 0).sum())
            visits = int(mine["visits"].sum())
            revenue = _ordered_sum(mine["revenue"])
            n_contacts = made.join(mine.select("customer_id"), on="customer_id").height
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "period_start": start + timedelta(days=1),
                    "period_end": end,
                    "staff": staff,
                    "targets": n,
                    "contacts": n_contacts,
                    "reactivated": reactivated,
                    "reactivation_rate": reactivated / n,
                    "reactivated_visits": visits,
                    "revenue": revenue,
                    "control_targets": n_control,
                    "control_rate": control_rate,
                    "incremental_reactivations": (
                        reactivated - n * control_rate if control_rate is not None else None
                    ),
                    "incremental_revenue": (
                        revenue - n * control_revenue if control_revenue is not None else None
                    ),
                    "reward": reward_per_visit * visits + reward_revenue_share * revenue,
                }
            )
    return pl.DataFrame(rows, schema=SCORECARD_SCHEMA).select(SCORECARD_COLUMNS)


def _ordered_sum(values: pl.Series) -> float:
    """The sum in ascending order (the same bits for any row order)."""
    return float(sum(sorted(values.fill_null(0.0).to_list()))) if values.len() else 0.0
