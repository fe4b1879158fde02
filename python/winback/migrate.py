"""Migration between snapshots (SPEC §3; seed §四.2): where did each group's customers go?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

import polars as pl

from winback import _io
from winback.errors import WinbackConfigError
from winback.silence import AsOf, check_parameters, score_prepared

__all__ = ["MIGRATION_STATES", "Migration", "migration"]

#: States a customer can be in at a snapshot, from "not yet a customer" to group e.
MIGRATION_STATES = (
    "not_yet_customer",
    "single_purchase",
    "below_min_occasions",
    "a",
    "b",
    "c",
    "d",
    "e",
)
STATE_DTYPE = pl.Enum(MIGRATION_STATES)


@dataclass(frozen=True)
class Migration:
    """Result of :func:`migration`.

    Attributes
    ----------
    as_of : the snapshot cut-offs, in order (local wall clock; a date's cut-off is its last µs).
    labels : the snapshots' names: ISO dates for dates, ISO datetimes otherwise.
    states : one row per customer: ``customer_id`` and one column per snapshot (named by its ISO
        date, or ISO datetime for sub-day times) holding the state (:data:`MIGRATION_STATES`).
    transitions : for each consecutive pair of snapshots and each (from, to) state pair that
        occurs: ``from_as_of, to_as_of`` (snapshot labels), ``from_state, to_state, customers,
        share`` where ``share`` is the row share (customers / customers in ``from_state`` at
        ``from_as_of``).
    """

    as_of: list[datetime]
    labels: list[str]
    states: pl.DataFrame
    transitions: pl.DataFrame

    def matrix(
        self, pair: int = 0, *, values: Literal["customers", "share"] = "share"
    ) -> pl.DataFrame:
        """The transition matrix of snapshot pair ``pair`` (0 = first to second): one row per
        from-state, one column per to-state, all eight states, zeros where nothing moved."""
        if not 0 <= pair < len(self.as_of) - 1:
            raise WinbackConfigError(
                f"pair={pair} is out of range: there are {len(self.as_of) - 1} consecutive pairs"
            )
        rows = self.transitions.filter(pl.col("from_as_of") == self.labels[pair])
        grid = pl.DataFrame({"from_state": pl.Series(MIGRATION_STATES, dtype=STATE_DTYPE)})
        for state in MIGRATION_STATES:
            column = rows.filter(pl.col("to_state") == state).select("from_state", values)
            grid = grid.join(column.rename({values: state}), on="from_state", how="left")
        return grid.fill_null(0)

    def share(self, from_state: str, to_state: str, pair: int = 0) -> float:
        """Share of the customers in ``from_state`` at snapshot ``pair`` who are in ``to_state`` at
        the next one, e.g. ``share("c", "e")``; 0.0 when nobody was in ``from_state``."""
        for state in (from_state, to_state):
            if state not in MIGRATION_STATES:
                raise WinbackConfigError(f"unknown state {state!r}; states are {MIGRATION_STATES}")
        row = self.matrix(pair).filter(pl.col("from_state") == from_state)
        return float(row.get_column(to_state)[0])


def migration(
    data: Any,
    *,
    as_of: Sequence[AsOf],
    resolution: str | timedelta = "1d",
    min_occasions: int = 2,
    trf_cuts: Sequence[float] = (0.4, 0.6, 0.8, 0.95),
    s_cuts: Sequence[float] = (1.0, 2.0),
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str | None = "amount",
    tz: str | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
    num_threads: int | None = None,
) -> Migration:
    """Score the same transactions at several snapshots and count moves between them (SPEC §3).

    Each snapshot is scored as :func:`winback.silence` would with ``as_of=d`` (the data is read
    and validated once). A customer with no purchase yet at ``d`` is ``not_yet_customer`` there.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 11), date(2024, 1, 21),
    ...            date(2024, 1, 5), date(2024, 2, 1)]})
    >>> m = winback.migration(tx, as_of=["2024-01-25", "2024-03-01"])
    >>> m.states.rows()
    [(1, 'a', 'e'), (2, 'single_purchase', 'e')]
    >>> m.share("a", "e")
    1.0
    """
    if len(as_of) < 2:
        raise WinbackConfigError("migration needs at least two as_of dates")
    resolution_us, _, _ = check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    prepared = _io.read_transactions(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    cutoffs = [_io.as_of_to_micros(d, prepared.time_zone) for d in as_of]
    if any(b <= a for a, b in pairwise(cutoffs)):
        raise WinbackConfigError(f"as_of dates must be strictly increasing, got {list(as_of)!r}")
    moments = [datetime(1970, 1, 1) + timedelta(microseconds=c) for c in cutoffs]
    labels = [_io.describe_moment(m) for m in moments]
    if len(set(labels)) != len(labels):
        labels = [m.isoformat() for m in moments]
    everyone = prepared.frame.select(pl.col("customer").unique().sort().alias("customer_id"))
    states = everyone
    for cutoff, label in zip(cutoffs, labels, strict=True):
        scored, _, _ = score_prepared(
            prepared,
            as_of_us=cutoff,
            resolution_us=resolution_us,
            min_occasions=min_occasions,
            trf_cuts=trf_cuts,
            s_cuts=s_cuts,
            num_threads=num_threads,
        )
        state = (
            pl.when(pl.col("status") == "scored")
            .then(pl.col("rank_ratio_group").cast(pl.String))
            .otherwise(pl.col("status").cast(pl.String))
        )
        snapshot = scored.select("customer_id", state.alias(label))
        states = states.join(snapshot, on="customer_id", how="left")
    states = states.sort("customer_id").with_columns(
        pl.col(label).fill_null("not_yet_customer").cast(STATE_DTYPE) for label in labels
    )
    pieces = []
    for i in range(len(labels) - 1):
        counts = (
            states.group_by(
                pl.col(labels[i]).alias("from_state"), pl.col(labels[i + 1]).alias("to_state")
            )
            .agg(pl.len().cast(pl.Int64).alias("customers"))
            .with_columns(
                (pl.col("customers") / pl.col("customers").sum().over("from_state")).alias("share")
            )
            .select(
                pl.lit(labels[i]).alias("from_as_of"),
                pl.lit(labels[i + 1]).alias("to_as_of"),
                "from_state",
                "to_state",
                "customers",
                "share",
            )
        )
        pieces.append(counts.sort("from_state", "to_state"))
    transitions = pl.concat(pieces)
    return Migration(as_of=moments, labels=labels, states=states, transitions=transitions)
