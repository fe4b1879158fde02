"""The back-test section (docs/methods.md#backtest): every forecast winback offers, measured by
rolling origin on the report's own transactions — the metrics per method and horizon, and the
reliability of P(active). Opt-in (``winback.report(..., backtest=N)``, ``winback report
--backtest N``): it refits every model at each origin."""

from __future__ import annotations

from typing import Any

import polars as pl

from winback.report import _vegalite as vl
from winback.report._context import ReportContext, call_capability_raw
from winback.report._registry import SectionBody, SkipSection, TableBlock, register_section
from winback.report._sections.common import sized

__all__ = ["backtest_section"]

#: The summary's metrics the table shows, with their headings.
METRICS = {
    "pooled_total_error": "pooled total error",
    "mean_abs_total_error": "mean |total error|",
    "rmse": "RMSE",
    "spearman": "Spearman",
    "top_decile_capture": "top-decile capture",
    "brier": "Brier",
}


def _table(summary: pl.DataFrame) -> pl.DataFrame:
    shown = summary.select(
        "horizon",
        "method",
        "origins",
        *(pl.col(name).round(4).alias(title) for name, title in METRICS.items()),
    )
    return shown.with_columns(pl.col("origins").cast(pl.Int64))


def _reliability_chart(reliability: pl.DataFrame, horizon: str) -> Any:
    points = reliability.filter(pl.col("horizon") == horizon).select(
        "method", "decile", "mean_p_active", "observed_rate", "customers"
    )
    top = float(max(points.get_column("mean_p_active").max() or 0.0, 0.0))  # type: ignore[arg-type]
    top = max(top, float(points.get_column("observed_rate").max() or 0.0), 0.01)  # type: ignore[arg-type]
    diagonal = vl.Chart(pl.DataFrame({"p": [0.0, top]})).mark_line(
        color="#9aa5b1", strokeDash=[4, 4]
    )
    diagonal = diagonal.encode(x=vl.X("p:Q"), y=vl.Y("p:Q"))
    lines = (
        vl.Chart(points)
        .mark_line(point=True)
        .encode(
            x=vl.X("mean_p_active:Q", title="mean predicted P(active), by decile").axis(format="%"),
            y=vl.Y("observed_rate:Q", title="observed share active").axis(format="%"),
            color=vl.Color("method:N", title="method"),
            tooltip=[
                vl.Tooltip("method:N"),
                vl.Tooltip("decile:O"),
                vl.Tooltip("customers:Q"),
                vl.Tooltip("mean_p_active:Q", format=".1%"),
                vl.Tooltip("observed_rate:Q", format=".1%"),
            ],
        )
    )
    return sized(diagonal + lines, width=420, height=320)


@register_section(
    "backtest", "Back-test: how the forecasts did on this data", order=78, requires=("backtest",)
)
def backtest_section(ctx: ReportContext) -> SectionBody:
    origins = ctx.params.backtest
    if origins is None:
        raise SkipSection(
            "not asked for: pass backtest=N (winback report --backtest N) to back-test the "
            "forecasts on the last N month ends; it refits every model at each origin"
        )
    if not ctx.has_amount:
        raise SkipSection("no amount column: the forecasts are of revenue")
    result = call_capability_raw(
        "backtest",
        ctx.data,
        origins=origins,
        as_of=ctx.as_of,
        details=False,
        resolution=ctx.params.resolution,
    )
    summary = result.summary.filter(pl.col("note").is_null())
    if summary.height == 0:
        raise SkipSection("no method could be back-tested at these origins")
    body = SectionBody(
        text=(
            "Every forecast winback offers, calibrated at each origin (a month end) on the "
            "transactions up to it and compared with what each customer spent over the horizon "
            f"(docs/methods.md#backtest); {summary.get_column('origins').max()} origin(s). "
            "Total errors are forecast / actual − 1; top-decile capture is the share of the "
            "actual revenue from the 10% of customers the method ranks highest; Brier scores "
            "P(active) (lower is better)."
        ),
        tables=[TableBlock(_table(summary), "Metrics per horizon and method, over the origins")],
    )
    reliability = result.reliability
    for horizon in result.horizons:
        if reliability.filter(pl.col("horizon") == horizon).height:
            body.charts.append(
                (
                    _reliability_chart(reliability, horizon),
                    f"Reliability of P(active), {horizon}: observed vs predicted by decile "
                    "(on the dashed line when calibrated)",
                )
            )
    notes = result.summary.filter(pl.col("note").is_not_null())
    for method, horizon, note in notes.select("method", "horizon", "note").rows():
        body.notes.append(f"{method} ({horizon}): {note}")
    return body
