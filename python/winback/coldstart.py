"""Cold-start silence (docs/methods.md#cold-start): customers with too few occasions to be scored
against their own gaps, measured against the population instead.

For a customer with n < ``min_occasions`` occasions, the reference is the population's time from
an n-th occasion to the next one (for n = 1: the time to the second purchase), estimated by
Kaplan–Meier with right-censoring: customers with more than n occasions contribute the observed
gap t_{n+1} − t_n, customers with exactly n are censored at their current recency Tr. This module
holds the estimator (:class:`KaplanMeier`) and the columns :func:`winback.silence` attaches with
``cold_start=True`` (:data:`COLD_START_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from winback import _io
from winback._kernels import occasions as occasion_kernels
from winback._options import COLD_START_HORIZON_DAYS, CUSTOMER_COL
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError

__all__ = [
    "COLD_START_COLUMNS",
    "KaplanMeier",
    "SecondPurchaseModel",
    "check_horizon",
    "cold_start_columns",
    "kaplan_meier",
    "next_gaps",
    "second_purchase_model",
]

#: Columns added by ``winback.silence(..., cold_start=True)``, in order (null for scored customers).
COLD_START_COLUMNS = (
    "population_trf",
    "population_trf_group",
    "p_next_so_far",
    "p_next_within",
    "cold_start_extrapolated",
)

FloatArray = npt.NDArray[np.float64]
#: The TrF group labels (as in docs/methods.md#silence-groups), for ``population_trf_group``.
GROUP_LABELS = ("a", "b", "c", "d", "e")
GROUPS = pl.Series(GROUP_LABELS, dtype=pl.Enum(GROUP_LABELS))


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan–Meier survival curve S(t) = Π_{t_i ≤ t} (1 − d_i / r_i) over the distinct event
    times t_i (d_i events at t_i, r_i subjects with a time ≥ t_i; a censoring at t_i counts as
    still at risk at t_i, the usual convention). Right-continuous step function, S = 1 before the
    first event.

    Attributes
    ----------
    times : the distinct event times, increasing.
    survival : S just after each event time (same length as ``times``).
    last_time : the largest time observed (event or censoring); beyond it S is held at its last
        value (Gill's convention), so probabilities there are lower bounds.
    subjects : the number of subjects the curve was estimated from.
    """

    times: FloatArray
    survival: FloatArray
    last_time: float
    subjects: int

    def survival_at(self, t: FloatArray) -> FloatArray:
        """S(t) at each of ``t`` (S = 1 before the first event, held past ``last_time``)."""
        index = np.searchsorted(self.times, np.asarray(t, dtype=np.float64), side="right") - 1
        values = np.ones(index.shape, dtype=np.float64)
        inside = index >= 0
        values[inside] = self.survival[index[inside]]
        return values

    @property
    def last_event_time(self) -> float | None:
        """The largest event time, or None without events."""
        return float(self.times[-1]) if self.times.size else None


