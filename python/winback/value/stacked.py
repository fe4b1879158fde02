"""The stacked next-period forecast (docs/methods.md#stacked-forecast): gradient-boosted trees
fitted by rolling origin on the user's own history, over the models' posterior quantities and the
customer's rhythm.

For a cut-off c (the periods before c are known, period c is forecast) every customer born before
c gets the features of :data:`FEATURES`: the periodic BG/NBD's P(alive), E[occasions] and
P(active) (docs/methods.md#periodic-bg-nbd) and the Gamma–Gamma E[spend]
(docs/methods.md#gamma-gamma),
each fitted on the periods before c; occasions X, active periods k, tenure T, recency T − t_x;
revenue per active period, in the last period and in the last three; the longest gap between
active periods and the gaps' coefficient of variation (regularity); and, only when the training
targets cover every calendar month, the month of year of period c. The training set stacks the
cut-offs n−1, n−2, …, n−L (their period's revenue and activity known); the fitted trees then
forecast period n from the features at cut-off n. Revenue is fitted with the Poisson loss (its
fitted total matches the training total), activity with the log-loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._options import STACK_SAMPLE_CUSTOMERS
from winback.errors import WinbackConfigError, WinbackFitError
from winback.models import GammaGammaModel
from winback.value.dropout import PeriodicBGNBD

__all__ = [
    "FEATURES",
    "GLM_FEATURES",
    "STACK_ORIGINS",
    "StackedForecast",
    "combined_forecast",
    "cutoff_features",
    "glm_design",
    "id_hash",
    "sample_panel",
    "stacked_forecast",
]

FloatArray = NDArray[np.float64]

#: Training cut-offs stacked (the last STACK_ORIGINS complete periods, when each has at least
#: STACK_MIN_HISTORY complete periods before it).
STACK_ORIGINS = 6
STACK_MIN_HISTORY = 3
#: The features, in order (``month_of_year`` only when the training covers all twelve).
FEATURES = (
    "model_p_alive",
    "model_expected_count",
    "model_p_active",
    "model_mean_spend",
    "model_expected_amount",
    "period_frequency",
    "active_periods",
    "n_periods",
    "recency",
    "revenue_per_active_period",
    "last_revenue",
    "revenue_last3",
    "longest_gap",
    "gap_regularity",
)


def id_hash(ids: pl.Series) -> NDArray[np.uint64]:
    """A 64-bit hash of each customer id that depends on the id alone (not on the row order,
    the process or the library versions): integers through the SplitMix64 finaliser, anything
    else through BLAKE2b of its text (8 bytes)."""
    if ids.dtype.is_integer():
        with np.errstate(over="ignore"):
            z = ids.cast(pl.Int64).to_numpy().astype(np.int64).view(np.uint64)
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)
    texts = ids.cast(pl.String).to_list()
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            for t in texts
        ],
        dtype=np.uint64,
    )


def sample_panel(panel: pl.DataFrame, customers: int = STACK_SAMPLE_CUSTOMERS) -> pl.DataFrame:
    """The panel's rows of at most ``customers`` customers (docs/methods.md#stacked-forecast):
    those with the smallest :func:`id_hash` — the same sample for any row order or thread
    count; the panel itself when it has no more customers than that."""
    ids = panel.get_column("customer_id").unique()
    if ids.len() <= customers:
        return panel
    keys = id_hash(ids)
    threshold = np.partition(keys, customers - 1)[customers - 1]
    chosen = ids.filter(pl.Series(keys <= threshold))
    return panel.filter(pl.col("customer_id").is_in(chosen.implode()))


def cutoff_features(panel: pl.DataFrame, cutoff: int) -> pl.DataFrame:
    """Per customer born before period ``cutoff``, in ``customer_id`` order: the history
    statistics (no model) over the periods before it and the target period's ``actual_revenue``
    and ``actual_occasions`` (0 when ``cutoff`` is not in the panel)."""
    known = pl.col("period") < cutoff
    active = (pl.col("occasions") > 0) & known
    rows = panel.filter(pl.col("period") <= cutoff).with_columns(
        pl.col("period").filter(active).min().over("customer_id").alias("_birth")
    )
    rows = rows.filter(pl.col("_birth").is_not_null())
    after = active & (pl.col("period") > pl.col("_birth"))
    gaps = (
        rows.filter(active)
        .sort("customer_id", "period")
        .with_columns(pl.col("period").diff().over("customer_id").alias("_gap"))
        .group_by("customer_id")
        .agg(
            pl.col("_gap").max().fill_null(0).cast(pl.Float64).alias("longest_gap"),
            pl.when(pl.col("_gap").count() >= 2)
            .then(pl.col("_gap").std(ddof=0) / pl.col("_gap").mean())
            .otherwise(0.0)
            .alias("gap_regularity"),
        )
    )
    out = (
        rows.group_by("customer_id")
        .agg(
            pl.col("occasions").filter(after).sum().cast(pl.Int64).alias("period_frequency"),
            (pl.col("period").filter(active).max() - pl.col("_birth").first())
            .cast(pl.Int64)
            .alias("last_active_offset"),
            active.sum().cast(pl.Int64).alias("active_periods"),
            (cutoff - 1 - pl.col("_birth").first()).cast(pl.Int64).alias("n_periods"),
            pl.col("positive_occasions").filter(after).sum().cast(pl.Float64).alias("_sx"),
            pl.col("positive_revenue").filter(after).sum().alias("_sz"),
            pl.col("revenue").filter(known).sum().alias("_revenue"),
            pl.col("revenue").filter(pl.col("period") == cutoff - 1).sum().alias("last_revenue"),
            pl.col("revenue")
            .filter(known & (pl.col("period") >= cutoff - 3))
            .sum()
            .alias("revenue_last3"),
            pl.col("revenue").filter(pl.col("period") == cutoff).sum().alias("actual_revenue"),
            pl.col("occasions")
            .filter(pl.col("period") == cutoff)
            .sum()
            .cast(pl.Float64)
            .alias("actual_occasions"),
        )
        .join(gaps, on="customer_id", how="left")
        .sort("customer_id")
    )
    return out.with_columns(
        (pl.col("n_periods") - pl.col("last_active_offset")).cast(pl.Float64).alias("recency"),
        (pl.col("_revenue") / pl.col("active_periods")).alias("revenue_per_active_period"),
        pl.col("_sx").alias("spend_frequency"),
        pl.when(pl.col("_sx") > 0)
        .then(pl.col("_sz") / pl.col("_sx"))
        .otherwise(0.0)
        .alias("monetary_value"),
    ).drop("_sx", "_sz", "_revenue")


def with_model_features(features: pl.DataFrame) -> pl.DataFrame:
    """``features`` with the periodic BG/NBD and Gamma–Gamma quantities, both fitted on these
    customers (raises :class:`~winback.WinbackFitError` when a fit fails)."""
    dropout = PeriodicBGNBD().fit(features)
    count = dropout.expected_count(1, features)
    spenders = features.filter(pl.col("spend_frequency") > 0)
    if spenders.height < 2:
        raise WinbackFitError("stacked forecast: fewer than 2 customers with a repeat spend")
    gg = GammaGammaModel().fit(
        features, frequency_col="spend_frequency", monetary_col="monetary_value"
    )
    spend = gg.expected_spend(features).to_numpy()
    return features.with_columns(
        model_p_alive=pl.Series(dropout.probability_alive(features)),
        model_expected_count=pl.Series(count),
        model_p_active=pl.Series(dropout.probability_active(1, features)),
        model_mean_spend=pl.Series(spend),
        model_expected_amount=pl.Series(count * spend),
    )


@dataclass(frozen=True)
class StackedForecast:
    """Per customer of the forecast cut-off (``customer_id`` order): the stacked revenue and
    P(active) of the next period, the features used and the training cut-offs."""

    customer_id: pl.Series
    expected_amount: FloatArray
    p_active: FloatArray
    features: tuple[str, ...]
    training_cutoffs: tuple[int, ...]


def _training_cutoffs(n_complete: int, forecast: str) -> list[int]:
    """The training cut-offs of the stacked and combined forecasts, latest first: the last
    :data:`STACK_ORIGINS` complete periods with at least :data:`STACK_MIN_HISTORY` complete
    periods before each. Raises :class:`~winback.WinbackFitError` when there is none."""
    cutoffs = [
        c
        for c in range(n_complete - 1, n_complete - 1 - STACK_ORIGINS, -1)
        if c >= STACK_MIN_HISTORY
    ]
    if not cutoffs:
        raise WinbackFitError(
            f"{forecast} forecast: needs at least {STACK_MIN_HISTORY + 1} complete periods"
        )
    return cutoffs


def _needs_sklearn(forecast: str) -> WinbackConfigError:
    """The error for a forecast that needs scikit-learn where it is not installed."""
    return WinbackConfigError(
        f"the {forecast} forecast needs scikit-learn: pip install 'winback[forecast]' "
        "(or use forecast='dropout')"
    )


def _matrix(frame: pl.DataFrame, names: Sequence[str]) -> FloatArray:
    return frame.select(pl.col(n).cast(pl.Float64) for n in names).to_numpy()


def stacked_forecast(
    panel: pl.DataFrame,
    n_complete: int,
    period_months: Sequence[int] | None = None,
    cache: dict[int, pl.DataFrame] | None = None,
    training_panel: pl.DataFrame | None = None,
) -> StackedForecast:
    """The stacked forecast of period ``n_complete`` (docs/methods.md#stacked-forecast).

    ``period_months`` gives the month of year (1 … 12) of each period index 0 … n_complete
    (None for periods that are not calendar months): the calendar feature is used only when
    the training targets cover all twelve months. Raises :class:`~winback.WinbackFitError`
    when there is no training cut-off with enough history or no activity to learn from.
    ``cache`` keeps the features per cut-off between calls on the same panel; the training
    cut-offs read ``training_panel`` (default ``panel``; :func:`sample_panel` on large data),
    the forecast cut-off ``n_complete`` reads ``panel``."""
    cutoffs = _training_cutoffs(n_complete, "stacked")
    try:  # sklearn loads here
        from sklearn.ensemble import (
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        )
        from threadpoolctl import threadpool_limits
    except ImportError as error:
        raise _needs_sklearn("stacked") from error
    names = list(FEATURES)
    months_seen = {period_months[c] for c in cutoffs} if period_months is not None else set()
    if len(months_seen) == 12:
        names.append("month_of_year")
    cache = {} if cache is None else cache

    def features(cutoff: int, source: pl.DataFrame) -> pl.DataFrame:
        if cutoff not in cache:
            cache[cutoff] = with_model_features(cutoff_features(source, cutoff))
        return cache[cutoff]

    training = []
    for cutoff in sorted(cutoffs):
        frame = features(cutoff, panel if training_panel is None else training_panel)
        if period_months is not None:
            frame = frame.with_columns(month_of_year=pl.lit(period_months[cutoff]))
        training.append(frame)
    train = pl.concat(training, how="vertical_relaxed")
    X = _matrix(train, names)
    revenue = train.get_column("actual_revenue").to_numpy()
    active = (train.get_column("actual_occasions").to_numpy() > 0).astype(np.int64)
    negative = int((revenue < 0).sum())
    if negative:
        raise WinbackFitError(
            f"stacked forecast: {negative} customer-period(s) of the training cut-offs have "
            "negative revenue (returns exceed purchases); the trees' Poisson loss needs revenue "
            "≥ 0, so use forecast='dropout' for these data"
        )
    if revenue.sum() <= 0 or active.min() == active.max():
        raise WinbackFitError("stacked forecast: no variation in the training periods' activity")
    settings = {
        "learning_rate": 0.1,
        "max_iter": 100,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "early_stopping": False,  # no random validation split: the same fit every run
        "random_state": 0,
    }
    # One thread: the same bits for any thread count (and no OpenMP spinning on a busy machine).
    with threadpool_limits(limits=1):
        regressor = HistGradientBoostingRegressor(loss="poisson", **settings).fit(X, revenue)
        classifier = HistGradientBoostingClassifier(**settings).fit(X, active)
    target = features(n_complete, panel)
    if period_months is not None:
        target = target.with_columns(month_of_year=pl.lit(period_months[n_complete]))
    Xt = _matrix(target, names)
    with threadpool_limits(limits=1):
        amount = np.asarray(regressor.predict(Xt), dtype=np.float64)
        p_active = np.asarray(classifier.predict_proba(Xt)[:, 1], dtype=np.float64)
    return StackedForecast(
        customer_id=target.get_column("customer_id"),
        expected_amount=amount,
        p_active=p_active,
        features=tuple(names),
        training_cutoffs=tuple(sorted(cutoffs)),
    )


# -- the combined forecast (docs/methods.md#combined-forecast) -----------------------------------
#: The GLM's features, in order (docs/methods.md#combined-forecast): logs of the model's
#: quantities, log1p of the customer's own revenue and rhythm, and two activity indicators.
GLM_FEATURES = (
    "log_model_expected_amount",
    "log_model_p_alive",
    "log_model_mean_spend",
    "log_model_expected_count",
    "log1p_last_revenue",
    "log1p_revenue_last3",
    "log1p_revenue_per_active_period",
    "log1p_recency",
    "log1p_n_periods",
    "log1p_active_periods",
    "log1p_period_frequency",
    "log1p_longest_gap",
    "gap_regularity",
    "last_active",
    "active_last3",
)
#: Added inside the logs of the model's quantities (all positive; keeps log finite at 0).
GLM_LOG_EPS = 1e-3
#: The GLM's L2 penalty on the standardised coefficients (scikit-learn's ``alpha``).
GLM_ALPHA = 1e-4


def glm_design(frame: pl.DataFrame) -> FloatArray:
    """The :data:`GLM_FEATURES` of each row of a cut-off frame (:func:`cutoff_features` with
    :func:`with_model_features`), before standardising: log(x + :data:`GLM_LOG_EPS`) of the
    model's E[amount], P(alive), E[M′] and E[occasions]; log(1 + max(x, 0)) of last period's,
    the last three periods' and the per-active-period revenue, recency, T, k, X and the longest
    gap; the gaps' coefficient of variation; and 1/0 for revenue in the last period and in the
    last three."""

    def col(name: str) -> FloatArray:
        return frame.get_column(name).cast(pl.Float64).to_numpy()

    logs = [
        np.log(col(n) + GLM_LOG_EPS)
        for n in ("model_expected_amount", "model_p_alive", "model_mean_spend")
    ]
    logs.append(np.log(col("model_expected_count") + GLM_LOG_EPS))
    own = [
        np.log1p(np.maximum(col(n), 0.0))
        for n in (
            "last_revenue",
            "revenue_last3",
            "revenue_per_active_period",
            "recency",
            "n_periods",
            "active_periods",
            "period_frequency",
            "longest_gap",
        )
    ]
    flags = [
        (col("last_revenue") > 0).astype(np.float64),
        (col("revenue_last3") > 0).astype(np.float64),
    ]
    return np.column_stack([*logs, *own, col("gap_regularity"), *flags])


def combined_forecast(
    panel: pl.DataFrame,
    n_complete: int,
    cache: dict[int, pl.DataFrame] | None = None,
    training_panel: pl.DataFrame | None = None,
) -> StackedForecast:
    """The combined forecast of period ``n_complete`` (docs/methods.md#combined-forecast): the
    equal-weight mean of the periodic BG/NBD × Gamma–Gamma revenue and a Poisson GLM (log link,
    L2 :data:`GLM_ALPHA` on standardised :data:`GLM_FEATURES`) fitted on the stacked training
    cut-offs of :func:`stacked_forecast` (the same cut-offs, cache and sample). ``p_active`` is
    the periodic BG/NBD's. Raises :class:`~winback.WinbackFitError` when there is no training
    cut-off, negative or no training revenue, or the GLM does not converge."""
    cutoffs = _training_cutoffs(n_complete, "combined")
    try:  # sklearn loads here
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import PoissonRegressor
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits
    except ImportError as error:
        raise _needs_sklearn("combined") from error
    import warnings

    cache = {} if cache is None else cache

    def features(cutoff: int, source: pl.DataFrame) -> pl.DataFrame:
        if cutoff not in cache:
            cache[cutoff] = with_model_features(cutoff_features(source, cutoff))
        return cache[cutoff]

    source = panel if training_panel is None else training_panel
    train = pl.concat([features(c, source) for c in sorted(cutoffs)], how="vertical_relaxed")
    revenue = train.get_column("actual_revenue").to_numpy()
    negative = int((revenue < 0).sum())
    if negative:
        raise WinbackFitError(
            f"combined forecast: {negative} customer-period(s) of the training cut-offs have "
            "negative revenue (returns exceed purchases); the GLM's Poisson loss needs revenue "
            "≥ 0, so use forecast='dropout' for these data"
        )
    if revenue.sum() <= 0:
        raise WinbackFitError("combined forecast: no revenue in the training periods")
    X = glm_design(train)
    target = features(n_complete, panel)
    Xt = glm_design(target)
    # One thread: the Newton–Cholesky steps use BLAS, whose sums may split by thread count.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        scaler = StandardScaler().fit(X)
        glm = PoissonRegressor(alpha=GLM_ALPHA, solver="newton-cholesky", max_iter=1000)
        try:
            glm.fit(scaler.transform(X), revenue)
        except ConvergenceWarning as warning:
            raise WinbackFitError(
                f"combined forecast: the GLM did not converge ({warning})"
            ) from warning
        fitted = np.asarray(glm.predict(scaler.transform(Xt)), dtype=np.float64)
    model = target.get_column("model_expected_amount").to_numpy()
    return StackedForecast(
        customer_id=target.get_column("customer_id"),
        expected_amount=0.5 * (fitted + model),
        p_active=target.get_column("model_p_active").to_numpy().astype(np.float64),
        features=GLM_FEATURES,
        training_cutoffs=tuple(sorted(cutoffs)),
    )
