"""The staff scorecards of the daily loop (docs/methods.md#staff-scorecards): per staff member
and campaign period, the contacts made, the reactivations and revenue of their targets, the
incremental effect against the campaign's holdout and the reward.

The report does not compute them: it shows the frame passed as ``scorecards=``
(``winback report --loop winback.toml`` reads it from the loop's state database with
``winback.Pipeline.scorecards``)."""

from __future__ import annotations

import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized, tooltips

__all__ = ["SCORECARD_REQUIRED", "scorecard_section", "scorecard_table"]

#: The columns the section reads (those of ``winback.loop.scorecards.SCORECARD_COLUMNS``).
SCORECARD_REQUIRED = (
    "campaign_id",
    "period_start",
    "period_end",
    "staff",
    "targets",
    "contacts",
    "reactivated",
    "revenue",
    "control_targets",
    "control_rate",
    "incremental_reactivations",
    "incremental_revenue",
    "reward",
)

#: The measures of the chart: what each staff member's targets did, against what the same
#: number of holdout customers would have done without a contact.
_MEASURES = ("reactivated", "expected without contact")


def scorecard_table(cards: pl.DataFrame) -> pl.DataFrame:
    """The section's table: one row per campaign period and staff member, with a total row per
    period (``staff`` = ``"all staff"``; the total's holdout columns are those of the period),
    money and rates rounded to 2 and 3 decimals. Rows keep the scorecards' order."""
    period = ["campaign_id", "period_start", "period_end"]
    summed = ["targets", "contacts", "reactivated", "revenue", "reward"]
    incremental = ["incremental_reactivations", "incremental_revenue"]
    rows = cards.select(*period, "staff", *summed, "control_rate", *incremental)
    totals = (
        cards.group_by(period, maintain_order=True)
        .agg(
            pl.lit("all staff").alias("staff"),
            *[pl.col(c).sort().sum() for c in summed],
            pl.col("control_rate").first(),
            # null when the period has no holdout (then every member's is null)
            *[
                pl.when(pl.col(c).is_null().all())
                .then(None)
                .otherwise(pl.col(c).sort().sum())
                .alias(c)
                for c in incremental
            ],
        )
        .select(rows.columns)
    )
    order = pl.int_range(pl.len()).alias("__row")
    table = (
        pl.concat(
            [
                rows.with_columns(order, pl.lit(0).alias("__total")),
                totals.with_columns(order, pl.lit(1).alias("__total")),
            ],
            how="vertical_relaxed",
        )
        .sort([*period, "__total", "__row"], maintain_order=True)
        .drop("__row", "__total")
    )
    return table.with_columns(
        (pl.col("reactivated") / pl.col("targets")).round(3).alias("reactivation_rate"),
        pl.col("control_rate").round(3),
        pl.col("revenue", "reward", *incremental).round(2),
    ).select(
        *period,
        "staff",
        "targets",
        "contacts",
        "reactivated",
        "reactivation_rate",
        "control_rate",
        "incremental_reactivations",
        "revenue",
        "incremental_revenue",
        "reward",
    )


@register_section("scorecards", "Staff scorecards", order=95)
def scorecard_section(ctx: ReportContext) -> SectionBody:
    cards = ctx.params.scorecards
    if cards is None:
        raise SkipSection(
            "no staff scorecards were given: they come from the daily loop's state "
            "(winback report --loop winback.toml, or scorecards=Pipeline(...).scorecards(day))"
        )
    if cards.height == 0:
        raise SkipSection("the loop's state has no staff scorecards yet (no contact targets)")
    table = scorecard_table(cards)
    periods = cards.select(
        pl.format("{} ({} – {})", "campaign_id", "period_start", "period_end").alias("period")
    )["period"]
    bars = (
        cards.with_columns(period=periods)
        .select(
            "period",
            "staff",
            pl.col("reactivated").cast(pl.Float64).alias(_MEASURES[0]),
            (pl.col("targets") * pl.col("control_rate")).alias(_MEASURES[1]),
        )
        .unpivot(index=["period", "staff"], variable_name="measure", value_name="customers")
        .drop_nulls("customers")
    )
    chart = sized(
        vl.Chart(bars)
        .mark_bar()
        .encode(
            x=vl.X("staff:N", title="staff"),
            xOffset=vl.XOffset("measure:N", sort=list(_MEASURES)),
            y=vl.Y("customers:Q", title="targets who bought again"),
            color=vl.Color("measure:N", sort=list(_MEASURES), title=None),
            tooltip=[
                *tooltips("period:N", "staff:N", "measure:N"),
                vl.Tooltip("customers:Q", format=".1f"),
            ],
        ),
        width=380,
        height=220,
    )
    if periods.n_unique() > 1:
        chart = chart.facet(column=vl.Column("period:N", title=None))
    n_staff = cards["staff"].n_unique()
    n_periods = periods.n_unique()
    return SectionBody(
        text=(
            f"{n_staff:,} staff members over {n_periods:,} campaign period"
            f"{'s' if n_periods != 1 else ''} of the daily loop "
            "(docs/methods.md#staff-scorecards): "
            "each one's contact targets (treatment arm, dealt to them on entry), the contacts "
            "recorded, how many of those targets bought again in the campaign's window and their "
            "revenue. The holdout's rate (control arm, same rules) gives what as many customers "
            "would have done without a contact; incremental = reactivated − targets × control "
            "rate (revenue alike), the staff member's own effect. The reward is the configured "
            "incentive (per reactivated visit and/or a share of revenue)."
        ),
        charts=[(chart, "Targets who bought again, against the holdout's rate")],
        tables=[TableBlock(table, "Staff scorecards per campaign period")],
    )
