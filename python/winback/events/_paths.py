"""Behaviour paths before silence: what customers who went silent did in the weeks before,
compared with those who did not (docs/methods.md#paths)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from winback import _io
from winback._options import PATH_ALPHA, PATH_HORIZON_DAYS, PATH_WEEKS, PURCHASE_EVENT, AsOf
from winback.errors import WinbackConfigError, WinbackInputError
from winback.events._input import prepare_events

__all__ = ["DIFFERENCE_COLUMNS", "OUTCOME_LABELS", "EventPaths", "holm", "paths"]

#: The two groups compared by :func:`paths`.
OUTCOME_LABELS = ("went_silent", "stayed")

#: Columns of :attr:`EventPaths.differences`, in order.
DIFFERENCE_COLUMNS = (
    "kind",
    "event",
    "to_event",
    "silent_customers",
    "silent_base",
    "silent_share",
    "stayed_customers",
    "stayed_base",
    "stayed_share",
    "odds_ratio",
    "p_value",
    "p_adjusted",
    "significant",
)

_DAY_US = 86_400_000_000
_WEEK_US = 7 * _DAY_US


@dataclass(frozen=True)
class EventPaths:
    """What :func:`paths` returns (docs/methods.md#paths).

    Attributes
    ----------
    outcomes : polars.DataFrame
        The cohort, one row per customer: ``customer_id``, ``outcome`` (``went_silent`` /
        ``stayed``), ``n_events`` in the weeks compared.
    weekly : polars.DataFrame
        Per ``outcome``, ``week_before`` (1 = the 7 days up to ``as_of``) and ``event``:
        ``events``, ``customers`` (with at least one such event that week), ``cohort`` (the
        group's size), ``events_per_customer`` (events ÷ cohort) and ``share`` (of the group's
        events that week; null when it has none).
    transitions : polars.DataFrame
        Per ``outcome``, ``from_event`` and ``to_event``: ``count`` of consecutive events of one
        customer in the weeks compared (in time order, ties by event type), ``per_customer``
        (count ÷ cohort) and ``share`` (of the transitions leaving ``from_event``).
    as_of : datetime
        The snapshot: the weeks before it are compared.
    differences : polars.DataFrame
        Which behaviours tell the groups apart, each tested on customers
        (docs/methods.md#paths-significance): one row per event type (``kind`` ``event``) and
        per transition ``event`` → ``to_event`` (``kind`` ``transition``) seen in the weeks
        compared. ``silent_customers`` / ``stayed_customers`` did it at least once, out of
        ``silent_base`` / ``stayed_base`` customers: the group's cohort for an event type, the
        group's customers who did ``event`` for a transition (did the viewers go on to the
        cart?); ``silent_share`` / ``stayed_share`` their ratio; ``odds_ratio`` (silent against
        stayed; null when a stayed customer did it and no silent one failed to, or no stayed
        customer did it: infinite or undefined), ``p_value`` (two-sided Fisher
        exact test of the 2 × 2 table), ``p_adjusted`` (Holm, over every row) and
        ``significant`` (``p_adjusted`` < ``alpha``). Sorted by ``p_adjusted``, then kind and
        event types. A transition whose first event one group never did is left out; the
        table is empty when a group has no customers.
    """

    outcomes: pl.DataFrame
    weekly: pl.DataFrame
    transitions: pl.DataFrame
    as_of: Any
    differences: pl.DataFrame


def paths(
    events: Any,
    *,
    as_of: AsOf,
    weeks: int = PATH_WEEKS,
    horizon_days: float = PATH_HORIZON_DAYS,
    purchase_event: str = PURCHASE_EVENT,
    outcomes: pl.DataFrame | None = None,
    alpha: float = PATH_ALPHA,
    **read: Any,
) -> EventPaths:
    """The paths of customers who went silent against those who did not (docs/methods.md#paths).

    The cohort are the customers with a purchase event (``purchase_event``) at or before
    ``as_of`` and at least one event of any type in the ``weeks`` weeks up to it. A customer
    *went silent* when they have no purchase event in the ``horizon_days`` days after
    ``as_of``; otherwise they *stayed*. For each group, week before ``as_of`` and event type the
    result counts events and customers, and over the whole window the transitions between
    consecutive events; comparing the groups shows the signature before silence (e.g. visits
    and views go on while carts stop).

    Parameters
    ----------
    events
        An events table or :class:`PreparedEvents`.
    as_of
        The snapshot (a date is the end of that day). The data must reach ``horizon_days``
        past it (an event on that day or later), unless ``outcomes`` is given.
    weeks
        Weeks before ``as_of`` compared (≥ 1).
    horizon_days
        Days after ``as_of`` without a purchase event that make a customer silent (> 0).
    purchase_event
        The event type that is a purchase.
    outcomes
        Instead of the horizon rule: a frame with ``customer_id`` and a boolean
        ``went_silent``; its customers with an event in the window are the cohort.
    alpha
        Family-wise error rate of ``differences`` (Holm's adjustment over all its tests), in
        (0, 1).
    **read
        Reading options of :func:`prepare_events`.

    Returns
    -------
    EventPaths

    Examples
    --------
    >>> import polars as pl
    >>> from datetime import date
    >>> from winback import events
    >>> ev = pl.DataFrame({"customer_id": [1, 1, 1, 2, 2, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 25), date(2024, 2, 10),
    ...            date(2024, 1, 1), date(2024, 1, 25), date(2024, 5, 1)],
    ...     "event": ["order", "cart", "order", "order", "view", "visit"]})
    >>> out = events.paths(ev, as_of=date(2024, 1, 31), weeks=1, horizon_days=30)
    >>> out.outcomes.rows()
    [(1, 'stayed', 1), (2, 'went_silent', 1)]
    """
    prepared = prepare_events(events, **read)
    if not isinstance(weeks, int) or weeks < 1:
        raise WinbackConfigError(f"weeks={weeks!r} must be a whole number of weeks, at least 1")
    if not horizon_days > 0:
        raise WinbackConfigError(f"horizon_days={horizon_days!r} must be positive")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise WinbackConfigError(f"alpha={alpha!r} must be a probability in (0, 1), e.g. 0.05")
    (purchase,) = prepared.check_types([purchase_event], "purchase_event")
    code = prepared.codes([purchase])[0]
    tx = prepared.as_transactions(list(prepared.event_types))
    end = _io.as_of_to_micros(as_of, prepared.time_zone)
    start = end - weeks * _WEEK_US
    frame = prepared.frame.lazy()
    is_purchase = pl.col("event").to_physical() == code
    window = frame.filter((pl.col("ts") > start) & (pl.col("ts") <= end))
    if outcomes is None:
        horizon_end = end + round(horizon_days * _DAY_US)
        latest = tx.frame.get_column("ts").max()
        # the data must reach the horizon's last day (a date as_of ends at the day's end)
        if latest is None or int(latest) // _DAY_US < horizon_end // _DAY_US:  # type: ignore[arg-type]
            raise WinbackConfigError(
                f"the events end before the day as_of + horizon_days ({horizon_days} days), so "
                "who went silent is not known yet; choose an earlier as_of or pass outcomes="
            )
        buyers = frame.filter(is_purchase & (pl.col("ts") <= end)).select("customer").unique()
        later = (
            frame.filter(is_purchase & (pl.col("ts") > end) & (pl.col("ts") <= horizon_end))
            .select("customer")
            .unique()
            .with_columns(pl.lit(False).alias("went_silent"))
        )
        labels = buyers.join(later, on="customer", how="left").with_columns(
            pl.col("went_silent").fill_null(True)
        )
    else:
        for name in ("customer_id", "went_silent"):
            if name not in outcomes.columns:
                raise WinbackInputError(
                    f"column {name!r} is not in outcomes (columns: {outcomes.columns[:20]!r})"
                )
        if outcomes.get_column("went_silent").dtype != pl.Boolean:
            raise WinbackInputError("outcomes' went_silent must be a boolean column")
        if outcomes.get_column("went_silent").null_count():
            raise WinbackInputError("outcomes' went_silent has nulls; say True or False")
        if outcomes.get_column("customer_id").is_duplicated().any():
            raise WinbackInputError("outcomes has a customer_id more than once; one row each")
        labels = outcomes.lazy().select(pl.col("customer_id").alias("customer"), "went_silent")
    outcome = (
        pl.when(pl.col("went_silent")).then(pl.lit("went_silent")).otherwise(pl.lit("stayed"))
    ).cast(pl.Enum(OUTCOME_LABELS))
    # the window's events are read by five queries below: computed once
    in_window = (
        window.join(labels, on="customer", how="inner")
        .with_columns(outcome.alias("outcome"))
        .collect()
        .lazy()
    )
    cohort_frame = (
        in_window.group_by("customer")
        .agg(pl.col("outcome").first(), pl.len().cast(pl.Int64).alias("n_events"))
        .sort("customer")
        .collect()
    )
    cohort = cohort_frame.group_by("outcome").agg(pl.len().cast(pl.Int64).alias("cohort"))
    week = ((pl.lit(end) - pl.col("ts")) // _WEEK_US + 1).cast(pl.Int32).alias("week_before")
    events_types = pl.Series("event", prepared.event_types, dtype=pl.Enum(prepared.event_types))
    grid = (
        pl.DataFrame({"outcome": pl.Series(OUTCOME_LABELS, dtype=pl.Enum(OUTCOME_LABELS))})
        .join(
            pl.DataFrame({"week_before": pl.Series(range(1, weeks + 1), dtype=pl.Int32)}),
            how="cross",
        )
        .join(events_types.to_frame(), how="cross")
    )
    counts = (
        in_window.with_columns(week)
        .group_by("outcome", "week_before", "event")
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("customer").n_unique().cast(pl.Int64).alias("customers"),
        )
        .collect()
    )
    weekly = (
        grid.join(counts, on=["outcome", "week_before", "event"], how="left")
        .join(cohort, on="outcome", how="left")
        .with_columns(pl.col("events", "customers", "cohort").fill_null(0))
        .with_columns(
            pl.when(pl.col("cohort") > 0)
            .then(pl.col("events") / pl.col("cohort"))
            .alias("events_per_customer"),
            pl.col("events").sum().over("outcome", "week_before").alias("_week_total"),
        )
        .with_columns(
            pl.when(pl.col("_week_total") > 0)
            .then(pl.col("events") / pl.col("_week_total"))
            .alias("share")
        )
        .drop("_week_total")
        .sort("outcome", "week_before", "event")
    )
    ordered = in_window.select("customer", "outcome", "ts", "event").sort(
        "customer", "ts", pl.col("event").to_physical()
    )
    same = pl.col("customer") == pl.col("customer").shift(-1)
    steps = (
        ordered.with_columns(pl.col("event").shift(-1).alias("to_event"), same.alias("_same"))
        .filter(pl.col("_same"))
        .select("customer", "outcome", "event", "to_event")
        .collect()
        .lazy()
    )
    pairs = (
        steps.group_by("outcome", pl.col("event").alias("from_event"), "to_event")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .collect()
    )
    transitions = (
        pairs.join(cohort, on="outcome", how="left")
        .with_columns(
            (pl.col("count") / pl.col("cohort")).alias("per_customer"),
            (pl.col("count") / pl.col("count").sum().over("outcome", "from_event")).alias("share"),
        )
        .select("outcome", "from_event", "to_event", "count", "per_customer", "share")
        .sort("outcome", "from_event", "to_event")
    )
    # who did each event type and each transition at least once (customers, not events, are
    # the independent units of the tests)
    event_dtype = in_window.collect_schema()["event"]
    did_event = in_window.select(
        "customer", "outcome", "event", pl.lit(None, dtype=event_dtype).alias("to_event")
    )
    did_step = steps
    doers = [
        part.unique()
        .group_by("outcome", "event", "to_event")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .collect()
        .with_columns(pl.lit(kind).alias("kind"))
        for kind, part in (
            ("event", did_event),
            ("transition", did_step),
        )
    ]
    differences = _differences(pl.concat(doers), cohort, float(alpha))
    return EventPaths(
        outcomes=cohort_frame.select(
            pl.col("customer").alias("customer_id"), "outcome", "n_events"
        ),
        weekly=weekly,
        transitions=transitions,
        as_of=_io.micros_to_datetime(end),
        differences=differences,
    )


def holm(p_values: Any) -> Any:
    """Holm's step-down adjustment of ``p_values`` (a 1-D float array): the adjusted p-values,
    in the input's order; rejecting where they are below ``alpha`` keeps the family-wise error
    rate at ``alpha`` under any dependence between the tests (docs/methods.md#paths-significance).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).tolist()
    [0.03, 0.06, 0.06]
    """
    import numpy as np

    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _differences(doers: pl.DataFrame, cohort: pl.DataFrame, alpha: float) -> pl.DataFrame:
    """The 2 × 2 tests of :attr:`EventPaths.differences` from the customers who did each
    behaviour, per outcome, and the groups' sizes."""
    from scipy.stats import fisher_exact

    sizes = dict(cohort.select(pl.col("outcome").cast(pl.String), "cohort").iter_rows())
    event_type = doers.schema["event"]
    schema: dict[str, Any] = {
        "kind": pl.String,
        "event": event_type,
        "to_event": event_type,
        "silent_customers": pl.Int64,
        "silent_base": pl.Int64,
        "silent_share": pl.Float64,
        "stayed_customers": pl.Int64,
        "stayed_base": pl.Int64,
        "stayed_share": pl.Float64,
        "odds_ratio": pl.Float64,
        "p_value": pl.Float64,
        "p_adjusted": pl.Float64,
        "significant": pl.Boolean,
    }
    if any(int(sizes.get(label, 0)) == 0 for label in OUTCOME_LABELS):
        return pl.DataFrame(schema=schema)
    keys = ["kind", "event", "to_event"]
    # an event type is tested against the group's cohort, a transition against the group's
    # customers who did its first event (did the viewers go on to the cart?)
    firsts = doers.filter(pl.col("kind") == "event").select(
        "outcome", "event", pl.col("customers").alias("base")
    )
    with_base = doers.join(firsts, on=["outcome", "event"], how="left").with_columns(
        pl.when(pl.col("kind") == "event")
        .then(pl.col("outcome").cast(pl.String).replace_strict(sizes, return_dtype=pl.Int64))
        .otherwise(pl.col("base"))
        .alias("base")
    )

    def side(label: str, name: str) -> pl.DataFrame:
        rows = with_base.filter(pl.col("outcome").cast(pl.String) == label)
        return rows.select(
            *keys,
            pl.col("customers").alias(f"{name}_customers"),
            pl.col("base").alias(f"{name}_base"),
        )

    wide = (
        side(OUTCOME_LABELS[0], "silent")
        .join(
            side(OUTCOME_LABELS[1], "stayed"),
            on=keys,
            how="full",
            coalesce=True,
            nulls_equal=True,  # an event row's to_event is null on both sides
        )
        .with_columns(pl.col("silent_customers", "stayed_customers").fill_null(0))
    )
    # a side without the row: the event type's count (a transition's base), else the cohort
    bases = firsts.with_columns(pl.col("outcome").cast(pl.String)).pivot(
        "outcome", index="event", values="base"
    )
    for label, name in zip(OUTCOME_LABELS, ("silent", "stayed"), strict=True):
        fallback = (
            bases.select("event", pl.col(label).alias("_b"))
            if label in bases.columns
            else pl.DataFrame({"event": [], "_b": []}, schema={"event": event_type, "_b": pl.Int64})
        )
        wide = (
            wide.join(fallback, on="event", how="left")
            .with_columns(
                pl.coalesce(
                    f"{name}_base",
                    pl.when(pl.col("kind") == "event")
                    .then(pl.lit(int(sizes[label]), dtype=pl.Int64))
                    .otherwise(pl.col("_b")),
                    pl.lit(0, dtype=pl.Int64),
                ).alias(f"{name}_base")
            )
            .drop("_b")
        )
    # a transition whose first event one group never did cannot be compared
    wide = wide.filter((pl.col("silent_base") > 0) & (pl.col("stayed_base") > 0)).sort(
        "kind", pl.col("event").to_physical(), pl.col("to_event").to_physical()
    )
    a, na, b, nb = (
        wide.get_column(c).to_list()
        for c in ("silent_customers", "silent_base", "stayed_customers", "stayed_base")
    )
    cells = list(zip(a, na, b, nb, strict=True))
    p_values = [float(fisher_exact([[x, m - x], [y, k - y]]).pvalue) for x, m, y, k in cells]
    adjusted = holm(p_values) if p_values else []
    # the sample odds ratio; null where it is infinite or undefined (no one in a cell below it)
    odds = [x * (k - y) / ((m - x) * y) if (m - x) * y else None for x, m, y, k in cells]
    out = wide.with_columns(
        (pl.col("silent_customers") / pl.col("silent_base")).alias("silent_share"),
        (pl.col("stayed_customers") / pl.col("stayed_base")).alias("stayed_share"),
        pl.Series("odds_ratio", odds, dtype=pl.Float64),
        # a p-value can exceed 1 by rounding in the test's sum
        pl.Series("p_value", p_values, dtype=pl.Float64).clip(0.0, 1.0),
        pl.Series("p_adjusted", adjusted, dtype=pl.Float64),
    ).with_columns((pl.col("p_adjusted") < alpha).alias("significant"))
    return (
        out.select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort(
            "p_adjusted",
            "kind",
            pl.col("event").to_physical(),
            pl.col("to_event").to_physical(),
            maintain_order=True,
        )
    )
