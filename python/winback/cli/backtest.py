"""``winback backtest``: rolling-origin back-test of winback's forecasts on the user's own data
(docs/methods.md#backtest)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from winback._options import (
    AMOUNT_COL,
    BACKTEST_HORIZONS,
    BACKTEST_ORIGINS,
    CUSTOMER_COL,
    ON_INVALID,
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
    check_output_file,
    check_resolution,
    prepare_input,
    read_options,
    show,
    stage,
    write_output,
)
from winback.errors import WinbackConfigError

__all__ = ["backtest_command"]


def _origins(text: str) -> int | list[str]:
    """``--origins``: a number of month ends, or a comma list of month-end dates."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    dates = [part.strip() for part in text.split(",") if part.strip()]
    if not dates:
        raise WinbackConfigError(
            f"--origins {text!r}: give a number of month ends (6) or month-end dates "
            "(1997-09-30,1997-10-31)"
        )
    return dates


def _items(text: str, flag: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise WinbackConfigError(f"{flag} {text!r} is empty")
    return items


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_table(summary: pl.DataFrame, horizon: str, origins: int) -> Table:
    """The summary of one horizon: one row per method, short headers (fits 80 columns)."""
    table = Table(
        title=f"next {horizon}: {origins} origin(s); errors of the revenue forecast",
        title_justify="left",
    )
    headers = ("method", "pooled", "mean|err|", "RMSE", "MAE", "ρ", "top10%", "Brier")
    for name in headers:
        table.add_column(name, justify="left" if name == "method" else "right", no_wrap=True)
    for row in summary.filter(pl.col("horizon") == horizon).iter_rows(named=True):
        if not row["origins"]:
            table.add_row(row["method"], *(["–"] * (len(headers) - 1)))
            continue
        table.add_row(
            row["method"],
            _percent(row["pooled_total_error"], signed=True),
            _percent(row["mean_abs_total_error"]),
            _number(row["rmse"]),
            _number(row["mae"]),
            _number(row["spearman"], 3),
            _percent(row["top_decile_capture"]),
            _number(row["brier"], 4),
        )
    return table


def _json_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@app.command("backtest")
def backtest_command(
    input: Transactions,
    origins: Annotated[
        str,
        typer.Option(
            help="A number N (the last N month ends leaving every horizon inside the data) or "
            "month-end dates, comma-separated: 1997-09-30,1997-10-31."
        ),
    ] = str(BACKTEST_ORIGINS),
    horizons: Annotated[
        str, typer.Option(help="Horizons in months, comma-separated: 1M,3M.")
    ] = ",".join(BACKTEST_HORIZONS),
    methods: Annotated[
        str | None,
        typer.Option(
            help="Methods, comma-separated (default: all but stacked_gg): nbd_gg, nbd_gg_alive, "
            "bgnbd_gg, mbgnbd_gg, pareto_gg, dropout_gg, stacked_gg, markov, naive_mean3 "
            "(naive_mean<k>), naive_last, zero."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Metrics per origin, horizon and method (.csv or .parquet)."
        ),
    ] = None,
    as_of: DataEnd = None,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: AmountCol = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    json_out: JsonOut = False,
) -> None:
    """Back-test winback's forecasts on your own transactions (docs/methods.md#backtest).

    From each origin (a month end) every method is calibrated on the data up to it and
    forecasts each customer's revenue over each horizon; the table compares the forecasts with
    what happened: pooled total error, mean |per-origin total error|, RMSE, MAE, Spearman's ρ,
    the share of actual revenue from the top 10% by forecast, and the Brier score of P(active).

    Example: winback backtest sales.parquet --origins 6 --horizons 1M,3M -o backtest.csv
    """
    from winback.backtest import backtest

    check_resolution(resolution)
    chosen = _origins(origins)
    horizon_list = _items(horizons, "--horizons")
    method_list = None if methods is None else _items(methods, "--methods")
    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    check_output_file(output, inputs=[input])
    with stage(f"back-testing {input}"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = backtest(
            prepare_input(input, reading),
            origins=chosen,
            horizons=horizon_list,
            methods=method_list,
            as_of=as_of,
            details=False,
            resolution=resolution,
        )
    seen = set()
    for warning in caught:  # one line each (and once: the origins repeat the same advice)
        text = str(warning.message)
        if text not in seen:
            seen.add(text)
            typer.echo(f"warning: {text}", err=True)
    if output is not None:
        with stage(f"writing {output}"):
            write_output(result.frame, output)
    if json_out:
        payload = {
            "origins": [o.isoformat() for o in result.origins.get_column("origin").to_list()],
            "customers": result.origins.get_column("customers").to_list(),
            "customers_born_after": result.origins.get_column("customers_born_after").to_list(),
            "horizons": list(result.horizons),
            "methods": list(result.methods),
            "summary": [
                {k: _json_value(v) for k, v in row.items()}
                for row in result.summary.iter_rows(named=True)
            ],
            "output": None if output is None else str(output),
        }
        typer.echo(json.dumps(payload, allow_nan=False))
        return
    n_origins = result.origins.height
    tables: list[Any] = [summary_table(result.summary, h, n_origins) for h in result.horizons]
    notes = result.summary.filter(pl.col("note").is_not_null())
    for row in notes.iter_rows(named=True):
        tables.append(f"{row['method']} ({row['horizon']}): {row['note']}")
    dates = result.origins.get_column("origin").to_list()
    first, last = dates[0], dates[-1]
    born = result.origins.get_column("customers_born_after").to_list()
    customers = result.origins.get_column("customers").to_list()
    tables.append(
        f"customers forecast: {customers[0]:,} from {first} … {customers[-1]:,} from {last}; "
        f"{born[0]:,} first bought after {first} and are not forecast from it"
    )
    tables.append(
        f"origins {first} … {last}; pooled = Σ forecast / Σ actual − 1; top10% = share of the "
        "actual revenue from the 10% ranked highest (docs/methods.md#backtest)"
    )
    if output is not None:
        tables.append(f"Metrics per origin written to {output.resolve()}")
    show(*tables)
