"""``winback report`` (the self-contained HTML report) and ``winback demo`` (score the bundled
CDNOW data (the full 23,570-customer cohort) and write every output, the report included)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    TIME_COL,
)
from winback.cli._app import app
from winback.cli._common import (
    CustomerCol,
    IdType,
    JsonOut,
    MinOccasions,
    OnInvalidOption,
    OptionalAmountCol,
    Resolution,
    Snapshot,
    TimeCol,
    TimeFormat,
    TimeZone,
    Transactions,
    check_output_dir,
    check_output_file,
    check_resolution,
    cold_start_table,
    info_table,
    make_dir,
    matrix_table,
    prepare_input,
    progress_bar,
    read_options,
    show,
    stage,
    state,
    summary_tables,
    write_output,
)
from winback.errors import WinbackConfigError

__all__ = ["REPORT_MODELS", "demo", "report"]

#: ``winback report --model`` names (the purchase models of the calibration-vs-holdout plot).
REPORT_MODELS = ("bgnbd", "mbgnbd", "pareto")


def _loop_scorecards(config: Path, as_of: str | None) -> Any:
    """The staff scorecards of the loop configured in ``config``, from its state database, up
    to ``as_of`` (default: the state's latest run)."""
    from winback.loop import Pipeline

    pipeline = Pipeline(config)
    day: str | date | None = as_of
    if day is None:
        day = pipeline.table("runs").get_column("run_date").max()  # type: ignore[assignment]
        if day is None:
            raise WinbackConfigError(
                f"--loop {str(config)!r}: the loop's state holds no run yet, so it has no "
                "scorecards (winback run -c CONFIG --as-of DAY first)"
            )
    return pipeline.scorecards(day)


@app.command()
def report(
    input: Transactions,
    output: Annotated[Path, typer.Option("--output", "-o", help="The .html file to write.")] = Path(
        "report.html"
    ),
    as_of: Snapshot = None,
    previous_as_of: Annotated[
        str | None,
        typer.Option(help="Earlier snapshot of the migration heatmap (default: mid-way)."),
    ] = None,
    calibration_end: Annotated[
        str | None,
        typer.Option(help="End of the models' calibration period (default: mid-way)."),
    ] = None,
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="bgnbd, mbgnbd, pareto (repeatable; default: bgnbd and pareto).",
        ),
    ] = ["bgnbd", "pareto"],  # noqa: B006 - typer reads the default, never mutates it
    no_models: Annotated[
        bool, typer.Option("--no-models", help="Leave out the model section (faster).")
    ] = False,
    top_n: Annotated[int, typer.Option(help="Rows of the activation list.")] = 25,
    title: Annotated[str | None, typer.Option(help="Page title.")] = None,
    backtest: Annotated[
        int | None,
        typer.Option(
            "--backtest",
            help="Add the forecasts' back-test on the last N month ends "
            "(docs/methods.md#backtest; refits every model per origin).",
        ),
    ] = None,
    min_occasions: MinOccasions = MIN_OCCASIONS,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: OptionalAmountCol = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
    json_out: JsonOut = False,
    loop: Annotated[
        Path | None,
        typer.Option(
            "--loop",
            help=(
                "A daily loop's config (winback.toml): add its staff scorecards, read from "
                "its state database, up to --as-of or the latest run "
                "(docs/methods.md#staff-scorecards)."
            ),
        ),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="An events table (customer_id, ts, event; Parquet/CSV) for the engagement "
            "section: funnels and paths before silence (docs/methods.md#events).",
        ),
    ] = None,
) -> None:
    """Write the HTML report: one self-contained file (charts work offline).

    Data summary, TrF and S distributions, migration heatmap, models' calibration vs holdout,
    activation list and parameters (RFM, quadrant and value sections when available).

    Example: winback report sales.parquet -o report.html --as-of 2024-06-30
    """
    from winback.report import report as build_report

    unknown = [name for name in model if name not in REPORT_MODELS]
    if unknown:
        raise WinbackConfigError(f"--model {unknown[0]!r} is not one of {', '.join(REPORT_MODELS)}")
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
    check_output_file(output, inputs=[input], suffixes=(".html", ".htm"))
    cards = _loop_scorecards(loop, as_of) if loop is not None else None
    with progress_bar(f"report on {input}") as progress:
        page = build_report(
            prepare_input(input, reading),
            output=output,
            as_of=as_of,
            previous_as_of=previous_as_of,
            calibration_end=calibration_end,
            models=() if no_models else tuple(model),
            top_n=top_n,
            title=title,
            min_occasions=min_occasions,
            resolution=resolution,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            on_invalid=reading["on_invalid"],
            progress=progress,
            scorecards=cards,
            events=None if events is None else str(events),
            backtest=backtest,
        )
    path = str(page.path.resolve()) if page.path else None
    if json_out:
        typer.echo(
            json.dumps(
                {
                    **page.figures,
                    "report": path,
                    "sections": page.sections,
                    "skipped": page.skipped,
                }
            )
        )
        return
    show(info_table(page.figures))
    for key, reason in page.skipped.items():
        show(f"[dim]section {key} not shown: {reason}[/]")
    if not state["quiet"]:
        typer.echo(f"Report written to {path}")


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the outputs.")
    ] = Path("winback-demo"),
    json_out: JsonOut = False,
) -> None:
    """Score the bundled CDNOW data (the full cohort, 1997–1998) and write the results.

    Writes scores, migration tables, summary.json and the HTML report (report.html).

    Example: winback demo -o winback-demo
    """
    from winback.datasets import cdnow_path
    from winback.migrate import migration
    from winback.report import report as build_report
    from winback.silence import silence

    check_output_dir(output)
    source = cdnow_path()
    as_of = date(1998, 6, 30)
    with stage("scoring the bundled CDNOW data"):
        # cold_start: the one-purchase half of CDNOW is ranked against the population rather
        # than left unscored (docs/methods.md#cold-start).
        scores, info = silence(source, as_of=as_of, return_info=True, cold_start=True)
        moves = migration(source, as_of=[date(1997, 12, 31), as_of])
    make_dir(output)
    write_output(scores, output / "scores.parquet")
    write_output(scores, output / "scores.csv")
    write_output(moves.states, output / "migration_states.parquet")
    write_output(moves.transitions, output / "migration_transitions.csv")
    summary = {**info.as_dict(), "output": str(output)}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with progress_bar("writing the HTML report") as progress:
        page = build_report(
            source,
            output=output / "report.html",
            as_of=as_of,
            previous_as_of=date(1997, 12, 31),
            calibration_end=date(1997, 9, 30),  # the literature's 39 + 39 weeks
            title="winback report: CDNOW, 1997–1998",
            progress=progress,
        )
    report_path = str(page.path.resolve()) if page.path else None
    if json_out:
        typer.echo(json.dumps({**summary, "report": report_path}))
        return
    groups_table, bands_table = summary_tables(scores)
    show(
        "[bold]CDNOW[/]: CD purchases of the customers who first bought at CDNOW in Q1 1997, "
        "to June 1998 (Fader, Hardie & Lee 2005; data as in lifetimes 0.11.3, MIT).",
        info_table(summary),
        groups_table,
        bands_table,
        *([cold_table] if (cold_table := cold_start_table(scores)) else []),
        matrix_table(moves, 0),
        f"Outputs written to {output.resolve()}",
    )
    if not state["quiet"]:
        typer.echo(f"Report: {report_path}")
