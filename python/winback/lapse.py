"""The calibrated silence probability ``p_lapse`` (docs/methods.md#p-lapse): P(no purchase in the
next H days | TrF, S, n, recency, tenure, value), learned from the user's own history.

The past is scored by the silence machinery at rolling month-end snapshots (the cut-offs
:func:`winback.migration` uses: :func:`winback.silence.score_prepared` at each); each
customer-snapshot is labelled by whether the customer bought in the H days after it. A monotone
gradient-boosted model (scikit-learn ``HistGradientBoostingClassifier`` with ``monotonic_cst``)
is fitted on the older labelled snapshots and calibrated by isotonic regression on the most
recent ones. :class:`LapseModel` is the estimator, :func:`lapse` the one-call form and
:func:`lapse_snapshots` the labelled table both are built from; :func:`outcome_cuts` finds the
TrF cut points that separate the outcomes best (docs/methods.md#outcome-cuts).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import polars as pl

from winback import _io
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    LAPSE_CALIBRATION_SNAPSHOTS,
    LAPSE_DRIFT_CANDIDATES,
    LAPSE_DRIFT_CHECK_SNAPSHOTS,
    LAPSE_DRIFT_EVIDENCE_Z,
    LAPSE_DRIFT_SNAPSHOTS,
    LAPSE_HORIZON_DAYS,
    LAPSE_MODEL,
    MIN_OCCASIONS,
    ON_INVALID,
    OUTCOME_CUTS_MIN_SHARE,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    AsOf,
    LapseDrift,
    LapseModelKind,
    OnInvalid,
)
from winback.errors import WinbackConfigError, WinbackFitError
from winback.silence import check_parameters, score_prepared

__all__ = [
    "DEFAULT_FEATURES",
    "LAPSE_COLUMNS",
    "LAPSE_FEATURES",
    "LapseModel",
    "OutcomeCuts",
    "lapse",
    "lapse_snapshots",
    "month_end_snapshots",
    "outcome_cuts",
]

FloatArray = npt.NDArray[np.float64]
#: Columns :func:`lapse` and :meth:`LapseModel.predict` add to the silence frame, in order.
LAPSE_COLUMNS = ("p_lapse", "lapse_reason")
#: The model's inputs (silence columns; amounts as log(1 + x)), and their monotone direction:
#: +1 = p_lapse never falls as the feature grows, −1 = never rises, 0 = free.
LAPSE_FEATURES: tuple[tuple[str, int], ...] = (
    ("rank_ratio", 1),
    ("silence_score", 1),
    ("recency_days", 1),
    ("n_occasions", -1),
    ("tenure_days", 0),
    ("total_amount", 0),
    ("mean_amount", 0),
)
#: The inputs used by default: all but ``tenure_days``, which out of time lies beyond the
#: training range on a young customer base and degraded calibration on CDNOW (benches/README.md).
DEFAULT_FEATURES = tuple(name for name, _ in LAPSE_FEATURES if name != "tenure_days")
#: ``lapse_reason`` of a customer with no occasion by ``as_of`` (only rows after it).
NOT_YET_CUSTOMER = "not_yet_customer"
_DAY = _io.MICROS_PER_DAY
_LOG_FEATURES = frozenset({"total_amount", "mean_amount"})


def month_end_snapshots(first_us: int, last_us: int, time_zone: str | None) -> list[int]:
    """Cut-offs (local µs, the last µs of the day) of every month end d with
    ``first_us`` ≤ cut-off(d) ≤ ``last_us``, in order."""
    start = _io.micros_to_datetime(first_us).date()
    month = date(start.year, start.month, 1)
    cutoffs: list[int] = []
    while True:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        cutoff = _io.as_of_to_micros(following - timedelta(days=1), time_zone)
        if cutoff > last_us:
            return cutoffs
        if cutoff >= first_us:
            cutoffs.append(cutoff)
        month = following


def _features(frame: pl.DataFrame, names: Sequence[str]) -> FloatArray:
    """The feature matrix of silence rows over ``names`` (NaN where a column is null: not
    scored, no amount)."""
    columns = []
    for name in names:
        values = frame.get_column(name).cast(pl.Float64)
        if name in _LOG_FEATURES:
            values = values.clip(lower_bound=0.0).log1p()
        columns.append(values.fill_null(np.nan).to_numpy())
    return np.column_stack(columns).astype(np.float64)


def _scored_at(
    prepared: _io.PreparedTransactions,
    cutoff: int,
    *,
    resolution_us: int,
    min_occasions: int,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    num_threads: int | None,
) -> pl.DataFrame:
    scored, _, _ = score_prepared(
        prepared,
        as_of_us=cutoff,
        resolution_us=resolution_us,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        num_threads=num_threads,
    )
    return scored.filter(pl.col("n_occasions") >= 1)


def _labelled(
    prepared: _io.PreparedTransactions,
    cutoffs: Sequence[int],
    horizon_days: float,
    *,
    resolution_us: int,
    min_occasions: int,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    num_threads: int | None,
) -> pl.DataFrame:
    """Silence rows at each cut-off with ``snapshot`` (µs) and ``lapsed`` (no row in
    (cut-off, cut-off + H]), sorted by (snapshot, customer_id)."""
    ts = pl.col("ts")
    pieces = []
    for cutoff in cutoffs:
        scored = _scored_at(
            prepared,
            cutoff,
            resolution_us=resolution_us,
            min_occasions=min_occasions,
            trf_cuts=trf_cuts,
            s_cuts=s_cuts,
            num_threads=num_threads,
        )
        end = cutoff + round(horizon_days * _DAY)
        buyers = (
            prepared.frame.lazy()
            .filter((ts > cutoff) & (ts <= end))
            .select(pl.col("customer").unique().alias("customer_id"), pl.lit(False).alias("lapsed"))
            .collect()
            .with_columns(pl.col("customer_id").cast(scored.schema["customer_id"]))
        )
        pieces.append(
            scored.join(buyers, on="customer_id", how="left", maintain_order="left").select(
                pl.lit(cutoff, dtype=pl.Int64).alias("snapshot"),
                pl.all().exclude("lapsed"),
                pl.col("lapsed").fill_null(True),
            )
        )
    return pl.concat(pieces) if pieces else pl.DataFrame()


def lapse_snapshots(
    data: Any,
    *,
    as_of: Sequence[AsOf],
    horizon_days: float = LAPSE_HORIZON_DAYS,
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
) -> pl.DataFrame:
    """The labelled history p_lapse learns from (docs/methods.md#p-lapse): the
    :func:`winback.silence` columns of every customer with an occasion by each snapshot in
    ``as_of`` (scored as :func:`winback.migration` scores them), with ``snapshot`` (the cut-off,
    local datetime) and ``lapsed`` (True: no purchase in the ``horizon_days`` days after it).
    Sorted by (snapshot, customer_id). A snapshot whose horizon runs past the data's last
    purchase day is refused (its label would be unknown).

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 2],
    ...     "ts": [date(2024, 1, 1), date(2024, 2, 10), date(2024, 1, 5)]})
    >>> table = winback.lapse_snapshots(tx, as_of=["2024-01-31"], horizon_days=10)
    >>> table.select("customer_id", "n_occasions", "lapsed").rows()
    [(1, 1, False), (2, 1, True)]
    """
    resolution_us, _, _ = check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    horizon = _check_horizon(horizon_days)
    prepared = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    cutoffs = [_io.as_of_to_micros(d, prepared.time_zone) for d in as_of]
    if not cutoffs:
        raise WinbackConfigError("lapse_snapshots needs at least one as_of date")
    if any(b <= a for a, b in itertools.pairwise(cutoffs)):
        raise WinbackConfigError(f"as_of dates must be strictly increasing, got {list(as_of)!r}")
    _io.snapshot_end_at(as_of[0], prepared.time_zone, _io.purchase_dates(prepared))
    data_end = _io.snapshot_end(prepared, None)
    late = [d for d, c in zip(as_of, cutoffs, strict=True) if c + horizon * _DAY > data_end]
    if late:
        raise WinbackConfigError(
            f"as_of {late[0]!r} + horizon_days={horizon:g} runs past the last purchase day "
            f"({_io.describe_moment(_io.micros_to_datetime(data_end))}): its outcome is unknown; "
            "use earlier snapshots or a shorter horizon"
        )
    table = _labelled(
        prepared,
        cutoffs,
        horizon,
        resolution_us=resolution_us,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        num_threads=num_threads,
    )
    return table.with_columns(pl.col("snapshot").cast(pl.Datetime("us")))


def _check_horizon(horizon_days: float) -> float:
    value = float(horizon_days)
    if not (np.isfinite(value) and value > 0):
        raise WinbackConfigError(
            f"horizon_days={horizon_days!r} must be a finite positive number of days"
        )
    return value


def _calibrated(raw: FloatArray, calibrator: Any, clip: float, shift: float) -> FloatArray:
    """p_lapse from the model's scores: the isotonic map (if any), held in [clip, 1 − clip],
    then the drift correction's logit shift (docs/methods.md#p-lapse)."""
    p = raw if calibrator is None else np.asarray(calibrator.predict(raw), dtype=np.float64)
    p = np.clip(p, clip, 1.0 - clip)
    if shift:
        p = 1.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + shift)))
    clipped: FloatArray = np.clip(p, clip, 1.0 - clip)
    return clipped


