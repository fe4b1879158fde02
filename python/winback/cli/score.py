"""``winback score`` (silence scores, in memory or by parts) and ``winback migrate`` (groups
across snapshots)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from winback._options import (
    AMOUNT_COL,
    COLD_START_HORIZON_DAYS,
    CUSTOMER_COL,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
)
from winback.cli._app import app
from winback.cli._common import (
    CustomerCol,
    IdType,
    JsonOut,
    MinOccasions,
    OnInvalidOption,
    OptionalAmountCol,
    OutputDir,
    OutputTable,
    Resolution,
    Snapshot,
    TimeCol,
    TimeFormat,
    TimeZone,
    Transactions,
    check_distinct,
    check_output_dir,
    check_output_file,
    check_resolution,
    cold_start_table,
    frame_table,
    guard_exprs,
    info_table,
    library_keywords,
    make_dir,
    matrix_table,
    prepare_input,
    progress_bar,
    read_options,
    show,
    stage,
    state,
    summary_tables,
    with_query,
    write_output,
)

__all__ = ["migrate", "score"]


@app.command()
def score(
    input: Transactions,
    output: OutputTable,
    as_of: Snapshot = None,
    min_occasions: MinOccasions = MIN_OCCASIONS,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: OptionalAmountCol = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
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
    cold_start: Annotated[
        bool,
        typer.Option(
            "--cold-start",
            help="Also measure customers below --min-occasions against the population "
            "(population TrF, p_next_within; docs/methods.md#cold-start).",
        ),
    ] = False,
    cold_start_horizon_days: Annotated[
        float, typer.Option(help="Days N of p_next_within with --cold-start.")
    ] = COLD_START_HORIZON_DAYS,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="With a database URL as input: the SQL query to read (instead of ?table=).",
        ),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Score how silent each customer is (TrF, S, groups a–e, bands).

    The input may be a database: sqlite:///sales.db?table=sales, postgresql://user@host/db
    ?table=sales (pip install 'winback[postgres]'), duckdb:///sales.duckdb?table=sales, or the
    URL without ?table= and --query "SELECT …".

    Input larger than memory (--memory-limit, or a file too large for half the available RAM)
    is partitioned by customer into spill files and scored by parts; the output is then
    written as each part is done, sorted by customer within each part.

    With --cold-start the one-purchase (and below --min-occasions) customers get the
    population columns too; by parts, the output is then written once all parts are scored.

    Example: winback score sales.parquet --as-of 2024-06-30 -o scores.parquet --cold-start
    """
    from winback._io import spill as _spill
    from winback.coldstart import check_horizon
    from winback.silence import check_parameters, silence, silence_to_file

    check_parameters(check_resolution(resolution), min_occasions, TRF_CUTS, S_CUTS, threads)
    if query is not None:
        input = with_query(input, query)
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
    check_output_file(rejects, inputs=[input], flag="--rejects")
    check_distinct(output, rejects)
    arguments: dict[str, Any] = {
        "as_of": as_of,
        "resolution": resolution,
        "min_occasions": min_occasions,
        "num_threads": threads,
    }
    out_of_core = _spill.out_of_core_options(
        input,
        columns=[customer_col, time_col, amount_col],
        memory_limit=memory_limit,
        spill_dir=spill_dir,
        progress=None,
    )
    if cold_start:  # cold-start (docs/methods.md#cold-start)
        check_horizon(cold_start_horizon_days)
        arguments |= {"cold_start": True, "cold_start_horizon_days": cold_start_horizon_days}
    if out_of_core is None or cold_start:
        with stage(f"scoring {input}"):
            if out_of_core is None:
                prepared = prepare_input(input, reading)
                scores, info = silence(prepared, return_info=True, **arguments)
            else:  # by parts; the population columns need every part, so the frame is kept
                scores, info = silence(
                    input,
                    return_info=True,
                    memory_limit=out_of_core.memory_limit,
                    spill_dir=spill_dir,
                    **library_keywords(silence, reading),
                    **arguments,
                )
        with stage(f"writing {output}"):
            write_output(scores, output)
    else:
        keywords = {**library_keywords(silence_to_file, reading), **arguments}
        guarded = output.suffix.lower() == ".csv" and state["csv_guard"]
        if state["mkdir"]:
            output.parent.mkdir(parents=True, exist_ok=True)
        with (
            progress_bar(f"scoring {input} by parts") as advance,
            # A guarded CSV is streamed from a Parquet of the parts (memory stays bounded),
            # written beside the output (a directory checked writable above).
            tempfile.TemporaryDirectory(dir=output.parent, prefix=".winback-")
            if guarded
            else contextlib.nullcontext(None) as scratch,
        ):
            target = Path(scratch) / "scores.parquet" if scratch is not None else output
            info = silence_to_file(
                input,
                target,
                memory_limit=out_of_core.memory_limit,
                spill_dir=spill_dir,
                progress=advance,
                **keywords,
            )
            if guarded:
                frame = pl.scan_parquet(target)
                frame.with_columns(guard_exprs(frame.collect_schema())).sink_csv(output)
        scores = _read_scores(output)
    if rejects is not None:
        write_output(info.rejects, rejects)
    summary = {**info.as_dict(), "output": str(output)}
    if json_out:
        groups = scores.get_column("rank_ratio_group").value_counts().drop_nulls()
        summary["groups"] = {str(k): int(v) for k, v in groups.iter_rows()}
        typer.echo(json.dumps(summary))
        return
    groups_table, bands_table = summary_tables(scores)
    cold_table = cold_start_table(scores)
    show(info_table(summary), groups_table, bands_table, *([cold_table] if cold_table else []))


@app.command()
def migrate(
    input: Transactions,
    as_of: Annotated[
        list[str], typer.Option("--as-of", help="Snapshot dates, two or more, in order.")
    ],
    output: OutputDir,
    min_occasions: MinOccasions = MIN_OCCASIONS,
    resolution: Resolution = RESOLUTION,
    customer_col: CustomerCol = CUSTOMER_COL,
    time_col: TimeCol = TIME_COL,
    amount_col: OptionalAmountCol = AMOUNT_COL,
    on_invalid: OnInvalidOption = ON_INVALID,
    time_format: TimeFormat = None,
    id_type: IdType = None,
    tz: TimeZone = None,
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

    reading = read_options(
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
        tz=tz,
    )
    check_resolution(resolution)
    check_output_dir(output, inputs=[input])
    with stage("scoring snapshots"):
        result = migration(
            prepare_input(input, reading),
            as_of=as_of,
            resolution=resolution,
            min_occasions=min_occasions,
        )
    make_dir(output)
    write_output(result.states, output / "states.parquet")
    write_output(result.transitions, output / "transitions.csv")
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
    write_output(differences, output / "feature_differences.csv")
    if json_out:
        typer.echo(json.dumps({"customers": result.states.height, "output": str(output)}))
        return
    for pair in range(len(result.as_of) - 1):
        show(matrix_table(result, pair))
    show(
        frame_table(
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
