"""The ``winback`` command line: a thin layer over the public functions.

Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 anything else.
Errors print one line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from winback.errors import WinbackConfigError, WinbackError, WinbackFitError, WinbackInputError

app = typer.Typer(
    name="winback",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state: dict[str, bool] = {"debug": False, "quiet": False}
console = Console(stderr=True)
out_console = Console()

# Options shared by several commands.
MinOccasions = Annotated[
    int, typer.Option(help="Score customers with at least this many occasions.")
]
Resolution = Annotated[str, typer.Option(help="Occasion bucket: 1d, 12h, 7d…")]
CustomerCol = Annotated[str, typer.Option(help="Customer id column.")]
TimeCol = Annotated[str, typer.Option(help="Purchase time column.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]

EXIT_BAD_INPUT = 2
EXIT_FIT_FAILURE = 3


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Find customers going silent, say how silent they are, and win them back.

    Examples:

      winback demo

      winback report sales.parquet -o report.html --as-of 2024-06-30

      winback score sales.parquet --as-of 2024-06-30 -o scores.parquet

      winback migrate sales.parquet --as-of 2024-03-31 --as-of 2024-06-30 -o migration/

      winback fit sales.parquet -m bgnbd -m gg -o models/

    Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 other.

    Errors print one line; winback --debug COMMAND … shows the traceback.

    --json (on each command) prints a JSON summary on stdout; --quiet prints only errors.
    """
    _state["debug"] = debug
    _state["quiet"] = quiet


