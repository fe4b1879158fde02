"""Transactions read from databases (docs/methods.md#input): a SQLite table, a PostgreSQL table
on the session's real server, a DuckDB file and a query give the same scores as the file."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tests import postgres
from tests.loop.conftest import TEST_DATABASE, config, transactions
from winback import silence
from winback._io.sources import read_database_url
from winback.errors import WinbackInputError
from winback.loop import Pipeline
from winback.loop.schema import driver_url

AS_OF = "2024-03-01"


@pytest.fixture(scope="module")
def sales() -> pl.DataFrame:
    return transactions(n=150, seed=3)


def write_table(url: str, frame: pl.DataFrame) -> None:
    engine = sa.create_engine(driver_url(url))
    table = sa.Table(
        "sales",
        sa.MetaData(),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("ts", sa.DateTime),
        sa.Column("amount", sa.Float),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), frame.to_dicts())
    engine.dispose()


def test_sqlite_duckdb_and_a_query_score_as_the_file(tmp_path: Path, sales: pl.DataFrame) -> None:
    import duckdb

    expected = silence(sales, as_of=AS_OF)
    write_table(f"sqlite:///{tmp_path / 's.db'}", sales)
    with duckdb.connect(str(tmp_path / "s.duckdb")) as conn:
        conn.register("frame", sales.to_arrow())
        conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
    for url in (
        f"sqlite:///{tmp_path / 's.db'}?table=sales",
        f"duckdb:///{tmp_path / 's.duckdb'}?table=sales",
    ):
        assert silence(url, as_of=AS_OF).equals(expected), url
    few = read_database_url(
        f"sqlite:///{tmp_path / 's.db'}", "SELECT * FROM sales WHERE customer_id <= 10"
    )
    assert set(few["customer_id"]) == set(range(1, 11))
    # the CLI: --query instead of ?table=
    out = tmp_path / "scores.parquet"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "score",
            f"duckdb:///{tmp_path / 's.duckdb'}",
            "--query",
            "SELECT * FROM sales WHERE amount > 0",
            "--as-of",
            AS_OF,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(out).equals(expected)


def test_a_postgresql_table_feeds_the_loop(
    tmp_path: Path, sales: pl.DataFrame, pg_server: postgres.Server
) -> None:
    url = pg_server.url(TEST_DATABASE) + "&options=-csearch_path%3Dsources"
    pg_server.admin("CREATE SCHEMA IF NOT EXISTS sources", TEST_DATABASE)
    write_table(url, sales)
    got = silence(url + "&table=sales", as_of=AS_OF)
    assert got.equals(silence(sales, as_of=AS_OF))
    # the daily loop reads its transactions from the same table
    raw = config(tmp_path, tmp_path / "unused.parquet")
    raw["source"] = {"paths": [url + "&table=sales"]}
    result = Pipeline(raw).run(AS_OF)
    assert result.customers == sales["customer_id"].n_unique()


@pytest.mark.parametrize(
    ("suffix", "match"),
    [
        ("", "needs a table"),
        ("?table=sales&query=SELECT%201", "needs a table"),
        ("?table=nope", "no such table: nope"),
        ("?table=sales;DROP", "is not a table name"),
    ],
)
def test_bad_database_sources_are_one_line(
    tmp_path: Path, sales: pl.DataFrame, suffix: str, match: str
) -> None:
    write_table(f"sqlite:///{tmp_path / 's.db'}", sales)
    with pytest.raises(WinbackInputError, match=match) as info:
        silence(f"sqlite:///{tmp_path / 's.db'}{suffix}", as_of=AS_OF)
    assert "\n" not in str(info.value)


def test_a_missing_database_file(tmp_path: Path) -> None:
    with pytest.raises(WinbackInputError, match="does not exist"):
        silence(f"sqlite:///{tmp_path / 'none.db'}?table=sales", as_of=AS_OF)
    with pytest.raises(WinbackInputError, match="does not exist"):
        silence(f"duckdb:///{tmp_path / 'none.duckdb'}?table=sales", as_of=AS_OF)


@pytest.mark.parametrize("scheme", ["sqlite", "duckdb"])
def test_a_relative_database_file_is_taken_from_the_config_folder(
    tmp_path: Path, sales: pl.DataFrame, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///sales.db?table=…`` in a config means the file next to the config, whatever
    the working directory (as every other relative path in it)."""
    from winback.loop.config import parse_config

    folder = tmp_path / "config"
    folder.mkdir()
    if scheme == "sqlite":
        write_table(f"sqlite:///{folder / 'sales.db'}", sales)
    else:
        import duckdb

        with duckdb.connect(str(folder / "sales.db")) as conn:
            conn.register("frame", sales.to_arrow())
            conn.execute("CREATE TABLE sales AS SELECT * FROM frame")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    parsed = parse_config({"source": {"paths": [f"{scheme}:///sales.db?table=sales"]}}, base=folder)
    (url,) = parsed.sources
    assert url == f"{scheme}:///{folder / 'sales.db'}?table=sales"
    assert silence(url, as_of=AS_OF).equals(silence(sales, as_of=AS_OF))


