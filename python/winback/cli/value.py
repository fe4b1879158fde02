"""``winback value``: next-period value, cost, expense and Markov CLV per customer."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    FORECAST,
    HORIZON_PERIODS,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    TIME_COL,
)
from winback.cli._app import app
from winback.cli._common import (
    AmountCol,
    CustomerCol,
    DataEnd,
    IdType,
    JsonOut,
    OnInvalidOption,
    Resolution,
    TimeCol,
    TimeFormat,
    TimeZone,
    Transactions,
    check_distinct,
    check_output_file,
    check_period,
    check_resolution,
    input_columns,
    prepare_input,
    read_options,
    show,
    stage,
    write_output,
)
from winback.errors import WinbackInputError

__all__ = ["value_command"]


@app.command("value")
def value_command(
    input: Transactions,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Per-customer values (.parquet or .csv).")
    ],
    expenses: Annotated[
        str | None,
        typer.Option(help="Marketing expenses per customer (customer_id, ts, expense)."),
    ] = None,
    as_of: DataEnd = None,
    period: Annotated[str, typer.Option(help="Period: month, week, quarter, Nd.")] = PERIOD,
    margin: Annotated[
        float | None, typer.Option(help="Margin in [0, 1] when there is no cost column.")
    ] = None,
    horizon: Annotated[int, typer.Option(help="CLV horizon in periods.")] = HORIZON_PERIODS,
    discount_rate: Annotated[float, typer.Option(help="Discount rate per period.")] = 0.01,
    forecast: Annotated[
        str,
        typer.Option(
            help="Headline forecast: nbd, dropout, stacked, combined or auto "
            "(docs/methods.md#headline-forecast)."
        ),
    ] = FORECAST,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    cost_col: Annotated[str, typer.Option(help="Cost column (used when present).")] = "cost",
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    states_out: Annotated[
        Path | None, typer.Option(help="Also write the Markov states with V (.parquet/.csv).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Next-period value, cost, expense and Markov CLV per customer (docs/methods.md#value,
    #markov).

    Example: winback value sales.parquet --expenses spend.parquet --period month -o value.parquet
    """
    from winback.value import value

    check_period(period)
    check_resolution(resolution)
    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    check_output_file(output, inputs=[input, expenses])
    check_output_file(states_out, inputs=[input, expenses], flag="--states-out")
    check_distinct(output, states_out)
    columns = input_columns(input)
    if amount_col not in columns:
        raise WinbackInputError(
            f"column {amount_col!r} (the amount) is not in the input; value needs amounts. "
            "Pass --amount-col NAME to name it."
        )
    # As winback.value does: the default cost column is used only when present.
    costs = cost_col if cost_col != "cost" or "cost" in columns else None
    with stage(f"valuing {input}"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = value(
            prepare_input(input, reading, cost_col=costs),
            as_of=as_of,
            period=period,
            expenses=expenses,
            margin=margin,
            horizon=horizon,
            discount_rate=discount_rate,
            forecast=forecast,  # type: ignore[arg-type]  # checked by value()
            resolution=resolution,
            # The expenses are read with the same column names.
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            cost_col=cost_col,
            tz=reading.get("tz"),
            on_invalid=reading["on_invalid"],
        )
    for warning in caught:  # one line each, not Python's file:line form
        typer.echo(f"warning: {warning.message}", err=True)
    with stage(f"writing {output}"):
        frame = result.frame.with_columns(pl.col("p_frequency").arr.to_list())
        write_output(
            frame if output.suffix.lower() != ".csv" else frame.drop("p_frequency"), output
        )
        if states_out is not None and result.chain is not None:
            write_output(result.chain.states, states_out)
    tiers = (
        result.frame.group_by("value_tier")
        .agg(pl.len().alias("customers"), pl.col("expected_value").sum(), pl.col("clv").sum())
        .sort("clv", descending=True, nulls_last=True)
    )
    summary = {
        "customers": result.frame.height,
        "modelled": int((result.frame.get_column("status") == "modelled").sum()),
        "periods": result.info.n_complete_periods,
        "kappa": None if result.chain is None else result.chain.kappa,
        "expected_value": result.frame.get_column("expected_value").sum(),
        "clv": result.frame.get_column("clv").sum(),
        "expense_rows_unmatched": result.info.expense_rows_unmatched,
        "count_model": result.info.count_model,
        "spend_model": result.info.spend_model,
        "spend_fit_set_aside": len(result.info.spend_fit_set_aside),
        "forecast": result.forecast,
        "forecast_reason": result.forecast_reason,
        "output": str(output),
    }
    if json_out:
        typer.echo(json.dumps(summary, allow_nan=True, default=str))
        return
    per = period if period in ("month", "week", "quarter") else f"{period} period"
    table = Table(
        title=f"value tiers: sums over each tier's customers (per {per}; CLV over "
        f"{horizon} {per}s, discounted at {discount_rate:g} per {per})"
    )
    for column in ("tier", "customers", f"expected value, next {per} (sum)", "CLV (sum)"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for row in tiers.iter_rows(named=True):
        table.add_row(
            row["value_tier"] or "not modelled",
            f"{row['customers']:,}",
            f"{row['expected_value'] or 0:,.2f}",
            f"{row['clv'] or 0:,.2f}",
        )
    lines: list[Table | str] = [table]
    if forecast != FORECAST:
        lines.append(
            f"headline forecast (forecast_amount): {result.forecast} — {result.forecast_reason}"
        )
    if result.info.expense_rows_unmatched:
        lines.append(
            f"{result.info.expense_rows_unmatched:,} expense row(s) of "
            f"{result.info.expense_customers_unmatched:,} customer(s) without transactions "
            "were left out"
        )
    show(*lines, f"Values written to {output.resolve()}")
