"""The models section (docs/methods.md#models): purchase models fitted on a calibration period,
against the holdout."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl

from winback._io import describe_moment
from winback.errors import WinbackError
from winback.report import _vegalite as vl
from winback.report._context import MODEL_NAMES, ReportContext
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized, tooltips

__all__ = ["calibration_section"]

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
        predicted = _expected_purchases(model, duration, data)
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
    chart = sized(
        vl.Chart(means)
        .mark_line(point=True)
        .encode(
            x=vl.X("label:O", title="repeat purchases in the calibration period", sort=labels).axis(
                labelAngle=0
            ),
            y=vl.Y("mean_holdout_purchases:Q", title="mean purchases in the holdout"),
            color=vl.Color("series:N", title="holdout purchases").scale(
                domain=[s for s, _ in series], range=[c for _, c in series]
            ),
            strokeDash=vl.StrokeDash("series:N", title="holdout purchases").scale(
                domain=[s for s, _ in series]
            ),
            tooltip=tooltips("label:O", "series:N", "mean_holdout_purchases:Q", "customers:Q"),
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


def _expected_purchases(model: Any, duration: float, data: pl.DataFrame) -> pl.Series:
    """``model.expected_purchases(duration, data)``, computed once per distinct (frequency,
    recency, T) and spread back to the customers in their order.

    The prediction is a function of these three alone, evaluated element by element, so every
    customer gets the same bits as from the call on all of them; customers share tuples (a
    million customers over two years have about half as many distinct ones), and the Pareto/NBD's
    P(alive) per tuple is the costly part of the section at that size.
    """
    keys = data.select("frequency", "recency", "T")
    distinct = keys.unique(maintain_order=True)
    if distinct.height == keys.height:
        predicted: pl.Series = model.expected_purchases(duration, data)
        return predicted
    per_tuple: pl.Series = model.expected_purchases(duration, distinct)
    return (
        keys.join(
            distinct.with_columns(per_tuple.alias("__predicted")),
            on=["frequency", "recency", "T"],
            how="left",
            maintain_order="left",
        )
        .get_column("__predicted")
        .alias(per_tuple.name)
    )


def _iso_any(value: Any) -> str:
    if isinstance(value, datetime):
        return describe_moment(value)
    return value.isoformat() if isinstance(value, date) else str(value)
