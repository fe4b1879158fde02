"""Generated transactions, a config and the state database (SQLite or PostgreSQL) for the
daily-loop tests.

Every state test takes the ``database`` fixture: it runs once on SQLite and once on a real
PostgreSQL server (tests/postgres.py, started once per session), and must give the same results
on both.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests import postgres

pytest.importorskip("sqlalchemy")

#: A state database for a test folder: the same folder gives the same database.
Database = Callable[[Path], str]
BACKENDS = ("sqlite", "postgresql")

FIRST_DAY = "2024-03-01"


def transactions(n: int = 400, seed: int = 7) -> pl.DataFrame:
    """Customers with regular purchase gaps (5–40 days) from 2023, each stopping on a random day
    between 2023-10 and 2024-04: every day of March 2024 some fall silent."""
    rng = np.random.default_rng(seed)
    begin = datetime(2023, 1, 1)
    rows: dict[str, list[Any]] = {"customer_id": [], "ts": [], "amount": []}
    for customer in range(1, n + 1):
        gap = int(rng.integers(5, 41))
        t = float(rng.uniform(0, 60))
        stop = float(rng.uniform(270, 480))
        while t < stop:
            rows["customer_id"].append(customer)
            rows["ts"].append(begin + timedelta(days=t, hours=float(rng.uniform(8, 20))))
            rows["amount"].append(round(float(rng.gamma(4, 20)), 2))
            t += gap * float(rng.uniform(0.7, 1.3))
    return pl.DataFrame(rows)


@pytest.fixture(scope="session")
def sales_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sales") / "sales.parquet"
    transactions().write_parquet(path)
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.Server]:
    """One PostgreSQL server for the session, with the database ``winback_tests``."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        postgres.missing("psycopg is not installed (pip install 'winback[postgres]')")
    with postgres.server() as server:
        server.admin(f"CREATE DATABASE {TEST_DATABASE}")
        yield server


TEST_DATABASE = "winback_tests"
_names = itertools.count()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    """The state database of a test folder, on SQLite (a file in the folder) and on PostgreSQL
    (a fresh schema of the session server's test database, chosen by the URL's search_path: a
    schema is created in a millisecond, a database is a copy of several megabytes)."""
    if request.param == "sqlite":
        return lambda folder: f"sqlite:///{folder / 'state.db'}"
    server: postgres.Server = request.getfixturevalue("pg_server")
    made: dict[Path, str] = {}

    def make(folder: Path) -> str:
        if folder not in made:
            name = f"t{os.getpid()}_{next(_names)}"
            server.admin(f"CREATE SCHEMA {name}", TEST_DATABASE)
            made[folder] = server.url(TEST_DATABASE) + f"&options=-csearch_path%3D{name}"
        return made[folder]

    return make


def config(
    folder: Path, sales: Path, db: Database | None = None, **campaign: Any
) -> dict[str, Any]:
    """A loop config (dict) with its outputs in ``folder`` and its state in ``db(folder)``
    (default: a SQLite file in ``folder``)."""
    url = db(folder) if db is not None else f"sqlite:///{folder / 'state.db'}"
    return {
        "source": {"paths": [str(sales)]},
        "campaign": {"name": "wb", "holdout": 0.2, "cool_down_days": 14, **campaign},
        "staff": {"names": ["ann", "bo"]},
        "outputs": {"dir": str(folder / "out")},
        "database": {"url": url},
    }
