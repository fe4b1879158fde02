"""The migration section (docs/methods.md#migration): where each state's customers went between two
snapshots."""

from __future__ import annotations

import polars as pl

from winback.errors import WinbackError
from winback.migrate import MIGRATION_STATES
from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized

__all__ = ["migration_section"]


@register_section("migration", "Migration between snapshots", order=60)
def migration_section(ctx: ReportContext) -> SectionBody:
    try:
        moves = ctx.migration
    except WinbackError as exc:
        raise SkipSection(str(exc)) from exc
    counts = moves.transitions.filter(pl.col("from_as_of") == moves.labels[0])
    shares = counts.select(
        from_state=pl.col("from_state").cast(pl.String),
        to_state=pl.col("to_state").cast(pl.String),
        customers=pl.col("customers"),
        share=pl.col("share").round(4),
    )
    states = [s for s in MIGRATION_STATES if s != "not_yet_customer"]
    order_from = ["not_yet_customer", *states]
    base = vl.Chart(shares).encode(
        x=vl.X("to_state:N", title=f"state at {moves.labels[1]}", sort=states).axis(labelAngle=-30),
        y=vl.Y("from_state:N", title=f"state at {moves.labels[0]}", sort=order_from),
    )
    heatmap = sized(
        base.mark_rect().encode(
            color=vl.Color(
                "share:Q", scale=vl.Scale(scheme="oranges", domain=[0, 1]), title="row share"
            ),
            tooltip=[
                vl.Tooltip("from_state:N"),
                vl.Tooltip("to_state:N"),
                vl.Tooltip("customers:Q"),
                vl.Tooltip("share:Q", format=".1%"),
            ],
        )
        + base.mark_text(fontSize=10).encode(
            text=vl.Text("share:Q", format=".0%"),
            color=vl.ColorValue(  # a channel object, not a dict: see common.tooltips
                **vl.condition("datum.share > 0.5", vl.value("white"), vl.value("black"))
            ),
        ),
        width=420,
        height=320,
    )
    c_to_e = moves.share("c", "e")
    table = moves.matrix(0, values="customers").with_columns(pl.col("from_state").cast(pl.String))
    table = table.filter(pl.sum_horizontal(pl.exclude("from_state")) > 0)
    return SectionBody(
        text=(
            f"Where each state's customers at {moves.labels[0]} were at {moves.labels[1]} "
            f"(row shares). Of group c, {c_to_e:.0%} had moved to group e."
        ),
        charts=[(heatmap, "Transition matrix (row shares)")],
        tables=[TableBlock(table, "Transitions (customers)")],
    )