def _paired_z(row_losses: FloatArray, customers: pl.Series, off: int) -> FloatArray:
    """Per candidate (row of ``row_losses``, candidates × rows): the mean log-loss gain over
    candidate ``off`` divided by its standard error, rows clustered by customer (a customer's
    rows at several snapshots are not independent); 0.0 where the gain has no spread."""
    gain = row_losses[off] - row_losses  # > 0: the candidate does better
    codes = customers.rank("dense").cast(pl.Int64).to_numpy() - 1
    clusters = int(codes.max()) + 1
    n = gain.shape[1]
    z = np.zeros(gain.shape[0])
    for i in range(gain.shape[0]):
        mean = gain[i].mean()
        sums = np.bincount(codes, weights=gain[i] - mean, minlength=clusters)
        se = float(np.sqrt(np.sum(sums**2) * clusters / max(clusters - 1, 1))) / n
        z[i] = mean / se if se > 0 else 0.0
    return z


def _drift(table: pl.DataFrame, cutoffs: Sequence[int], as_of_us: int, count: int) -> float:
    """The drift correction's logit shift (docs/methods.md#p-lapse): the least-squares slope of
    logit(lapse rate) on the month index over the last ``count`` labelled snapshots, times the
    months (of 365.25 / 12 days) from the last of them to ``as_of``; 0.0 with fewer than 3."""
    recent = list(cutoffs[-count:]) if count else []
    if len(recent) < 3:
        return 0.0
    rates = (
        table.filter(pl.col("snapshot").is_in(recent))
        .group_by("snapshot")
        .agg(pl.col("lapsed").cast(pl.Float64).mean().alias("rate"), pl.len().alias("rows"))
        .sort("snapshot")
    )
    rows = rates.get_column("rows").to_numpy().astype(np.float64)
    # Half a row toward ½ keeps the logit finite when a snapshot is all one outcome.
    rate = (rates.get_column("rate").to_numpy() * rows + 0.5) / (rows + 1.0)
    month_us = 365.25 / 12 * _DAY
    months = (rates.get_column("snapshot").to_numpy().astype(np.float64) - recent[-1]) / month_us
    slope = float(np.polyfit(months, np.log(rate / (1.0 - rate)), 1)[0])
    return slope * (as_of_us - recent[-1]) / month_us


