"""Funnel stages per customer and conversion per segment (docs/methods.md#funnel)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from winback import _io
from winback._options import FUNNEL_STAGES, AsOf
from winback.errors import WinbackConfigError, WinbackInputError
from winback.events._input import PreparedEvents, prepare_events

__all__ = ["FUNNEL_COLUMNS", "STAGE_COLUMNS", "funnel", "funnel_stage", "window_bounds"]

#: Output columns of :func:`funnel_stage`.
STAGE_COLUMNS = ("customer_id", "n_events", "stage_index", "furthest_stage")
#: Output columns of :func:`funnel`.
FUNNEL_COLUMNS = (
    "segment",
    "stage_index",
    "stage",
    "customers",
    "reached",
    "share_reached",
    "step_conversion",
)

_DAY_US = 86_400_000_000


def window_bounds(
    prepared: PreparedEvents, as_of: AsOf | None, days: float | None
) -> tuple[int, int | None]:
    """The window ``(as_of − days, as_of]`` in local µs: (end, start or None for no start).

    ``as_of`` follows the snapshot rule of docs/methods.md#as-of (a date is the end of that
    day; default the end of the latest event's day)."""
    if days is not None and not days > 0:
        raise WinbackConfigError(f"days={days!r} must be a positive number of days")
    end = _io.snapshot_end(_as_tx(prepared), as_of)
    start = None if days is None else end - round(days * _DAY_US)
    return end, start


def _as_tx(prepared: PreparedEvents) -> _io.PreparedTransactions:
    return prepared.as_transactions(list(prepared.event_types))


def _check_stages(prepared: PreparedEvents, stages: Sequence[str]) -> list[str]:
    chosen = prepared.check_types(stages, "stages")
    if len(chosen) != len(list(stages)):
        raise WinbackConfigError(f"stages={list(stages)!r} names a stage twice")
    return chosen


def _stages(
    prepared: PreparedEvents, stages: list[str], end: int, start: int | None
) -> pl.DataFrame:
    in_window = pl.col("ts") <= end
    if start is not None:
        in_window = in_window & (pl.col("ts") > start)
    lookup = [0] * len(prepared.event_types)
    for position, name in enumerate(stages, start=1):
        lookup[prepared.event_types.index(name)] = position
    index = (
        pl.col("event")
        .to_physical()
        .cast(pl.Int64)
        .replace_strict(list(range(len(lookup))), lookup, return_dtype=pl.Int32)
    )
    counted = (
        prepared.frame.lazy()
        .select("customer", in_window.alias("_in"), pl.when(in_window).then(index).alias("_s"))
        .group_by("customer")
        .agg(pl.col("_in").sum().cast(pl.Int64).alias("n_events"), pl.col("_s").max())
        .sort("customer")
        .collect()
    )
    labels = pl.Series("furthest_stage", [None, *stages], dtype=pl.Enum(stages))
    stage_index = counted.get_column("_s").fill_null(0).cast(pl.Int32)
    return pl.DataFrame(
        [
            counted.get_column("customer").alias("customer_id"),
            counted.get_column("n_events"),
            stage_index.alias("stage_index"),
            labels.gather(stage_index),
        ]
    )


def funnel_stage(
    events: Any,
    *,
    stages: Sequence[str] = FUNNEL_STAGES,
    as_of: AsOf | None = None,
    days: float | None = None,
    **read: Any,
) -> pl.DataFrame:
    """The furthest funnel stage each customer reached in a window (docs/methods.md#funnel).

    ``stages`` are event types in funnel order (default ``visit → view → cart → order``); a
    customer's furthest stage is the last one in that order among their events in the window
    ``(as_of − days, as_of]`` — a customer with a cart event but no view reached ``cart``.
    Event types that are not stages do not count.

    Parameters
    ----------
    events
        An events table or :class:`PreparedEvents`.
    stages
        Ordered, distinct event types of the vocabulary (a stage outside it is refused as a
        likely typo; name it in ``event_types=`` of :func:`prepare_events` when it merely has
        no events).
    as_of
        End of the window (a date is the end of that day; default: the end of the latest event's
        day). Later events are left out.
    days
        Length of the window in days (default: all events up to ``as_of``).
    **read
        Reading options of :func:`prepare_events`.

    Returns
    -------
    polars.DataFrame
        Every customer of the events table exactly once, sorted by ``customer_id``:
        ``n_events`` (events of any type in the window), ``stage_index`` (1 = the first stage …
        0 = none reached) and ``furthest_stage`` (an Enum of ``stages``; null when none).

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback import events
    >>> ev = pl.DataFrame({"customer_id": [1, 1, 2, 3, 4], "ts": [date(2024, 1, 1)] * 5,
    ...     "event": ["visit", "cart", "view", "email_open", "order"]})
    >>> events.funnel_stage(ev).rows()
    [(1, 2, 3, 'cart'), (2, 1, 2, 'view'), (3, 1, 0, None), (4, 1, 4, 'order')]
    """
    prepared = prepare_events(events, **read)
    chosen = _check_stages(prepared, stages)
    end, start = window_bounds(prepared, as_of, days)
    return _stages(prepared, chosen, end, start)


