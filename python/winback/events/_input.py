"""Reading an events table once (docs/methods.md#events): the transactions' input edge plus an
event-type column (and an optional item column)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from winback import _io
from winback._io.hygiene import RefusalTally
from winback._options import (
    CUSTOMER_COL,
    EVENT_COL,
    ID_TYPE,
    ON_INVALID,
    TIME_COL,
    TIME_FORMAT,
    IdType,
    OnInvalid,
)
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = ["PreparedEvents", "prepare_events"]

_NULL_EVENT = "__null_event"
_MAX_LISTED = 5


@dataclass(frozen=True)
class PreparedEvents:
    """An events table read, checked and converted once (docs/methods.md#events).

    Made by :func:`winback.events.prepare_events`; every function of :mod:`winback.events`
    accepts it in place of raw events and does not read them again.

    Attributes
    ----------
    frame : polars.DataFrame
        ``customer`` (Int64, or String), ``ts`` (Int64 local wall-clock µs since 1970-01-01),
        ``event`` (an Enum over ``event_types``) and ``item`` (when an item column was named).
    event_types : tuple of str
        The vocabulary of event types, in the Enum's order.
    rows_read : int
        Rows in the input.
    rejects : polars.DataFrame
        Rows set aside by ``on_invalid="drop"`` with ``row_index`` and ``reason``.
    time_zone : str or None
        The zone whose calendar the local times follow (None for naive input).
    """

    frame: pl.DataFrame
    event_types: tuple[str, ...]
    rows_read: int
    rejects: pl.DataFrame = field(repr=False)
    time_zone: str | None
    has_item: bool = False

    def __repr__(self) -> str:
        return (
            f"PreparedEvents(rows={self.frame.height}, rows_read={self.rows_read}, "
            f"event_types={self.event_types!r}, has_item={self.has_item})"
        )

    def check_types(self, names: Iterable[str], argument: str) -> list[str]:
        """``names`` as a list, each one in the vocabulary (else :class:`WinbackConfigError`)."""
        if isinstance(names, str):
            names = [names]
        chosen = list(dict.fromkeys(names))
        if not chosen:
            raise WinbackConfigError(f"{argument} is empty; name at least one event type")
        unknown = [n for n in chosen if n not in self.event_types]
        if unknown:
            raise WinbackConfigError(
                f"{argument} names event types {unknown!r} that are not in the events' "
                f"vocabulary {list(self.event_types)!r}"
            )
        return chosen

    def codes(self, names: Sequence[str]) -> list[int]:
        """The Enum codes of ``names`` (checked by :meth:`check_types`)."""
        return [self.event_types.index(n) for n in names]

    def select_types(self, names: Sequence[str]) -> pl.DataFrame:
        """The rows whose event type is one of ``names``: filtered on the Enum's codes (one
        pass over a UInt8/UInt32 column, no string comparisons)."""
        codes = self.codes(names)
        if len(codes) == len(self.event_types):
            return self.frame
        physical = pl.col("event").to_physical()
        keep = physical == codes[0] if len(codes) == 1 else physical.is_in(codes)
        return self.frame.filter(keep)

    def as_transactions(self, names: Sequence[str]) -> _io.PreparedTransactions:
        """The events of the given types as purchase-like prepared transactions (no amounts)."""
        frame = self.select_types(names).select("customer", "ts")
        return _io.PreparedTransactions(
            frame=frame,
            rows_read=self.rows_read,
            rejects=self.rejects,
            has_amount=False,
            time_zone=self.time_zone,
        )


def _event_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    text = dtype == pl.String or isinstance(dtype, pl.Enum | pl.Categorical)
    if not text:
        raise WinbackInputError(
            f"column {name!r} (the event type) has type {dtype}; use a text, categorical or "
            "enum column of event names"
        )
    return pl.col(name).cast(pl.String)


def prepare_events(
    data: Any,
    *,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    event_col: str = EVENT_COL,
    item_col: str | None = None,
    event_types: Sequence[str] | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> PreparedEvents:
    """Read and check an events table once (docs/methods.md#events).

    The customer and time columns follow exactly the rules of :func:`winback.prepare` (same
    sources, id and time reading, ``on_invalid``); the event-type column is text (or
    categorical); a null event type is an invalid row like a null time.

    Parameters
    ----------
    data
        Any input :func:`winback.prepare` reads, or a :class:`PreparedEvents` (returned as it is).
    customer_col, time_col, event_col, item_col
        Input column names; ``item_col`` (optional) is kept as it is (e.g. the viewed product).
    event_types
        The vocabulary, in order; an event whose type is not in it raises
        :class:`~winback.WinbackInputError` naming the unknown types and rows. Default: the
        types found in the data, sorted.
    tz, on_invalid, time_format, id_type
        As in :func:`winback.prepare`.

    Returns
    -------
    PreparedEvents

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback.events import prepare_events
    >>> ev = prepare_events(pl.DataFrame({"customer_id": [1, 1, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)],
    ...     "event": ["visit", "order", "visit"]}))
    >>> ev.event_types, ev.frame.height
    (('order', 'visit'), 3)
    """
    if isinstance(data, PreparedEvents):
        return data
    _io.check_on_invalid(on_invalid)
    _io.check_id_type(id_type)
    _io.check_time_format(time_format)
    if event_types is not None:
        vocabulary = list(dict.fromkeys(event_types))
        if not vocabulary or not all(isinstance(v, str) and v for v in vocabulary):
            raise WinbackConfigError(
                f"event_types={event_types!r} must be a non-empty list of non-empty names"
            )
    named = [c for c in (customer_col, time_col, event_col, item_col) if c]
    frame = _io.open_transactions(data, customer_col=customer_col, time_col=time_col, columns=named)
    schema = _io.read_schema(frame)
    plan = _io.plan_read(
        schema,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=None,
        order_col=None,
        tz=tz,
        time_format=time_format,
        id_type=id_type,
    )
    for role, name in (("event", event_col), ("item", item_col)):
        if name is not None and name not in schema:
            available = ", ".join(repr(c) for c in schema.names()[:20])
            raise WinbackInputError(
                f"column {name!r} (the {role}) is not in the input; available columns: "
                f"{available}. Pass {role}_col='...' to name it."
            )
    event = _event_expr(event_col, schema[event_col])
    used = list(dict.fromkeys([*plan.used, event_col, *([item_col] if item_col else [])]))
    exprs = [*plan.exprs, event.alias("event")]
    if item_col is not None:
        exprs.append(pl.col(item_col).alias("item"))
    checks = [*plan.checks, pl.col(event_col).is_null().alias(_NULL_EVENT)]
    reasons = {**plan.reasons, _NULL_EVENT: (event_col, "null event type")}
    try:
        if isinstance(frame, pl.LazyFrame):
            collected = frame.select(used).collect(engine="streaming")
        else:
            collected = frame.select(used)
        prepared = collected.select(*exprs, *checks, *plan.refusals)
    except pl.exceptions.PolarsError as exc:
        raise _io.unreadable_columns_error(used, exc) from exc
    if plan.refusals:
        tally = RefusalTally(plan)
        tally.add(collected, prepared, 0)
        refused = tally.error()
        if refused is not None:
            raise refused
        prepared = prepared.drop(plan.refusal_flags)
    flags = [*plan.flags, _NULL_EVENT]
    counts = prepared.select(pl.col(flags).sum()).row(0, named=True)
    if sum(counts.values()) == 0:
        rejects = _io.empty_rejects(collected)
        clean = prepared.drop(flags)
    else:
        indexed = prepared.with_row_index("row_index")
        if on_invalid == "raise":
            parts = []
            for flag, count in counts.items():
                if count:
                    rows = indexed.filter(pl.col(flag)).get_column("row_index").head(_MAX_LISTED)
                    column, what = reasons[flag]
                    listed = ", ".join(str(r) for r in rows.to_list())
                    parts.append(
                        f"{count:,} rows with a {what} in column {column!r} (rows {listed})"
                    )
            raise WinbackInputError(
                "invalid event rows: " + "; ".join(parts) + ". Fix them, or pass "
                "on_invalid='drop' to set them aside."
            )
        bad = prepared.select(pl.any_horizontal(flags).alias("bad")).get_column("bad")
        reason: Any = pl.lit(None, dtype=pl.String)
        for flag in reversed(flags):
            reason = pl.when(pl.col(flag)).then(pl.lit(reasons[flag][1])).otherwise(reason)
        rejects = (
            collected.with_row_index("row_index")
            .with_columns(prepared.select(reason.alias("reason")).to_series())
            .filter(bad)
        )
        clean = prepared.filter(~bad).drop(flags)
    found = clean.get_column("event").unique().sort().to_list()
    if event_types is None:
        vocabulary = found
    else:
        unknown = sorted(set(found) - set(vocabulary))
        if unknown:
            where = clean.with_row_index("row_index").filter(pl.col("event").is_in(unknown))
            listed = ", ".join(str(r) for r in where.get_column("row_index").head(_MAX_LISTED))
            raise WinbackInputError(
                f"column {event_col!r} (the event type) holds {len(unknown)} type(s) not in "
                f"event_types: {unknown[:10]!r} ({where.height:,} rows, e.g. rows {listed} of "
                f"the valid rows). Add them to event_types={vocabulary!r} or filter them out."
            )
    clean = clean.with_columns(
        pl.col("ts").cast(pl.Int64), pl.col("event").cast(pl.Enum(vocabulary))
    )
    return PreparedEvents(
        frame=clean.rechunk(),
        event_types=tuple(vocabulary),
        rows_read=collected.height,
        rejects=rejects,
        time_zone=plan.time_zone,
        has_item=item_col is not None,
    )
