"""What the commands share: the run state, the consoles, the option types defined once (their
defaults come from ``winback._options``), writing outputs, and the rich tables, printing, spinner
and progress bar of the run summaries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from winback._options import OnInvalid
from winback.errors import WinbackConfigError

__all__ = [
    "AmountCol",
    "CustomerCol",
    "DataEnd",
    "JsonOut",
    "MinOccasions",
    "OptionalAmountCol",
    "OutputDir",
    "OutputTable",
    "Resolution",
    "Snapshot",
    "TimeCol",
    "Transactions",
    "console",
    "frame_table",
    "info_table",
    "matrix_table",
    "on_invalid_mode",
    "out_console",
    "progress_bar",
    "show",
    "stage",
    "state",
    "summary_tables",
    "write_output",
]

#: The global flags of the run (set by the ``winback`` group callback).
state: dict[str, bool] = {"debug": False, "quiet": False}
#: Errors, spinners and progress go to stderr; tables and JSON to stdout.
console = Console(stderr=True)
out_console = Console()

# Arguments and options shared by several commands (each command gives the default).
Transactions = Annotated[
    str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")
]
OutputTable = Annotated[Path, typer.Option("--output", "-o", help="Output .parquet or .csv.")]
OutputDir = Annotated[Path, typer.Option("--output", "-o", help="Output directory.")]
Snapshot = Annotated[str | None, typer.Option(help="Snapshot date (default: latest purchase).")]
DataEnd = Annotated[
    str | None, typer.Option(help="End of the data used (default: latest purchase).")
]
MinOccasions = Annotated[
    int, typer.Option(help="Score customers with at least this many occasions.")
]
Resolution = Annotated[str, typer.Option(help="Occasion bucket: 1d, 12h, 7d…")]
CustomerCol = Annotated[str, typer.Option(help="Customer id column.")]
TimeCol = Annotated[str, typer.Option(help="Purchase time column.")]
AmountCol = Annotated[str, typer.Option(help="Amount column.")]
OptionalAmountCol = Annotated[str, typer.Option(help="Amount column (optional in the data).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]


def on_invalid_mode(value: str) -> OnInvalid:
    """The ``--on-invalid`` text as the library's mode."""
    if value == "raise":
        return "raise"
    if value == "drop":
        return "drop"
    raise WinbackConfigError(f"--on-invalid {value!r} must be 'raise' or 'drop'")


@contextmanager
def stage(label: str) -> Iterator[None]:
    """Shows a spinner for one step of long work (only on a terminal, never with --quiet)."""
    if state["quiet"] or not console.is_terminal:
        yield
        return
    started = time.perf_counter()
    with console.status(f"{label}…"):
        yield
    console.print(f"[green]✓[/] {label} ({time.perf_counter() - started:.1f} s)")


@contextmanager
def progress_bar(label: str) -> Iterator[Any]:
    """A progress bar over the steps of long work, as a ``progress(step, done, total)`` callback
    (only on a terminal, never with --quiet)."""
    if state["quiet"] or not console.is_terminal:
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


def write_output(frame: pl.DataFrame, path: Path) -> None:
    """Writes a frame as Parquet or CSV, by the file name's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame.write_parquet(path)
    elif suffix == ".csv":
        frame.write_csv(path)
    else:
        raise WinbackConfigError(f"cannot write {str(path)!r}: use a .parquet or .csv file name")


def show(*renderables: Any) -> None:
    """Prints to stdout unless --quiet."""
    if not state["quiet"]:
        for item in renderables:
            out_console.print(item)


def summary_tables(scores: pl.DataFrame) -> tuple[Table, Table]:
    """The TrF-group and S-band tables of a score run."""
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


def info_table(info: dict[str, Any]) -> Table:
    """A two-column table of a run's figures."""
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


def matrix_table(result: Any, pair: int) -> Table:
    """The transition matrix between two snapshots of a migration (row shares)."""
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


def frame_table(title: str, frame: pl.DataFrame) -> Table:
    """A frame as a table: text left, numbers right with thousands separators."""
    table = Table(title=title)
    for name in frame.columns:
        table.add_column(name, justify="left" if frame.schema[name] == pl.String else "right")
    for row in frame.iter_rows():
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(f"{value:,.3f}")
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(f"{value:,}")
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*cells)
    return table