def funnel(
    events: Any,
    *,
    stages: Sequence[str] = FUNNEL_STAGES,
    segments: pl.DataFrame | None = None,
    by: str | None = None,
    as_of: AsOf | None = None,
    days: float | None = None,
    **read: Any,
) -> pl.DataFrame:
    """Funnel conversion per segment (docs/methods.md#funnel).

    For every segment and stage: the customers who reached at least that stage in the window
    (their furthest stage, :func:`funnel_stage`, is that stage or a later one), their share of
    the segment's customers, and the step conversion from the previous stage (reached this
    stage ÷ reached the previous one; for the first stage, ÷ the segment's customers).

    Parameters
    ----------
    events
        An events table or :class:`PreparedEvents`.
    stages, as_of, days
        As in :func:`funnel_stage`.
    segments, by
        A frame with ``customer_id`` and the segment column ``by`` (e.g. the output of
        :func:`winback.silence` and ``by="rank_ratio_group"``). Customers of the events who are
        not in ``segments`` form the segment ``"(none)"``. Without ``segments`` there is one
        segment, ``"all"``.
    **read
        Reading options of :func:`prepare_events`.

    Returns
    -------
    polars.DataFrame
        Columns :data:`FUNNEL_COLUMNS`, one row per (segment, stage), segments in sorted order:
        ``customers`` (the segment's customers in the events table, also those without an
        event in the window), ``reached``, ``share_reached`` and
        ``step_conversion`` (fractions in [0, 1]; null when the denominator is 0).

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback import events
    >>> ev = pl.DataFrame({"customer_id": [1, 1, 2, 2, 2],
    ...     "ts": [date(2024, 1, 1)] * 5, "event": ["visit", "view", "visit", "view", "order"]})
    >>> out = events.funnel(ev, stages=["visit", "view", "order"])
    >>> out.select("stage", "reached", "step_conversion").rows()
    [('visit', 2, 1.0), ('view', 2, 1.0), ('order', 1, 0.5)]
    """
    prepared = prepare_events(events, **read)
    chosen = _check_stages(prepared, stages)
    end, start = window_bounds(prepared, as_of, days)
    per_customer = _stages(prepared, chosen, end, start)
    if segments is None:
        if by is not None:
            raise WinbackConfigError("by= names a column of segments=; pass segments too")
        labelled = per_customer.with_columns(pl.lit("all").alias("segment"))
    else:
        if by is None:
            raise WinbackConfigError("segments= needs by=, the name of its segment column")
        for name in ("customer_id", by):
            if name not in segments.columns:
                raise WinbackInputError(
                    f"column {name!r} is not in segments (columns: {segments.columns[:20]!r})"
                )
        keys = segments.select("customer_id", pl.col(by).cast(pl.String).alias("segment"))
        if keys.get_column("customer_id").is_duplicated().any():
            raise WinbackInputError("segments has a customer_id more than once; one row each")
        ids = per_customer.get_column("customer_id").dtype
        if keys.get_column("customer_id").dtype != ids:
            raise WinbackInputError(
                f"segments' customer_id is {keys.get_column('customer_id').dtype} but the "
                f"events' ids are {ids}; read both the same way"
            )
        labelled = per_customer.join(keys, on="customer_id", how="left").with_columns(
            pl.col("segment").fill_null("(none)")
        )
    grid = labelled.select(pl.col("segment").unique().sort()).join(
        pl.DataFrame(
            {
                "stage_index": pl.Series(range(1, len(chosen) + 1), dtype=pl.Int32),
                "stage": pl.Series(chosen, dtype=pl.Enum(chosen)),
            }
        ),
        how="cross",
    )
    sizes = labelled.group_by("segment").agg(pl.len().cast(pl.Int64).alias("customers"))
    reached = (
        grid.join(labelled.select("segment", pl.col("stage_index").alias("_got")), on="segment")
        .filter(pl.col("_got") >= pl.col("stage_index"))
        .group_by("segment", "stage_index")
        .agg(pl.len().cast(pl.Int64).alias("reached"))
    )
    out = (
        grid.join(sizes, on="segment", how="left")
        .join(reached, on=["segment", "stage_index"], how="left")
        .with_columns(pl.col("reached").fill_null(0))
        .sort("segment", "stage_index")
    )
    previous = (
        pl.when(pl.col("stage_index") == 1)
        .then(pl.col("customers"))
        .otherwise(pl.col("reached").shift(1).over("segment"))
    )

    def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
        return pl.when(den > 0).then(num / den)

    return out.with_columns(
        ratio(pl.col("reached"), pl.col("customers")).alias("share_reached"),
        ratio(pl.col("reached"), previous).alias("step_conversion"),
    ).select(FUNNEL_COLUMNS)
