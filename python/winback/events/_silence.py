"""Silence over engagement events, and its comparison with purchase silence
(docs/methods.md#events-silence)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from winback import _io
from winback._options import (
    MIN_OCCASIONS,
    RESOLUTION,
    S_CUTS,
    TRF_CUTS,
    AsOf,
)
from winback.errors import WinbackInputError
from winback.events._input import prepare_events
from winback.silence import SILENCE_COLUMNS
from winback.silence import silence as silence_scores

__all__ = ["COMPARE_COLUMNS", "EVENT_SILENCE_COLUMNS", "PATTERN_LABELS", "compare", "silence"]

#: Output columns of :func:`silence`: :data:`winback.silence.SILENCE_COLUMNS` without amounts.
EVENT_SILENCE_COLUMNS = tuple(
    c for c in SILENCE_COLUMNS if c not in ("total_amount", "mean_amount")
)
#: Labels of :func:`compare`'s ``pattern`` (docs/methods.md#events-silence).
PATTERN_LABELS = (
    "active",
    "engaged_not_buying",
    "buying_not_engaged",
    "silent",
    "unscored",
    "no_purchases",
    "no_events",
)
#: Per-customer columns compared by :func:`compare` (each appears as ``purchase_*`` and
#: ``engaged_*``).
_COMPARED = (
    "status",
    "n_occasions",
    "last_ts",
    "recency_days",
    "rank_ratio",
    "silence_score",
    "rank_ratio_group",
    "silence_band",
)
#: Output columns of :func:`compare`, in order.
COMPARE_COLUMNS = (
    "customer_id",
    *(f"purchase_{c}" for c in _COMPARED),
    *(f"engaged_{c}" for c in _COMPARED),
    "recency_gap_days",
    "pattern",
)


def silence(
    events: Any,
    *,
    event_types: Sequence[str],
    as_of: AsOf | None = None,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    num_threads: int | None = None,
    **read: Any,
) -> pl.DataFrame:
    """Silence scores over the chosen event types (docs/methods.md#events-silence).

    The events of ``event_types`` are treated exactly like purchases by
    :func:`winback.silence`: one occasion per customer and ``resolution`` bucket (a day by
    default), gaps and recency in days, TrF, S, groups a–e and bands. So
    ``silence(events, event_types=["visit", "view"])`` says how long each customer has not
    browsed, against their own browsing rhythm; ``["app_open"]`` how long they have not opened
    the app. The selection is a filter on the event type's Enum codes, then the Rust silence
    kernel.

    Parameters
    ----------
    events
        An events table (see :func:`prepare_events`) or a :class:`PreparedEvents`.
    event_types
        The event types that count as an occasion (one or more names of the vocabulary).
    as_of, resolution, min_occasions, trf_cuts, s_cuts, num_threads
        As in :func:`winback.silence`; the default ``as_of`` is the end of the latest selected
        event's day.
    **read
        Reading options of :func:`prepare_events` (``customer_col``, ``event_col`` …) when
        ``events`` is not prepared yet.

    Returns
    -------
    polars.DataFrame
        One row per customer with at least one selected event (sorted by ``customer_id``),
        columns :data:`EVENT_SILENCE_COLUMNS` (those of :func:`winback.silence` without amounts;
        ``n_occasions`` counts days with a selected event).

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback import events
    >>> ev = pl.DataFrame({"customer_id": [1, 1, 1, 1],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 11), date(2024, 1, 21), date(2024, 2, 20)],
    ...     "event": ["visit", "order", "visit", "visit"]})
    >>> out = events.silence(ev, event_types=["visit"], as_of=date(2024, 3, 1))
    >>> out.select("n_occasions", "recency_days", "max_gap_days", "silence_score").row(0)
    (3, 10.0, 30.0, 0.3333333333333333)
    """
    prepared = prepare_events(events, **read)
    chosen = prepared.check_types(event_types, "event_types")
    frame = silence_scores(
        prepared.as_transactions(chosen),
        as_of=as_of,
        resolution=resolution,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        num_threads=num_threads,
    )
    return frame.select(EVENT_SILENCE_COLUMNS)


def compare(
    transactions: Any,
    events: Any,
    *,
    event_types: Sequence[str],
    as_of: AsOf | None = None,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    num_threads: int | None = None,
    events_read: dict[str, Any] | None = None,
    **read: Any,
) -> pl.DataFrame:
    """Purchase silence next to engagement silence, per customer (docs/methods.md#events-silence).

    Both are scored at the same ``as_of`` (default: the end of the latest day of either input)
    with the same parameters; the ``pattern`` column names the combination: ``active`` (neither
    band silent), ``engaged_not_buying`` (purchases silent — band ``silent`` or
    ``deep_silent`` — while the chosen events are not: still browsing but no longer buying),
    ``buying_not_engaged``, ``silent`` (both), ``unscored`` (either side has fewer than
    ``min_occasions`` occasions), ``no_purchases`` / ``no_events`` (the customer is in one input
    only).

    Parameters
    ----------
    transactions
        Purchases, as :func:`winback.silence` reads them (or a ``PreparedTransactions``).
    events
        An events table or :class:`PreparedEvents`.
    event_types
        The engagement event types (e.g. ``["visit", "view"]`` or ``["app_open"]``).
    as_of, resolution, min_occasions, trf_cuts, s_cuts, num_threads
        As in :func:`winback.silence`.
    events_read
        Reading options of :func:`prepare_events` for ``events``.
    **read
        Reading options of :func:`winback.prepare` for ``transactions``.

    Returns
    -------
    polars.DataFrame
        Every customer of either input exactly once, sorted by ``customer_id``, columns
        :data:`COMPARE_COLUMNS`: ``purchase_*`` and ``engaged_*`` silence figures (null when the
        customer is not in that input), ``recency_gap_days`` = purchase Tr − engagement Tr (days;
        large when the customer still engages long after the last purchase) and ``pattern``.

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback import events
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 2, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 11), date(2024, 2, 20), date(2024, 2, 28)]})
    >>> ev = pl.DataFrame({"customer_id": [1, 1, 2, 2],
    ...     "ts": [date(2024, 2, 20), date(2024, 2, 28), date(2024, 1, 1), date(2024, 1, 11)],
    ...     "event": ["visit"] * 4})
    >>> out = events.compare(tx, ev, event_types=["visit"], as_of=date(2024, 3, 1))
    >>> out.select("customer_id", "pattern").rows()
    [(1, 'engaged_not_buying'), (2, 'buying_not_engaged')]
    """
    prepared_tx = _io.prepare(transactions, **read)
    prepared_ev = prepare_events(events, **(events_read or {}))
    chosen = prepared_ev.check_types(event_types, "event_types")
    engaged_tx = prepared_ev.as_transactions(chosen)
    if as_of is None:
        ends = [_io.snapshot_end(p, None) for p in (prepared_tx, engaged_tx) if p.frame.height]
        as_of = _io.micros_to_datetime(max(ends)) if ends else None
    options: dict[str, Any] = {
        "as_of": as_of,
        "resolution": resolution,
        "min_occasions": min_occasions,
        "trf_cuts": trf_cuts,
        "s_cuts": s_cuts,
        "num_threads": num_threads,
    }
    bought: pl.DataFrame = silence_scores(prepared_tx, **options).select(_COMPARED_WITH_ID)
    engaged: pl.DataFrame = silence_scores(engaged_tx, **options).select(_COMPARED_WITH_ID)
    tx_ids, ev_ids = (f.get_column("customer_id").dtype for f in (bought, engaged))
    if tx_ids != ev_ids and not (bought.height and engaged.height):
        # one side is empty: its id column takes the other's type
        if bought.height:
            engaged = engaged.with_columns(pl.col("customer_id").cast(tx_ids))
        else:
            bought = bought.with_columns(pl.col("customer_id").cast(ev_ids))
    elif tx_ids != ev_ids:
        raise WinbackInputError(
            f"the customer ids are {tx_ids} in the transactions but {ev_ids} in the events; "
            "read both the same way (id_type='str' or id_type='int' on both)"
        )
    joined = (
        bought.rename({c: f"purchase_{c}" for c in _COMPARED})
        .with_columns(pl.lit(True).alias("_in_tx"))
        .join(
            engaged.rename({c: f"engaged_{c}" for c in _COMPARED}).with_columns(
                pl.lit(True).alias("_in_ev")
            ),
            on="customer_id",
            how="full",
            coalesce=True,
        )
        .sort("customer_id")
    )
    quiet_p = pl.col("purchase_silence_band") != "not_silent"
    quiet_e = pl.col("engaged_silence_band") != "not_silent"
    pattern = (
        pl.when(pl.col("_in_tx").is_null())
        .then(pl.lit("no_purchases"))
        .when(pl.col("_in_ev").is_null())
        .then(pl.lit("no_events"))
        .when(pl.col("purchase_silence_band").is_null() | pl.col("engaged_silence_band").is_null())
        .then(pl.lit("unscored"))
        .when(quiet_p & quiet_e)
        .then(pl.lit("silent"))
        .when(quiet_p)
        .then(pl.lit("engaged_not_buying"))
        .when(quiet_e)
        .then(pl.lit("buying_not_engaged"))
        .otherwise(pl.lit("active"))
    )
    return joined.with_columns(
        (pl.col("purchase_recency_days") - pl.col("engaged_recency_days")).alias(
            "recency_gap_days"
        ),
        pattern.cast(pl.Enum(PATTERN_LABELS)).alias("pattern"),
    ).select(COMPARE_COLUMNS)


_COMPARED_WITH_ID = ("customer_id", *_COMPARED)
