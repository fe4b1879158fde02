"""The value sections (docs/methods.md#value, #markov): the value-tier Pareto curve and the value
engine's Markov chain over recency."""

from __future__ import annotations

import numpy as np
import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import score_column, sized, tooltips

__all__ = ["markov_section", "value_section"]


@register_section("value", "Value tiers: where the value is", order=70, requires=("value",))
def value_section(ctx: ReportContext) -> SectionBody:
    frame = ctx.value
    value_col = score_column(frame, "expected_value", "clv", "expected_amount")
    if value_col is None:
        raise SkipSection(f"winback.value returned no value column (got {frame.columns})")
    tier_col = score_column(frame, "value_tier", "tier")
    ranked = frame.select(
        value=pl.col(value_col).cast(pl.Float64).fill_null(0.0),
        tier=pl.col(tier_col).cast(pl.String) if tier_col else pl.lit("all"),
    ).sort("value", descending=True)
    total = float(ranked.get_column("value").sum())
    if ranked.height == 0 or total <= 0:
        raise SkipSection("the predicted value sums to zero or less")
    curve = ranked.with_columns(
        customer_share=pl.int_range(1, pl.len() + 1) / pl.len(),
        value_share=pl.col("value").cum_sum() / total,
    )
    step = max(curve.height // 1000, 1)
    points = curve.gather_every(step).vstack(curve.tail(1)).unique(maintain_order=True)
    chart = sized(
        vl.Chart(points.select("customer_share", "value_share", "tier"))
        .mark_line(point=False)
        .encode(
            x=vl.X("customer_share:Q", title="share of customers (highest value first)").axis(
                format="%"
            ),
            y=vl.Y("value_share:Q", title=f"cumulative share of {value_col}").axis(format="%"),
            color=vl.Color("tier:N", title="value tier"),
            tooltip=[
                vl.Tooltip("customer_share:Q", format=".1%"),
                vl.Tooltip("value_share:Q", format=".1%"),
                vl.Tooltip("tier:N"),
            ],
        ),
        height=300,
    )
    tiers = (
        ranked.group_by("tier")
        .agg(pl.len().alias("customers"), pl.col("value").sum().round(2).alias(value_col))
        .sort(value_col, descending=True)
    )
    return SectionBody(
        text=f"Pareto curve of {value_col}: how much of the predicted value the top customers "
        "hold.",
        charts=[(chart, "Value-tier Pareto curve")],
        tables=[TableBlock(tiers, "Value tiers")],
    )


@register_section("markov", "Markov chain: recency and value", order=75, requires=("value",))
def markov_section(ctx: ReportContext) -> SectionBody:
    chain = getattr(ctx.value_result, "chain", None)
    states = getattr(chain, "states", None)
    matrix = getattr(chain, "transition_matrix", None)
    if states is None or matrix is None or "recency" not in states.columns:
        raise SkipSection("winback.value returned no Markov chain (too few complete periods?)")
    recency = states.get_column("recency").to_numpy()
    weight = np.zeros(len(recency))
    for column in ("transitions", "customers"):
        if column in states.columns:
            weight += states.get_column(column).cast(pl.Float64).fill_null(0.0).to_numpy()
    weight += 1e-9  # a state never observed still counts, a little
    coo = matrix.tocoo()
    pooled = (
        pl.DataFrame(
            {
                "from": recency[coo.row],
                "to": recency[coo.col],
                "mass": weight[coo.row] * np.asarray(coo.data, dtype=np.float64),
            }
        )
        .group_by("from", "to")
        .agg(pl.col("mass").sum())
        .sort("from", "to")  # group_by's row order varies between runs: the page must not
        .with_columns(probability=(pl.col("mass") / pl.col("mass").sum().over("from")).round(4))
    )
    top = int(recency.max())
    order = [str(r) if r < top else f"{r}+" for r in range(top + 1)]

    def label(column: str) -> pl.Expr:
        name = pl.col(column).cast(pl.String)
        return pl.when(pl.col(column) == top).then(name + pl.lit("+")).otherwise(name)

    cells = pooled.select(
        label("from").alias("from"), label("to").alias("to"), "probability"
    ).filter(pl.col("probability") > 0)
    base = vl.Chart(cells).encode(
        x=vl.X("to:O", title="periods since the last purchase, next period", sort=order).axis(
            labelAngle=0
        ),
        y=vl.Y("from:O", title="periods since the last purchase, now", sort=order),
    )
    heatmap = sized(
        base.mark_rect().encode(
            color=vl.Color("probability:Q", scale=vl.Scale(scheme="purples", domain=[0, 1])),
            tooltip=[*tooltips("from:O", "to:O"), vl.Tooltip("probability:Q", format=".1%")],
        )
        + base.mark_text(fontSize=9).encode(
            text=vl.Text("probability:Q", format=".0%"),
            color=vl.ColorValue(  # a channel object, not a dict: see common.tooltips
                **vl.condition("datum.probability > 0.5", vl.value("white"), vl.value("black"))
            ),
        ),
        width=420,
        height=360,
    )
    body = SectionBody(
        text=(
            "The value engine's Markov chain over recency (docs/methods.md#markov): from each "
            "number of periods since the last purchase, the chance of buying next period (to 0) or "
            "staying silent one period longer — its states pooled by recency, weighted by their "
            "customers and observed transitions."
        ),
        charts=[(heatmap, "Transition matrix of the Markov chain, pooled by recency")],
    )
    if {"value", "customers"} <= set(states.columns):
        per_recency = (
            states.group_by(recency=label("recency"))
            .agg(
                pl.col("customers").sum(),
                ((pl.col("value") * pl.col("customers")).sum() / pl.col("customers").sum())
                .round(2)
                .alias("mean_value"),
            )
            .filter(pl.col("customers") > 0)
            .sort("recency")
        )
        bars = sized(
            vl.Chart(per_recency)
            .mark_bar(color="#6a51a3")
            .encode(
                x=vl.X("recency:O", title="periods since the last purchase", sort=order).axis(
                    labelAngle=0
                ),
                y=vl.Y("mean_value:Q", title="mean value over the horizon per customer"),
                tooltip=tooltips("recency:O", "customers:Q", "mean_value:Q"),
            ),
            width=360,
            height=300,
        )
        body.charts.append((bars, "Value of the chain's states (V_H) by recency"))
    return body
