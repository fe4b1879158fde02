"""What the commands share: the run state, the consoles, the option types defined once (their
defaults come from ``winback._options``), reading transactions once (``prepare_input``), checking
outputs before the work (``check_output_file``/``check_output_dir``), writing outputs (with the CSV
formula guard, docs/methods.md#outputs), and the rich tables, printing, spinner and progress bar of
the run summaries."""

from __future__ import annotations

import glob
import inspect
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from winback._options import ON_INVALID, OnInvalid
from winback.errors import WinbackConfigError

__all__ = [
    "CSV_GUARD_PREFIXES",
    "AmountCol",
    "CustomerCol",
    "DataEnd",
    "IdType",
    "JsonOut",
    "MinOccasions",
    "OnInvalidOption",
    "OptionalAmountCol",
    "OutputDir",
    "OutputTable",
    "Resolution",
    "Snapshot",
    "TimeCol",
    "TimeFormat",
    "TimeZone",
    "Transactions",
    "check_days",
    "check_distinct",
    "check_output_dir",
    "check_output_file",
    "check_period",
    "check_resolution",
    "check_time_zone",
    "cold_start_table",
    "console",
    "frame_table",
    "guard_csv",
    "guard_exprs",
    "info_table",
    "input_columns",
    "library_keywords",
    "make_dir",
    "matrix_table",
    "on_invalid_mode",
    "out_console",
    "prepare_input",
    "progress_bar",
    "read_options",
    "show",
    "stage",
    "state",
    "summary_tables",
    "with_query",
    "write_output",
]

#: The global flags of the run (set by the ``winback`` group callback).
state: dict[str, bool] = {"debug": False, "quiet": False, "csv_guard": True, "mkdir": False}
#: Errors, spinners and progress go to stderr; tables and JSON to stdout.
console = Console(stderr=True)
out_console = Console()