def kaplan_meier(
    durations: Sequence[float] | FloatArray, observed: Sequence[bool] | npt.NDArray[np.bool_]
) -> KaplanMeier:
    """The Kaplan–Meier estimate from ``durations`` (≥ 0, finite) and ``observed`` (True: the
    event happened at that time; False: censored then). Independent of the subjects' order.

    Examples
    --------
    >>> km = kaplan_meier([1.0, 2.0, 2.0, 3.0], [True, True, False, False])
    >>> km.times.tolist(), km.survival.tolist()
    ([1.0, 2.0], [0.75, 0.5])
    """
    d = np.asarray(durations, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if d.shape != e.shape or d.ndim != 1:
        raise WinbackConfigError("durations and observed must be 1-d and of one length")
    if d.size and not (np.isfinite(d).all() and (d >= 0).all()):
        raise WinbackConfigError("durations must be finite and non-negative")
    ordered = np.sort(d)
    times = np.unique(d[e])
    # r_i = #{d ≥ t_i}; d_i = #{events at t_i}.
    at_risk = ordered.size - np.searchsorted(ordered, times, side="left")
    events_sorted = np.sort(d[e])
    deaths = np.searchsorted(events_sorted, times, side="right") - np.searchsorted(
        events_sorted, times, side="left"
    )
    survival = np.cumprod(1.0 - deaths / at_risk) if times.size else np.empty(0)
    last = float(ordered[-1]) if ordered.size else 0.0
    return KaplanMeier(times, survival.astype(np.float64), last, int(d.size))


def check_horizon(horizon_days: float) -> float:
    """The cold-start horizon N (days) as a float, refused unless finite and positive."""
    value = float(horizon_days)
    if not (np.isfinite(value) and value > 0):
        raise WinbackConfigError(
            f"cold_start_horizon_days={horizon_days!r} must be a finite positive number of days"
        )
    return value


def _first_occasions(
    prepared: _io.PreparedTransactions, as_of_us: int, resolution_us: int, count: int
) -> pl.DataFrame:
    """customer, k (1-based), t_k (bucket start, µs) and ``gap_days`` = t_{k+1} − t_k (null for
    the last) of each customer's first ``count`` occasions up to ``as_of``
    (docs/methods.md#occasions: rows after ``as_of`` are left out), sorted by (customer, k).

    The rows are grouped by customer (:func:`winback._io.customer_runs`: a counting sort of
    integer ids, kept for RFM's window) — never sorted by (customer, t) (issue 18: that sort was
    30 s of a 1M-customer report) — and one kernel pass over each customer's rows keeps their
    ``count`` + 1 smallest distinct buckets."""
    ts = pl.col("ts")
    ids, all_starts, grouped = _io.customer_runs(prepared)
    rows = grouped.select((ts - ts % resolution_us).alias("t"), (ts <= as_of_us).alias("kept"))
    kept = rows.get_column("kept").to_numpy()
    times = rows.get_column("t").to_numpy().astype(np.int64, copy=False)[kept]
    # each customer's rows up to as_of, customers with none left out
    per_customer = (
        np.add.reduceat(kept.astype(np.int64), all_starts[:-1])
        if kept.size
        else np.zeros(0, dtype=np.int64)
    )
    present = np.flatnonzero(per_customer)
    starts = np.append(0, np.cumsum(per_customer[present])).astype(np.int64)
    customer = ids.gather(present)
    # No customer has more distinct buckets than rows: the buffer need not be wider.
    width = min(count + 1, int(np.diff(starts).max(initial=1)))
    first, found = occasion_kernels.first_distinct(starts, times, width)
    ids = customer
    parts = []
    for k in range(1, min(count, width) + 1):
        has = found >= k
        t_k = first[has, k - 1]
        has_next = found[has] > k
        following = first[has, k] if k < width else t_k  # k = width: no one has a next one
        gap = (following - t_k) / _io.MICROS_PER_DAY  # t_{k+1} − t_k; kept where it exists
        parts.append(
            pl.DataFrame(
                {
                    "customer": ids.filter(pl.Series(has)),
                    "k": pl.Series(np.full(t_k.size, k, dtype=np.int64)),
                    "t": pl.Series(t_k),
                    "gap_days": pl.Series(gap, dtype=pl.Float64),
                }
            ).with_columns(pl.when(pl.Series(has_next)).then(pl.col("gap_days")).alias("gap_days"))
        )
    return pl.concat(parts).sort("customer", "k")


def next_gaps(
    prepared: _io.PreparedTransactions, *, as_of_us: int, resolution_us: int, min_occasions: int
) -> pl.DataFrame:
    """``customer``, ``k``, ``gap_days`` = t_{k+1} − t_k (days) for k = 1 … ``min_occasions`` − 1
    and each customer with more than k occasions up to ``as_of``: the observed times of the
    cold-start reference curves (docs/methods.md#cold-start). One part of the population per
    call, so it can be built group by group on the out-of-core path and concatenated."""
    occasions = _first_occasions(prepared, as_of_us, resolution_us, min_occasions)
    return occasions.filter(
        pl.col("gap_days").is_not_null() & (pl.col("k") < min_occasions)
    ).select("customer", "k", "gap_days")


def cold_start_columns(
    scores: pl.DataFrame,
    gaps: pl.DataFrame,
    *,
    min_occasions: int,
    trf_cuts: Sequence[float],
    horizon_days: float = COLD_START_HORIZON_DAYS,
) -> pl.DataFrame:
    """:data:`COLD_START_COLUMNS` for each row of ``scores`` (a whole silence frame), in its row
    order, from the :func:`next_gaps` of the same data: filled for customers with n <
    ``min_occasions``, null for the rest (docs/methods.md#cold-start).

    For a customer with n occasions and recency Tr, with Ŝ the Kaplan–Meier curve of the time from
    an n-th occasion to the next over every customer with ≥ n occasions, F̂ = 1 − Ŝ, and τ the
    largest observed such gap: ``p_next_so_far`` = F̂(Tr); ``population_trf`` = F̂(Tr) / F̂(τ) (the
    rank of Tr among the repeaters' gaps, in [0, 1]; null when no one has a next occasion);
    ``p_next_within`` = (Ŝ(Tr) − Ŝ(Tr + N)) / Ŝ(Tr), with Ŝ held past the last observed time
    (``cold_start_extrapolated`` is True when Tr + N lies beyond it: a lower bound).
    """
    horizon = check_horizon(horizon_days)
    height = scores.height
    trf = np.full(height, np.nan)
    so_far = np.full(height, np.nan)
    within = np.full(height, np.nan)
    extrapolated = np.zeros(height, dtype=bool)
    filled = np.zeros(height, dtype=bool)
    n_all = scores.get_column("n_occasions").to_numpy()
    recency_all = scores.get_column("recency_days").to_numpy().astype(np.float64)
    ids = scores.select("customer_id").with_row_index("row")
    keyed = gaps.rename({"customer": "customer_id"}).with_columns(
        pl.col("customer_id").cast(ids.schema["customer_id"])
    )
    for k in range(1, min_occasions):
        at_k = n_all == k
        if not at_k.any():
            continue
        has = n_all >= k
        later = n_all > k
        observed_gap = (
            ids.join(keyed.filter(pl.col("k") == k).drop("k"), on="customer_id", how="left")
            .sort("row")
            .get_column("gap_days")
            .to_numpy()
            .astype(np.float64)
        )
        durations = np.where(later, observed_gap, recency_all)[has]
        km = kaplan_meier(durations, later[has])
        tr = recency_all[at_k]
        s_tr = km.survival_at(tr)
        s_next = km.survival_at(tr + horizon)
        so_far[at_k] = 1.0 - s_tr
        last_event = km.last_event_time
        if last_event is not None:
            top = 1.0 - float(km.survival_at(np.array([last_event]))[0])
            trf[at_k] = np.minimum((1.0 - s_tr) / top, 1.0)
        # S(Tr) > 0 for a subject censored at Tr (it is at risk there and had no event);
        # kept as a guard for hand-made inputs.
        safe = s_tr > 0
        ratio = np.full(tr.shape, np.nan)
        ratio[safe] = (s_tr[safe] - s_next[safe]) / s_tr[safe]
        within[at_k] = ratio
        extrapolated[at_k] = tr + horizon > km.last_time
        filled[at_k] = True

    def column(name: str, values: FloatArray) -> pl.Series:
        return pl.Series(name, values, dtype=pl.Float64).fill_nan(None)

    codes = np.searchsorted(np.asarray([float(c) for c in trf_cuts]), np.nan_to_num(trf), "right")
    mask = pl.Series(filled)
    return pl.DataFrame(
        [
            column("population_trf", trf),
            column("p_next_so_far", so_far),
            column("p_next_within", within),
            pl.Series("cold_start_extrapolated", extrapolated),
        ]
    ).select(
        pl.col("population_trf"),
        pl.when(pl.col("population_trf").is_not_null())
        .then(GROUPS.gather(pl.Series(codes.astype(np.uint32))))
        .alias("population_trf_group"),
        pl.col("p_next_so_far"),
        pl.col("p_next_within"),
        pl.when(mask).then(pl.col("cold_start_extrapolated")).alias("cold_start_extrapolated"),
    )


@dataclass(frozen=True)
class SecondPurchaseModel:
    """A calibrated P(second purchase within N days of the first | the first's features)
    (docs/methods.md#second-purchase), made by :func:`second_purchase_model`.

    Attributes
    ----------
    frame : one row per customer, sorted by ``customer_id``: ``first_ts`` (first occasion's
        bucket start, µs as a local datetime), ``observed`` (first occasion at least N days
        before ``as_of``: in the training set), ``second_within`` (the label; null when not
        observed), ``p_second_within`` (the fitted model's probability, every customer) and
        ``p_second_within_oof`` (out-of-fold probability for the training customers, null
        otherwise; what ``auc`` and ``brier`` are measured on).
    auc : the out-of-fold ROC AUC (0.5 = no better than the base rate).
    brier, brier_base : out-of-fold Brier score, and that of predicting the base rate.
    base_rate : the share of training customers with a second purchase within N days.
    customers_trained : training customers.
    horizon_days : N.
    features : the model's input columns, in order.
    """

    frame: pl.DataFrame
    auc: float
    brier: float
    brier_base: float
    base_rate: float
    customers_trained: int
    horizon_days: float
    features: tuple[str, ...]


def _feature_matrix(
    table: pl.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[FloatArray, tuple[str, ...]]:
    """Numeric columns as they are, categorical ones one-hot (levels in sorted order, so the
    matrix does not depend on row order)."""
    columns: list[FloatArray] = []
    names: list[str] = []
    for name in numeric:
        columns.append(table.get_column(name).cast(pl.Float64).to_numpy())
        names.append(name)
    for name in categorical:
        values = table.get_column(name).cast(pl.String).fill_null("(missing)")
        for level in sorted(values.unique().to_list()):
            columns.append((values == level).cast(pl.Float64).to_numpy())
            names.append(f"{name}={level}")
    if not columns:
        return np.zeros((table.height, 0)), ()
    return np.column_stack(columns), tuple(names)


def second_purchase_model(
    prepared: _io.PreparedTransactions,
    *,
    as_of_us: int,
    resolution_us: int,
    horizon_days: float = COLD_START_HORIZON_DAYS,
    features: pl.DataFrame | None = None,
    customer_col: str = CUSTOMER_COL,
    folds: int = 5,
    seed: int = 0,
) -> SecondPurchaseModel:
    """Fit P(second purchase within ``horizon_days`` of the first | the first purchase's
    features) on the customers whose first occasion is at least that old
    (docs/methods.md#second-purchase).

    Features: log(1 + first occasion's amount) (when amounts were read), the rows in the first
    occasion, its weekday (one-hot), and the columns of ``features`` — one row per customer,
    keyed by ``customer_col``, e.g. the first purchase's channel, store or product (numeric
    columns as they are, text/categorical ones one-hot; a null is its own level for text and an
    error for numbers). The model is scikit-learn's ``LogisticRegression`` (optional extra
    ``winback[coldstart]``), on standardised inputs; AUC and Brier are measured out of fold
    (``folds``-fold stratified, seeded by ``seed``).
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise WinbackConfigError(
            "the second-purchase model needs scikit-learn: pip install 'winback[coldstart]'"
        ) from exc
    horizon = check_horizon(horizon_days)
    if folds < 2:
        raise WinbackConfigError(f"folds={folds} must be at least 2")
    ts = pl.col("ts")
    day = _io.MICROS_PER_DAY
    amount = [pl.col("amount").sum()] if prepared.has_amount else []
    occasions = (
        prepared.frame.lazy()
        .filter(ts <= as_of_us)
        .with_columns((ts - ts % resolution_us).alias("t"))
        # A canonical row order before summing, so the amount has the same bits for any input
        # order (docs/methods.md#occasions).
        .sort("customer", "t", "ts", *(["amount"] if prepared.has_amount else []))
        .group_by("customer", "t", maintain_order=True)
        .agg(pl.len().alias("rows"), *amount)
        .sort("customer", "t")
        .with_columns(pl.int_range(1, pl.len() + 1).over("customer").alias("k"))
        .filter(pl.col("k") <= 2)
        .collect()
    )
    first = occasions.filter(pl.col("k") == 1).drop("k")
    second = occasions.filter(pl.col("k") == 2).select("customer", pl.col("t").alias("t2"))
    as_of_bucket = as_of_us - as_of_us % resolution_us
    table = (
        first.join(second, on="customer", how="left")
        .sort("customer")
        .with_columns(
            (pl.col("t") <= as_of_bucket - horizon * day).alias("observed"),
            ((pl.col("t2") - pl.col("t")) <= horizon * day).fill_null(False).alias("label"),
            (((pl.col("t") // day) + 3) % 7).alias("weekday"),  # 0 = Monday (1970-01-01: Thu)
        )
    )
    numeric = ["rows"]
    if prepared.has_amount:
        table = table.with_columns(pl.col("amount").clip(lower_bound=0).log1p().alias("log_amount"))
        numeric.insert(0, "log_amount")
    categorical = ["weekday"]
    if features is not None:
        table, extra_numeric, extra_categorical = _join_features(table, features, customer_col)
        numeric += extra_numeric
        categorical += extra_categorical
    x, names = _feature_matrix(table, numeric, categorical)
    observed = table.get_column("observed").to_numpy()
    y = table.get_column("label").to_numpy()[observed]
    positives = int(y.sum())
    if min(positives, y.size - positives) < folds:
        raise WinbackFitError(
            f"the second-purchase model needs at least {folds} customers with and without a "
            f"second purchase within {horizon:g} days among those first seen at least that long "
            f"before as_of; found {positives} with and {y.size - positives} without"
        )

    def model() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    x_train = x[observed]
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(model(), x_train, y, cv=split, method="predict_proba")[:, 1]
    fitted = model().fit(x_train, y)
    p_all = fitted.predict_proba(x)[:, 1]
    base = float(y.mean())
    oof_full = np.full(table.height, np.nan)
    oof_full[observed] = oof
    frame = table.select(
        pl.col("customer").alias("customer_id"),
        pl.col("t").cast(pl.Datetime("us")).alias("first_ts"),
        pl.col("observed"),
        pl.when(pl.col("observed")).then(pl.col("label")).alias("second_within"),
        pl.Series("p_second_within", p_all, dtype=pl.Float64),
        pl.Series("p_second_within_oof", oof_full, dtype=pl.Float64).fill_nan(None),
    )
    return SecondPurchaseModel(
        frame=frame,
        auc=_auc(y, oof),
        brier=float(np.mean((oof - y) ** 2)),
        brier_base=float(np.mean((base - y) ** 2)),
        base_rate=base,
        customers_trained=int(y.size),
        horizon_days=horizon,
        features=names,
    )


def _auc(y: npt.NDArray[np.bool_], score: FloatArray) -> float:
    """ROC AUC by the rank-sum (Mann–Whitney) formula, ties counted half."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(score.size, dtype=np.float64)
    sorted_scores = score[order]
    # Average ranks over ties.
    _, first_index, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first_index + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    positives = int(y.sum())
    negatives = y.size - positives
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def _join_features(
    table: pl.DataFrame, features: pl.DataFrame, customer_col: str
) -> tuple[pl.DataFrame, list[str], list[str]]:
    """The user's per-customer feature columns joined to the first purchases; typed errors for a
    missing key, a customer twice or a non-finite / missing number."""
    if customer_col not in features.columns:
        raise WinbackInputError(f"features has no {customer_col!r} column (one row per customer)")
    keys = features.get_column(customer_col)
    if not keys.is_unique().all():
        twice = keys.filter(keys.is_duplicated()).unique().sort().head(5).to_list()
        raise WinbackInputError(f"features lists customer(s) {twice} more than once")
    columns = [c for c in features.columns if c != customer_col]
    clashes = [c for c in columns if c in table.columns]
    if clashes:
        raise WinbackInputError(f"features column(s) {clashes} clash with built-in ones; rename")
    numeric = [c for c in columns if features.schema[c].is_numeric()]
    categorical = [c for c in columns if c not in numeric]
    keyed = features.rename({customer_col: "customer"})
    try:
        joined = table.join(keyed, on="customer", how="left")
    except pl.exceptions.PolarsError as exc:
        raise WinbackInputError(
            f"features' {customer_col!r} column cannot be matched to the customer ids ({exc})"
        ) from exc
    for name in numeric:
        values = joined.get_column(name).cast(pl.Float64)
        bad = values.is_null() | values.is_nan() | values.is_infinite()
        if bad.any():
            raise WinbackInputError(
                f"features column {name!r} is missing, NaN or infinite for {int(bad.sum())} "
                "customer(s); give every customer a finite value (or make it a text column)"
            )
    return joined, numeric, categorical