# -- Arrow batches (docs/loop.md#database-sources) ---------------------------------------------


def test_any_batch_size_reads_the_same_frame(
    tmp_path: Path, sales: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows come in record batches; how they are cut changes nothing (row order, values,
    every row once)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import winback._io.sources as sources

    write_table(f"sqlite:///{tmp_path / 's.db'}", sales)
    url = f"sqlite:///{tmp_path / 's.db'}?table=sales"
    whole = read_database_url(url)
    assert whole.height == sales.height
    assert whole["customer_id"].to_list() == sales["customer_id"].to_list()  # insertion order
    assert whole["amount"].to_list() == sales["amount"].to_list()

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(min_value=1, max_value=sales.height + 5))
    def check(rows: int) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(sources, "SQLITE_BATCH_ROWS", rows)
            got = read_database_url(url)
        assert got.equals(whole)
        assert got.n_chunks() == -(-sales.height // rows)  # one chunk per batch, none copied

    check()


def test_a_sqlite_column_of_mixed_types_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import winback._io.sources as sources

    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("CREATE TABLE sales (customer_id INTEGER, ts TEXT, amount REAL)")
        rows = [(i, "2024-01-01", 1.5) for i in range(40)]
        rows[30] = (30, "2024-01-01", "n/a")  # SQLite keeps text in a REAL column
        conn.executemany("INSERT INTO sales VALUES (?, ?, ?)", rows)
    monkeypatch.setattr(sources, "SQLITE_BATCH_ROWS", 8)  # the text comes in a later batch
    with pytest.raises(WinbackInputError, match=r"Type mismatch in column 2.*CAST") as info:
        read_database_url(f"sqlite:///{tmp_path / 'm.db'}?table=sales")
    assert "\n" not in str(info.value)


def test_postgresql_numeric_dates_and_bad_sources(
    tmp_path: Path, pg_server: postgres.Server
) -> None:
    import psycopg

    pg_server.admin("CREATE SCHEMA IF NOT EXISTS typed", TEST_DATABASE)
    url = pg_server.url(TEST_DATABASE) + "&options=-csearch_path%3Dtyped"
    with psycopg.connect(driver_url(url).replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(
            "CREATE TABLE sales (customer_id text, day date, amount numeric(10, 2), total numeric)"
        )
        conn.execute(
            "INSERT INTO sales VALUES ('007', '2024-01-02', 12.34, 1.5), "
            "('008', '2024-01-03', NULL, NULL)"
        )
    got = read_database_url(url + "&table=sales")
    assert got.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "day": pl.Date,
            "amount": pl.Decimal(10, 2),
            "total": pl.Float64,  # numeric without precision: a float
        }
    )
    assert got.rows() == [
        ("007", date(2024, 1, 2), Decimal("12.34"), 1.5),
        ("008", date(2024, 1, 3), None, None),
    ]
    cases = [
        (url + "&table=nope", r'relation "nope" does not exist'),
        (url + "&query=SELEC%201", r'syntax error at or near "SELEC"'),
        (
            pg_server.url(TEST_DATABASE, password="wrong") + "&table=sales",
            r"cannot connect to .*password authentication failed",
        ),
        (
            f"postgresql://winback:secret@/{TEST_DATABASE}?host={tmp_path}&port=1&table=sales",
            r"cannot connect to .*(No such file|Is the server running)",
        ),
    ]
    for source, match in cases:
        with pytest.raises(WinbackInputError, match=match) as info:
            read_database_url(source)
        message = str(info.value)
        assert "\n" not in message
        assert "wrong" not in message
        assert "secret" not in message
    # the CLI: one line, exit 2
    done = subprocess.run(
        [
            *(sys.executable, "-m", "winback.cli", "score", cases[2][0]),
            *("--as-of", AS_OF, "-o", str(tmp_path / "out.parquet")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "password authentication failed" in done.stderr
    assert "wrong" not in done.stderr
