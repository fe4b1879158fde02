"""Contacts and outcomes from the CRM (docs/loop.md#contacts-and-outcomes-from-the-crm): the
CSV a CRM exports — one row per contact made, with its outcome — checked and added to the state's
``contacts`` and ``outcomes`` tables, once.

Columns (a header row; names are matched without regard to case): ``customer`` (or
``customer_id``) and ``date`` (or ``contact_date``, ``YYYY-MM-DD``) are required; ``staff``,
``channel``, ``outcome``, ``amount`` and ``campaign`` (or ``campaign_id``) are optional; other
columns are ignored. Every column is read as text, so ids keep their leading zeros.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from winback.errors import WinbackConfigError, WinbackInputError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["ImportResult", "import_crm", "read_crm"]

#: Accepted names of each column (the first is the state's).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "customer"),
    "contact_date": ("contact_date", "date"),
    "staff": ("staff",),
    "channel": ("channel",),
    "outcome": ("outcome",),
    "amount": ("amount",),
    "campaign_id": ("campaign_id", "campaign"),
}


@dataclass(frozen=True)
class ImportResult:
    """What an import added: ``contacts`` and ``outcomes`` rows new to the state; ``known``:
    rows of the file the state already held (an import is idempotent)."""

    rows: int
    contacts: int
    outcomes: int
    known: int


def _rows_text(frame: pl.DataFrame) -> str:
    shown = ", ".join(str(r) for r in frame.get_column("row").head(5).to_list())
    return f"row{'s' if frame.height > 1 else ''} {shown}{' …' if frame.height > 5 else ''}"


def read_crm(source: pl.DataFrame | str | os.PathLike[str]) -> pl.DataFrame:
    """The CRM's rows, checked: ``row`` (the data row, 1 = the first after the header),
    ``customer_id``, ``contact_date`` (Date), ``staff``, ``channel``, ``outcome``, ``amount``
    (Float64), ``campaign_id`` — missing optional columns as nulls, empty cells as nulls.

    Raises
    ------
    WinbackConfigError
        The file does not exist.
    WinbackInputError
        The file is not CSV, a required column is missing, or rows have no customer, a date
        that is not ``YYYY-MM-DD`` or an amount that is not a number (naming the rows).
    """
    where = "the contacts"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        where = f"contacts file {str(path)!r}"
        try:
            raw = pl.read_csv(path, infer_schema=False)
        except FileNotFoundError:
            raise WinbackConfigError(f"{where} does not exist") from None
        except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WinbackInputError(f"{where} cannot be read as CSV: {first}") from None
    elif isinstance(source, pl.DataFrame):
        raw = source
    else:
        raise WinbackConfigError("contacts must be a polars DataFrame or a CSV file")
    lower = {c.strip().lower(): c for c in raw.columns}
    picked: dict[str, str | None] = {}
    for name, accepted in _COLUMNS.items():
        found = [lower[a] for a in accepted if a in lower]
        if len(found) > 1:
            raise WinbackInputError(
                f"{where} has both {found[0]!r} and {found[1]!r} columns; keep one"
            )
        picked[name] = found[0] if found else None
    for name in ("customer_id", "contact_date"):
        if picked[name] is None:
            raise WinbackInputError(
                f"{where} has no {' or '.join(repr(a) for a in _COLUMNS[name][::-1])} column "
                f"(columns: {', '.join(raw.columns)})"
            )

    def text(name: str) -> pl.Expr:
        column = picked[name]
        if column is None:
            return pl.lit(None, dtype=pl.String).alias(name)
        value = pl.col(column).cast(pl.String).str.strip_chars()
        return pl.when(value == "").then(None).otherwise(value).alias(name)

    frame = raw.select(
        [text(name) for name in _COLUMNS]
        + ([pl.col(picked["contact_date"]).alias("__date")] if picked["contact_date"] else [])
    ).with_row_index("row", offset=1)
    date_type = frame.schema["__date"]
    if date_type in (pl.Date, pl.Datetime):
        frame = frame.with_columns(pl.col("__date").cast(pl.Date).alias("contact_date"))
    else:
        frame = frame.with_columns(
            pl.col("contact_date").str.to_date("%Y-%m-%d", strict=False).alias("__parsed")
        )
        bad = frame.filter(pl.col("contact_date").is_not_null() & pl.col("__parsed").is_null())
        if bad.height:
            raise WinbackInputError(
                f"{where}: {bad.height} {_rows_text(bad)} have a date that is not YYYY-MM-DD "
                f"(first: {bad.get_column('contact_date')[0]!r}); nothing was added"
            )
        frame = frame.with_columns(pl.col("__parsed").alias("contact_date"))
    missing = frame.filter(pl.col("customer_id").is_null() | pl.col("contact_date").is_null())
    if missing.height:
        raise WinbackInputError(
            f"{where}: {missing.height} {_rows_text(missing)} have no customer or no date; "
            "nothing was added"
        )
    amount = pl.col("amount").cast(pl.Float64, strict=False)
    bad = frame.filter(pl.col("amount").is_not_null() & (amount.is_null() | ~amount.is_finite()))
    if bad.height:
        raise WinbackInputError(
            f"{where}: {bad.height} {_rows_text(bad)} have an amount that is not a finite number "
            f"(first: {bad.get_column('amount')[0]!r}); nothing was added"
        )
    lines = frame.filter(
        pl.any_horizontal(
            pl.col(c).str.contains(r"[\r\n\x00]").fill_null(False)
            for c in ("customer_id", "staff", "channel", "outcome", "campaign_id")
        )
    )
    if lines.height:
        raise WinbackInputError(
            f"{where}: {lines.height} {_rows_text(lines)} hold a line break or NUL in a text "
            "cell; nothing was added"
        )
    return frame.select(
        "row",
        "customer_id",
        "contact_date",
        "staff",
        "channel",
        "outcome",
        amount.alias("amount"),
        "campaign_id",
    )


def _key(row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row[n] for n in names)


_CONTACT_KEY = ("customer_id", "contact_date", "campaign_id", "staff", "channel")
_OUTCOME_KEY = ("customer_id", "outcome_date", "campaign_id", "kind", "amount")


def import_crm(conn: sa.Connection, frame: pl.DataFrame, campaign_name: str) -> ImportResult:
    """Adds :func:`read_crm`'s rows to ``contacts`` and (rows with an ``outcome``) ``outcomes``
    in the caller's transaction; rows the state already holds are skipped (so importing a file
    twice adds it once). An outcome without a campaign is given the campaign named
    ``campaign_name`` whose life covers its date and of which the customer is a target."""
    import sqlalchemy as sa

    import winback.loop.schema as schema

    rows = frame.drop("row").to_dicts()
    contact_rows = [{k: r[k] for k in _CONTACT_KEY} for r in rows]
    c, t = schema.campaigns.c, schema.targets.c
    ids = sorted({r["customer_id"] for r in rows})
    spans: dict[str, list[tuple[date, date, str]]] = {}
    for start in range(0, len(ids), 500):
        for hit in conn.execute(
            sa.select(t.customer_id, c.start_date, c.end_date, c.campaign_id)
            .join(schema.campaigns, c.campaign_id == t.campaign_id)
            .where(c.name == campaign_name)
            .where(t.customer_id.in_(ids[start : start + 500]))
            .order_by(c.start_date.desc())
        ):
            spans.setdefault(hit.customer_id, []).append(
                (hit.start_date, hit.end_date, hit.campaign_id)
            )
    outcome_rows = []
    for r in rows:
        if r["outcome"] is None:
            continue
        campaign_id = r["campaign_id"]
        if campaign_id is None:
            campaign_id = next(
                (
                    cid
                    for first, end, cid in spans.get(r["customer_id"], [])
                    if first <= r["contact_date"] <= end
                ),
                None,
            )
        outcome_rows.append(
            {
                "customer_id": r["customer_id"],
                "outcome_date": r["contact_date"],
                "campaign_id": campaign_id,
                "kind": r["outcome"],
                "amount": r["amount"],
            }
        )
    known_contacts = {
        _key(dict(r._mapping), _CONTACT_KEY)
        for r in conn.execute(sa.select(*(schema.contacts.c[n] for n in _CONTACT_KEY)))
    }
    known_outcomes = {
        _key(dict(r._mapping), _OUTCOME_KEY)
        for r in conn.execute(sa.select(*(schema.outcomes.c[n] for n in _OUTCOME_KEY)))
    }
    new_contacts = _new(contact_rows, _CONTACT_KEY, known_contacts)
    new_outcomes = _new(outcome_rows, _OUTCOME_KEY, known_outcomes)
    if new_contacts:
        conn.execute(schema.contacts.insert(), new_contacts)
    if new_outcomes:
        conn.execute(schema.outcomes.insert(), new_outcomes)
    return ImportResult(
        rows=len(rows),
        contacts=len(new_contacts),
        outcomes=len(new_outcomes),
        known=len(rows) - len(new_contacts),
    )


def _new(
    rows: list[dict[str, Any]], key: tuple[str, ...], known: set[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The rows whose key is neither known nor seen before in ``rows`` (file order kept)."""
    seen = set(known)
    out = []
    for row in rows:
        k = _key(row, key)
        if k not in seen:
            seen.add(k)
            out.append(row)
    return out
