"""Benchmark reading transactions from a database table into Polars (docs/loop.md#database-sources).

``--customers`` customers of ``benches/gen_data.py`` (≈ 15 rows each) are written to a SQLite
file and, with ``--postgres`` (a throw-away server from ``tests/postgres.py``), to a PostgreSQL
table; then each reader loads the whole table into a Polars frame, each in its own child
process (so its peak memory is its own), best of ``--repeat`` runs:

- ``adbc``: ``winback._io.sources.read_database_url`` — the ADBC drivers' Arrow record batches,
  each turned into Polars as it arrives (winback's path);
- ``sqlalchemy``: ``polars.read_database`` over a SQLAlchemy connection (sqlite3 / psycopg 3:
  rows as Python tuples, then Polars) — winback's previous path;
- ``connectorx``: ``polars.read_database_uri(engine="connectorx")``, when connectorx is
  installed (it is not a winback dependency).

Printed: wall seconds (best), rows/s, the child's peak RSS above its RSS before the read (MB;
every module imported first) and the size of the frame read (MB). Timings
depend on the machine's load: the load average is printed with them.

Usage::

    python benches/bench_db_sources.py [--customers 70000] [--repeat 3] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
sys.path.insert(0, str(ROOT))

READERS = ("adbc", "sqlalchemy", "connectorx")


def _rss_mb() -> float:
    """The process's resident memory now (MB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(reader: str, url: str) -> dict[str, float]:
    """Reads the table once in this process: seconds, rows and the peak RSS above the RSS
    before the read (MB). Every module is imported before the clock starts."""
    import polars as pl
    import sqlalchemy as sa

    from winback._io.sources import database_driver_url, read_database_url

    if reader == "adbc":
        import adbc_driver_postgresql.dbapi  # noqa: F401
        import adbc_driver_sqlite.dbapi  # noqa: F401
    elif reader == "sqlalchemy" and url.startswith("postgres"):
        import psycopg  # noqa: F401
    elif reader == "connectorx":
        import connectorx  # noqa: F401

    table_url = url + ("&" if "?" in url else "?") + "table=sales"
    before = _rss_mb()
    t0 = time.perf_counter()
    if reader == "adbc":
        frame = read_database_url(table_url)
    elif reader == "sqlalchemy":
        engine = sa.create_engine(database_driver_url(url))
        with engine.connect() as conn:
            frame = pl.read_database(sa.text("SELECT * FROM sales"), conn)
        engine.dispose()
    else:
        uri = url.replace("sqlite:///", "sqlite://")
        frame = pl.read_database_uri("SELECT * FROM sales", uri, engine="connectorx")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "rows": frame.height,
        "peak_mb": peak - before,
        "frame_mb": frame.estimated_size() / 2**20,
    }


def write_tables(customers: int, folder: Path, pg_url: str | None) -> tuple[str, str | None, int]:
    import adbc_driver_sqlite.dbapi as sqlite_dbapi
    from gen_data import generate

    frame = generate(customers, seed=0)
    db = folder / "sales.db"
    with sqlite_dbapi.connect(str(db)) as conn, conn.cursor() as cur:
        cur.adbc_ingest("sales", frame.to_arrow(), mode="create")
        conn.commit()
    if pg_url is not None:
        import adbc_driver_postgresql.dbapi as pg_dbapi

        with pg_dbapi.connect(pg_url) as conn, conn.cursor() as cur:
            cur.adbc_ingest("sales", frame.to_arrow(), mode="replace")
            conn.commit()
    return f"sqlite:///{db}", pg_url, frame.height


def run(args: argparse.Namespace, pg_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url, pg, rows = write_tables(args.customers, Path(tmp), pg_url)
        print(f"{rows:,} rows, {args.customers:,} customers; load {os.getloadavg()}")
        results = []
        for name, url in (("sqlite", sqlite_url), ("postgresql", pg)):
            if url is None:
                continue
            for reader in READERS:
                best: dict[str, float] | None = None
                for _ in range(args.repeat):
                    done = subprocess.run(
                        [sys.executable, __file__, "--one", reader, url],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        print(f"{name} {reader}: failed: {done.stderr.strip().splitlines()[-1]}")
                        break
                    got = json.loads(done.stdout)
                    if best is None or got["seconds"] < best["seconds"]:
                        best = got
                if best is not None:
                    results.append((name, reader, best))
        head = f"{'database':<11}{'reader':<12}{'seconds':>9}{'Mrows/s':>9}"
        print(head + f"{'peak MB':>9}{'frame MB':>9}")
        for name, reader, r in results:
            print(
                f"{name:<11}{reader:<12}{r['seconds']:>9.2f}"
                f"{r['rows'] / r['seconds'] / 1e6:>9.2f}{r['peak_mb']:>9.0f}{r['frame_mb']:>9.0f}"
            )
        print(f"load after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=70_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("READER", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    if not args.postgres:
        run(args, None)
        return
    from tests import postgres

    with postgres.server() as server:
        server.admin("CREATE DATABASE bench")
        run(args, server.url("bench"))


if __name__ == "__main__":
    main()
