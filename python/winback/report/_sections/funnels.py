"""The engagement section (docs/methods.md#events): purchase silence next to engagement
silence, funnel conversion per TrF group and the weeks before silence; shown only when the
report is given an events table (``winback.report(..., events=...)``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from winback import events
from winback._options import FUNNEL_STAGES, PATH_HORIZON_DAYS, PATH_WEEKS, IdType
from winback.errors import WinbackConfigError
from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized, tooltips
from winback.report._sections.silence import GROUP_COLORS
from winback.silence import GROUP_LABELS

__all__ = ["funnels_section"]


@register_section("funnels", "Engagement: funnels and paths before silence", order=65)
def funnels_section(ctx: ReportContext) -> SectionBody:
    if ctx.params.events is None:
        raise SkipSection("no events table given (events=...)")
    # the events' ids are read as the transactions' are (a CSV's text ids beside integer ones)
    id_type: IdType = "int" if ctx.scores.get_column("customer_id").dtype == pl.Int64 else "str"
    prepared = events.prepare_events(ctx.params.events, id_type=id_type)
    as_of = ctx.info.as_of
    body = SectionBody()
    kinds = [t for t in ctx.params.engagement_types if t in prepared.event_types]
    if kinds:
        both = events.compare(ctx.data, prepared, event_types=kinds, as_of=as_of)
        patterns = (
            pl.DataFrame({"pattern": list(events.PATTERN_LABELS)})
            .join(
                both.group_by(pl.col("pattern").cast(pl.String)).agg(
                    pl.len().cast(pl.Int64).alias("customers"),
                    pl.col("recency_gap_days").median().alias("median_recency_gap_days"),
                ),
                on="pattern",
                how="left",
            )
            .with_columns(pl.col("customers").fill_null(0))
        )
        body.charts.append(
            (
                sized(
                    vl.Chart(patterns)
                    .mark_bar()
                    .encode(
                        x=vl.X("pattern:N", sort=list(events.PATTERN_LABELS), title=None),
                        y=vl.Y("customers:Q", title="customers"),
                        tooltip=tooltips("pattern:N", "customers:Q", "median_recency_gap_days:Q"),
                    ),
                    width=420,
                    height=220,
                ),
                f"Purchase silence against silence over {', '.join(kinds)} events "
                "(docs/methods.md#events-silence)",
            )
        )
        body.tables.append(TableBlock(patterns, "Customers by purchase / engagement pattern"))
        engaged = int((both.get_column("pattern") == "engaged_not_buying").sum())
        body.text = (
            f"{engaged:,} customers are silent as buyers but not as {'/'.join(kinds)} users: "
            "still engaged, no longer buying — the easiest win-back. "
        )
    stages = [s for s in FUNNEL_STAGES if s in prepared.event_types]
    if len(stages) >= 2:
        conversion = events.funnel(
            prepared,
            stages=stages,
            segments=ctx.scores,
            by="rank_ratio_group",
            as_of=as_of,
            days=PATH_WEEKS * 7,
        )
        segments = [*GROUP_LABELS, "(none)"]
        scale = vl.Scale(domain=segments, range=[*GROUP_COLORS, "#999999"])
        body.charts.append(
            (
                sized(
                    vl.Chart(conversion.with_columns(pl.col("stage").cast(pl.String)))
                    .mark_line(point=True)
                    .encode(
                        x=vl.X("stage:N", sort=stages, title="funnel stage"),
                        y=vl.Y("share_reached:Q", title="share reaching the stage"),
                        color=vl.Color("segment:N", scale=scale, title="TrF group"),
                        tooltip=tooltips("segment:N", "stage:N", "reached:Q", "step_conversion:Q"),
                    ),
                    width=420,
                    height=240,
                ),
                f"Funnel over the last {PATH_WEEKS} weeks by TrF group (docs/methods.md#funnel)",
            )
        )
    if "order" in prepared.event_types and as_of is not None:
        before = as_of - timedelta(days=PATH_HORIZON_DAYS)
        try:
            seen = events.paths(prepared, as_of=before, weeks=PATH_WEEKS)
        except WinbackConfigError as exc:
            body.notes.append(f"Paths before silence not shown: {exc}")
        else:
            _paths(body, seen.weekly, seen.as_of)
            _differences(body, seen.differences)
    if not body.charts:
        raise SkipSection("the events have none of the engagement types or funnel stages")
    return body


def _paths(body: SectionBody, weekly: pl.DataFrame, as_of: datetime) -> None:
    shown = weekly.filter(pl.col("event").cast(pl.String) != "order").with_columns(
        pl.col("outcome", "event").cast(pl.String)
    )
    body.charts.append(
        (
            sized(
                vl.Chart(shown)
                .mark_line(point=True)
                .encode(
                    x=vl.X("week_before:O", sort="descending", title="weeks before the snapshot"),
                    y=vl.Y("events_per_customer:Q", title="events per customer"),
                    color=vl.Color("event:N", title="event"),
                    strokeDash=vl.StrokeDash("outcome:N", title="outcome"),
                    tooltip=tooltips(
                        "outcome:N", "week_before:O", "event:N", "events:Q", "share:Q"
                    ),
                ),
                width=420,
                height=240,
            ),
            f"The {PATH_WEEKS} weeks before {as_of.date().isoformat()}: customers who then went "
            f"{PATH_HORIZON_DAYS} days without an order against those who ordered "
            "(docs/methods.md#paths)",
        )
    )
    summary = (
        weekly.group_by("outcome", "event")
        .agg(pl.col("events").sum(), pl.col("cohort").first())
        .with_columns(
            (pl.col("events") / pl.col("cohort")).round(2).alias("events_per_customer"),
            (pl.col("events") / pl.col("events").sum().over("outcome")).round(4).alias("share"),
        )
        .sort("outcome", "event")
        .with_columns(pl.col("outcome", "event").cast(pl.String))
    )
    body.tables.append(TableBlock(summary, "Event mix in the weeks before, by outcome"))


def _differences(body: SectionBody, differences: pl.DataFrame) -> None:
    """The behaviours whose share of customers differs between the two outcomes beyond chance
    (docs/methods.md#paths-significance)."""
    if differences.height == 0:
        return
    shown = differences.with_columns(
        pl.when(pl.col("kind") == "transition")
        .then(pl.col("event").cast(pl.String) + " → " + pl.col("to_event").cast(pl.String))
        .otherwise(pl.col("event").cast(pl.String))
        .alias("behaviour"),
        pl.col("silent_share", "stayed_share").round(4),
        pl.col("odds_ratio").round(3),
    ).select(
        "behaviour",
        "silent_share",
        "stayed_share",
        "odds_ratio",
        "p_adjusted",
        "significant",
    )
    body.tables.append(
        TableBlock(
            shown,
            "Behaviours that tell the went-silent from the stayed: share of customers with at "
            "least one, Fisher exact test, Holm-adjusted p (docs/methods.md#paths-significance)",
        )
    )
