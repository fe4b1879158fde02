"""The state database under stress, on SQLite and on a real PostgreSQL server
(docs/loop.md#reliability): a run killed with SIGKILL at several points leaves the state as
before or as after it; two runs at once wait for each other (or fail with a clear message);
a server that is down, refused credentials and a newer schema are one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from tests import postgres
from tests.loop.conftest import TEST_DATABASE, Database, config
from winback.errors import WinbackStateError
from winback.loop import Pipeline, RunResult
from winback.loop.schema import SCHEMA_VERSION, connect, lock

DAY1, DAY2 = date(2024, 3, 1), date(2024, 3, 2)
STATE = ("runs", "snapshots", "campaigns", "targets", "contacts", "outcomes", "evaluations")
CRM = "customer,date,staff,outcome,amount\n7,2024-03-01,ann,purchase,20\n9,2024-03-01,bo,,\n"


def state(pipeline: Pipeline) -> dict[str, pl.DataFrame]:
    return {name: pipeline.table(name) for name in STATE}


def same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> bool:
    return all(a[name].equals(b[name]) for name in STATE)


def toml(raw: dict[str, Any]) -> str:
    """The test config as TOML (strings, numbers and lists of strings: JSON literals are TOML)."""
    lines = []
    for table, keys in raw.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


KILLED_RUN = Path(__file__).with_name("killed_run.py")


def cli(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """``winback ARGS`` in a child process; with ``kill_at``, through tests/loop/killed_run.py,
    whose runs SIGKILL themselves at that checkpoint."""
    command = [str(KILLED_RUN), kill_at] if kill_at else ["-m", "winback.cli"]
    return subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("point", ["migrated", "targets", "commit", "committed"])
def test_a_killed_run_leaves_the_state_as_before_or_after(
    tmp_path: Path, sales_file: Path, database: Database, point: str
) -> None:
    raw = config(tmp_path, sales_file, database)
    pipeline = Pipeline(raw)
    pipeline.run(DAY1)
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    assert pipeline.import_contacts(tmp_path / "crm.csv").outcomes == 1
    before = state(pipeline)
    path = tmp_path / "winback.toml"
    path.write_text(toml(raw), encoding="utf-8")
    killed = cli("run", "-c", str(path), "--as-of", str(DAY2), kill_at=point)
    assert killed.returncode == -9, killed.stderr
    at_kill = state(pipeline)
    result = pipeline.run(DAY2)  # the next run completes
    after = state(pipeline)
    if point == "committed":  # killed after the commit: the run is in the state
        assert same(at_kill, after)
        assert result.rerun
    else:
        assert same(at_kill, before)
        assert not result.rerun
    assert after["targets"].select("campaign_id", "customer_id").is_unique().all()
    assert after["outcomes"].equals(before["outcomes"])  # no outcome lost
    assert after["contacts"].equals(before["contacts"])
    out = Path(pipeline.config.outputs)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert (out / "targets-2024-03-02.csv").is_file()


def test_a_run_waits_for_the_lock_or_fails_in_one_line(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw = config(tmp_path, sales_file, database)
    pipeline = Pipeline(raw)
    pipeline.run(DAY1)
    before = state(pipeline)
    engine = connect(pipeline.config.database_url)
    holder = engine.connect()
    holder.begin()
    lock(holder)  # another run or import, mid-transaction
    holder.execute(sa.text("SELECT count(*) FROM runs")).scalar()  # SQLite: BEGIN IMMEDIATE
    impatient = {**raw, "database": {**raw["database"], "lock_wait_seconds": 1}}
    with pytest.raises(WinbackStateError, match=r"another winback run or import holds it") as info:
        Pipeline(impatient).run(DAY2)
    assert "(waited 1 s)" in str(info.value)
    assert "\n" not in str(info.value)
    released = threading.Event()

    def release() -> None:
        time.sleep(1.5)
        released.set()
        holder.rollback()

    thread = threading.Thread(target=release)
    thread.start()
    try:
        result = pipeline.run(DAY2)  # waits (up to 30 s) for the lock, then runs
    finally:
        thread.join()
        holder.close()
        engine.dispose()
    assert released.is_set()
    assert result.run_date == DAY2
    assert not result.rerun
    assert state(pipeline)["runs"]["run_date"].to_list() == [DAY1, DAY2]
    assert before["runs"]["run_date"].to_list() == [DAY1]


def test_two_runs_at_once_are_one_after_the_other(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw = config(tmp_path, sales_file, database)
    Pipeline(raw).run(DAY1)
    results: list[RunResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(Pipeline(raw).run(DAY2))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(r.rerun for r in results) == [False, True]  # the second re-ran the day
    targets = Pipeline(raw).table("targets")
    assert targets.select("campaign_id", "customer_id").is_unique().all()
    assert Pipeline(raw).table("runs").height == 2
    assert results[0].new_targets == results[1].new_targets


def failed(raw: dict[str, Any], tmp_path: Path) -> str:
    """Runs the CLI on ``raw``: exit code 2 and one line; returns it."""
    path = tmp_path / "bad.toml"
    path.write_text(toml(raw), encoding="utf-8")
    done = cli("run", "-c", str(path), "--as-of", str(DAY1))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_server_that_is_down_is_one_line(tmp_path: Path, sales_file: Path) -> None:
    pytest.importorskip("psycopg")
    raw = config(tmp_path, sales_file)
    raw["database"]["url"] = "postgresql://winback:secret@127.0.0.1:1/winback"
    line = failed(raw, tmp_path)
    assert "cannot be reached" in line
    assert "is it running" in line
    assert "secret" not in line
    with pytest.raises(WinbackStateError, match="cannot be reached"):
        Pipeline(raw).table("runs")


def test_wrong_credentials_are_one_line(
    tmp_path: Path, sales_file: Path, pg_server: postgres.Server
) -> None:
    raw = config(tmp_path, sales_file)
    raw["database"]["url"] = pg_server.url(TEST_DATABASE, password="wrong-password")
    line = failed(raw, tmp_path)
    assert "refused the credentials" in line
    assert "password authentication failed" in line
    assert "wrong-password" not in line


def test_a_newer_schema_is_one_line_with_exit_2(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw = config(tmp_path, sales_file, database)
    Pipeline(raw).run(DAY1)
    engine = connect(raw["database"]["url"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 7})
    engine.dispose()
    line = failed(raw, tmp_path)
    assert f"schema version {SCHEMA_VERSION + 7}, newer than this winback's" in line
    assert "upgrade winback" in line
