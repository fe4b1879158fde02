"""The report's built-in sections (SPEC §9), registered in report order.

Sections over capabilities still being built — RFM (``winback.rfm``), quadrants
(``winback.quadrant``), value tiers (``winback.value``) and the campaign list
(``winback.campaign``) — are written against SPEC §4, §6 and §8's names and light up when the
package provides them; until then they are skipped, or fall back as their text says.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import altair as alt
import numpy as np
import polars as pl

import winback
from winback._io import describe_moment
from winback.errors import WinbackError
from winback.report._context import MODEL_NAMES, ReportContext, call_capability
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.silence import BAND_LABELS, GROUP_LABELS, STATUS_LABELS

GROUP_COLORS = ["#1a9850", "#91cf60", "#e6c229", "#fc8d59", "#d73027"]
BAND_COLORS = ["#1a9850", "#fc8d59", "#d73027"]
QUADRANTS = ("bee", "dragonfly", "butterfly", "mantis")
QUADRANT_COLORS = ["#e6a100", "#3b7dd8", "#c655c9", "#5f9e3a"]
#: Points drawn at most in a scatter (a deterministic sample beyond that).
MAX_POINTS = 4000
#: S values from here on are counted in the histogram's last bar.
S_CAP = 5.0
S_BIN = 0.25
TRF_BIN = 0.05

#: The data-summary figures: key → label.
SUMMARY_LABELS = {
    "rows_read": "rows read",
    "rows_rejected": "rows rejected (bad ids, times or amounts)",
    "rows_after_as_of": "rows dated after as_of (left out)",
    "rows_used": "rows used",
    "customers": "customers",
    "scored": "customers scored (≥ min_occasions occasions)",
    "single_purchase": "customers with a single purchase",
    "below_min_occasions": "customers below min_occasions",
    "first_purchase": "first purchase",
    "last_purchase": "last purchase",
    "as_of": "as_of (snapshot)",
    "total_amount": "total amount",
}


def _width(chart: Any, width: int = 460, height: int = 260) -> Any:
    return chart.properties(width=width, height=height)


def summary_figures(ctx: ReportContext) -> dict[str, Any]:
    """The data-summary figures: rows read, rejected and used, customers by status, date range."""
    info = ctx.info.as_dict()
    status = ctx.scores.get_column("status").value_counts()
    counts = {str(k): int(v) for k, v in status.iter_rows()}
    figures: dict[str, Any] = {
        key: info[key]
        for key in ("rows_read", "rows_rejected", "rows_after_as_of", "rows_used", "customers")
    }
    for label in STATUS_LABELS:
        figures[label] = counts.get(label, 0)
    figures["first_purchase"] = _iso(ctx.first_purchase)
    figures["last_purchase"] = _iso(ctx.last_purchase)
    figures["as_of"] = info["as_of"]
    if ctx.has_amount:
        figures["total_amount"] = round(float(ctx.scores.get_column("total_amount").sum()), 2)
    return figures


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@register_section("summary", "Data summary", order=10)
def data_summary(ctx: ReportContext) -> SectionBody:
    figures = summary_figures(ctx)
    rows = [
        ("scored" if key == "scored" else key, SUMMARY_LABELS[key], _show(value))
        for key, value in figures.items()
    ]
    table = pl.DataFrame(rows, schema=["key", "figure", "value"], orient="row")
    body = SectionBody(
        text=(
            f"{figures['customers']:,} customers and {figures['rows_used']:,} transactions "
            f"from {_show(figures['first_purchase'])} to {_show(figures['last_purchase'])}, "
            f"scored as of {figures['as_of']}."
        ),
        tables=[TableBlock(table, "What was read", key_col="key")],
    )
    rejects = ctx.info.rejects
    if rejects.height:
        reasons = rejects.group_by("reason").agg(pl.len().alias("rows")).sort("rows", "reason")
        body.tables.append(TableBlock(reasons.reverse(), "Rejected rows by reason"))
    return body


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
    group_scale = alt.Scale(domain=list(GROUP_LABELS), range=GROUP_COLORS)
    histogram = _width(
        alt.Chart(bins)
        .mark_bar()
        .encode(
            x=alt.X("start:Q", title="TrF (rank of the current silence among the own gaps ÷ n)")
            .scale(domain=[0, 1])
            .bin("binned"),
            x2="end:Q",
            y=alt.Y("customers:Q", title="customers"),
            color=alt.Color("group:N", scale=group_scale, title="group"),
            tooltip=["start:Q", "end:Q", "group:N", "customers:Q"],
        )
    )
    sizes = _group_sizes(scored, "rank_ratio_group", GROUP_LABELS)
    bars = _width(
        alt.Chart(sizes)
        .mark_bar()
        .encode(
            x=alt.X("rank_ratio_group:N", title="TrF group", sort=list(GROUP_LABELS)).axis(
                labelAngle=0
            ),
            y=alt.Y("customers:Q"),
            color=alt.Color("rank_ratio_group:N", scale=group_scale, legend=None),
            tooltip=["rank_ratio_group:N", "customers:Q", alt.Tooltip("share:Q", format=".1%")],
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
    band_scale = alt.Scale(domain=list(BAND_LABELS), range=BAND_COLORS)
    histogram = _width(
        alt.Chart(bins)
        .mark_bar()
        .encode(
            x=alt.X("start:Q", title=f"S = days silent ÷ longest gap (last bar: S ≥ {top:g})")
            .scale(domain=[0, S_CAP])
            .bin("binned"),
            x2="end:Q",
            y=alt.Y("customers:Q", title="customers"),
            color=alt.Color("band:N", scale=band_scale, title="band"),
            tooltip=["start:Q", "end:Q", "band:N", "customers:Q"],
        )
    )
    sizes = _group_sizes(scored, "silence_band", BAND_LABELS)
    bars = _width(
        alt.Chart(sizes)
        .mark_bar()
        .encode(
            x=alt.X("silence_band:N", title="S band", sort=list(BAND_LABELS)).axis(labelAngle=0),
            y=alt.Y("customers:Q"),
            color=alt.Color("silence_band:N", scale=band_scale, legend=None),
            tooltip=["silence_band:N", "customers:Q", alt.Tooltip("share:Q", format=".1%")],
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


def _score_column(frame: pl.DataFrame, *names: str) -> str | None:
    return next((n for n in names if n in frame.columns), None)


@register_section("rfm", "RFM grid", order=40, requires=("rfm",))
def rfm_section(ctx: ReportContext) -> SectionBody:
    rfm = ctx.rfm
    r_col = _score_column(rfm, "r_score", "R", "recency_score")
    f_col = _score_column(rfm, "f_score", "F", "frequency_score")
    m_col = _score_column(rfm, "m_score", "M", "monetary_score")
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
    base = alt.Chart(grid).encode(
        x=alt.X("f:O", title="F score (5 = most frequent)").axis(labelAngle=0),
        y=alt.Y("r:O", title="R score (5 = most recent)", sort="descending"),
    )
    tooltip = ["r:O", "f:O", "customers:Q"] + (["mean_m_score:Q"] if m_col else [])
    heatmap = _width(
        base.mark_rect().encode(
            color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues")), tooltip=tooltip
        )
        + base.mark_text(fontSize=11).encode(text="customers:Q"),
        width=360,
        height=300,
    )
    body = SectionBody(
        text="Customers per R × F cell (SPEC §4: scores 1–5 by quintiles of rank).",
        charts=[(heatmap, "RFM grid: customers per R × F cell")],
    )
    segment_col = _score_column(rfm, "segment", "rfm_segment")
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
    base = ctx.rfm if hasattr(winback, "rfm") else ctx.scores
    frame = call_capability("quadrant", base)
    if "quadrant" not in frame.columns:
        raise SkipSection(f"winback.quadrant returned no quadrant column (got {frame.columns})")
    x_col = _score_column(frame, "quadrant_contribution", "contribution")
    y_col = _score_column(frame, "quadrant_loyalty", "loyalty")
    counts = (
        frame.group_by(quadrant=pl.col("quadrant").cast(pl.String))
        .agg(pl.len().alias("customers"))
        .sort("quadrant")
    )
    body = SectionBody(
        text=(
            "High/low contribution × high/low loyalty, split at the medians (SPEC §4): "
            "bee high/high, dragonfly high contribution/low loyalty, butterfly low/high, "
            "mantis low/low."
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
    scatter = _width(
        alt.Chart(points)
        .mark_circle(size=14, opacity=0.6)
        .encode(
            x=alt.X(f"{x_col}:Q", title=x_col).scale(type="symlog"),
            y=alt.Y(f"{y_col}:Q", title=y_col).scale(type="symlog"),
            color=alt.Color("quadrant:N", scale=alt.Scale(domain=QUADRANTS, range=QUADRANT_COLORS)),
            tooltip=[f"{x_col}:Q", f"{y_col}:Q", "quadrant:N"],
        ),
        height=320,
    )
    body.charts.append((scatter, "Quadrant scatter"))
    return body


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
    states = [s for s in winback.migrate.MIGRATION_STATES if s != "not_yet_customer"]
    order_from = ["not_yet_customer", *states]
    base = alt.Chart(shares).encode(
        x=alt.X("to_state:N", title=f"state at {moves.labels[1]}", sort=states).axis(
            labelAngle=-30
        ),
        y=alt.Y("from_state:N", title=f"state at {moves.labels[0]}", sort=order_from),
    )
    heatmap = _width(
        base.mark_rect().encode(
            color=alt.Color(
                "share:Q", scale=alt.Scale(scheme="oranges", domain=[0, 1]), title="row share"
            ),
            tooltip=[
                "from_state:N",
                "to_state:N",
                "customers:Q",
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        + base.mark_text(fontSize=10).encode(
            text=alt.Text("share:Q", format=".0%"),
            color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")),
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


@register_section("value", "Value tiers: where the value is", order=70, requires=("value",))
def value_section(ctx: ReportContext) -> SectionBody:
    frame = ctx.value
    value_col = _score_column(frame, "expected_value", "clv", "expected_amount")
    if value_col is None:
        raise SkipSection(f"winback.value returned no value column (got {frame.columns})")
    tier_col = _score_column(frame, "value_tier", "tier")
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
    chart = _width(
        alt.Chart(points.select("customer_share", "value_share", "tier"))
        .mark_line(point=False)
        .encode(
            x=alt.X("customer_share:Q", title="share of customers (highest value first)").axis(
                format="%"
            ),
            y=alt.Y("value_share:Q", title=f"cumulative share of {value_col}").axis(format="%"),
            color=alt.Color("tier:N", title="value tier"),
            tooltip=[
                alt.Tooltip("customer_share:Q", format=".1%"),
                alt.Tooltip("value_share:Q", format=".1%"),
                "tier:N",
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
    base = alt.Chart(cells).encode(
        x=alt.X("to:O", title="periods since the last purchase, next period", sort=order).axis(
            labelAngle=0
        ),
        y=alt.Y("from:O", title="periods since the last purchase, now", sort=order),
    )
    heatmap = _width(
        base.mark_rect().encode(
            color=alt.Color("probability:Q", scale=alt.Scale(scheme="purples", domain=[0, 1])),
            tooltip=["from:O", "to:O", alt.Tooltip("probability:Q", format=".1%")],
        )
        + base.mark_text(fontSize=9).encode(
            text=alt.Text("probability:Q", format=".0%"),
            color=alt.condition("datum.probability > 0.5", alt.value("white"), alt.value("black")),
        ),
        width=420,
        height=360,
    )
    body = SectionBody(
        text=(
            "The value engine's Markov chain over recency (SPEC §7): from each number of periods "
            "since the last purchase, the chance of buying next period (to 0) or staying silent "
            "one period longer — its states pooled by recency, weighted by their customers and "
            "observed transitions."
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
        )
        bars = _width(
            alt.Chart(per_recency)
            .mark_bar(color="#6a51a3")
            .encode(
                x=alt.X("recency:O", title="periods since the last purchase", sort=order).axis(
                    labelAngle=0
                ),
                y=alt.Y("mean_value:Q", title="mean value over the horizon per customer"),
                tooltip=["recency:O", "customers:Q", "mean_value:Q"],
            ),
            width=360,
            height=300,
        )
        body.charts.append((bars, "Value of the chain's states (V_H) by recency"))
    return body


#: The series of the calibration plot and their colours (actual: dark and solid).
SERIES = ["actual", "BG/NBD", "MBG/NBD", "Pareto/NBD"]
SERIES_COLORS = ["#1f2933", "#3b7dd8", "#8e44ad", "#e67e22"]
#: Calibration frequencies from here on are pooled into one "N+" point.
MAX_FREQUENCY = 7


@register_section("calibration", "Models: calibration vs holdout", order=80)
def calibration_section(ctx: ReportContext) -> SectionBody:
    if not ctx.params.models:
        raise SkipSection("no models requested (models=())")
    try:
        data = ctx.holdout_summary
    except WinbackError as exc:
        raise SkipSection(str(exc)) from exc
    if "frequency_holdout" not in data.columns or data.height == 0:
        raise SkipSection("no customers in the calibration period")
    duration = float(data.get_column("duration_holdout")[0])
    bucket = pl.col("frequency").clip(0, MAX_FREQUENCY).alias("frequency")
    frames = [
        data.select(
            bucket, value=pl.col("frequency_holdout").cast(pl.Float64), series=pl.lit("actual")
        )
    ]
    params_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    totals = {"actual": float(data.get_column("frequency_holdout").sum())}
    for name, model in ctx.fitted_models.items():
        label = MODEL_NAMES[name][1]
        if isinstance(model, str):
            notes.append(f"{label} could not be fitted: {model}")
            continue
        predicted = model.expected_purchases(duration, data)
        frames.append(data.select(bucket, value=predicted, series=pl.lit(label)))
        totals[label] = float(predicted.sum())
        for param, estimate in model.params_.items():
            params_rows.append(
                {
                    "model": label,
                    "param": param,
                    "estimate": round(float(estimate), 4),
                    "std_error": round(float(model.params_se_[param]), 4),
                    "log_likelihood": round(float(model.log_likelihood_), 2),
                }
            )
    if len(frames) == 1:
        raise SkipSection("no model could be fitted: " + "; ".join(notes))
    means = (
        pl.concat(frames)
        .group_by("frequency", "series")
        .agg(
            pl.col("value").mean().round(4).alias("mean_holdout_purchases"),
            pl.len().alias("customers"),
        )
        .with_columns(
            label=pl.when(pl.col("frequency") == MAX_FREQUENCY)
            .then(pl.lit(f"{MAX_FREQUENCY}+"))
            .otherwise(pl.col("frequency").cast(pl.String))
        )
        .sort("frequency", "series")
    )
    labels = [str(i) for i in range(MAX_FREQUENCY)] + [f"{MAX_FREQUENCY}+"]
    present = set(means.get_column("series").to_list())
    series = [(s, c) for s, c in zip(SERIES, SERIES_COLORS, strict=True) if s in present]
    chart = _width(
        alt.Chart(means)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "label:O", title="repeat purchases in the calibration period", sort=labels
            ).axis(labelAngle=0),
            y=alt.Y("mean_holdout_purchases:Q", title="mean purchases in the holdout"),
            color=alt.Color("series:N", title="holdout purchases").scale(
                domain=[s for s, _ in series], range=[c for _, c in series]
            ),
            strokeDash=alt.StrokeDash("series:N", title="holdout purchases").scale(
                domain=[s for s, _ in series]
            ),
            tooltip=["label:O", "series:N", "mean_holdout_purchases:Q", "customers:Q"],
        ),
        height=300,
    )
    comparison = pl.DataFrame(
        {"series": list(totals), "holdout_purchases": [round(v, 1) for v in totals.values()]}
    )
    body = SectionBody(
        text=(
            f"Models fitted on purchases up to {_iso_any(ctx.calibration_end)} "
            f"({data.height:,} customers), predicting the next {duration:.1f} weeks to "
            f"{_iso_any(ctx.as_of)}; each point is the mean per customer with that many repeat "
            "purchases in the calibration period."
        ),
        charts=[(chart, "Calibration vs holdout: mean purchases per customer")],
        tables=[
            TableBlock(comparison, "Total holdout purchases: actual and predicted"),
            TableBlock(pl.DataFrame(params_rows), "Fitted parameters"),
        ],
    )
    body.notes.extend(notes)
    return body


def _iso_any(value: Any) -> str:
    if isinstance(value, datetime):
        return describe_moment(value)
    return value.isoformat() if isinstance(value, date) else str(value)


#: The campaign id of the report's activation list (it seeds the holdout and staff hashes).
CAMPAIGN_ID = "winback-report"
VALUE_COLUMNS = ("expected_value", "clv", "value_tier", "p_alive")


def campaign_input(ctx: ReportContext) -> pl.DataFrame:
    """The scored table the activation list is built from: RFM scores when ``winback.rfm``
    exists (else the silence scores), with the predicted value when ``winback.value`` exists."""
    base = ctx.rfm if callable(getattr(winback, "rfm", None)) else ctx.scores
    if callable(getattr(winback, "value", None)):
        try:
            value = ctx.value
        except WinbackError:
            return base
        extra = [c for c in VALUE_COLUMNS if c in value.columns]
        base = base.drop(extra, strict=False).join(
            value.select("customer_id", *extra), on="customer_id", how="left"
        )
    return base


@register_section("activation", "Activation list", order=90)
def activation_section(ctx: ReportContext) -> SectionBody:
    top_n = ctx.params.top_n
    note = ""
    if callable(getattr(winback, "campaign", None)):
        try:
            targets = call_capability(
                "campaign", campaign_input(ctx), campaign_id=CAMPAIGN_ID, start=ctx.as_of
            )
        except Exception as exc:  # a capability's failure leaves the fallback list, not no report
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            note = f"winback.campaign could not run with its defaults ({reason}). "
        else:
            return _campaign_body(targets, top_n)
    selected = ctx.scores.filter(
        pl.col("rank_ratio_group").is_in(["d", "e"]) | (pl.col("silence_score") >= 1.0)
    )
    keys: list[pl.Expr] = [
        pl.col("rank_ratio_group").to_physical(),
        pl.col("silence_score"),
        pl.col("customer_id"),
    ]
    ranked = selected.sort(keys, descending=[True, True, False], nulls_last=True)
    columns = [
        "customer_id",
        "rank_ratio_group",
        "silence_score",
        "silence_band",
        "recency_days",
        "max_gap_days",
        "n_occasions",
        "last_ts",
    ]
    if ctx.has_amount:
        columns.append("total_amount")
    top = ranked.head(top_n).select(
        pl.int_range(1, pl.len() + 1).alias("priority"),
        *[
            pl.col(c).round(2) if c in ("silence_score", "total_amount") else pl.col(c)
            for c in columns
        ],
    )
    return SectionBody(
        text=(
            f"The first {top.height:,} of {selected.height:,} customers in TrF group d or e or "
            "with S ≥ 1 (SPEC §8's default rule), in SPEC §2's priority order: group e first, "
            "then S descending, then customer id. "
            + (note or "Strategy, staff and follow-up columns appear once winback.campaign exists.")
        ),
        tables=[TableBlock(top, "Top customers to win back")],
    )


def _campaign_body(targets: pl.DataFrame, top_n: int) -> SectionBody:
    if "priority" in targets.columns:
        targets = targets.sort("priority")
    constant = [c for c in ("campaign_id", "campaign_start") if c in targets.columns]
    first = [c for c in ("priority", "customer_id") if c in targets.columns]
    shown = targets.select(*first, pl.exclude(*first, *constant)).head(top_n)
    shown = shown.with_columns(pl.col(pl.Float64).round(2))
    shown = shown.select(
        c for c in shown.columns if shown.get_column(c).null_count() < shown.height
    )
    body = SectionBody(
        text=(
            f"The first {shown.height:,} of {targets.height:,} targets of winback.campaign "
            "with its default rule, strategy map and holdout, in priority order."
        ),
        tables=[TableBlock(shown, "Top customers to win back")],
    )
    groups = [c for c in ("strategy", "arm") if c in targets.columns]
    if groups:
        counts = targets.group_by(groups).agg(pl.len().alias("customers")).sort(groups)
        body.tables.append(TableBlock(counts, "Targets per " + " and ".join(groups)))
    return body


@register_section("parameters", "Parameters used", order=100)
def parameters_section(ctx: ReportContext) -> SectionBody:
    used = ctx.parameters_used()
    table = pl.DataFrame({"parameter": list(used), "value": list(used.values())})
    return SectionBody(tables=[TableBlock(table, "Parameters")])
