"""The state database's schema (docs/loop.md#the-state-database): the tables as SQLAlchemy Core
metadata, the ordered migration steps, and the engine the loop opens.

The schema is versioned: ``schema_version`` holds one row, the number of migration steps
applied. :func:`migrate` applies the missing steps in order inside the caller's transaction; a
database written by a newer winback (a version above :data:`SCHEMA_VERSION`) is refused with a
one-line :class:`~winback.errors.WinbackConfigError` before anything is read or written.

Only portable Core types are used (String without a length, Integer, Float, Date, Boolean), so
the same tables are created on SQLite and PostgreSQL and no id is cut to a length. Customer ids
are stored as text (an integer id as its decimal digits); ``runs.id_type`` says how to read them
back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from winback._io.sources import database_driver_url
from winback._options import LOCK_WAIT_SECONDS
from winback.errors import WinbackConfigError, WinbackStateError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "check_version",
    "connect",
    "driver_url",
    "engine_for",
    "lock",
    "migrate",
    "schema_version",
]

metadata = sa.MetaData()

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

#: One row per completed daily run.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("campaign_id", sa.String(), nullable=False),
    sa.Column("id_type", sa.String(), nullable=False),
    sa.Column("customers", sa.Integer, nullable=False),
    sa.Column("selected", sa.Integer, nullable=False),
    sa.Column("entrants", sa.Integer, nullable=False),
    sa.Column("new_targets", sa.Integer, nullable=False),
    sa.Column("cooled_down", sa.Integer, nullable=False),
    sa.Column("due", sa.Integer, nullable=False),
    sa.Column("config_fingerprint", sa.String(), nullable=False),
    sa.Column("winback_version", sa.String(), nullable=False),
)

#: Every scored customer on every run date: the history migration analysis reads.
snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("run_date", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.String(), primary_key=True),
    sa.Column("rank_ratio_group", sa.String()),
    sa.Column("silence_band", sa.String()),
    sa.Column("silence_score", sa.Float),
    sa.Column("recency_days", sa.Float),
    sa.Column("value", sa.Float),
    sa.Column("value_tier", sa.String()),
    sa.Column("segment", sa.String()),
    sa.Column("selected", sa.Boolean, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("holdout", sa.Float, nullable=False),
    sa.Column("rules", sa.String(), nullable=False),
)

#: One row per customer per campaign: arm, staff and strategy fixed at entry; ``next_contact``,
#: ``contacts_made`` and ``status`` recomputed by each run.
targets = sa.Table(
    "targets",
    metadata,
    sa.Column("campaign_id", sa.String(), primary_key=True),
    sa.Column("customer_id", sa.String(), primary_key=True),
    sa.Column("arm", sa.String(), nullable=False),
    sa.Column("contact", sa.Boolean, nullable=False),
    sa.Column("staff", sa.String()),
    sa.Column("strategy", sa.String()),
    sa.Column("segment", sa.String()),
    sa.Column("entered_on", sa.Date, nullable=False),
    sa.Column("interval_days", sa.Integer),
    sa.Column("next_contact", sa.Date),
    sa.Column("contacts_made", sa.Integer, nullable=False),
    sa.Column("status", sa.String(), nullable=False),
)

#: Contacts made (imported from the CRM): what the cool-down and the follow-ups read.
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("contact_key", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(), nullable=False, index=True),
    sa.Column("contact_date", sa.Date, nullable=False),
    sa.Column("campaign_id", sa.String()),
    sa.Column("staff", sa.String()),
    sa.Column("channel", sa.String()),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("outcome_key", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(), nullable=False, index=True),
    sa.Column("outcome_date", sa.Date, nullable=False),
    sa.Column("campaign_id", sa.String()),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("amount", sa.Float),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("campaign_id", sa.String(), primary_key=True),
    sa.Column("evaluated_on", sa.Date, primary_key=True),
    sa.Column("segment", sa.String(), primary_key=True),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("treated", sa.Integer, nullable=False),
    sa.Column("control", sa.Integer, nullable=False),
    sa.Column("rate_treatment", sa.Float),
    sa.Column("rate_control", sa.Float),
    sa.Column("uplift", sa.Float),
    sa.Column("uplift_low", sa.Float),
    sa.Column("uplift_high", sa.Float),
)


@dataclass(frozen=True)
class Migration:
    """One schema step: applied once, in order, to bring version ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create_v1(conn: sa.Connection) -> None:
    tables = [runs, snapshots, campaigns, targets, contacts, outcomes, evaluations]
    metadata.create_all(conn, tables=tables)


