"""The activation list (docs/methods.md#campaign): ``winback.campaign``'s targets on the RFM scores
with the predicted value, or The default rule (docs/methods.md#campaign) on the silence scores when
the campaign cannot run."""

from __future__ import annotations

import polars as pl

from winback.errors import WinbackError
from winback.report._context import ReportContext, call_capability
from winback.report._registry import SectionBody, TableBlock, register_section

__all__ = [
    "CAMPAIGN_ID",
    "VALUE_COLUMNS",
    "activation_section",
    "campaign_input",
    "top_contacts",
]

#: The campaign id of the report's activation list (it seeds the holdout and staff hashes).
CAMPAIGN_ID = "winback-report"
VALUE_COLUMNS = ("expected_value", "clv", "value_tier", "p_alive")


def campaign_input(ctx: ReportContext) -> pl.DataFrame:
    """The scored table the activation list is built from: the RFM scores, with the predicted
    value joined (the RFM scores alone when :func:`winback.value` cannot run on the data)."""
    base = ctx.rfm
    try:
        value = ctx.value
    except WinbackError:
        return base
    extra = [c for c in VALUE_COLUMNS if c in value.columns]
    return base.drop(extra, strict=False).join(
        value.select("customer_id", *extra), on="customer_id", how="left"
    )


@register_section("activation", "Activation list", order=90)
def activation_section(ctx: ReportContext) -> SectionBody:
    top_n = ctx.params.top_n
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
            "with S ≥ 1 (the default rule, docs/methods.md#campaign), in priority order "
            "(docs/methods.md#priority): group e first, "
            "then S descending, then customer id. " + note
        ),
        tables=[TableBlock(top, "Top customers to win back")],
    )


def top_contacts(targets: pl.DataFrame, top_n: int) -> tuple[pl.DataFrame, str]:
    """The report's "Top customers to win back": the first ``top_n`` targets to contact
    (``contact`` true: treatment arm, strategy not ``no_action``), ranked by predicted value
    descending (nulls last), then priority; by priority alone when no target has a predicted value.
    Returns the rows (every target column, best first) and the rule in words."""
    contacts = targets.filter(pl.col("contact")) if "contact" in targets.columns else targets
    valued = (
        "predicted_value" in contacts.columns
        and contacts.get_column("predicted_value").null_count() < contacts.height
    )
    if valued:
        ranked = contacts.sort(
            ["predicted_value", "priority"], descending=[True, False], nulls_last=True
        )
        rule = (
            "ranked by predicted value (the 12-month CLV when winback.value ran, else the "
            "expected value; docs/methods.md#value) descending, then by priority"
        )
    else:
        ranked = contacts.sort("priority")
        rule = "in priority order (docs/methods.md#priority): no predicted value is available"
    return ranked.head(top_n), rule


def _campaign_body(targets: pl.DataFrame, top_n: int) -> SectionBody:
    top, rule = top_contacts(targets, top_n)
    contacts = int(targets.get_column("contact").sum()) if "contact" in targets.columns else 0
    constant = [c for c in ("campaign_id", "campaign_start", "contact") if c in top.columns]
    first = [c for c in ("customer_id", "predicted_value", "priority") if c in top.columns]
    shown = top.select(*first, pl.exclude(*first, *constant))
    shown = shown.with_columns(pl.col(pl.Float64).round(2))
    shown = shown.select(
        c for c in shown.columns if shown.get_column(c).null_count() < shown.height
    )
    body = SectionBody(
        text=(
            f"winback.campaign with its default rule, strategy map and holdout "
            f"(docs/methods.md#campaign) targets {targets.height:,} customers, {contacts:,} of "
            f"them to contact (treatment arm, strategy not no_action). The table lists the "
            f"first {shown.height:,} customers to contact, {rule}; the priority column is their "
            "place in the full target list."
        ),
        tables=[TableBlock(shown, "Top customers to win back")],
    )
    groups = [c for c in ("strategy", "arm") if c in targets.columns]
    if groups:
        counts = targets.group_by(groups).agg(pl.len().alias("customers")).sort(groups)
        body.tables.append(TableBlock(counts, "Targets per " + " and ".join(groups)))
    return body
