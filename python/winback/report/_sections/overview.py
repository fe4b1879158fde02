"""The report's first and last sections: the data summary (what was read) and the parameters
used."""

from __future__ import annotations

from typing import Any

import polars as pl

from winback.report._context import ReportContext
from winback.report._registry import SectionBody, TableBlock, register_section
from winback.silence import STATUS_LABELS

__all__ = ["SUMMARY_LABELS", "data_summary", "parameters_section", "summary_figures"]

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


@register_section("parameters", "Parameters used", order=100)
def parameters_section(ctx: ReportContext) -> SectionBody:
    used = ctx.parameters_used()
    table = pl.DataFrame({"parameter": list(used), "value": list(used.values())})
    return SectionBody(tables=[TableBlock(table, "Parameters")])