@contextmanager
def _stage(label: str) -> Iterator[None]:
    """Shows a spinner for one step of long work (only on a terminal, never with --quiet)."""
    if _state["quiet"] or not console.is_terminal:
        yield
        return
    started = time.perf_counter()
    with console.status(f"{label}…"):
        yield
    console.print(f"[green]✓[/] {label} ({time.perf_counter() - started:.1f} s)")


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.write_parquet(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    else:
        raise WinbackConfigError(f"cannot write {str(path)!r}: use a .parquet or .csv file name")


def _summary_tables(scores: pl.DataFrame) -> tuple[Table, Table]:
    total = max(scores.height, 1)
    groups = Table(title="TrF groups (a: recent for them … e: silent longer than ever)")
    for name in ("group", "customers", "share", "median TrF", "median S"):
        groups.add_column(name, justify="right" if name != "group" else "left")
    by_group = (
        scores.group_by("rank_ratio_group")
        .agg(
            pl.len().alias("n"),
            pl.col("rank_ratio").median().alias("trf"),
            pl.col("silence_score").median().alias("s"),
        )
        .sort("rank_ratio_group", nulls_last=True)
    )
    for row in by_group.iter_rows(named=True):
        label = row["rank_ratio_group"] or "not scored"
        trf = "" if row["trf"] is None else f"{row['trf']:.2f}"
        s = "" if row["s"] is None else f"{row['s']:.2f}"
        groups.add_row(label, f"{row['n']:,}", f"{row['n'] / total:.1%}", trf, s)
    bands = Table(title="S bands (S = days silent / longest gap)")
    for name in ("band", "customers", "share"):
        bands.add_column(name, justify="right" if name != "band" else "left")
    by_band = (
        scores.group_by("silence_band")
        .agg(pl.len().alias("n"))
        .sort("silence_band", nulls_last=True)
    )
    for row in by_band.iter_rows(named=True):
        label = row["silence_band"] or "not scored"
        bands.add_row(label, f"{row['n']:,}", f"{row['n'] / total:.1%}")
    return groups, bands


def _info_table(info: dict[str, Any]) -> Table:
    table = Table(title="run", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in info.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        else:
            text = str(value)
        table.add_row(key.replace("_", " "), text)
    return table


def _print(*renderables: Any) -> None:
    if not _state["quiet"]:
        for item in renderables:
            out_console.print(item)


def _on_invalid(value: str) -> Literal["raise", "drop"]:
    if value == "raise":
        return "raise"
    if value == "drop":
        return "drop"
    raise WinbackConfigError(f"--on-invalid {value!r} must be 'raise' or 'drop'")


@app.command()
def score(
    input: Annotated[str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .parquet or .csv.")],
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date (default: latest purchase).")
    ] = None,
    min_occasions: MinOccasions = 2,
    resolution: Resolution = "1d",
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[
        str, typer.Option(help="Amount column (optional in the data).")
    ] = "amount",
    on_invalid: Annotated[
        str, typer.Option(help="raise: stop on bad rows; drop: set them aside.")
    ] = "raise",
    rejects: Annotated[Path | None, typer.Option(help="Where to write dropped rows.")] = None,
    threads: Annotated[
        int | None, typer.Option(help="Worker threads (default: all cores).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Score how silent each customer is (TrF, S, groups a–e, bands).

    Example: winback score sales.parquet --as-of 2024-06-30 -o scores.parquet
    """
    from winback.silence import silence

    with _stage(f"scoring {input}"):
        scores, info = silence(
            input,
            as_of=as_of,
            resolution=resolution,
            min_occasions=min_occasions,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            on_invalid=_on_invalid(on_invalid),
            num_threads=threads,
            return_info=True,
        )
    with _stage(f"writing {output}"):
        _write(scores, output)
        if rejects is not None:
            _write(info.rejects, rejects)
    summary = {**info.as_dict(), "output": str(output)}
    if json_out:
        groups = scores.get_column("rank_ratio_group").value_counts().drop_nulls()
        summary["groups"] = {str(k): int(v) for k, v in groups.iter_rows()}
        typer.echo(json.dumps(summary))
        return
    groups_table, bands_table = _summary_tables(scores)
    _print(_info_table(summary), groups_table, bands_table)


@app.command()
def migrate(
    input: Annotated[str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")],
    as_of: Annotated[
        list[str], typer.Option("--as-of", help="Snapshot dates, two or more, in order.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
    min_occasions: MinOccasions = 2,
    resolution: Resolution = "1d",
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    json_out: JsonOut = False,
) -> None:
    """Follow customers between snapshots: group at each date and transition matrices.

    Writes OUTPUT/states.parquet (customer × snapshot) and OUTPUT/transitions.csv.

    Example: winback migrate sales.parquet --as-of 2024-03-31 --as-of 2024-06-30 -o migration/
    """
    from winback.migrate import migration

    with _stage("scoring snapshots"):
        result = migration(
            input,
            as_of=as_of,
            resolution=resolution,
            min_occasions=min_occasions,
            customer_col=customer_col,
            time_col=time_col,
        )
    output.mkdir(parents=True, exist_ok=True)
    _write(result.states, output / "states.parquet")
    _write(result.transitions, output / "transitions.csv")
    if json_out:
        typer.echo(json.dumps({"customers": result.states.height, "output": str(output)}))
        return
    for pair in range(len(result.as_of) - 1):
        _print(_matrix_table(result, pair))


def _matrix_table(result: Any, pair: int) -> Table:
    shares = result.matrix(pair)
    counts = result.matrix(pair, values="customers")
    title = f"{result.labels[pair]} → {result.labels[pair + 1]} (row shares)"
    table = Table(title=title)
    table.add_column("from \\ to")
    short = {"not_yet_customer": "new", "single_purchase": "single", "below_min_occasions": "few"}
    for name in shares.columns[1:]:
        table.add_column(short.get(name, name), justify="right")
    table.add_column("customers", justify="right")
    for share_row, count_row in zip(shares.iter_rows(), counts.iter_rows(), strict=True):
        n = int(sum(count_row[1:]))
        if n == 0:
            continue
        cells = [f"{v:.0%}" if v else "·" for v in share_row[1:]]
        table.add_row(short.get(share_row[0], share_row[0]), *cells, f"{n:,}")
    return table


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
    input: Annotated[str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")],
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
    as_of: Annotated[
        str | None, typer.Option(help="End of the data used (default: latest purchase).")
    ] = None,
    calibration_end: Annotated[
        str | None, typer.Option(help="Fit on purchases up to this date only.")
    ] = None,
    unit: Annotated[
        str, typer.Option(help="Time unit of recency and T: W (weeks) or D (days).")
    ] = "W",
    period: Annotated[
        str, typer.Option(help="Period of the NBD panel: month, week, quarter, Nd.")
    ] = "month",
    resolution: Resolution = "1d",
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[str, typer.Option(help="Amount column (needed for gg).")] = "amount",
    summary_out: Annotated[
        Path | None, typer.Option(help="Also write the per-customer summary (.parquet/.csv).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Fit purchase and spend models (SPEC §5) and save each as JSON.

    Example: winback fit sales.parquet -m bgnbd -m gg --calibration-end 2024-03-31 -o models/
    """
    from winback import models as model_module
    from winback.summary import summary

    unknown = [name for name in model if name not in FIT_MODELS]
    if unknown:
        raise WinbackConfigError(f"--model {unknown[0]!r} is not one of {', '.join(FIT_MODELS)}")
    if unit not in ("D", "W"):
        raise WinbackConfigError(f"--unit {unit!r} must be D or W")
    with _stage(f"summarising {input}"):
        table = summary(
            input,
            as_of=as_of,
            calibration_end=calibration_end,
            unit="W" if unit == "W" else "D",
            period=period,
            resolution=resolution,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
        )
    if summary_out is not None:
        _write(table, summary_out)
    output.mkdir(parents=True, exist_ok=True)
    fitted: dict[str, Any] = {}
    for name in dict.fromkeys(model):
        class_name, label = FIT_MODELS[name]
        with _stage(f"fitting {label.split(':')[0]}"):
            estimator = getattr(model_module, class_name)().fit(table)
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
            _print(params)
    if json_out:
        typer.echo(json.dumps({"customers": table.height, "models": fitted}, allow_nan=True))
    else:
        _print(f"Models written to {output.resolve()}")


@app.command("value")
def value_command(
    input: Annotated[str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Per-customer values (.parquet or .csv).")
    ],
    expenses: Annotated[
        str | None,
        typer.Option(help="Marketing expenses per customer (customer_id, ts, expense)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="End of the data used (default: latest purchase).")
    ] = None,
    period: Annotated[str, typer.Option(help="Period: month, week, quarter, Nd.")] = "month",
    margin: Annotated[
        float | None, typer.Option(help="Margin in [0, 1] when there is no cost column.")
    ] = None,
    horizon: Annotated[int, typer.Option(help="CLV horizon in periods.")] = 12,
    discount_rate: Annotated[float, typer.Option(help="Discount rate per period.")] = 0.01,
    resolution: Resolution = "1d",
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[str, typer.Option(help="Amount column.")] = "amount",
    cost_col: Annotated[str, typer.Option(help="Cost column (used when present).")] = "cost",
    states_out: Annotated[
        Path | None, typer.Option(help="Also write the Markov states with V (.parquet/.csv).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Next-period value, cost, expense and Markov CLV per customer (SPEC §6, §7).

    Example: winback value sales.parquet --expenses spend.parquet --period month -o value.parquet
    """
    from winback.value import value

    with _stage(f"valuing {input}"):
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
    with _stage(f"writing {output}"):
        frame = result.frame.with_columns(pl.col("p_frequency").arr.to_list())
        _write(frame if output.suffix.lower() != ".csv" else frame.drop("p_frequency"), output)
        if states_out is not None and result.chain is not None:
            _write(result.chain.states, states_out)
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
    _print(table, f"Values written to {output.resolve()}")


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A progress bar over the steps of long work, as a ``progress(step, done, total)`` callback
    (only on a terminal, never with --quiet)."""
    if _state["quiet"] or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {step}", completed=done, total=total)

        yield advance
    console.print(f"[green]✓[/] {label} ({time.perf_counter() - started:.1f} s)")


#: ``winback report --model`` names (the purchase models of the calibration-vs-holdout plot).
REPORT_MODELS = ("bgnbd", "mbgnbd", "pareto")


@app.command()
def report(
    input: Annotated[str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .html file to write.")] = Path(
        "report.html"
    ),
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date (default: latest purchase).")
    ] = None,
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
    min_occasions: MinOccasions = 2,
    resolution: Resolution = "1d",
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[
        str, typer.Option(help="Amount column (optional in the data).")
    ] = "amount",
    on_invalid: Annotated[
        str, typer.Option(help="raise: stop on bad rows; drop: set them aside and count them.")
    ] = "raise",
    json_out: JsonOut = False,
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
    with _progress(f"report on {input}") as progress:
        page = build_report(
            input,
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
            on_invalid=_on_invalid(on_invalid),
            progress=progress,
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
    _print(_info_table(page.figures))
    for key, reason in page.skipped.items():
        _print(f"[dim]section {key} not shown: {reason}[/]")
    if not _state["quiet"]:
        typer.echo(f"Report written to {path}")


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the outputs.")
    ] = Path("winback-demo"),
    json_out: JsonOut = False,
) -> None:
    """Score the bundled CDNOW sample (real transactions, 1997–1998) and write the results.

    Writes scores, migration tables, summary.json and the HTML report (report.html).

    Example: winback demo -o winback-demo
    """
    from winback.datasets import cdnow_path
    from winback.migrate import migration
    from winback.report import report as build_report
    from winback.silence import silence

    source = cdnow_path()
    as_of = date(1998, 6, 30)
    with _stage("scoring the CDNOW sample"):
        scores, info = silence(source, as_of=as_of, return_info=True)
        moves = migration(source, as_of=[date(1997, 12, 31), as_of])
    output.mkdir(parents=True, exist_ok=True)
    _write(scores, output / "scores.parquet")
    _write(scores, output / "scores.csv")
    _write(moves.states, output / "migration_states.parquet")
    _write(moves.transitions, output / "migration_transitions.csv")
    summary = {**info.as_dict(), "output": str(output)}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with _progress("writing the HTML report") as progress:
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
    groups_table, bands_table = _summary_tables(scores)
    _print(
        "[bold]CDNOW[/]: CD purchases of the customers who first bought at CDNOW in Q1 1997, "
        "to June 1998 (Fader, Hardie & Lee 2005; data as in lifetimes 0.11.3, MIT).",
        _info_table(summary),
        groups_table,
        bands_table,
        _matrix_table(moves, 0),
        f"Outputs written to {output.resolve()}",
    )
    if not _state["quiet"]:
        typer.echo(f"Report: {report_path}")


def main() -> None:
    """Entry point: runs the app and turns winback errors into one-line messages and exit codes."""
    try:
        app(args=_hoist_global_flags(sys.argv[1:]), prog_name="winback", standalone_mode=False)
    except (WinbackInputError, WinbackConfigError) as exc:
        _fail(exc, EXIT_BAD_INPUT)
    except WinbackFitError as exc:
        _fail(exc, EXIT_FIT_FAILURE)
    except WinbackError as exc:
        _fail(exc, 1)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Usage errors of the click that typer vendors: one line and exit code 2.
        exit_code = getattr(exc, "exit_code", None)
        if isinstance(exc, typer.exceptions.TyperException) and isinstance(exit_code, int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                exc.show()  # type: ignore[attr-defined]
                sys.exit(exit_code)
            if _state["debug"]:
                console.print_exception()
            else:
                context = getattr(exc, "ctx", None)
                where = getattr(context, "command_path", "winback")
                console.print(
                    f"[red]error:[/] {exc.format_message()} (see: {where} --help)",
                    highlight=False,
                    soft_wrap=True,
                )
            sys.exit(exit_code)
        _fail(exc, 1)


#: Options of the ``winback`` group that are also accepted after the command name.
GLOBAL_FLAGS = ("--quiet", "-q", "--debug")


def _hoist_global_flags(args: list[str]) -> list[str]:
    """Moves --quiet/-q/--debug given after the command (winback score … --quiet) to the front,
    where the group reads them."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return flags + rest + args[end:]


def _fail(exc: BaseException, code: int) -> None:
    if _state["debug"]:
        console.print_exception()
    else:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
