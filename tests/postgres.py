"""A throw-away PostgreSQL server for the loop's state tests: Debian's ``postgresql`` package,
``initdb`` in a temporary folder, listening only on a Unix socket inside that folder (no TCP
port, so parallel test runs never collide), stopped at the end of the session.

CI installs the package when it is missing (scripts/ensure_postgres.sh, called by `.ci/run`);
elsewhere, without ``initdb``/``pg_ctl``, the PostgreSQL variants of the tests are skipped with
that advice. Under ``CI=true`` a missing server is an error, never a skip.

``initdb`` and ``postgres`` refuse to run as root (a server process must not own the machine);
the tests run as root in containers, so there the cluster is created and started as the
unprivileged user ``nobody`` through ``runuser``, with the temporary folder handed to it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "winback"
PASSWORD = "winback-test"
_ADVICE = (
    "PostgreSQL is not installed, so the loop's PostgreSQL tests are skipped outside CI; "
    "`make postgres` installs Debian's postgresql (apt-get, as root or through sudo)"
)


@dataclass(frozen=True)
class Server:
    """A running test server: ``url(db)`` is the SQLAlchemy URL of database ``db`` on it."""

    socket_dir: Path
    port: int

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@/{database}?host={self.socket_dir}&port={self.port}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Runs one statement outside a transaction (CREATE DATABASE, CREATE SCHEMA)."""
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=USER,
            password=PASSWORD,
            dbname=database,
            autocommit=True,
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, or Debian's versioned folder."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def missing(reason: str) -> None:
    """A skip with advice outside CI; under CI=true an error."""
    if os.environ.get("CI"):
        raise RuntimeError(
            f"{reason}: CI installs PostgreSQL with scripts/ensure_postgres.sh (`make postgres`)"
        )
    pytest.skip(_ADVICE)


@contextmanager
def server() -> Iterator[Server]:
    """Starts a fresh cluster and yields it; stops it and removes its folder at the end, also
    when the tests fail."""
    binaries = find_binaries()
    if binaries is None:
        missing("PostgreSQL (initdb, pg_ctl) is not installed")
    assert binaries is not None
    # short path: a Unix socket path is limited to about 100 bytes
    root = Path(tempfile.mkdtemp(prefix="wbpg-", dir="/tmp"))
    data, sockets = root / "data", root / "s"
    sockets.mkdir()
    (root / "pw").write_text(PASSWORD + "\n")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse root: run them as nobody
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(root, "nobody")
        for path in (sockets, root / "pw"):
            shutil.chown(path, "nobody")
    port = 5432 + os.getpid() % 1000  # only names the socket file; no TCP listener
    log = root / "log"

    def call(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()} {tail}")

    started = False
    try:
        call(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--pwfile",
            str(root / "pw"),
            "--auth=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-c listen_addresses='' -k {sockets} -p {port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        started = True
        call(
            str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"
        )
        yield Server(socket_dir=sockets, port=port)
    finally:
        if started:
            subprocess.run(
                [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)