class LapseModel:
    """p_lapse = P(no purchase in the next ``horizon_days`` days | TrF, S, recency, n, tenure,
    amounts), learned from rolling month-end snapshots of the user's own history
    (docs/methods.md#p-lapse).

    Parameters
    ----------
    horizon_days
        H, days after the snapshot in which a purchase counts as "not lapsed" (default 90).
    model
        ``"hgb"`` (default): scikit-learn ``HistGradientBoostingClassifier`` with monotone
        constraints (:data:`LAPSE_FEATURES`); ``"logistic"``: a logistic regression on the same
        features (log-transformed, with missing-value indicators). Both are then calibrated.
    calibration_snapshots
        The most recent labelled snapshots held out to fit the isotonic calibration (the model
        is fitted on the older ones); 0 fits the model on all and skips the calibration.
    drift_snapshots
        The latest labelled snapshots whose lapse-rate trend is carried forward to ``as_of``
        (the drift correction of docs/methods.md#p-lapse); fewer than 3 (e.g. 0) turns it off.
        ``"auto"`` (default): chosen among :data:`~winback._options.LAPSE_DRIFT_CANDIDATES` by
        an out-of-time check on the latest labelled snapshots (docs/methods.md#p-lapse-drift-auto);
        no correction unless a window beats it there on both log loss and Brier, by a log-loss
        gain of at least ``LAPSE_DRIFT_EVIDENCE_Z`` standard errors.
    features
        The inputs, a subset of :data:`LAPSE_FEATURES`' names (default
        :data:`DEFAULT_FEATURES`: all but ``tenure_days``).
    max_snapshots
        Use only the latest this many labelled snapshots (None: all).
    resolution, min_occasions, trf_cuts, s_cuts
        The silence scoring's, as in :func:`winback.silence`.
    seed
        Seeds the booster's early-stopping split (results are identical run to run).
    num_threads
        Threads of the silence scoring and of the booster (default: all cores; results never
        depend on it).

    Attributes
    ----------
    snapshots_ : the labelled snapshot cut-offs used (local datetimes), oldest first.
    calibration_from_ : the first snapshot of the calibration set (None without calibration).
    rows_ : customer-snapshot rows used (model + calibration).
    base_rate_ : the share of those rows that lapsed.
    estimator_ : the fitted scikit-learn model.
    calibrator_ : the fitted ``IsotonicRegression`` (None when ``calibration_snapshots=0``).
    drift_ : the logit shift of the drift correction (0.0 when off): the slope of
        logit(lapse rate) per month over the last ``drift_snapshots_`` labelled snapshots × the
        months from the last of them to ``as_of``.
    drift_snapshots_ : the window used (``drift_snapshots`` itself, or the one ``"auto"`` chose;
        0 = no correction).
    drift_evidence_ : with ``"auto"``, the check behind the choice (None otherwise): one row
        per candidate window — ``drift_snapshots``, ``log_loss`` and ``brier`` pooled over the
        checked snapshots, ``wins`` (checked snapshots where its log loss beats no correction),
        ``z`` (its pooled log-loss gain over no correction in standard errors, clustered by
        customer), ``mean_shift`` (its mean logit shift there), ``chosen``; empty when the
        history is too short to check (then no correction). ``drift_checked_`` lists the
        checked snapshots.
    clip_ : p_lapse is held in [clip_, 1 − clip_] (half a row of the calibration set), so that
        log loss stays finite.
    as_of_ : the cut-off the model was fitted up to (local datetime).
    features_ : the inputs used, in :data:`LAPSE_FEATURES` order (those of ``features`` not null
        throughout the training rows).
    """

    def __init__(
        self,
        *,
        horizon_days: float = LAPSE_HORIZON_DAYS,
        model: LapseModelKind = LAPSE_MODEL,
        calibration_snapshots: int = LAPSE_CALIBRATION_SNAPSHOTS,
        drift_snapshots: LapseDrift = LAPSE_DRIFT_SNAPSHOTS,
        features: Sequence[str] = DEFAULT_FEATURES,
        max_snapshots: int | None = None,
        resolution: str | timedelta = RESOLUTION,
        min_occasions: int = MIN_OCCASIONS,
        trf_cuts: Sequence[float] = TRF_CUTS,
        s_cuts: Sequence[float] = S_CUTS,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.features = features
        self.horizon_days = horizon_days
        self.model = model
        self.calibration_snapshots = calibration_snapshots
        self.drift_snapshots = drift_snapshots
        self.max_snapshots = max_snapshots
        self.resolution = resolution
        self.min_occasions = min_occasions
        self.trf_cuts = trf_cuts
        self.s_cuts = s_cuts
        self.seed = seed
        self.num_threads = num_threads

    def _check(self) -> tuple[int, float]:
        resolution_us, _, _ = check_parameters(
            self.resolution, self.min_occasions, self.trf_cuts, self.s_cuts, self.num_threads
        )
        if self.model not in ("hgb", "logistic"):
            raise WinbackConfigError(f"model={self.model!r} must be 'hgb' or 'logistic'")
        calibration = self.calibration_snapshots
        if isinstance(calibration, bool) or not isinstance(calibration, int) or calibration < 0:
            raise WinbackConfigError(
                f"calibration_snapshots={calibration!r} must be a whole number ≥ 0"
            )
        known = dict(LAPSE_FEATURES)
        unknown = [f for f in self.features if f not in known]
        if unknown or not self.features or isinstance(self.features, str):
            raise WinbackConfigError(
                f"features={self.features!r} must be a non-empty list of {', '.join(known)}"
            )
        drift = self.drift_snapshots
        if drift != "auto" and (isinstance(drift, bool) or not isinstance(drift, int) or drift < 0):
            raise WinbackConfigError(
                f"drift_snapshots={drift!r} must be a whole number ≥ 0 or 'auto'"
            )
        if self.max_snapshots is not None and self.max_snapshots < 1:
            raise WinbackConfigError(f"max_snapshots={self.max_snapshots!r} must be at least 1")
        return resolution_us, _check_horizon(self.horizon_days)

    def _estimator(self) -> Any:
        try:
            from sklearn.ensemble import HistGradientBoostingClassifier
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise WinbackConfigError(
                "p_lapse needs scikit-learn: pip install 'winback[coldstart]'"
            ) from exc
        if self.model == "logistic":
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        directions = dict(LAPSE_FEATURES)
        return HistGradientBoostingClassifier(
            monotonic_cst=[directions[name] for name in self.features_],
            max_iter=200,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=100,
            l2_regularization=1.0,
            early_stopping=True,
            random_state=self.seed,
        )

    def _threads(self) -> contextlib.AbstractContextManager[Any]:
        """The booster's OpenMP threads held to ``num_threads`` (threadpoolctl ships with
        scikit-learn); the result does not depend on them (docs/methods.md#determinism)."""
        if self.num_threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        limits: contextlib.AbstractContextManager[Any] = threadpool_limits(
            limits=self.num_threads, user_api="openmp"
        )
        return limits

    def _design(self, frame: pl.DataFrame) -> FloatArray:
        x = _features(frame, self.features_)
        if self.model == "hgb":
            return x  # the booster routes NaN (not scored, no amount) itself
        # Logistic: log of the skewed durations, NaN as 0 with an indicator per column.
        x = x.copy()
        for j, name in enumerate(self.features_):
            if name in ("recency_days", "tenure_days", "n_occasions", "silence_score"):
                x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
        missing = np.isnan(x)
        keep = [j for j in range(x.shape[1]) if missing[:, j].any()]
        return np.column_stack([np.nan_to_num(x, nan=0.0), missing[:, keep].astype(np.float64)])

    def fit(
        self,
        data: Any,
        *,
        as_of: AsOf | None = None,
        customer_col: str = CUSTOMER_COL,
        time_col: str = TIME_COL,
        amount_col: str | None = AMOUNT_COL,
        tz: str | None = None,
        on_invalid: OnInvalid = ON_INVALID,
    ) -> Self:
        """Fit on the month-end snapshots whose H-day horizon ends by ``as_of`` (default: the
        end of the latest purchase's day); rows after ``as_of`` are not read. Raises
        :class:`~winback.WinbackFitError` when the history is too short (fewer than
        ``calibration_snapshots`` + 1 labelled snapshots) or only one outcome occurs."""
        resolution_us, horizon = self._check()
        prepared = _io.prepare(
            data,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            tz=tz,
            on_invalid=on_invalid,
        )
        as_of_us = _io.snapshot_end(prepared, as_of)
        first = prepared.frame.get_column("ts").min()
        first_us = int(first) if isinstance(first, int) else 0
        cutoffs = month_end_snapshots(
            first_us, as_of_us - round(horizon * _DAY), prepared.time_zone
        )
        if self.max_snapshots is not None:
            cutoffs = cutoffs[-self.max_snapshots :]
        needed = self.calibration_snapshots + 1
        if len(cutoffs) < needed:
            raise WinbackFitError(
                f"p_lapse needs at least {needed} month-end snapshots whose {horizon:g}-day "
                f"horizon ends by as_of; the history allows {len(cutoffs)}. Use more history, a "
                "shorter horizon_days or fewer calibration_snapshots"
            )
        table = _labelled(
            prepared,
            cutoffs,
            horizon,
            resolution_us=resolution_us,
            min_occasions=self.min_occasions,
            trf_cuts=self.trf_cuts,
            s_cuts=self.s_cuts,
            num_threads=self.num_threads,
        )
        split = (
            cutoffs[len(cutoffs) - self.calibration_snapshots]
            if self.calibration_snapshots
            else None
        )
        train = table if split is None else table.filter(pl.col("snapshot") < split)
        y_train = train.get_column("lapsed").to_numpy()
        if y_train.all() or not y_train.any():
            raise WinbackFitError(
                "p_lapse: every customer-snapshot of the training history has the same outcome "
                f"({'lapsed' if y_train.all() else 'bought'} within {horizon:g} days); there is "
                "nothing to learn"
            )
        # A column null throughout (no amount column; nobody scored yet) carries nothing.
        self.features_ = tuple(
            name
            for name, _ in LAPSE_FEATURES
            if name in self.features and train.get_column(name).null_count() < train.height
        )
        with self._threads():
            estimator = self._estimator().fit(self._design(train), y_train)
        self.calibrator_: Any = None
        self.clip_ = 1e-6
        if split is not None:
            held = table.filter(pl.col("snapshot") >= split)
            self.calibrator_, self.clip_ = self._calibrate(estimator, held)
        self.estimator_ = estimator
        self.snapshots_ = [_io.micros_to_datetime(c) for c in cutoffs]
        self.calibration_from_ = None if split is None else _io.micros_to_datetime(split)
        self.rows_ = table.height
        self.base_rate_ = float(table.get_column("lapsed").cast(pl.Float64).to_numpy().mean())
        self.as_of_ = _io.micros_to_datetime(as_of_us)
        self.drift_evidence_: pl.DataFrame | None = None
        self.drift_checked_: list[Any] = []
        if isinstance(self.drift_snapshots, str):  # "auto"
            window, self.drift_evidence_, checked = self._choose_drift(
                table, cutoffs, round(horizon * _DAY)
            )
            self.drift_checked_ = [_io.micros_to_datetime(c) for c in checked]
        else:
            window = self.drift_snapshots
        self.drift_snapshots_ = window
        self.drift_ = _drift(table, cutoffs, as_of_us, window)
        self._fitted_with = (resolution_us, horizon)
        return self

    def predict_proba(self, frame: pl.DataFrame) -> FloatArray:
        """p_lapse of silence rows (:func:`winback.silence` columns), in their order."""
        if not hasattr(self, "estimator_"):
            raise WinbackConfigError("this LapseModel is not fitted; call fit(data) first")
        with self._threads():
            raw = self.estimator_.predict_proba(self._design(frame))[:, 1].astype(np.float64)
        return _calibrated(raw, self.calibrator_, self.clip_, self.drift_)

    def _calibrate(self, estimator: Any, held: pl.DataFrame) -> tuple[Any, float]:
        """The isotonic map of ``estimator``'s scores on ``held`` to its outcomes, and the clip
        (half a row of ``held``)."""
        from sklearn.isotonic import IsotonicRegression

        with self._threads():
            raw = estimator.predict_proba(self._design(held))[:, 1]
        calibrator = IsotonicRegression(
            y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
        ).fit(raw, held.get_column("lapsed").to_numpy().astype(np.float64))
        return calibrator, 0.5 / held.height

    def _choose_drift(
        self, table: pl.DataFrame, cutoffs: Sequence[int], horizon_us: int
    ) -> tuple[int, pl.DataFrame, list[int]]:
        """``drift_snapshots="auto"`` (docs/methods.md#p-lapse-drift-auto): each of the latest
        :data:`LAPSE_DRIFT_CHECK_SNAPSHOTS` labelled snapshots s is predicted as ``fit`` would
        predict it at as_of = s — calibrated on the snapshots labelled by s, each candidate
        window's trend carried from them to s — by one booster fitted on the snapshots before
        the earliest check's calibration set (so no checked or calibrating label is seen by
        it), and scored against the outcome at s. Returns (window, evidence, checked)."""
        empty = pl.DataFrame(
            schema={
                "drift_snapshots": pl.Int64,
                "log_loss": pl.Float64,
                "brier": pl.Float64,
                "wins": pl.Int64,
                "z": pl.Float64,
                "mean_shift": pl.Float64,
                "chosen": pl.Boolean,
            }
        )
        checked = list(cutoffs[-LAPSE_DRIFT_CHECK_SNAPSHOTS:])
        known = [[c for c in cutoffs if c + horizon_us <= s] for s in checked]
        m = self.calibration_snapshots
        train_cuts = known[0][: len(known[0]) - m] if m else known[0]
        train = table.filter(pl.col("snapshot").is_in(train_cuts))
        y_train = train.get_column("lapsed").to_numpy()
        # Too short to check (fewer than 3 labelled snapshots leave every window at 0) → off.
        if len(known[0]) < 3 or not train_cuts or y_train.all() or not y_train.any():
            return 0, empty, []
        with self._threads():
            estimator = self._estimator().fit(self._design(train), y_train)
        candidates = LAPSE_DRIFT_CANDIDATES
        losses = np.zeros((len(candidates), len(checked)))
        briers = np.zeros_like(losses)
        shifts = np.zeros_like(losses)
        rows = np.zeros(len(checked))
        row_losses: list[FloatArray] = []  # per candidate × checked row, for the z statistic
        customers: list[pl.Series] = []
        for j, (s, labelled) in enumerate(zip(checked, known, strict=True)):
            calibrator, clip = None, 1e-6
            if m:
                held = table.filter(pl.col("snapshot").is_in(labelled[-m:]))
                calibrator, clip = self._calibrate(estimator, held)
            at = table.filter(pl.col("snapshot") == s)
            y = at.get_column("lapsed").to_numpy().astype(np.float64)
            with self._threads():
                raw = estimator.predict_proba(self._design(at))[:, 1].astype(np.float64)
            rows[j] = y.size
            customers.append(at.get_column("customer_id"))
            per_row = np.empty((len(candidates), y.size))
            for i, window in enumerate(candidates):
                shifts[i, j] = _drift(table, labelled, s, window)
                p = _calibrated(raw, calibrator, clip, shifts[i, j])
                per_row[i] = -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))
                losses[i, j] = per_row[i].sum()
                briers[i, j] = np.sum((p - y) ** 2)
            row_losses.append(per_row)
        pooled_loss = losses.sum(axis=1) / rows.sum()
        pooled_brier = briers.sum(axis=1) / rows.sum()
        off = candidates.index(0)
        z = _paired_z(np.concatenate(row_losses, axis=1), pl.concat(customers), off)
        # A window is chosen only on evidence: better than no correction on both pooled
        # measures, its log-loss gain at least LAPSE_DRIFT_EVIDENCE_Z standard errors (a
        # customer is checked up to three times: errors clustered by customer); the lowest log
        # loss among those, exact ties to the earlier candidate.
        better = [
            i
            for i in range(len(candidates))
            if pooled_loss[i] < pooled_loss[off]
            and pooled_brier[i] < pooled_brier[off]
            and z[i] >= LAPSE_DRIFT_EVIDENCE_Z
        ]
        pick = min(better, key=lambda i: (pooled_loss[i], i)) if better else off
        evidence = pl.DataFrame(
            {
                "drift_snapshots": list(candidates),
                "log_loss": pooled_loss,
                "brier": pooled_brier,
                "wins": (losses < losses[off]).sum(axis=1),
                "z": z,
                "mean_shift": shifts.mean(axis=1),
                "chosen": [i == pick for i in range(len(candidates))],
            },
            schema=empty.schema,
        )
        return candidates[pick], evidence, checked

    def predict(
        self,
        data: Any,
        *,
        as_of: AsOf | None = None,
        customer_col: str = CUSTOMER_COL,
        time_col: str = TIME_COL,
        amount_col: str | None = AMOUNT_COL,
        tz: str | None = None,
        on_invalid: OnInvalid = ON_INVALID,
    ) -> pl.DataFrame:
        """The :func:`winback.silence` frame at ``as_of`` (default: the end of the latest
        purchase's day) with :data:`LAPSE_COLUMNS`: ``p_lapse`` and ``lapse_reason`` (null
        where p_lapse is computed; ``"not_yet_customer"`` for a customer whose rows all lie
        after ``as_of``, who is listed with null silence columns). One row per customer of the
        data, sorted by ``customer_id``."""
        if not hasattr(self, "estimator_"):
            raise WinbackConfigError("this LapseModel is not fitted; call fit(data) first")
        resolution_us, _ = self._check()
        prepared = _io.prepare(
            data,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            tz=tz,
            on_invalid=on_invalid,
        )
        as_of_us = _io.snapshot_end(prepared, as_of)
        scored = _scored_at(
            prepared,
            as_of_us,
            resolution_us=resolution_us,
            min_occasions=self.min_occasions,
            trf_cuts=self.trf_cuts,
            s_cuts=self.s_cuts,
            num_threads=self.num_threads,
        )
        scored = scored.with_columns(
            pl.Series("p_lapse", self.predict_proba(scored), dtype=pl.Float64),
            pl.lit(None, dtype=pl.String).alias("lapse_reason"),
        )
        everyone = prepared.frame.select(pl.col("customer").unique().alias("customer_id"))
        everyone = everyone.with_columns(pl.col("customer_id").cast(scored.schema["customer_id"]))
        later = everyone.join(scored.select("customer_id"), on="customer_id", how="anti")
        if later.height:
            filler = later.with_columns(
                pl.lit(None).cast(dtype).alias(name)
                for name, dtype in scored.schema.items()
                if name != "customer_id"
            ).with_columns(pl.lit(NOT_YET_CUSTOMER).alias("lapse_reason"))
            scored = pl.concat([scored, filler.select(scored.columns)])
        return scored.sort("customer_id")


