"""The silence sections (docs/methods.md#silence): the TrF distribution and groups, the S
distribution and bands."""

from __future__ import annotations

import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized, tooltips
from winback.silence import BAND_LABELS, GROUP_LABELS

__all__ = ["silence_score_section", "trf_section"]

GROUP_COLORS = ["#1a9850", "#91cf60", "#e6c229", "#fc8d59", "#d73027"]
BAND_COLORS = ["#1a9850", "#fc8d59", "#d73027"]
#: S values from here on are counted in the histogram's last bar.
S_CAP = 5.0
S_BIN = 0.25
TRF_BIN = 0.05


def _scored(ctx: ReportContext) -> pl.DataFrame:
    scored = ctx.scores.filter(pl.col("status") == "scored")
    if scored.height == 0:
        raise SkipSection(
            f"no customer has {ctx.params.min_occasions} or more purchase occasions to score"
        )
    return scored


def _group_sizes(scored: pl.DataFrame, column: str, labels: tuple[str, ...]) -> pl.DataFrame:
    counts = scored.get_column(column).cast(pl.String).value_counts()
    frame = pl.DataFrame({column: list(labels)}).join(counts, on=column, how="left")
    frame = frame.fill_null(0).rename({"count": "customers"})
    total = max(int(frame.get_column("customers").sum()), 1)
    return frame.with_columns(share=(pl.col("customers") / total).round(4))


def _percent(sizes: pl.DataFrame) -> pl.DataFrame:
    return sizes.with_columns(share=(pl.col("share") * 100).round(1).cast(pl.String) + pl.lit("%"))


@register_section("trf", "TrF: silent for longer than usual?", order=20)
def trf_section(ctx: ReportContext) -> SectionBody:
    scored = _scored(ctx)
    bins = (
        scored.select(
            start=(pl.col("rank_ratio") / TRF_BIN).floor().clip(0, 1 / TRF_BIN - 1) * TRF_BIN,
            group=pl.col("rank_ratio_group").cast(pl.String),
        )
        .group_by("start", "group")
        .agg(pl.len().alias("customers"))
        .with_columns(end=pl.col("start") + TRF_BIN)
        .sort("start")
    )
    group_scale = vl.Scale(domain=list(GROUP_LABELS), range=GROUP_COLORS)
    histogram = sized(
        vl.Chart(bins)
        .mark_bar()
        .encode(
            x=vl.X("start:Q", title="TrF (rank of the current silence among the own gaps ÷ n)")
            .scale(domain=[0, 1])
            .bin("binned"),
            x2=vl.X2("end:Q"),
            y=vl.Y("customers:Q", title="customers"),
            color=vl.Color("group:N", scale=group_scale, title="group"),
            tooltip=tooltips("start:Q", "end:Q", "group:N", "customers:Q"),
        )
    )
    sizes = _group_sizes(scored, "rank_ratio_group", GROUP_LABELS)
    bars = sized(
        vl.Chart(sizes)
        .mark_bar()
        .encode(
            x=vl.X("rank_ratio_group:N", title="TrF group", sort=list(GROUP_LABELS)).axis(
                labelAngle=0
            ),
            y=vl.Y("customers:Q"),
            color=vl.Color("rank_ratio_group:N", scale=group_scale, legend=None),
            tooltip=["rank_ratio_group:N", "customers:Q", vl.Tooltip("share:Q", format=".1%")],
        ),
        width=280,
    )
    cuts = ", ".join(str(c) for c in ctx.params.trf_cuts)
    return SectionBody(
        text=(
            "TrF (rank_ratio) places each customer's current silence among their own gaps: "
            "1 means silent for longer than ever before. Groups a–e cut TrF at "
            f"{cuts}; group e is activated first. Only the {scored.height:,} scored customers "
            "appear."
        ),
        charts=[(histogram, "TrF histogram"), (bars, "Customers per TrF group")],
        tables=[TableBlock(_percent(sizes), "TrF group sizes")],
    )


@register_section("silence_score", "S: how deep is the silence?", order=30)
def silence_score_section(ctx: ReportContext) -> SectionBody:
    scored = _scored(ctx)
    top = S_CAP - S_BIN
    bins = (
        scored.select(
            start=(pl.col("silence_score") / S_BIN).floor().clip(0, top / S_BIN) * S_BIN,
            band=pl.col("silence_band").cast(pl.String),
        )
        .group_by("start", "band")
        .agg(pl.len().alias("customers"))
        .with_columns(end=pl.col("start") + S_BIN)
        .sort("start")
    )
    band_scale = vl.Scale(domain=list(BAND_LABELS), range=BAND_COLORS)
    histogram = sized(
        vl.Chart(bins)
        .mark_bar()
        .encode(
            x=vl.X("start:Q", title=f"S = days silent ÷ longest gap (last bar: S ≥ {top:g})")
            .scale(domain=[0, S_CAP])
            .bin("binned"),
            x2=vl.X2("end:Q"),
            y=vl.Y("customers:Q", title="customers"),
            color=vl.Color("band:N", scale=band_scale, title="band"),
            tooltip=tooltips("start:Q", "end:Q", "band:N", "customers:Q"),
        )
    )
    sizes = _group_sizes(scored, "silence_band", BAND_LABELS)
    bars = sized(
        vl.Chart(sizes)
        .mark_bar()
        .encode(
            x=vl.X("silence_band:N", title="S band", sort=list(BAND_LABELS)).axis(labelAngle=0),
            y=vl.Y("customers:Q"),
            color=vl.Color("silence_band:N", scale=band_scale, legend=None),
            tooltip=["silence_band:N", "customers:Q", vl.Tooltip("share:Q", format=".1%")],
        ),
        width=280,
    )
    quantiles = scored.select(
        [
            pl.col("silence_score").quantile(q, "nearest").alias(f"q{int(q * 100)}")
            for q in (0.1, 0.25, 0.5, 0.75, 0.9)
        ]
    ).with_columns(pl.all().round(3))
    cuts = ctx.params.s_cuts
    return SectionBody(
        text=(
            "S (silence_score) divides the days since the last purchase by the customer's "
            f"longest gap: below {cuts[0]:g} not silent yet, from {cuts[0]:g} silent, from "
            f"{cuts[1]:g} deeply silent."
        ),
        charts=[(histogram, "S distribution"), (bars, "Customers per S band")],
        tables=[
            TableBlock(_percent(sizes), "S band sizes"),
            TableBlock(quantiles, "Quantiles of S"),
        ],
    )
