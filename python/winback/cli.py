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
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Score larger-than-memory input by parts within this memory: 8GB, 512MiB, "
            "bytes (default: half the available RAM, when the input needs more)."
        ),
    ] = None,
    spill_dir: Annotated[
        Path | None,
        typer.Option(help="Directory for the temporary spill files (default: the system's)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Score how silent each customer is (TrF, S, groups a–e, bands).

    Input larger than memory (--memory-limit, or a file too large for half the available RAM)
    is partitioned by customer into spill files and scored by parts; the output is then
    written as each part is done, sorted by customer within each part.

    Example: winback score sales.parquet --as-of 2024-06-30 -o scores.parquet
    """
    from winback._io import spill as _spill
    from winback.silence import check_parameters, silence, silence_to_file

    check_parameters(resolution, min_occasions, (0.4, 0.6, 0.8, 0.95), (1.0, 2.0), threads)
    arguments: dict[str, Any] = {
        "as_of": as_of,
        "resolution": resolution,
        "min_occasions": min_occasions,
        "customer_col": customer_col,
        "time_col": time_col,
        "amount_col": amount_col,
        "on_invalid": _on_invalid(on_invalid),
        "num_threads": threads,
    }
    out_of_core = _spill.out_of_core_options(
        input,
        columns=[customer_col, time_col, amount_col],
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=None,
    )
    if out_of_core is None:
        with _stage(f"scoring {input}"):
            scores, info = silence(input, return_info=True, **arguments)
        with _stage(f"writing {output}"):
            _write(scores, output)
    else:
        with _progress(f"scoring {input} by parts") as advance:
            info = silence_to_file(
                input,
                output,
                memory_limit=out_of_core.memory_limit,
                spill_dir=spill_dir,
                progress=advance,
                **arguments,
            )
        scores = _read_scores(output)
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
    toward: Annotated[
        str, typer.Option(help="Group for the feature differences of those moving toward it.")
    ] = "e",
    json_out: JsonOut = False,
) -> None:
    """Follow customers between snapshots: group at each date and transition matrices.

    Writes OUTPUT/states.parquet (customer × snapshot), OUTPUT/transitions.csv and
    OUTPUT/feature_differences.csv (how those who moved toward group --toward differ from those
    who did not: standardised mean differences of their features, per pair of snapshots).

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
    differences = pl.concat(
        [
            result.feature_differences(pair, toward=toward).select(
                pl.lit(result.labels[pair]).alias("from_as_of"),
                pl.lit(result.labels[pair + 1]).alias("to_as_of"),
                pl.all(),
            )
            for pair in range(len(result.as_of) - 1)
        ]
    )
    _write(differences, output / "feature_differences.csv")
    if json_out:
        typer.echo(json.dumps({"customers": result.states.height, "output": str(output)}))
        return
    for pair in range(len(result.as_of) - 1):
        _print(_matrix_table(result, pair))
    _print(
        _frame_table(
            f"moving toward group {toward}: standardised mean differences",
            differences.filter(pl.col("from_as_of") == result.labels[0]).select(
                "feature", "mean_moved", "mean_not_moved", "smd"
            ),
        )
    )


def _read_scores(path: Path) -> pl.DataFrame:
    """The columns of a written score file that the run summary shows, labels as Enums."""
    from winback.silence import BAND_DTYPE, GROUP_DTYPE

    columns = ["rank_ratio_group", "rank_ratio", "silence_score", "silence_band"]
    if path.suffix.lower() == ".csv":
        frame = pl.read_csv(path, columns=columns)
    else:
        frame = pl.read_parquet(path, columns=columns)
    return frame.with_columns(
        pl.col("rank_ratio_group").cast(pl.String).cast(GROUP_DTYPE),
        pl.col("silence_band").cast(pl.String).cast(BAND_DTYPE),
    )


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


# --- segments and the win-back workflow (SPEC §4, §8) -------------------------------------

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
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str = "amount",
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


def _frame_table(title: str, frame: pl.DataFrame) -> Table:
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
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .parquet or .csv.")],
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date (default: latest purchase).")
    ] = None,
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
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[str, typer.Option(help="Amount column.")] = "amount",
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

    with _stage(f"segmenting {input}"):
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
    with _stage(f"writing {output}"):
        _write(table, output)
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
    _print(
        _frame_table("RFM segments", _counts(table, "rfm_segment")),
        _frame_table("tiers × quadrants", _counts(table, "rfm_tier", "quadrant")),
        *[_frame_table(f"rules: {c}", _counts(table, c)) for c in classifiers],
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
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date (default: latest purchase).")
    ] = None,
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
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[str, typer.Option(help="Amount column.")] = "amount",
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
    with _stage(f"scoring {input}"):
        table = _scored(
            input, as_of=as_of, customer_col=customer_col, time_col=time_col, amount_col=amount_col
        )
    with _stage("building the campaign"):
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
    with _stage(f"writing {output}"):
        _write(targets, output)
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
    _print(
        _frame_table(
            "targets by segment, strategy and arm", _counts(targets, "segment", "strategy", "arm")
        ),
        _frame_table("contacts by staff", _counts(targets.filter(pl.col("contact")), "staff")),
        f"{targets.height:,} targets written to {output.resolve()}",
    )


@app.command()
def evaluate(
    targets: Annotated[str, typer.Argument(help="The target list (winback campaign output).")],
    transactions: Annotated[
        str, typer.Argument(help="Transactions covering the window (and ideally the history).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory.")],
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
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "ts",
    amount_col: Annotated[str, typer.Option(help="Amount column.")] = "amount",
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
    with _stage("evaluating"):
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
    _write(result.uplift, output / "uplift.csv")
    _write(result.arms, output / "arms.csv")
    if result.migration is not None:
        _write(result.migration, output / "migration.csv")
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
    _print(
        _frame_table(f"uplift, {result.window_start} → {result.window_end}{note}", shown),
        f"Results written to {output.resolve()}",
    )


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