def lapse(
    data: Any,
    *,
    as_of: AsOf | None = None,
    horizon_days: float = LAPSE_HORIZON_DAYS,
    model: LapseModelKind = LAPSE_MODEL,
    calibration_snapshots: int = LAPSE_CALIBRATION_SNAPSHOTS,
    drift_snapshots: LapseDrift = LAPSE_DRIFT_SNAPSHOTS,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    seed: int = 0,
    num_threads: int | None = None,
) -> pl.DataFrame:
    """Score silence and p_lapse at ``as_of`` from the history before it, in one call
    (docs/methods.md#p-lapse): :class:`LapseModel` fitted up to ``as_of`` and applied there.

    Returns the :func:`winback.silence` frame with ``p_lapse`` (P(no purchase in the next
    ``horizon_days`` days), in (0, 1)) and ``lapse_reason`` (null where p_lapse is computed);
    every customer exactly once, sorted by ``customer_id``. The data is read once.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from winback.datasets import load_cdnow
    >>> tx = load_cdnow().filter(pl.col("customer_id") <= 2000)
    >>> out = winback.lapse(tx, as_of="1998-03-31", num_threads=1)
    >>> out.height, out.get_column("p_lapse").null_count()
    (2000, 0)
    """
    prepared = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    estimator = LapseModel(
        horizon_days=horizon_days,
        model=model,
        calibration_snapshots=calibration_snapshots,
        drift_snapshots=drift_snapshots,
        resolution=resolution,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        seed=seed,
        num_threads=num_threads,
    )
    return estimator.fit(prepared, as_of=as_of).predict(prepared, as_of=as_of)


