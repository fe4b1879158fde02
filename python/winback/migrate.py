"""Migration between snapshots (docs/methods.md#migration; seed §四.2): where each group's
customers went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

import polars as pl

from winback import _io
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    AsOf,
    OnInvalid,
)
from winback.errors import WinbackConfigError
from winback.silence import check_parameters, score_prepared

__all__ = ["FEATURE_COLUMNS", "MIGRATION_STATES", "Migration", "migration"]

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
_GROUPS = ("a", "b", "c", "d", "e")
#: Features compared by :meth:`Migration.feature_differences` (at the earlier snapshot).
FEATURE_COLUMNS = (
    "n_occasions",
    "tenure_days",
    "recency_days",
    "max_gap_days",
    "mean_gap_days",
    "median_gap_days",
    "rank_ratio",
    "silence_score",
    "total_amount",
    "mean_amount",
    "r_score",
    "f_score",
    "m_score",
)


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
    snapshots : each snapshot's scored table (:func:`winback.silence` output at that date).
    """

    as_of: list[datetime]
    labels: list[str]
    states: pl.DataFrame
    transitions: pl.DataFrame
    snapshots: tuple[pl.DataFrame, ...] = field(default=(), repr=False)

    def feature_differences(
        self,
        pair: int = 0,
        *,
        toward: str = "e",
        from_states: Sequence[str] | None = None,
        features: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """How the customers who moved toward group ``toward`` differ from those who did not
        (docs/methods.md#migration), by standardised mean differences of their features at the
        earlier snapshot.

        Among customers in a group (a–e) other than ``toward`` at snapshot ``pair`` (or in
        ``from_states``), a customer *moved* when their group at the next snapshot is closer to
        ``toward`` (a < b < c < d < e) than before. For each feature (default
        :data:`FEATURE_COLUMNS`: n, tenure, recency, gaps, TrF, S, amounts and the RFM scores)
        SMD = (mean moved − mean not moved) / √((var moved + var not moved) / 2); |SMD| ≥ 0.2 is
        commonly read as a noticeable difference, ≥ 0.5 as a large one.

        Returns one row per feature, largest |SMD| first: ``feature, mean_moved,
        mean_not_moved, sd_moved, sd_not_moved, smd, n_moved, n_not_moved``.
        """
        from winback.rfm import rfm

        if not 0 <= pair < len(self.as_of) - 1:
            raise WinbackConfigError(
                f"pair={pair} is out of range: there are {len(self.as_of) - 1} consecutive pairs"
            )
        if toward not in _GROUPS:
            raise WinbackConfigError(f"toward={toward!r} must be one of the groups a–e")
        starts = (
            list(from_states) if from_states is not None else [g for g in _GROUPS if g != toward]
        )
        bad = [g for g in starts if g not in _GROUPS or g == toward]
        if bad:
            raise WinbackConfigError(
                f"from_states lists {bad[0]!r}; use groups a–e other than toward={toward!r}"
            )
        if len(self.snapshots) != len(self.as_of):
            raise WinbackConfigError("this Migration holds no snapshots; rerun winback.migration")
        snapshot = self.snapshots[pair]
        if snapshot.height and snapshot.get_column("total_amount").null_count() < snapshot.height:
            snapshot = rfm(snapshot)
        before, after = self.labels[pair], self.labels[pair + 1]
        target = _GROUPS.index(toward)

        def distance(label: str) -> pl.Expr:
            code = (
                pl.col(label)
                .cast(pl.String)
                .replace_strict(
                    {g: i for i, g in enumerate(_GROUPS)}, default=None, return_dtype=pl.Int64
                )
            )
            return (code - target).abs()

        moved = (
            self.states.filter(pl.col(before).cast(pl.String).is_in(starts))
            .select(
                "customer_id",
                (distance(after) < distance(before)).fill_null(False).alias("__moved"),
            )
            .join(snapshot, on="customer_id", how="left")
        )
        wanted = (
            list(features)
            if features is not None
            else [f for f in FEATURE_COLUMNS if f in moved.columns]
        )
        missing = [f for f in wanted if f not in moved.columns]
        if missing:
            raise WinbackConfigError(f"feature {missing[0]!r} is not a column of the snapshot")
        rows = []
        for name in wanted:
            value = pl.col(name).cast(pl.Float64)
            stats = moved.group_by("__moved").agg(
                value.mean().alias("mean"), value.std().alias("sd"), value.count().alias("n")
            )
            by = {r["__moved"]: r for r in stats.iter_rows(named=True)}
            yes, no = by.get(True, {}), by.get(False, {})
            smd = None
            if yes.get("mean") is not None and no.get("mean") is not None:
                pooled = ((yes.get("sd") or 0.0) ** 2 + (no.get("sd") or 0.0) ** 2) / 2.0
                if pooled > 0:
                    smd = (yes["mean"] - no["mean"]) / pooled**0.5
            rows.append(
                {
                    "feature": name,
                    "mean_moved": yes.get("mean"),
                    "mean_not_moved": no.get("mean"),
                    "sd_moved": yes.get("sd"),
                    "sd_not_moved": no.get("sd"),
                    "smd": smd,
                    "n_moved": int(yes.get("n") or 0),
                    "n_not_moved": int(no.get("n") or 0),
                }
            )
        schema = {
            "feature": pl.String,
            "mean_moved": pl.Float64,
            "mean_not_moved": pl.Float64,
            "sd_moved": pl.Float64,
            "sd_not_moved": pl.Float64,
            "smd": pl.Float64,
            "n_moved": pl.Int64,
            "n_not_moved": pl.Int64,
        }
        table = pl.DataFrame(rows, schema=schema, orient="row")
        return table.sort(pl.col("smd").abs(), descending=True, nulls_last=True)

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
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    num_threads: int | None = None,
) -> Migration:
    """Score the same transactions at several snapshots and count moves between them
    (docs/methods.md#migration).

    Each snapshot is scored as :func:`winback.silence` would with ``as_of=d`` (the data is read
    and validated once; a date means the end of that day, and dates before the first purchase
    are refused, docs/methods.md#as-of). A customer with no purchase yet at ``d`` is
    ``not_yet_customer`` there.

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
    prepared = _io.prepare(
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
    # The one snapshot rule (docs/methods.md#as-of): a first date before all the data is refused.
    _io.snapshot_end_at(as_of[0], prepared.time_zone, _io.purchase_dates(prepared))
    moments = [datetime(1970, 1, 1) + timedelta(microseconds=c) for c in cutoffs]
    labels = [_io.describe_moment(m) for m in moments]
    if len(set(labels)) != len(labels):
        labels = [m.isoformat() for m in moments]
    everyone = pl.DataFrame(_io.distinct_customers(prepared).alias("customer_id"))
    states = everyone
    snapshots = []
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
        snapshots.append(scored)
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
    return Migration(
        as_of=moments,
        labels=labels,
        states=states,
        transitions=transitions,
        snapshots=tuple(snapshots),
    )
