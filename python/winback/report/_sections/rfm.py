"""The RFM sections (docs/methods.md#rfm): the R × F grid with the named segments, and the
quadrants."""

from __future__ import annotations

import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext, call_capability
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import score_column, sized, tooltips

__all__ = ["quadrant_section", "rfm_section"]

QUADRANTS = ("bee", "dragonfly", "butterfly", "mantis")
QUADRANT_COLORS = ["#e6a100", "#3b7dd8", "#c655c9", "#5f9e3a"]
#: Points drawn at most in a scatter (a deterministic sample beyond that).
MAX_POINTS = 4000


@register_section("rfm", "RFM grid", order=40, requires=("rfm",))
def rfm_section(ctx: ReportContext) -> SectionBody:
    rfm = ctx.rfm
    r_col = score_column(rfm, "r_score", "R", "recency_score")
    f_col = score_column(rfm, "f_score", "F", "frequency_score")
    m_col = score_column(rfm, "m_score", "M", "monetary_score")
    if r_col is None or f_col is None:
        raise SkipSection(f"winback.rfm returned no R/F score columns (got {rfm.columns})")
    aggs = [pl.len().alias("customers")]
    if m_col is not None:
        aggs.append(pl.col(m_col).cast(pl.Float64).mean().round(2).alias("mean_m_score"))
    grid = (
        rfm.filter(pl.col(r_col).is_not_null() & pl.col(f_col).is_not_null())
        .group_by(r=pl.col(r_col).cast(pl.Int64), f=pl.col(f_col).cast(pl.Int64))
        .agg(aggs)
        .sort("r", "f")
    )
    base = vl.Chart(grid).encode(
        x=vl.X("f:O", title="F score (5 = most frequent)").axis(labelAngle=0),
        y=vl.Y("r:O", title="R score (5 = most recent)", sort="descending"),
    )
    tooltip = tooltips("r:O", "f:O", "customers:Q", *(["mean_m_score:Q"] if m_col else []))
    heatmap = sized(
        base.mark_rect().encode(
            color=vl.Color("customers:Q", scale=vl.Scale(scheme="blues")), tooltip=tooltip
        )
        + base.mark_text(fontSize=11).encode(text=vl.Text("customers:Q")),
        width=360,
        height=300,
    )
    body = SectionBody(
        text="Customers per R × F cell (docs/methods.md#rfm: scores 1–5 by quintiles of rank).",
        charts=[(heatmap, "RFM grid: customers per R × F cell")],
    )
    segment_col = score_column(rfm, "segment", "rfm_segment")
    if segment_col is not None:
        segments = (
            rfm.group_by(segment=pl.col(segment_col).cast(pl.String))
            .agg(pl.len().alias("customers"))
            .sort("customers", descending=True)
        )
        body.tables.append(TableBlock(segments, "Named segments"))
    return body


@register_section("quadrant", "Quadrants: contribution × loyalty", order=50, requires=("quadrant",))
def quadrant_section(ctx: ReportContext) -> SectionBody:
    frame = call_capability("quadrant", ctx.rfm)
    if "quadrant" not in frame.columns:
        raise SkipSection(f"winback.quadrant returned no quadrant column (got {frame.columns})")
    x_col = score_column(frame, "quadrant_contribution", "contribution")
    y_col = score_column(frame, "quadrant_loyalty", "loyalty")
    counts = (
        frame.group_by(quadrant=pl.col("quadrant").cast(pl.String))
        .agg(pl.len().alias("customers"))
        .sort("quadrant")
    )
    body = SectionBody(
        text=(
            "High/low contribution (M, the spend) × high/low loyalty (purchase occasions per "
            "year of tenure), split at the medians (docs/methods.md#quadrant): bee high/high, "
            "dragonfly high contribution/low loyalty, butterfly low/high, mantis low/low. The "
            "same definition gives the quadrant column of the activation list."
        ),
        tables=[TableBlock(counts, "Customers per quadrant")],
    )
    if x_col is None or y_col is None:
        body.notes.append("winback.quadrant returned no contribution/loyalty columns to plot.")
        return body
    points = frame.select(x_col, y_col, pl.col("quadrant").cast(pl.String)).drop_nulls()
    if points.height > MAX_POINTS:
        points = points.sample(MAX_POINTS, seed=0)
        body.notes.append(f"The scatter shows a random sample of {MAX_POINTS:,} customers.")
    scatter = sized(
        vl.Chart(points)
        .mark_circle(size=14, opacity=0.6)
        .encode(
            x=vl.X(f"{x_col}:Q", title=x_col).scale(type="symlog"),
            y=vl.Y(f"{y_col}:Q", title=y_col).scale(type="symlog"),
            color=vl.Color("quadrant:N", scale=vl.Scale(domain=QUADRANTS, range=QUADRANT_COLORS)),
            tooltip=tooltips(f"{x_col}:Q", f"{y_col}:Q", "quadrant:N"),
        ),
        height=320,
    )
    body.charts.append((scatter, "Quadrant scatter"))
    return body