@dataclass(frozen=True)
class OutcomeCuts:
    """Data-driven TrF cuts (docs/methods.md#outcome-cuts), from :func:`outcome_cuts`.

    Attributes
    ----------
    cuts : the four cut points, usable as ``trf_cuts=`` (strictly increasing, in (0, 1]).
    separation : η² of the outcome by the groups these cuts make (between-group share of the
        outcome's variance, 0 … 1).
    separation_fixed : η² by the fixed cuts ``fixed_cuts``, on the same rows.
    fixed_cuts : the cuts compared against (default: the seed's ``TRF_CUTS``).
    groups : one row per group a–e under the data-driven cuts: ``group, lower, upper, rows,
        lapse_rate``.
    rows : the rows the cuts were chosen on (scored customer-snapshots).
    """

    cuts: tuple[float, float, float, float]
    separation: float
    separation_fixed: float
    fixed_cuts: tuple[float, ...]
    groups: pl.DataFrame
    rows: int


def _eta_squared(values: FloatArray, y: FloatArray, cuts: Sequence[float]) -> float:
    codes = np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="right")
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return 0.0
    between = 0.0
    for code in np.unique(codes):
        inside = y[codes == code]
        between += inside.size * (inside.mean() - y.mean()) ** 2
    return float(between / total)


