"""The segments and the win-back workflow (docs/methods.md#rfm, #campaign): ``winback segment``
(RFM, tiers, quadrants, rule-based classes), ``winback campaign`` (the target list) and ``winback
evaluate`` (uplift against the holdout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import polars as pl
import typer

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ON_INVALID,
    PRIORITY,
    PRIORITY_WEIGHTS,
    PRODUCT_COL,
    TIME_COL,
    PriorityKind,
)
from winback.cli._app import app
from winback.cli._common import (
    AmountCol,
    CustomerCol,
    IdType,
    JsonOut,
    OnInvalidOption,
    OutputDir,
    OutputTable,
    Snapshot,
    TimeCol,
    TimeFormat,
    TimeZone,
    check_days,
    check_output_dir,
    check_output_file,
    frame_table,
    make_dir,
    prepare_input,
    read_options,
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
#: ``campaign --rule``, the old name of ``--rules``: still read, not shown.
RuleAlias = Annotated[str | None, typer.Option("--rule", hidden=True)]
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


def _check_rules_file(name: str | None, flag: str) -> None:
    """A rules file that is not UTF-8 or not TOML (or nested too deeply for the parser) is a
    one-line error naming the flag, before any work."""
    import tomllib

    from winback.segments import presets

    if name is None or name in presets():
        return
    path = Path(name)
    if not path.is_file():
        return  # the library names the presets and the missing file
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WinbackConfigError(
            f"{flag} {name!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise WinbackConfigError(f"{flag} {name!r} cannot be read ({exc.strerror})") from None
    try:
        tomllib.loads(text)
    except RecursionError:
        raise WinbackConfigError(
            f"{flag} {name!r} is nested too deeply to be a rules file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise WinbackConfigError(f"{flag} {name!r} is not valid TOML ({exc})") from None


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
    reading: dict[str, Any] | None = None,
    with_lapse: bool = False,
) -> pl.DataFrame:
    """Transactions → silence + RFM + quadrant (+ ``p_lapse`` with ``with_lapse``,
    docs/methods.md#p-lapse); an already-scored table gets what it lacks. Transactions are read
    once with the command's reading flags (``reading``)."""
    from winback import _io
    from winback.rfm import is_scored_table, quadrant, rfm

    if monetary not in ("total", "mean"):
        raise WinbackConfigError(f"--monetary {monetary!r} must be 'total' or 'mean'")
    mode: Literal["total", "mean"] = "total" if monetary == "total" else "mean"
    frame = _io.to_polars(input)
    if is_scored_table(_io.read_schema(frame).names()):
        table = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        if "rfm_segment" not in table.columns:
            table = rfm(table, monetary=mode)
    else:
        options = reading or {
            "customer_col": customer_col,
            "time_col": time_col,
            "amount_col": amount_col,
        }
        prepared = prepare_input(input, options)
        table = rfm(
            prepared,
            as_of=as_of,
            window=window,
            monetary=mode,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
        if with_lapse:
            from winback.lapse import lapse

            scores = lapse(prepared, as_of=as_of).select("customer_id", "p_lapse")
            table = table.join(scores, on="customer_id", how="left", maintain_order="left")
    return table if "quadrant" in table.columns else quadrant(table)


def _check_recommend(input: str, n: int) -> None:
    """``--recommend N`` needs a whole N ≥ 1 and transactions (a scored table has no products):
    refused before the work."""
    from winback import _io
    from winback.rfm import is_scored_table

    if n < 0:
        raise WinbackConfigError(f"--recommend {n}: give the products per target, at least 1")
    if is_scored_table(_io.read_schema(_io.to_polars(input)).names()):
        raise WinbackConfigError(
            "--recommend needs the transactions (with a product column), not a scored table; "
            "pass the transactions file as the input"
        )


def _with_products(
    targets: pl.DataFrame, input: str, n: int, customer_col: str, product_col: str
) -> pl.DataFrame:
    """The target list with ``recommended_products`` last: ``n`` products for each target
    (:func:`winback.recommend`, docs/methods.md#recommendations), row order kept."""
    from winback.recommend import recommend

    ids = targets.get_column("customer_id")
    products = recommend(
        input, customers=ids, n=n, customer_col=customer_col, product_col=product_col
    ).select(pl.col("customer_id").cast(ids.dtype), "recommended_products")
    return targets.join(products, on="customer_id", how="left", maintain_order="left")


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
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
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

    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    for name in rules or []:
        _check_rules_file(name, "--rules")
    check_output_file(output, inputs=[input, segment_map])
    with stage(f"segmenting {input}"):
        table = _scored(
            input,
            as_of=as_of,
            window=window,
            monetary=monetary,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            reading=reading,
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
    rules: Annotated[
        str,
        typer.Option(
            "--rules", help="Selection rules: default, salon, auto_dealer or a .toml file."
        ),
    ] = "default",
    rule: RuleAlias = None,
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
    priority: Annotated[
        str,
        typer.Option(
            help="Order of the list: group (TrF group, S, value), lapse_value (p_lapse × value) "
            "or blend (docs/methods.md#priority-blend). p_lapse is learned from the "
            "transactions' history, or read from a scored table's p_lapse column."
        ),
    ] = PRIORITY,
    priority_weight: Annotated[
        list[str] | None,
        typer.Option(
            "--priority-weight",
            help="Weight of a blend component: p_lapse=W, value=W, business=W (repeatable).",
        ),
    ] = None,
    business_score_col: Annotated[
        str | None,
        typer.Option(help="Column of the scored table with the business's own score (blend)."),
    ] = None,
    recommend: Annotated[
        int,
        typer.Option(
            "--recommend",
            help="Products to recommend per target from purchase co-occurrence (0: none); "
            "needs transactions with a product column (docs/methods.md#recommendations).",
        ),
    ] = 0,
    product_col: Annotated[
        str, typer.Option(help="Product id column of the transactions (--recommend).")
    ] = PRODUCT_COL,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    json_out: JsonOut = False,
) -> None:
    """Build the win-back target list: priority, strategy, staff, next contact, arm.

    Writes the columns a CRM imports: campaign_id, customer_id, priority, segment, strategy,
    arm, contact, staff, next_contact, rank_ratio_group, silence_score, recency_days,
    predicted_value, value_level, quadrant, rfm_segment, campaign_start. Contact the rows with
    contact = true; the control arm is the holdout. With --recommend N, a last column
    recommended_products: N product ids per target, best first (joined by | in a CSV).

    Example: winback campaign sales.parquet --campaign-id july --staff ann --staff bo -o t.csv
    """
    from winback.campaign import campaign as build

    if rule is not None:
        if rules != "default" and rules != rule:
            raise WinbackConfigError("give the selection rules once, with --rules")
        rules = rule
    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    _check_rules_file(rules, "--rules")
    _check_rules_file(strategy_map, "--strategy-map")
    if recommend:
        _check_recommend(input, recommend)
    check_output_file(output, inputs=[input])
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
    weights: dict[str, float] = {}
    for name, value in _pairs(priority_weight, "--priority-weight").items():
        try:
            weights[name] = float(value)
        except ValueError as exc:
            raise WinbackConfigError(f"--priority-weight {name}={value!r}: not a number") from exc
    blend_weights = weights or None
    if priority not in ("group", "lapse_value", "blend"):
        raise WinbackConfigError(f"--priority {priority!r} must be group, lapse_value or blend")
    needs_lapse = priority == "lapse_value" or (
        priority == "blend" and (blend_weights or PRIORITY_WEIGHTS).get("p_lapse", 0) > 0
    )
    with stage(f"scoring {input}"):
        table = _scored(
            input,
            as_of=as_of,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            reading=reading,
            with_lapse=needs_lapse,
        )
    with stage("building the campaign"):
        targets = build(
            table,
            campaign_id=campaign_id,
            rule=rules,
            strategy_map=strategy_map,
            staff=names,
            capacity=caps or capacity,
            cadence=cadence_table or None,
            holdout=holdout,
            start=start,
            thresholds=overrides or None,
            priority=cast(PriorityKind, priority),
            priority_weights=blend_weights,
            business_score_col=business_score_col,
        )
    if recommend:
        with stage("recommending products"):
            targets = _with_products(targets, input, recommend, customer_col, product_col)
    with stage(f"writing {output}"):
        write_output(targets, output)
    arms = _counts(targets, "arm").rows()
    if json_out:
        contacts = targets.filter(pl.col("contact"))
        # Contacts without a staff member (no --staff) are not a staff member called "None".
        staff_counts = {
            str(k): int(v) for k, v in _counts(contacts, "staff").rows() if k is not None
        }
        typer.echo(
            json.dumps(
                {
                    "campaign_id": campaign_id,
                    "targets": targets.height,
                    "contacts": contacts.height,
                    "arms": {str(k): int(v) for k, v in arms},
                    "staff": staff_counts or None,
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
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    json_out: JsonOut = False,
) -> None:
    """Measure a campaign against its holdout: reactivation, revenue, uplift with 95 % intervals.

    Writes OUTPUT/uplift.csv (per segment: rates, uplift and Newcombe interval, revenue uplift
    and Welch interval, incremental revenue, costs), OUTPUT/arms.csv (per segment and arm) and
    OUTPUT/migration.csv (group moves per arm, when the transactions hold the history).

    Example: winback evaluate targets.csv sales.parquet --window-days 30 -o evaluation/
    """
    from winback.evaluation import evaluate as measure

    check_days(window_days, "--window-days")
    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    check_output_dir(output, inputs=[targets, transactions])
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
            prepare_input(transactions, reading),
            window_days=window_days,
            start=start,
            by=by or None,
            cost_per_contact=costs,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
    make_dir(output)
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
    note = "" if result.window_complete else " (the data ends before the window does)"
    show(
        _uplift_table(f"uplift, {result.window_start} → {result.window_end}{note}", result.uplift),
        f"Results written to {output.resolve()}",
    )


def _uplift_table(title: str, uplift: pl.DataFrame) -> Any:
    """The uplift per segment, readable at 80 columns: counts, rates in %, the uplift in
    percentage points with its 95 % interval, and the incremental revenue (all in uplift.csv)."""
    from rich import box
    from rich.table import Table

    def percent(value: float | None) -> str:
        return "–" if value is None or value != value else f"{100 * value:.1f}%"

    def points(value: float | None) -> str:
        return "–" if value is None or value != value else f"{100 * value:+.1f}"

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="treated/control: customers per arm; rate: share who bought in the window; "
        "uplift in percentage points (Newcombe 95 % interval); revenue: incremental.",
    )
    longest = max((len(str(s)) for s in uplift.get_column("segment").drop_nulls()), default=7)
    table.add_column("segment", overflow="fold", min_width=min(max(longest, 7), 16))
    for name in ("treated", "control", "rate T", "rate C", "uplift [95% CI]", "revenue"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in uplift.iter_rows(named=True):
        revenue = row["incremental_revenue"]
        table.add_row(
            "" if row["segment"] is None else str(row["segment"]),
            f"{row['customers_treatment']:,}",
            f"{row['customers_control']:,}",
            percent(row["rate_treatment"]),
            percent(row["rate_control"]),
            f"{points(row['rate_uplift'])} "
            f"[{points(row['rate_uplift_low'])}, {points(row['rate_uplift_high'])}]",
            "–" if revenue is None or revenue != revenue else f"{revenue:,.0f}",
        )
    return table