# Arguments and options shared by several commands (each command gives the default).
Transactions = Annotated[
    str, typer.Argument(help="Transactions: a Parquet/CSV/IPC file or a glob.")
]
OutputTable = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        help="Output .parquet or .csv (CSV text cells starting with = + - @ get a leading '; "
        "see winback --help).",
    ),
]
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
OnInvalidOption = Annotated[
    str,
    typer.Option(
        "--on-invalid", help="raise: stop on bad rows; drop: set them aside and count them."
    ),
]
TimeFormat = Annotated[
    str | None,
    typer.Option(
        help="strftime format of text times, e.g. %m/%d/%Y (default: ISO 8601 dates/times)."
    ),
]
IdType = Annotated[
    str | None,
    typer.Option(help="Read customer ids as int, str or auto (default: the library's)."),
]
TimeZone = Annotated[
    str | None,
    typer.Option("--tz", help="Read tz-aware times on this zone's calendar, e.g. Europe/Paris."),
]
TimeCol = Annotated[str, typer.Option(help="Purchase time column.")]
AmountCol = Annotated[str, typer.Option(help="Amount column.")]
OptionalAmountCol = Annotated[str, typer.Option(help="Amount column (optional in the data).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]

#: First characters that make a spreadsheet read a CSV cell as a formula (docs/methods.md#outputs).
CSV_GUARD_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CSV_GUARD_PATTERN = r"^[=+\-@\t\r]"
_ID_TYPES = ("int", "str", "auto")
_TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


def on_invalid_mode(value: str) -> OnInvalid:
    """The ``--on-invalid`` text as the library's mode."""
    if value == "raise":
        return "raise"
    if value == "drop":
        return "drop"
    raise WinbackConfigError(f"--on-invalid {value!r} must be 'raise' or 'drop'")


def read_options(
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    on_invalid: str = ON_INVALID,
    time_format: str | None = None,
    id_type: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """The transaction-reading flags, checked, as the keyword arguments of ``winback.prepare``.

    ``tz``, ``time_format`` and ``id_type`` are passed only when given, so the library's defaults
    apply otherwise.
    """
    options: dict[str, Any] = {
        "customer_col": customer_col,
        "time_col": time_col,
        "amount_col": amount_col,
        "on_invalid": on_invalid_mode(on_invalid),
    }
    if tz is not None:
        options["tz"] = check_time_zone(tz)
    if time_format is not None:
        if not time_format.strip():
            raise WinbackConfigError(
                "--time-format is empty; give a strftime format, e.g. %Y-%m-%d"
            )
        options["time_format"] = time_format
    if id_type is not None:
        if id_type not in _ID_TYPES:
            raise WinbackConfigError(f"--id-type {id_type!r} must be one of {', '.join(_ID_TYPES)}")
        options["id_type"] = id_type
    return options


#: The longest duration a flag takes (a bucket, a period, a window): 100 years, in days.
MAX_DAYS = 36_525
_MICROS_PER_DAY = 86_400_000_000


def check_resolution(resolution: str) -> str:
    """``--resolution``: a duration the library can bucket with (at most 100 years)."""
    from winback._io.times import parse_resolution

    if parse_resolution(resolution) > MAX_DAYS * _MICROS_PER_DAY:
        raise WinbackConfigError(
            f"--resolution {resolution!r} is longer than {MAX_DAYS:,} days; use a bucket such as "
            "1d or 7d"
        )
    return resolution


def check_period(period: str) -> str:
    """``--period``: month, week, quarter or Nd with N at most 100 years of days."""
    from winback.summary import check_period as library_check

    days = library_check(period)
    if isinstance(days, int) and days > MAX_DAYS:
        raise WinbackConfigError(
            f"--period {period!r} is longer than {MAX_DAYS:,} days; use month, week, quarter "
            "or a shorter Nd"
        )
    return period


def check_days(days: int, flag: str) -> int:
    """A count of days (``--window-days``) of at most 100 years."""
    if days > MAX_DAYS:
        raise WinbackConfigError(f"{flag} {days} is longer than {MAX_DAYS:,} days")
    return days


def check_time_zone(tz: str) -> str:
    """``--tz``: a zone of the IANA database (checked here, before anything is read)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise WinbackConfigError(
            f"--tz {tz!r} is not a known time zone; use an IANA name such as Europe/Paris or UTC"
        ) from None
    return tz


def library_keywords(function: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``function``: a reading flag it does not take is a one-line error."""
    parameters = inspect.signature(function).parameters
    for key, flag in (("time_format", "--time-format"), ("id_type", "--id-type")):
        if key in options and key not in parameters:
            raise WinbackConfigError(
                f"{flag} needs a winback whose {function.__name__}() takes {key}=; "
                "upgrade winback or leave the flag out"
            )
    return options


def prepare_input(input: str, options: dict[str, Any], *, cost_col: str | None = None) -> Any:
    """Reads the transactions once with the command's reading flags (``winback.prepare``); the
    prepared object is passed on to the library, which does not read it again."""
    from winback._io.prepared import prepare

    keywords = library_keywords(prepare, options)
    if cost_col is not None:
        keywords = {**keywords, "cost_col": cost_col}
    return prepare(input, **keywords)


def with_query(input: str, query: str) -> str:
    """A database URL input with ``--query`` as its ``query=`` parameter; refused for files."""
    from urllib.parse import quote

    from winback._io.sources import is_database_url

    if not is_database_url(input):
        raise WinbackConfigError(
            "--query needs a database URL as input (sqlite:///file.db, postgresql://…, "
            "duckdb:///file.duckdb), not a file"
        )
    if "table=" in input.split("?", 1)[-1] and "?" in input:
        raise WinbackConfigError("give ?table= or --query, not both")
    return input + ("&" if "?" in input else "?") + "query=" + quote(query, safe="")


def input_columns(input: str) -> list[str]:
    """The column names of an input (its schema only)."""
    from winback._io.sources import read_schema, to_polars

    return list(read_schema(to_polars(input)))


def _input_paths(inputs: Iterable[str | Path | None]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        if item is None:
            continue
        text = str(item)
        matches = glob.glob(text) if any(c in text for c in "*?[") else [text]
        paths += [Path(m).resolve() for m in matches]
    return paths


def _same_as_input(path: Path, inputs: list[Path]) -> None:
    resolved = path.resolve()
    for source in inputs:
        if resolved == source:
            raise WinbackConfigError(
                f"-o {str(path)!r} is an input of this command; write the output elsewhere"
            )
        if source.is_dir() and resolved.is_relative_to(source):
            raise WinbackConfigError(
                f"-o {str(path)!r} is inside the input directory {str(source)!r} (the next run "
                "would read it as transactions); write the output elsewhere"
            )


def _check_parent(path: Path, flag: str) -> None:
    """The directory that will hold ``path`` exists (or --mkdir) and can be written to."""
    parent = path.parent
    if not parent.exists():
        if not state["mkdir"]:
            raise WinbackConfigError(
                f"{flag} {str(path)!r}: directory {str(parent)!r} does not exist; create it or "
                "pass --mkdir"
            )
        existing = next(p for p in parent.parents if p.exists())
        if not existing.is_dir():
            raise WinbackConfigError(f"{flag} {str(path)!r}: {str(existing)!r} is not a directory")
        _probe(existing, path, flag)
        return
    if not parent.is_dir():
        raise WinbackConfigError(f"{flag} {str(path)!r}: {str(parent)!r} is not a directory")
    _probe(parent, path, flag)


def _probe(directory: Path, path: Path, flag: str) -> None:
    """Creates and removes a file in ``directory``: the truthful test of writability (read-only
    mounts and permissions alike)."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".winback-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WinbackConfigError(
            f"{flag} {str(path)!r}: cannot write in {str(directory)!r} ({reason.lower()})"
        ) from None


def check_output_file(
    path: Path | None,
    *,
    inputs: Iterable[str | Path | None] = (),
    flag: str = "-o",
    suffixes: tuple[str, ...] | None = _TABLE_SUFFIXES,
) -> None:
    """Refuses, before the work, an output file that cannot be written: a wrong suffix, an input
    path, a directory, a missing parent (without --mkdir), or no write permission."""
    if path is None:
        return
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise WinbackConfigError(
            f"cannot write {str(path)!r}: use a .parquet or .csv file name"
            if suffixes == _TABLE_SUFFIXES
            else f"{flag} {str(path)!r} must be an {suffixes[0]} file"
        )
    _same_as_input(path, _input_paths(inputs))
    if path.is_dir():
        raise WinbackConfigError(f"{flag} {str(path)!r} is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise WinbackConfigError(f"{flag} {str(path)!r} is read-only")
    _check_parent(path, flag)


def check_output_dir(
    path: Path, *, inputs: Iterable[str | Path | None] = (), flag: str = "-o"
) -> None:
    """Refuses, before the work, an output directory that cannot be written: an input path, an
    existing file, a missing parent (without --mkdir), or no write permission. The directory
    itself is created when missing."""
    _same_as_input(path, _input_paths(inputs))
    if path.exists():
        if not path.is_dir():
            raise WinbackConfigError(f"{flag} {str(path)!r} is a file; give a directory")
        _probe(path, path, flag)
        return
    _check_parent(path, flag)


def check_distinct(*paths: Path | None) -> None:
    """Two outputs of one command on the same path: the second would overwrite the first."""
    seen: set[Path] = set()
    for path in paths:
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise WinbackConfigError(f"{str(path)!r} is given for two outputs; use two paths")
        seen.add(key)


def make_dir(path: Path) -> None:
    """Creates an output directory (its parents only with --mkdir; checked before the work)."""
    path.mkdir(parents=state["mkdir"], exist_ok=True)


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


def guard_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return) get a leading ``'`` (docs/methods.md#outputs). Only text
    columns change: numbers, dates and booleans are written as they are."""
    return frame.with_columns(guard_exprs(frame.collect_schema()))


def guard_exprs(schema: pl.Schema) -> list[pl.Expr]:
    """The expressions of :func:`guard_csv` for the text columns of ``schema``."""
    text = [
        name
        for name, dtype in schema.items()
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)
    ]
    return [
        pl.when(pl.col(name).cast(pl.String).str.contains(_CSV_GUARD_PATTERN))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in text
    ]


def write_output(frame: pl.DataFrame, path: Path) -> None:
    """Writes a frame as Parquet or CSV, by the file name's suffix (CSV text cells guarded
    against formula injection unless --no-csv-guard; docs/methods.md#outputs; recommendation
    lists as ``|``-joined text in CSV)."""
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        raise WinbackConfigError(f"cannot write {str(path)!r}: use a .parquet or .csv file name")
    if state["mkdir"]:
        path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        frame.write_parquet(path)
    else:
        from winback.recommend import products_as_text

        # CSV has no lists: recommendations become "id|id|…" cells (docs/methods.md#recommendations)
        frame = products_as_text(frame)
        (guard_csv(frame) if state["csv_guard"] else frame).write_csv(path)


def show(*renderables: Any) -> None:
    """Prints to stdout unless --quiet."""
    if not state["quiet"]:
        for item in renderables:
            out_console.print(item)


def cold_start_table(scores: pl.DataFrame) -> Table | None:
    """The customers with too few purchases for their own TrF, by population TrF group
    (docs/methods.md#cold-start); None when the scores carry no cold-start columns."""
    if "population_trf_group" not in scores.columns:
        return None
    cold = scores.filter(pl.col("population_trf_group").is_not_null())
    table = Table(
        title="Too few purchases for their own TrF: ranked against the population "
        "(population TrF groups; p_next_within = chance of a next purchase in the horizon)"
    )
    for name in ("population group", "customers", "share", "median p_next_within"):
        table.add_column(name, justify="right" if name != "population group" else "left")
    total = max(scores.height, 1)
    by_group = (
        cold.group_by("population_trf_group")
        .agg(pl.len().alias("n"), pl.col("p_next_within").median().alias("p"))
        .sort("population_trf_group")
    )
    for row in by_group.iter_rows(named=True):
        p = "" if row["p"] is None else f"{row['p']:.3f}"
        table.add_row(row["population_trf_group"], f"{row['n']:,}", f"{row['n'] / total:.1%}", p)
    return table


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