#: The migration steps, oldest first; a new schema change appends a step (never edits one).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "runs, snapshots, campaigns, targets, contacts, outcomes, evaluations", _create_v1
    ),
)
#: The schema version this winback writes.
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sa.Connection) -> int:
    """The database's schema version (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    found = conn.execute(sa.select(schema_version_table.c.version)).scalar()
    return int(found or 0)


def check_version(conn: sa.Connection, url: str = "") -> int:
    """The database's schema version; a version newer than this winback's is refused."""
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise WinbackStateError(
            f"the state database {safe_url(url)} has schema version {found}, newer than this "
            f"winback's ({SCHEMA_VERSION}); upgrade winback to use it"
        )
    return found


def migrate(conn: sa.Connection, url: str = "") -> int:
    """Brings the schema to :data:`SCHEMA_VERSION` in the caller's transaction; returns the
    version found. A newer database is refused."""
    found = check_version(conn, url)
    if found == SCHEMA_VERSION:
        return found
    if found == 0:
        metadata.create_all(conn, tables=[schema_version_table])
        conn.execute(schema_version_table.insert().values(version=0))
    for step in MIGRATIONS[found:]:
        step.apply(conn)
        conn.execute(schema_version_table.update().values(version=step.version))
    return found


def safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if not url:
        return "(in use)"
    try:
        return repr(sa.make_url(url).render_as_string(hide_password=True))
    except (sa.exc.ArgumentError, ValueError):
        return "(unparsable URL)"


@contextmanager
def engine_for(url: str, wait_seconds: int = LOCK_WAIT_SECONDS) -> Iterator[sa.Engine]:
    """:func:`connect`, disposed at the end; a database that cannot be opened, read or locked
    (server down, wrong credentials, not a database file, locked past ``wait_seconds``) is a
    one-line :class:`~winback.errors.WinbackStateError` naming the URL (without its password)
    and what to do."""
    engine = connect(url, wait_seconds)
    try:
        yield engine
    except sa.exc.DatabaseError as exc:
        if isinstance(exc, sa.exc.IntegrityError | sa.exc.ProgrammingError):
            raise
        raise WinbackStateError(
            f"the state database {safe_url(url)} cannot be used: {_reason(exc, wait_seconds)}"
        ) from None
    finally:
        engine.dispose()


def _reason(exc: sa.exc.DatabaseError, wait_seconds: int) -> str:
    """The driver's reason in one line, with the likely fix for the common cases."""
    text = str(exc.orig) if exc.orig is not None else type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = " ".join((lines[0] if lines else type(exc).__name__).split())
    low = text.lower()
    if "lock timeout" in low or "database is locked" in low:
        return (
            f"another winback run or import holds it (waited {wait_seconds} s); run again when "
            "that one has finished, or raise database.lock_wait_seconds"
        )
    if "password authentication failed" in low or "no password supplied" in low:
        return (
            f"the server refused the credentials ({first}); check the user and password of "
            "database.url, PGPASSWORD or ~/.pgpass"
        )
    unreachable = ("connection refused", "no such file or directory", "could not translate")
    if any(word in low for word in unreachable) or "timeout expired" in low:
        return (
            f"the database server cannot be reached ({first}); is it running, and are the "
            "host and port of database.url right?"
        )
    return first


#: The first key of the loop's PostgreSQL advisory lock ("winb"); the second is the schema's
#: hash, so states in different schemas of one database do not wait for each other.
_LOCK_KEY = 0x77696E62


def lock(conn: sa.Connection, wait_seconds: int = LOCK_WAIT_SECONDS) -> None:
    """Takes the state database's write lock for the caller's transaction, waiting up to
    ``wait_seconds`` for another run or import that holds it (docs/loop.md#two-runs-at-once).

    PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``), released at
    commit or rollback — also when the process holding it is killed, since the server ends
    the session. SQLite: the transaction began with ``BEGIN IMMEDIATE`` (:func:`connect`), which
    holds the file's write lock already. Call it first in a transaction that writes: before
    :func:`migrate`, so two first runs do not both create the tables.
    """
    if conn.dialect.name != "postgresql":
        return
    timeout = f"{max(1, wait_seconds * 1000)}ms"  # 0 would mean "wait forever"
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": timeout})
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
        {"key": _LOCK_KEY},
    )
    conn.execute(sa.text("SELECT set_config('lock_timeout', '0', true)"))


def driver_url(url: str) -> str:
    """``url`` with PostgreSQL's driver made explicit: a plain ``postgresql://`` (or
    ``postgres://``) URL is read with psycopg 3, the driver winback installs
    (``pip install 'winback[postgres]'``), not SQLAlchemy's default psycopg2."""
    return database_driver_url(url)


def connect(url: str, wait_seconds: int = LOCK_WAIT_SECONDS) -> sa.Engine:
    """The engine for ``url``. On SQLite every transaction starts with ``BEGIN IMMEDIATE`` (the
    write lock is taken at once, and DDL is inside the transaction, so a failed run leaves the
    file as it was); a second writer waits up to ``wait_seconds``, then fails. PostgreSQL URLs
    go through psycopg 3 (:func:`driver_url`); there the lock is an advisory lock
    (:func:`lock`)."""
    full = driver_url(url)
    if full.startswith("postgresql+psycopg:"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            raise WinbackConfigError(
                f"config key database.url: {safe_url(url)} needs the PostgreSQL driver psycopg, "
                "which is not installed: pip install 'winback[postgres]'"
            )
    try:
        engine = sa.create_engine(full)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise WinbackConfigError(
            f"config key database.url: {safe_url(url)} is not a database URL winback can open "
            f"({exc})"
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_transactions(engine, wait_seconds)
    return engine


def _sqlite_transactions(engine: sa.Engine, wait_seconds: int) -> None:
    """The documented SQLAlchemy recipe: turn off pysqlite's own transaction handling and emit
    BEGIN ourselves."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_seconds) * 1000}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
