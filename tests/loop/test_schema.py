"""The state database's versioned schema (docs/loop.md#the-state-database)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.loop.conftest import Database, config
from winback.errors import WinbackConfigError
from winback.loop import Pipeline
from winback.loop.schema import MIGRATIONS, SCHEMA_VERSION, connect, migrate, schema_version

TABLES = {
    "schema_version",
    "runs",
    "snapshots",
    "campaigns",
    "targets",
    "contacts",
    "outcomes",
    "evaluations",
}


def test_migrations_are_ordered_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == SCHEMA_VERSION


def test_an_empty_database_gets_every_table(tmp_path: Path, database: Database) -> None:
    engine = connect(database(tmp_path))
    with engine.begin() as conn:
        assert schema_version(conn) == 0
        assert migrate(conn) == 0
    with engine.connect() as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        assert set(sa.inspect(conn).get_table_names()) == TABLES
        assert migrate(conn) == SCHEMA_VERSION  # nothing left to do
    engine.dispose()


def test_a_failed_migration_leaves_the_database_empty(tmp_path: Path, database: Database) -> None:
    """DDL runs inside the transaction (BEGIN IMMEDIATE on SQLite; PostgreSQL's DDL is
    transactional)."""
    engine = connect(database(tmp_path))

    def fail() -> None:
        with engine.begin() as conn:
            migrate(conn)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_a_newer_schema_is_refused_in_one_line(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database))
    pipeline.run("2024-03-01")
    engine = connect(pipeline.config.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    with pytest.raises(WinbackConfigError, match="newer than this winback") as info:
        pipeline.run("2024-03-02")
    assert "\n" not in str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)
    with pytest.raises(WinbackConfigError, match="newer than this winback"):
        pipeline.table("runs")


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, sales_file: Path) -> None:
    raw = config(tmp_path, sales_file)
    (tmp_path / "state.db").write_bytes(b"this is not SQLite\n" * 100)
    with pytest.raises(WinbackConfigError, match="cannot be used: file is not a database") as info:
        Pipeline(raw).run("2024-03-01")
    assert "\n" not in str(info.value)


def test_a_password_is_not_shown(tmp_path: Path) -> None:
    from winback.loop.schema import safe_url

    assert "secret" not in safe_url("postgresql://ann:secret@db.example/winback")


def test_the_ddl_compiles_for_postgresql() -> None:
    """The schema is dialect-neutral: every table compiles for PostgreSQL (running on a real
    server is the next step, docs/loop.md#what-is-not-built-yet)."""
    from sqlalchemy.dialects import postgresql

    from winback.loop.schema import metadata

    for table in metadata.sorted_tables:
        ddl = str(sa.schema.CreateTable(table).compile(dialect=postgresql.dialect()))
        assert ddl.startswith(f"\nCREATE TABLE {table.name}")
        assert "VARCHAR(" not in ddl  # no length limit cuts an id
