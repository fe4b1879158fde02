"""``winback value``: next-period value, cost, expense and Markov CLV per customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    HORIZON_PERIODS,
    PERIOD,
    RESOLUTION,
    TIME_COL,
)
from winback.cli._app import app
from winback.cli._common import (
    AmountCol,
    CustomerCol,
    DataEnd,
    JsonOut,
    Resolution,
    TimeCol,
    Transactions,
    show,
    stage,
    write_output,
)

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
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    cost_col: Annotated[str, typer.Option(help="Cost column (used when present).")] = "cost",
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

    with stage(f"valuing {input}"):
        result = value(
            input,
            as_of=as_of,
            period=period,
            expenses=expenses,
            margin=margin,
            horizon=horizon,
            discount_rate=discount_rate,
            resolution=resolution,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            cost_col=cost_col,
        )
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
        "output": str(output),
    }
    if json_out:
        typer.echo(json.dumps(summary, allow_nan=True, default=str))
        return
    table = Table(title="value tiers")
    for column in ("tier", "customers", "expected value", "CLV"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for row in tiers.iter_rows(named=True):
        table.add_row(
            row["value_tier"] or "not modelled",
            f"{row['customers']:,}",
            f"{row['expected_value'] or 0:,.2f}",
            f"{row['clv'] or 0:,.2f}",
        )
    show(table, f"Values written to {output.resolve()}")
