"""The segments and the win-back workflow (docs/methods.md#rfm, #campaign): ``winback segment``
(RFM, tiers, quadrants, rule-based classes), ``winback campaign`` (the target list) and ``winback
evaluate`` (uplift against the holdout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import typer

from winback._options import AMOUNT_COL, CUSTOMER_COL, TIME_COL
from winback.cli._app import app
from winback.cli._common import (
    AmountCol,
    CustomerCol,
    JsonOut,
    OutputDir,
    OutputTable,
    Snapshot,
    TimeCol,
    frame_table,
    show,
    stage,
    write_output,
)
from winback.errors import WinbackConfigError

__all__ = ["campaign", "evaluate", "segment"]

RulesOption = Annotated[
    list[str] | None,
    typer.Option("--rules", help="Rules preset (salon, auto_dealer) or .toml file (repeatable)."),
]
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option("--threshold", help="Override a rules threshold: NAME=VALUE (repeatable)."),
]


def _parse_value(text: str) -> Any:
    if "," in text:
        return [_parse_value(part) for part in text.split(",") if part.strip()]
    value = text.strip()
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise WinbackConfigError(f"{option} {item!r} must look like NAME=VALUE")
        out[name.strip()] = value.strip()
    return out


def _scored(
    input: str,
    *,
    as_of: str | None,
    window: str | None = None,
    monetary: str = "total",
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str = AMOUNT_COL,
) -> pl.DataFrame:
    """Transactions → silence + RFM + quadrant; an already-scored table gets what it lacks."""
    from winback import _io
    from winback.rfm import is_scored_table, quadrant, rfm

    if monetary not in ("total", "mean"):
        raise WinbackConfigError(f"--monetary {monetary!r} must be 'total' or 'mean'")
    mode: Literal["total", "mean"] = "total" if monetary == "total" else "mean"
    frame = _io.to_polars(input)
    if is_scored_table(frame.collect_schema().names()):
        table = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        if "rfm_segment" not in table.columns:
            table = rfm(table, monetary=mode)
    else:
        table = rfm(
            frame,
            as_of=as_of,
            window=window,
            monetary=mode,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
    return table if "quadrant" in table.columns else quadrant(table)


def _counts(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    return (
        frame.group_by([pl.col(c).cast(pl.String) for c in columns])
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .sort(*columns, nulls_last=True)
    )


@app.command()
def segment(
    input: Annotated[
        str, typer.Argument(help="Transactions, or a scored table (winback score output).")
    ],
    output: OutputTable,
    as_of: Snapshot = None,
    rules: RulesOption = None,
    threshold: ThresholdOption = None,
    window: Annotated[
        str | None, typer.Option(help="F and M over this window only, e.g. 365d.")
    ] = None,
    monetary: Annotated[str, typer.Option(help="M as the total or mean amount.")] = "total",
    segment_map: Annotated[
        Path | None,
        typer.Option(help="CSV of named segments: rfm_cell,segment or segment,r_min,r_max,…"),
    ] = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    json_out: JsonOut = False,
) -> None:
    """RFM scores and named segments, the three tiers, quadrants and rule-based classes.

    Writes one row per customer: the silence columns, rfm_frequency, rfm_monetary, r_score,
    f_score, m_score, fm_score, rfm_cell, rfm_segment, rfm_tier, quadrant, and one column per
    classifier of each --rules file.

    Example: winback segment sales.parquet --as-of 2024-06-30 --rules salon -o segments.csv
    """
    from winback.rfm import rfm
    from winback.segments import classify

    with stage(f"segmenting {input}"):
        table = _scored(
            input,
            as_of=as_of,
            window=window,
            monetary=monetary,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
        if segment_map is not None:
            mapping = pl.read_csv(segment_map, schema_overrides={"rfm_cell": pl.String})
            table = rfm(
                table, monetary="mean" if monetary == "mean" else "total", segment_map=mapping
            )
        overrides = {k: _parse_value(v) for k, v in _pairs(threshold, "--threshold").items()}
        classifiers: list[str] = []
        for name in rules or []:
            from winback.segments import load_rules

            rule_set = load_rules(name, thresholds=overrides or None)
            table = classify(table, rule_set)
            classifiers += [c.column for c in rule_set.classifiers]
    with stage(f"writing {output}"):
        write_output(table, output)
    if json_out:
        segments = _counts(table, "rfm_segment").rows()
        typer.echo(
            json.dumps(
                {
                    "customers": table.height,
                    "output": str(output),
                    "rfm_segments": {str(k): int(v) for k, v in segments},
                    "classifiers": classifiers,
                }
            )
        )
        return
    show(
        frame_table("RFM segments", _counts(table, "rfm_segment")),
        frame_table("tiers × quadrants", _counts(table, "rfm_tier", "quadrant")),
        *[frame_table(f"rules: {c}", _counts(table, c)) for c in classifiers],
    )


@app.command()
def campaign(
    input: Annotated[
        str, typer.Argument(help="Transactions, or a scored table (winback score/segment output).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Target list .csv or .parquet.")],
    campaign_id: Annotated[
        str, typer.Option(help="Campaign name; seeds the holdout and staff assignment.")
    ],
    as_of: Snapshot = None,
    rule: Annotated[
        str, typer.Option(help="Selection rules: default, salon, auto_dealer or a .toml file.")
    ] = "default",
    strategy_map: Annotated[
        str | None, typer.Option(help="Strategy rules: a preset name or .toml file.")
    ] = None,
    staff: Annotated[
        list[str] | None,
        typer.Option("--staff", help="Staff member, optionally NAME:CAPACITY (repeatable)."),
    ] = None,
    capacity: Annotated[int | None, typer.Option(help="Most customers per staff member.")] = None,
    holdout: Annotated[float, typer.Option(help="Control share kept uncontacted.")] = 0.1,
    cadence: Annotated[
        list[str] | None,
        typer.Option("--cadence", help="Days to first contact: SEGMENT=DAYS or SEGMENT=MIN-MAX."),
    ] = None,
    threshold: ThresholdOption = None,
    start: Annotated[
        str | None, typer.Option(help="Campaign start date (default: the as_of).")
    ] = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    json_out: JsonOut = False,
) -> None:
    """Build the win-back target list: priority, strategy, staff, next contact, arm.

    Writes the columns a CRM imports: campaign_id, customer_id, priority, segment, strategy,
    arm, contact, staff, next_contact, rank_ratio_group, silence_score, recency_days,
    predicted_value, value_level, quadrant, rfm_segment, campaign_start. Contact the rows with
    contact = true; the control arm is the holdout.

    Example: winback campaign sales.parquet --campaign-id july --staff ann --staff bo -o t.csv
    """
    from winback.campaign import campaign as build

    names: list[str] | None = None
    caps: dict[str, int] = {}
    for item in staff or []:
        name, sep, cap = item.rpartition(":") if ":" in item else (item, "", "")
        names = [*(names or []), name]
        if sep:
            try:
                caps[name] = int(cap)
            except ValueError as exc:
                raise WinbackConfigError(f"--staff {item!r}: capacity must be a number") from exc
    if staff is not None and not staff:
        names = []
    if caps and capacity is not None:
        raise WinbackConfigError("give capacities either per --staff NAME:N or with --capacity")
    cadence_table: dict[str, Any] = {}
    for label, value in _pairs(cadence, "--cadence").items():
        low, dash, high = value.partition("-")
        try:
            cadence_table[label] = (int(low), int(high)) if dash else int(low)
        except ValueError as exc:
            raise WinbackConfigError(f"--cadence {label}={value!r}: use DAYS or MIN-MAX") from exc
    overrides = {k: _parse_value(v) for k, v in _pairs(threshold, "--threshold").items()}
    with stage(f"scoring {input}"):
        table = _scored(
            input, as_of=as_of, customer_col=customer_col, time_col=time_col, amount_col=amount_col
        )
    with stage("building the campaign"):
        targets = build(
            table,
            campaign_id=campaign_id,
            rule=rule,
            strategy_map=strategy_map,
            staff=names,
            capacity=caps or capacity,
            cadence=cadence_table or None,
            holdout=holdout,
            start=start,
            thresholds=overrides or None,
        )
    with stage(f"writing {output}"):
        write_output(targets, output)
    arms = _counts(targets, "arm").rows()
    if json_out:
        contacts = targets.filter(pl.col("contact"))
        typer.echo(
            json.dumps(
                {
                    "campaign_id": campaign_id,
                    "targets": targets.height,
                    "contacts": contacts.height,
                    "arms": {str(k): int(v) for k, v in arms},
                    "staff": {str(k): int(v) for k, v in _counts(contacts, "staff").rows()},
                    "output": str(output),
                }
            )
        )
        return
    show(
        frame_table(
            "targets by segment, strategy and arm", _counts(targets, "segment", "strategy", "arm")
        ),
        frame_table("contacts by staff", _counts(targets.filter(pl.col("contact")), "staff")),
        f"{targets.height:,} targets written to {output.resolve()}",
    )


@app.command()
def evaluate(
    targets: Annotated[str, typer.Argument(help="The target list (winback campaign output).")],
    transactions: Annotated[
        str, typer.Argument(help="Transactions covering the window (and ideally the history).")
    ],
    output: OutputDir,
    window_days: Annotated[int, typer.Option(help="Days after the start that count.")] = 30,
    by: Annotated[str, typer.Option(help="Target-list column to break results down by.")] = (
        "segment"
    ),
    cost_per_contact: Annotated[float | None, typer.Option(help="Cost of one contact.")] = None,
    cost: Annotated[
        list[str] | None,
        typer.Option("--cost", help="Cost of one contact by strategy: STRATEGY=COST (repeatable)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Campaign start (default: the list's campaign_start).")
    ] = None,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    json_out: JsonOut = False,
) -> None:
    """Measure a campaign against its holdout: reactivation, revenue, uplift with 95 % intervals.

    Writes OUTPUT/uplift.csv (per segment: rates, uplift and Newcombe interval, revenue uplift
    and Welch interval, incremental revenue, costs), OUTPUT/arms.csv (per segment and arm) and
    OUTPUT/migration.csv (group moves per arm, when the transactions hold the history).

    Example: winback evaluate targets.csv sales.parquet --window-days 30 -o evaluation/
    """
    from winback.evaluation import evaluate as measure

    if cost and cost_per_contact is not None:
        raise WinbackConfigError("give either --cost-per-contact or --cost STRATEGY=COST")
    costs: float | dict[str, float] | None = cost_per_contact
    if cost:
        try:
            costs = {k: float(v) for k, v in _pairs(cost, "--cost").items()}
        except ValueError as exc:
            raise WinbackConfigError("--cost values must be numbers") from exc
    with stage("evaluating"):
        result = measure(
            targets,
            transactions,
            window_days=window_days,
            start=start,
            by=by or None,
            cost_per_contact=costs,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
    output.mkdir(parents=True, exist_ok=True)
    write_output(result.uplift, output / "uplift.csv")
    write_output(result.arms, output / "arms.csv")
    if result.migration is not None:
        write_output(result.migration, output / "migration.csv")
    overall = result.uplift.row(0, named=True)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "window_start": result.window_start.isoformat(),
                    "window_end": result.window_end.isoformat(),
                    "window_complete": result.window_complete,
                    "overall": overall,
                    "output": str(output),
                },
                allow_nan=True,
            )
        )
        return
    shown = result.uplift.select(
        "segment",
        "customers_treatment",
        "customers_control",
        "rate_treatment",
        "rate_control",
        "rate_uplift",
        "rate_uplift_low",
        "rate_uplift_high",
        "revenue_uplift",
        "incremental_revenue",
    )
    note = "" if result.window_complete else " — the data ends before the window does"
    show(
        frame_table(f"uplift, {result.window_start} → {result.window_end}{note}", shown),
        f"Results written to {output.resolve()}",
    )
