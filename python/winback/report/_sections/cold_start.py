"""The cold-start section (docs/methods.md#cold-start): the customers with too few occasions to
be scored against their own gaps — usually the one-purchase customers, often half the base —
measured against the population's time to the next purchase."""

from __future__ import annotations

import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized, tooltips
from winback.report._sections.silence import GROUP_COLORS
from winback.silence import GROUP_LABELS

__all__ = ["cold_start_section"]


@register_section("cold_start", "One-purchase customers: silent against the population?", order=35)
def cold_start_section(ctx: ReportContext) -> SectionBody:
    unscored = ctx.scores.filter(pl.col("status") != "scored")
    if unscored.height == 0:
        raise SkipSection(
            f"every customer has {ctx.params.min_occasions} or more purchase occasions"
        )
    table = ctx.cold_start.filter(pl.col("status") != "scored")
    groups = (
        pl.DataFrame({"group": list(GROUP_LABELS)})
        .join(
            table.group_by(pl.col("population_trf_group").cast(pl.String).alias("group")).agg(
                pl.len().alias("customers"),
                pl.col("p_next_so_far").mean().round(4).alias("mean_p_next_so_far"),
                pl.col("p_next_within").mean().round(4).alias("mean_p_next_within"),
                pl.col("recency_days").median().alias("median_recency_days"),
            ),
            on="group",
            how="left",
        )
        .with_columns(pl.col("customers").fill_null(0))
    )
    unmeasured = int(table.get_column("population_trf").null_count())
    scale = vl.Scale(domain=list(GROUP_LABELS), range=GROUP_COLORS)
    bars = sized(
        vl.Chart(groups)
        .mark_bar()
        .encode(
            x=vl.X("group:N", title="population TrF group", sort=list(GROUP_LABELS)),
            y=vl.Y("customers:Q", title="customers"),
            color=vl.Color("group:N", scale=scale, legend=None),
            tooltip=tooltips("group:N", "customers:Q", "mean_p_next_within:Q"),
        ),
        width=360,
        height=220,
    )
    single = int((table.get_column("status") == "single_purchase").sum())
    share = unscored.height / max(ctx.scores.height, 1)
    text = (
        f"{unscored.height:,} customers ({share:.0%}) have fewer than "
        f"{ctx.params.min_occasions} purchase occasions ({single:,} bought once), so they have no "
        "TrF of their own. Here each one's time since the last purchase is ranked among the "
        "population's times to a next purchase (Kaplan–Meier, those not back yet censored): "
        "population TrF, cut into the same groups a–e. p_next_within is the chance of a next "
        "purchase within the horizon, given none so far."
    )
    if unmeasured:
        text += f" {unmeasured:,} could not be placed (nobody in the population came back)."
    return SectionBody(
        text=text,
        charts=[(bars, "Customers below the minimum by population TrF group")],
        tables=[TableBlock(groups, "Population TrF groups")],
    )
