"""The daily loop (docs/loop.md): ``winback run`` (one day of the loop from a config file) and
``winback init`` (writes a commented example config)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from winback.cli._app import app
from winback.cli._common import JsonOut, guard_csv, show, state
from winback.errors import WinbackConfigError

__all__ = ["contacts_app", "import_contacts", "init", "run"]

contacts_app = typer.Typer(
    help="The CRM's contacts and outcomes in the loop's state (docs/loop.md).",
    no_args_is_help=True,
)
app.add_typer(contacts_app, name="contacts")


@app.command()
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The loop's TOML config (winback init).")
    ] = Path("winback.toml"),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The day to run, YYYY-MM-DD (default: today).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Run one day of the win-back loop: score, select, remember, write the day's files.

    Keeps the state (runs, snapshots, campaigns, targets, contacts) in the config's database
    (default: SQLite file winback-state.db next to the config). Writes targets-DAY.csv,
    due-DAY.csv and entrants-DAY.csv to the outputs folder, outbox-DAY.csv with [messages]
    templates, and evaluations-DAY.csv on a day a campaign's window has ended. Re-running a day
    gives the same state and files; a day before the latest run is refused.

    Example: winback run --config winback.toml --as-of 2024-06-30
    """
    from winback.loop import Pipeline

    result = Pipeline(config).run(as_of, guard=guard_csv if state["csv_guard"] else None)
    evaluated = sorted(set(result.evaluations.get_column("campaign_id").to_list()))
    summary = {
        "run_date": result.run_date.isoformat(),
        "campaign_id": result.campaign_id,
        "rerun": result.rerun,
        "customers": result.customers,
        "selected": result.selected,
        "entrants": len(result.entrants),
        "new_targets": result.new_targets,
        "cooled_down": result.cooled_down,
        "due": result.due.height,
        "capacity_cut": result.capacity_cut,
        "evaluated": evaluated,
        "messages": None if result.outbox is None else result.outbox.height,
        "unrendered": result.unrendered,
        "files": [str(p) for p in result.files],
    }
    if json_out:
        typer.echo(json.dumps(summary))
        return
    again = " (re-run: the day's state was replaced)" if result.rerun else ""
    show(
        f"{summary['run_date']} · campaign {result.campaign_id}{again}\n"
        f"{result.customers:,} customers scored, {result.selected:,} selected, "
        f"{len(result.entrants):,} new entrants, {result.new_targets:,} new targets, "
        f"{result.cooled_down:,} in cool-down, {result.due.height:,} contacts due\n"
        + (f"evaluated {', '.join(evaluated)}\n" if evaluated else "")
        + (
            f"{result.outbox.height:,} messages"
            + (
                f" ({result.unrendered:,} due contacts have no template for their strategy)"
                if result.unrendered
                else ""
            )
            + "\n"
            if result.outbox is not None
            else ""
        )
        + "\n".join(f"wrote {p}" for p in result.files)
    )


@app.command()
def init(
    output: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path(
        "winback.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example config for winback run.

    Example: winback init winback.toml
    """
    from winback.loop.config import EXAMPLE_CONFIG

    if output.exists() and not force:
        raise WinbackConfigError(
            f"{str(output)!r} exists; pass --force to overwrite it, or name another file"
        )
    if not output.parent.exists():
        raise WinbackConfigError(f"the folder of {str(output)!r} does not exist")
    output.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    show(f"wrote {output}; edit [source] paths, then: winback run --config {output}")


@contacts_app.command("import")
def import_contacts(
    file: Annotated[Path, typer.Argument(help="The CRM's CSV: customer, date, staff, …")],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The loop's TOML config (winback init).")
    ] = Path("winback.toml"),
    json_out: JsonOut = False,
) -> None:
    """Import the contacts made and their outcomes from the CRM's CSV into the loop's state.

    Columns: customer and date (YYYY-MM-DD) required; staff, channel, outcome, amount,
    campaign optional. A bad row is refused by its number and nothing is added; rows already
    imported are skipped, so importing a file twice adds it once.

    Example: winback contacts import crm-2024-06-30.csv --config winback.toml
    """
    from winback.loop import Pipeline

    done = Pipeline(config).import_contacts(file)
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "rows": done.rows,
                    "contacts": done.contacts,
                    "outcomes": done.outcomes,
                    "known": done.known,
                }
            )
        )
        return
    show(
        f"{done.rows:,} rows read: {done.contacts:,} contacts and {done.outcomes:,} outcomes "
        f"added, {done.known:,} already in the state"
    )