def outcome_cuts(
    table: pl.DataFrame,
    *,
    feature: str = "rank_ratio",
    outcome: str = "lapsed",
    min_share: float = OUTCOME_CUTS_MIN_SHARE,
    fixed_cuts: Sequence[float] = TRF_CUTS,
) -> OutcomeCuts:
    """The four cut points of ``feature`` (TrF by default) into groups a–e that best separate
    ``outcome`` (docs/methods.md#outcome-cuts): maximise η², the between-group share of the
    outcome's variance, over contiguous groups of at least ``min_share`` of the rows each, by
    exact dynamic programming over the feature's distinct values.

    ``table`` is a labelled history such as :func:`lapse_snapshots` returns; rows with a null
    ``feature`` (customers not scored) are left out. Independent of row order.

    Examples
    --------
    >>> import polars as pl
    >>> from winback.lapse import outcome_cuts
    >>> t = pl.DataFrame({"rank_ratio": [0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 1.0] * 10,
    ...                   "lapsed": [0, 0, 0, 0, 1, 1, 1, 1] * 10})
    >>> found = outcome_cuts(t, min_share=0.1)
    >>> found.separation
    1.0
    """
    for name in (feature, outcome):
        if name not in table.columns:
            raise WinbackConfigError(f"outcome_cuts: the table has no {name!r} column")
    if not 0 < min_share <= 0.2:
        raise WinbackConfigError(f"min_share={min_share!r} must be in (0, 0.2]")
    rows = table.select(
        pl.col(feature).cast(pl.Float64).alias("x"), pl.col(outcome).cast(pl.Float64).alias("y")
    ).filter(pl.col("x").is_not_null() & pl.col("x").is_finite())
    if rows.height == 0:
        raise WinbackFitError(f"outcome_cuts: no row has a finite {feature!r}")
    # Distinct values with their counts and outcome sums: the DP's atoms (groups never split
    # a value, so the cut is the atom's own value: x ≥ cut starts the next group).
    atoms = rows.group_by("x").agg(pl.len().alias("n"), pl.col("y").sum().alias("s")).sort("x")
    x = atoms.get_column("x").to_numpy()
    n = atoms.get_column("n").to_numpy().astype(np.float64)
    s = atoms.get_column("s").to_numpy()
    cn = np.concatenate([[0.0], np.cumsum(n)])
    cs = np.concatenate([[0.0], np.cumsum(s)])
    m, k = x.size, 5
    floor = min_share * cn[-1]

    # Cost of a group over atoms [i, j): −(sum²/count), so minimising the total maximises the
    # between-group sum of squares (the total is fixed).
    def cost(i: npt.NDArray[np.int64], j: npt.NDArray[np.int64]) -> FloatArray:
        count = cn[j] - cn[i]
        total = cs[j] - cs[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = -(total**2) / count
        return np.where(count >= floor, value, np.inf)

    best = np.full((k + 1, m + 1), np.inf)
    back = np.zeros((k + 1, m + 1), dtype=np.int64)
    best[0, 0] = 0.0
    starts = np.arange(m + 1)
    for g in range(1, k + 1):
        for j in range(g, m + 1):
            i = starts[g - 1 : j]
            candidates = best[g - 1, i] + cost(i, np.full(i.size, j))
            pick = int(np.argmin(candidates))
            best[g, j] = candidates[pick]
            back[g, j] = i[pick]
    if not np.isfinite(best[k, m]):
        raise WinbackFitError(
            f"outcome_cuts: {feature!r} has too few distinct values to make five groups of at "
            f"least {min_share:.0%} of the rows each; lower min_share"
        )
    bounds = [m]
    for g in range(k, 0, -1):
        bounds.append(int(back[g, bounds[-1]]))
    bounds.reverse()  # atom index where each group starts: [0, b1, b2, b3, b4, m]
    cuts = tuple(float(x[b]) for b in bounds[1:-1])
    values = rows.get_column("x").to_numpy()
    y = rows.get_column("y").to_numpy()
    fixed = tuple(float(c) for c in fixed_cuts)
    labels = ("a", "b", "c", "d", "e")
    groups = pl.DataFrame(
        {
            "group": labels,
            "lower": [float(x[bounds[g]]) for g in range(k)],
            "upper": [float(x[bounds[g + 1] - 1]) for g in range(k)],
            "rows": [int(cn[bounds[g + 1]] - cn[bounds[g]]) for g in range(k)],
            "lapse_rate": [
                float((cs[bounds[g + 1]] - cs[bounds[g]]) / (cn[bounds[g + 1]] - cn[bounds[g]]))
                for g in range(k)
            ],
        }
    )
    return OutcomeCuts(
        cuts=(cuts[0], cuts[1], cuts[2], cuts[3]),
        separation=_eta_squared(values, y, cuts),
        separation_fixed=_eta_squared(values, y, fixed),
        fixed_cuts=fixed,
        groups=groups,
        rows=rows.height,
    )
