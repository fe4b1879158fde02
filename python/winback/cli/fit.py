"""``winback fit``: fit the purchase and spend models and save each as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    TIME_COL,
    UNIT,
)
from winback.cli._app import app
from winback.cli._common import (
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
    check_output_dir,
    check_output_file,
    check_period,
    check_resolution,
    make_dir,
    prepare_input,
    read_options,
    show,
    stage,
    write_output,
)
from winback.errors import WinbackConfigError

__all__ = ["FIT_MODELS", "fit"]

#: ``winback fit --model`` names → (estimator class name, what it is).
FIT_MODELS = {
    "bgnbd": ("BetaGeoModel", "BG/NBD: purchases with dropout after a purchase"),
    "mbgnbd": ("ModifiedBetaGeoModel", "MBG/NBD: BG/NBD that may also drop at the first purchase"),
    "pareto": ("ParetoNBDModel", "Pareto/NBD: purchases with dropout at any time"),
    "nbd": ("NBDModel", "NBD: purchases per period, no dropout"),
    "gg": ("GammaGammaModel", "Gamma–Gamma: spend per occasion"),
}


@app.command()
def fit(
    input: Transactions,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for <model>.json files.")
    ],
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="bgnbd, mbgnbd, pareto, nbd, gg (repeatable; default: bgnbd and gg).",
        ),
    ] = ["bgnbd", "gg"],  # noqa: B006 - typer reads the default, never mutates it
    as_of: DataEnd = None,
    calibration_end: Annotated[
        str | None, typer.Option(help="Fit on purchases up to this date only.")
    ] = None,
    unit: Annotated[
        str, typer.Option(help="Time unit of recency and T: W (weeks) or D (days).")
    ] = UNIT,
    period: Annotated[
        str, typer.Option(help="Period of the NBD panel: month, week, quarter, Nd.")
    ] = PERIOD,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: Annotated[str, typer.Option(help="Amount column (needed for gg).")] = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    summary_out: Annotated[
        Path | None, typer.Option(help="Also write the per-customer summary (.parquet/.csv).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Fit purchase and spend models (docs/methods.md#models) and save each as JSON.

    Example: winback fit sales.parquet -m bgnbd -m gg --calibration-end 2024-03-31 -o models/
    """
    from winback import models as model_module
    from winback.summary import summary

    unknown = [name for name in model if name not in FIT_MODELS]
    if unknown:
        raise WinbackConfigError(f"--model {unknown[0]!r} is not one of {', '.join(FIT_MODELS)}")
    if unit not in ("D", "W"):
        raise WinbackConfigError(f"--unit {unit!r} must be D or W")
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
    check_output_dir(output, inputs=[input])
    check_output_file(summary_out, inputs=[input], flag="--summary-out")
    with stage(f"summarising {input}"):
        table = summary(
            prepare_input(input, reading),
            as_of=as_of,
            calibration_end=calibration_end,
            unit="W" if unit == "W" else "D",
            period=period,
            resolution=resolution,
        )
    if summary_out is not None:
        write_output(table, summary_out)
    make_dir(output)
    fitted: dict[str, Any] = {}
    for name in dict.fromkeys(model):
        class_name, label = FIT_MODELS[name]
        with stage(f"fitting {label.split(':')[0]}"):
            # The unit and resolution travel with the model file (docs/methods.md#fitting).
            estimator = getattr(model_module, class_name)().fit(
                table, unit="W" if unit == "W" else "D", resolution=resolution
            )
        path = estimator.save(output / f"{name}.json")
        fitted[name] = {
            "model": class_name,
            "params": estimator.params_,
            "params_se": estimator.params_se_,
            "log_likelihood": estimator.log_likelihood_,
            "customers": estimator.n_customers_,
            "path": str(path),
        }
        if not json_out:
            params = Table(
                title=f"{label.split(':')[0]}: {estimator.n_customers_:,} customers, "
                f"LL {estimator.log_likelihood_:,.2f}"
            )
            for column in ("param", "estimate", "std. error"):
                params.add_column(column, justify="left" if column == "param" else "right")
            for key, value in estimator.params_.items():
                params.add_row(key, f"{value:.6g}", f"{estimator.params_se_[key]:.3g}")
            show(params)
    if json_out:
        typer.echo(json.dumps({"customers": table.height, "models": fitted}, allow_nan=True))
    else:
        show(f"Models written to {output.resolve()}")
