"""Rolling-origin back-test of winback's forecasts on the user's own transactions
(docs/methods.md#backtest).

:func:`backtest` calibrates every forecast winback offers on the data up to each forecast origin
(a month end) — through :func:`winback.value`, :func:`winback.summary` and the models of
:mod:`winback.models`, never a re-implementation — forecasts each customer's revenue and
purchase occasions over each horizon (a whole number of months), and compares them with what
the customer did. The naive baselines (zero, the last month, the mean of the last k months) sit
next to the models. It returns a :class:`BacktestResult`: the metrics per origin, horizon and
method, their summary over the origins, the reliability of P(active) by decile and, optionally,
the per-customer forecasts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback import _io
from winback._options import (
    AMOUNT_COL,
    BACKTEST_HORIZONS,
    BACKTEST_ORIGINS,
    CUSTOMER_COL,
    ID_TYPE,
    ON_INVALID,
    RESOLUTION,
    TIME_COL,
    TIME_FORMAT,
    AsOf,
    IdType,
    OnInvalid,
)
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.summary import summary
from winback.value import ValueResult, value

if TYPE_CHECKING:
    from winback.models import BaseModel

__all__ = [
    "BACKTEST_COLUMNS",
    "DEFAULT_METHODS",
    "METHODS",
    "SUMMARY_COLUMNS",
    "BacktestResult",
    "backtest",
]

FloatArray = NDArray[np.float64]

#: The forecasts :func:`backtest` knows, by name, with what each is (docs/methods.md#backtest).
#: ``naive_mean<k>`` works for any k ≥ 1; ``naive_mean3`` is the one run by default.
METHODS: dict[str, str] = {
    "nbd_gg": "winback.value's expected_amount: period NBD × Gamma–Gamma (no dropout)",
    "nbd_gg_alive": "expected_amount × BG/NBD P(alive)",
    "bgnbd_gg": "BG/NBD × Gamma–Gamma",
    "mbgnbd_gg": "MBG/NBD × Gamma–Gamma",
    "pareto_gg": "Pareto/NBD × Gamma–Gamma",
    "dropout_gg": "the periodic BG/NBD (monthly, with dropout) × Gamma–Gamma: "
    "value(forecast='dropout')'s dropout_expected_amount",
    "stacked_gg": "gradient-boosted trees over the models' quantities and the customer's rhythm, "
    "fitted by rolling origin (value(forecast='stacked')'s stacked_expected_amount); next month "
    "only",
    "combined_gg": "the mean of dropout_gg and a Poisson GLM over the models' quantities and the "
    "customer's rhythm, fitted by rolling origin (value(forecast='combined')'s "
    "combined_expected_amount); next month only",
    "markov": "the Markov chain's next month (expected_amount × p_active_next_markov / "
    "p_active_next); next month only",
    "naive_mean3": "each customer's mean month over the last 3 months, × the horizon",
    "naive_last": "each customer's last month, × the horizon",
    "zero": "zero for everyone",
}

#: The methods run by default: all but ``stacked_gg``, which trains trees at every origin, and
#: ``combined_gg``, which fits a GLM on six cut-offs at every origin (ask for them by name).
DEFAULT_METHODS: tuple[str, ...] = tuple(
    m for m in METHODS if m not in ("stacked_gg", "combined_gg")
)

#: Columns of :attr:`BacktestResult.frame`, in order.
BACKTEST_COLUMNS = (
    "origin",
    "horizon",
    "method",
    "customers",
    "actual_total",
    "forecast_total",
    "total_error",
    "actual_count",
    "forecast_count",
    "count_total_error",
    "rmse",
    "mae",
    "spearman",
    "top_decile_capture",
    "brier",
    "note",
)
#: Columns of :attr:`BacktestResult.summary`, in order.
SUMMARY_COLUMNS = (
    "horizon",
    "method",
    "origins",
    "customers",
    "actual_total",
    "forecast_total",
    "pooled_total_error",
    "mean_abs_total_error",
    "pooled_count_error",
    "rmse",
    "mae",
    "spearman",
    "top_decile_capture",
    "brier",
    "note",
)

_HORIZON_RE = re.compile(r"^\s*(\d+)\s*[Mm]\s*$")
_NAIVE_RE = re.compile(r"^naive_mean(\d+)$")
#: The daily count models (fitted on winback.summary in days), by method.
_COUNT_MODELS = frozenset({"bgnbd_gg", "mbgnbd_gg", "pareto_gg"})
#: What the back-test takes of winback.value's frame.
_VALUE_COLUMNS = (
    "status",
    "n_periods",
    "period_frequency",
    "expected_frequency",
    "p_active_next",
    "p_alive",
    "expected_mean_amount",
    "expected_amount",
    "p_active_next_markov",
)
#: Methods that give a probability of at least one occasion over the horizon.
_PROBABILISTIC = frozenset(
    {
        "nbd_gg",
        "nbd_gg_alive",
        "dropout_gg",
        "stacked_gg",
        "combined_gg",
        "markov",
        *_COUNT_MODELS,
    }
)
#: What the back-test takes of value's frame for ``dropout_gg``.
_DROPOUT_COLUMNS = (
    "last_active_offset",
    "active_periods",
    "dropout_p_active_next",
    "dropout_expected_frequency",
    "dropout_expected_amount",
)
_STACKED_COLUMNS = ("stacked_expected_amount", "stacked_p_active_next")
#: Share of customers whose actual revenue the top-decile capture counts.
TOP_SHARE = 0.1
DECILES = 10


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`backtest` returns (docs/methods.md#backtest).

    Attributes
    ----------
    frame : one row per origin × horizon × method (:data:`BACKTEST_COLUMNS`): the customers
        forecast, actual and forecast revenue and occasion totals, their relative errors,
        RMSE, MAE, Spearman's ρ, top-decile capture and the Brier score of P(active); ``note``
        says why a method has no figures at an origin (metrics null then).
    summary : one row per horizon × method (:data:`SUMMARY_COLUMNS`): pooled total error
        (Σ forecast / Σ actual − 1 over the origins), the mean |per-origin total error| and the
        means over origins of the other metrics.
    reliability : P(active) by decile per horizon × method, pooled over the origins:
        ``customers``, ``mean_p_active``, ``observed_rate`` and ``gap`` (observed − predicted).
    origins : one row per origin: ``origin``, ``customers`` (first purchase on or before it),
        ``customers_born_after`` (first purchase after it, up to the data end: not forecast)
        and ``data_end``.
    details : one row per origin × horizon × customer (``details=True``): ``actual_amount``,
        ``actual_count``, ``active``, and per method its amount (the method's name),
        ``<method>_count`` and, where it gives one, ``<method>_p_active``; None otherwise.
    methods, horizons : the methods and horizons run, in the order of the frames.
    """

    frame: pl.DataFrame
    summary: pl.DataFrame
    reliability: pl.DataFrame
    origins: pl.DataFrame
    details: pl.DataFrame | None
    methods: tuple[str, ...]
    horizons: tuple[str, ...]


# -- arguments ------------------------------------------------------------------------------------
def _months(horizon: str | int) -> int:
    if isinstance(horizon, int) and not isinstance(horizon, bool):
        months = horizon
    else:
        match = _HORIZON_RE.match(str(horizon))
        if match is None:
            raise WinbackConfigError(
                f"horizons: {horizon!r} is not a horizon; use a number of months such as '1M' "
                "or '3M'"
            )
        months = int(match.group(1))
    if months < 1:
        raise WinbackConfigError(f"horizons: {horizon!r} must be at least one month ('1M')")
    return months


def _check_horizons(horizons: Sequence[str | int] | str) -> list[int]:
    items = [horizons] if isinstance(horizons, str) else list(horizons)
    if not items:
        raise WinbackConfigError("horizons is empty; give at least one, e.g. ('1M', '3M')")
    months = [_months(h) for h in items]
    if len(set(months)) != len(months):
        raise WinbackConfigError(f"horizons={items!r} names a horizon twice")
    return sorted(months)


def _naive_k(method: str) -> int | None:
    if method == "naive_last":
        return 1
    match = _NAIVE_RE.match(method)
    if match is None:
        return None
    k = int(match.group(1))
    return k if k >= 1 else None


def _check_methods(methods: Sequence[str] | str | None) -> list[str]:
    if methods is None:
        return list(DEFAULT_METHODS)
    items = [methods] if isinstance(methods, str) else list(methods)
    if not items:
        raise WinbackConfigError(f"methods is empty; give some of {', '.join(METHODS)}")
    for method in items:
        if method not in METHODS and _naive_k(str(method)) is None:
            raise WinbackConfigError(
                f"methods: {method!r} is not a method; use some of {', '.join(METHODS)} "
                "(or naive_mean<k> for any k ≥ 1)"
            )
    if len(set(items)) != len(items):
        raise WinbackConfigError(f"methods={items!r} names a method twice")
    return [str(m) for m in items]


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _months_later(month_end: date, months: int) -> date:
    """The last day of the month ``months`` after ``month_end``'s month."""
    index = month_end.year * 12 + month_end.month - 1 + months
    return _month_end(date(index // 12, index % 12 + 1, 1))


def _origin_date(origin: AsOf) -> date:
    if isinstance(origin, datetime):
        if origin.time() != datetime.min.time() or origin.tzinfo is not None:
            raise WinbackConfigError(
                f"origins: {origin!r} is not a day; origins are month-end dates such as "
                "'1997-09-30'"
            )
        return origin.date()
    if isinstance(origin, date):
        return origin
    if isinstance(origin, str):
        try:
            return date.fromisoformat(origin.strip())
        except ValueError:
            raise WinbackConfigError(
                f"origins: {origin!r} is not an ISO date; origins are month-end dates such as "
                "'1997-09-30'"
            ) from None
    raise WinbackConfigError(
        f"origins: {origin!r} must be a month-end date (or ISO text), or origins= a number of "
        "month ends"
    )


def _describe_us(micros: int) -> str:
    return _io.describe_moment(_io.micros_to_datetime(micros))


def _choose_origins(
    origins: int | Sequence[AsOf], first_us: int, end_us: int, longest: int
) -> list[date]:
    """The origins, checked: month ends on or after the first purchase's day whose longest
    horizon ends within the data (docs/methods.md#backtest)."""
    first_day = _io.micros_to_datetime(first_us).date()
    if isinstance(origins, bool):
        raise WinbackConfigError(f"origins={origins!r} must be a number of month ends or dates")
    if isinstance(origins, int):
        if origins < 1:
            raise WinbackConfigError(f"origins={origins!r} must be a number of month ends ≥ 1")
        fitting: list[date] = []
        candidate = _month_end(first_day)
        while _io.as_of_to_micros(_months_later(candidate, longest), None) <= end_us:
            fitting.append(candidate)
            candidate = _months_later(candidate, 1)
        if len(fitting) < origins:
            raise WinbackConfigError(
                f"origins={origins}: only {len(fitting)} month end(s) between the first purchase "
                f"({first_day}) and the data end ({_describe_us(end_us)}) leave a "
                f"{longest}-month horizon inside the data; ask for fewer origins or shorter "
                "horizons"
            )
        return fitting[-origins:]
    if isinstance(origins, str | date):
        origins = [origins]
    chosen = [_origin_date(o) for o in origins]
    if not chosen:
        raise WinbackConfigError("origins is empty; give month-end dates or a number of them")
    if len(set(chosen)) != len(chosen):
        raise WinbackConfigError(f"origins names a date twice: {sorted(map(str, chosen))}")
    for origin in chosen:
        if _month_end(origin) != origin:
            raise WinbackConfigError(
                f"origins: {origin} is not a month end; forecasts are by calendar month, so "
                f"use {_month_end(origin)} (or {origin.replace(day=1) - timedelta(days=1)})"
            )
        if origin < first_day:
            raise WinbackConfigError(
                f"origins: {origin} is before the first purchase ({first_day}); nobody could be "
                "forecast from it"
            )
        end = _months_later(origin, longest)
        if _io.as_of_to_micros(end, None) > end_us:
            raise WinbackConfigError(
                f"origins: the {longest}-month horizon from {origin} ends on {end}, after the end "
                f"of the data ({_describe_us(end_us)}); choose an earlier origin, a shorter "
                "horizon, or pass as_of= when the data run further than their last purchase"
            )
    return sorted(chosen)


# -- metrics --------------------------------------------------------------------------------------
def _ratio_error(forecast: float, actual: float) -> float | None:
    return forecast / actual - 1.0 if actual > 0 else None


def average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 1 … n of ``values``, tied values sharing the mean of their ranks.

    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    n = values.size
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    mean_rank = (starts + ends + 1) / 2.0  # ranks start+1 … end, averaged
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(forecast: FloatArray, actual: FloatArray) -> float | None:
    """Spearman's ρ: Pearson's correlation of the average ranks (ties share their mean rank);
    None when either side is constant.

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
    """
    if forecast.size < 2:
        return None
    rf, ra = average_ranks(forecast), average_ranks(actual)
    rf, ra = rf - rf.mean(), ra - ra.mean()
    # Sums of products, not ``@``: a BLAS dot may split the sum by its thread count.
    denominator = math.sqrt(float((rf * rf).sum()) * float((ra * ra).sum()))
    if denominator == 0:
        return None
    return float((rf * ra).sum()) / denominator


def top_share_capture(
    forecast: FloatArray, actual: FloatArray, share: float = TOP_SHARE
) -> float | None:
    """Share of the actual total from the ``share`` of customers ranked highest by the forecast
    (docs/methods.md#backtest). Customers tied at the boundary count in proportion: the ``s``
    slots left for a tied group of ``g`` customers take ``s/g`` of the group's actual total, so
    the figure does not depend on row order. None when the actual total is not positive.

    >>> top_share_capture(np.array([3.0, 2.0, 2.0, 0.0]), np.array([1.0, 4.0, 0.0, 5.0]), 0.5)
    0.3
    """
    total = float(actual.sum())
    if forecast.size == 0 or total <= 0:
        return None
    _, group = np.unique(-forecast, return_inverse=True)
    counts = np.bincount(group).astype(np.float64)
    sums = np.bincount(group, weights=actual)
    before = np.cumsum(counts) - counts
    taken = np.clip(share * forecast.size - before, 0.0, counts)
    return float((sums * taken / counts).sum()) / total


def _deciles(p: FloatArray) -> NDArray[np.int64]:
    """Decile 0 … 9 of each customer by P(active), ties in customer order (the rows come
    sorted by customer id)."""
    order = np.argsort(p, kind="stable")
    decile = np.empty(p.size, dtype=np.int64)
    decile[order] = np.arange(p.size) * DECILES // max(p.size, 1)
    return decile


@dataclass
class _Reliability:
    """Per-decile sums of P(active) and of the active indicator, pooled over origins."""

    customers: FloatArray
    predicted: FloatArray
    observed: FloatArray

    @classmethod
    def empty(cls) -> _Reliability:
        return cls(np.zeros(DECILES), np.zeros(DECILES), np.zeros(DECILES))

    def add(self, p: FloatArray, active: FloatArray) -> None:
        decile = _deciles(p)
        self.customers += np.bincount(decile, minlength=DECILES)
        self.predicted += np.bincount(decile, weights=p, minlength=DECILES)
        self.observed += np.bincount(decile, weights=active, minlength=DECILES)


def _metrics(
    forecast: FloatArray,
    actual: FloatArray,
    forecast_count: FloatArray,
    actual_count: FloatArray,
    p_active: FloatArray | None,
) -> dict[str, Any]:
    error = forecast - actual
    active = (actual_count > 0).astype(np.float64)
    totals = {
        "actual_total": float(actual.sum()),
        "forecast_total": float(forecast.sum()),
        "actual_count": float(actual_count.sum()),
        "forecast_count": float(forecast_count.sum()),
    }
    return {
        **totals,
        "total_error": _ratio_error(totals["forecast_total"], totals["actual_total"]),
        "count_total_error": _ratio_error(totals["forecast_count"], totals["actual_count"]),
        "rmse": float(np.sqrt((error**2).mean())) if error.size else None,
        "mae": float(np.abs(error).mean()) if error.size else None,
        "spearman": spearman(forecast, actual),
        "top_decile_capture": top_share_capture(forecast, actual),
        "brier": None
        if p_active is None or not p_active.size
        else float(((p_active - active) ** 2).mean()),
    }


# -- forecasts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Forecast:
    amount: FloatArray
    count: FloatArray
    p_active: FloatArray | None


@dataclass
class _Origin:
    """What one origin's calibration gives every method: the value run, the daily summary
    pair, the fitted daily count models (or why they failed) and the naive histories."""

    day: date
    end_us: int
    base: pl.DataFrame  # the customers (sorted by id) and value's columns when value ran
    result: ValueResult | None
    daily: tuple[pl.DataFrame, Any]
    models: dict[str, BaseModel | str]
    naive: dict[int, tuple[FloatArray, FloatArray]]


def _column(frame: pl.DataFrame, name: str) -> FloatArray:
    return frame.get_column(name).cast(pl.Float64).to_numpy()


def _aligned(base: pl.DataFrame, frame: pl.DataFrame, name: str) -> FloatArray:
    """``frame``'s column ``name`` in the order of ``base``'s customers."""
    joined = base.select("customer_id").join(
        frame.select("customer_id", name), on="customer_id", how="left", maintain_order="left"
    )
    return _column(joined, name)


def _naive_history(
    prepared: _io.PreparedTransactions, origin: date, end_us: int, ks: set[int], res_us: int
) -> dict[int, pl.DataFrame]:
    """Per customer and k: revenue and occasions over the last k calendar months up to the
    origin, divided by the months they were a customer among them (at most k)."""
    month = origin.year * 12 + origin.month - 1
    rows = prepared.frame.filter(pl.col("ts") <= end_us).with_columns(
        (pl.from_epoch("ts", time_unit="us").dt.year().cast(pl.Int64) * 12)
        .add(pl.from_epoch("ts", time_unit="us").dt.month().cast(pl.Int64) - 1)
        .alias("_month"),
        (pl.col("ts") - pl.col("ts") % res_us).alias("_bucket"),
    )
    out = {}
    for k in sorted(ks):
        recent = pl.col("_month") > month - k
        out[k] = (
            rows.group_by("customer")
            .agg(
                pl.col("amount").filter(recent).sort().sum().alias("_revenue"),
                pl.col("_bucket").filter(recent).n_unique().alias("_count"),
                pl.col("_month").min().alias("_birth"),
            )
            .select(
                pl.col("customer").alias("customer_id"),
                (month - pl.col("_birth") + 1).clip(upper_bound=k).cast(pl.Float64).alias("_k"),
                "_revenue",
                "_count",
            )
            .select(
                "customer_id",
                (pl.col("_revenue") / pl.col("_k")).alias("revenue"),
                (pl.col("_count") / pl.col("_k")).alias("count"),
            )
        )
    return out


def _calibrate(
    prepared: _io.PreparedTransactions,
    origin: date,
    methods: list[str],
    resolution: str | timedelta,
    res_us: int,
) -> _Origin:
    end_us = _io.as_of_to_micros(origin, None)
    frame, info = summary(prepared, as_of=origin, unit="D", resolution=resolution, return_info=True)
    daily = (frame.sort("customer_id"), info)
    base = daily[0].select("customer_id")
    result = None
    if any(_naive_k(m) is None and m != "zero" for m in methods):
        # The value-based methods, and the spend side (Gamma–Gamma) of the count models.
        stacked = "stacked_gg" in methods
        combined = "combined_gg" in methods
        dropout = stacked or combined or "dropout_gg" in methods
        result = value(
            prepared,
            as_of=origin,
            resolution=resolution,
            forecast="stacked"
            if stacked
            else "combined"
            if combined
            else "dropout"
            if dropout
            else "nbd",
        )
        base = base.join(
            result.frame.select(
                "customer_id",
                *_VALUE_COLUMNS,
                *(_DROPOUT_COLUMNS if dropout else ()),
                *(_STACKED_COLUMNS if stacked else ()),
                *(("combined_expected_amount",) if combined and not stacked else ()),
            ),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        if combined and stacked:  # one value call has one headline: the combined one apart
            also = value(prepared, as_of=origin, resolution=resolution, forecast="combined")
            base = base.join(
                also.frame.select("customer_id", "combined_expected_amount"),
                on="customer_id",
                how="left",
                maintain_order="left",
            )
    models: dict[str, BaseModel | str] = {}
    wanted = [m for m in methods if m in _COUNT_MODELS]
    if wanted:
        from winback.models import (  # numba and scipy load here
            BetaGeoModel,
            ModifiedBetaGeoModel,
            ParetoNBDModel,
        )

        classes = {
            "bgnbd_gg": BetaGeoModel,
            "mbgnbd_gg": ModifiedBetaGeoModel,
            "pareto_gg": ParetoNBDModel,
        }
        for method in wanted:
            try:
                models[method] = classes[method]().fit(daily)
            except WinbackFitError as error:
                models[method] = str(error)
    ks = {k for m in methods if (k := _naive_k(m)) is not None}
    naive = {}
    for k, history in _naive_history(prepared, origin, end_us, ks, res_us).items():
        naive[k] = (_aligned(base, history, "revenue"), _aligned(base, history, "count"))
    return _Origin(origin, end_us, base, result, daily, models, naive)


def _forecast(cal: _Origin, method: str, months: int, days: int) -> _Forecast | str:
    """The method's forecast over the horizon for every customer of the origin, or why it has
    none (docs/methods.md#backtest)."""
    base, n = cal.base, cal.base.height
    k = _naive_k(method)
    if method == "zero":
        return _Forecast(np.zeros(n), np.zeros(n), None)
    if k is not None:
        revenue, count = cal.naive[k]
        return _Forecast(revenue * months, count * months, None)
    result = cal.result
    if result is None or result.nbd is None:
        return "value could not model any customer at this origin"
    unmodelled = int((base.get_column("status") != "modelled").sum())
    if unmodelled:  # cannot happen at a month end (the origin's month is complete): a guard
        return f"value did not model {unmodelled} customer(s) at this origin"
    spend = _column(base, "expected_mean_amount")
    if method in _COUNT_MODELS:
        model = cal.models[method]
        if isinstance(model, str):
            return f"{METHODS[method]} could not be fitted: {model}"
        frame = cal.daily[0]
        counts = frame.select(
            "customer_id",
            model.expected_purchases(days, cal.daily).alias("count"),  # type: ignore[attr-defined]
            (1.0 - model.probability_of_n_purchases(days, 0, cal.daily)).alias("p"),  # type: ignore[attr-defined]
        )
        count = _aligned(base, counts, "count")
        return _Forecast(count * spend, count, _aligned(base, counts, "p"))
    if method == "stacked_gg":
        if months != 1:
            return "the stacked forecast is for the next month only"
        if base.get_column("stacked_expected_amount").null_count():
            return f"no stacked forecast at this origin: {result.forecast_reason}"
        amount = _column(base, "stacked_expected_amount")
        spend_or_one = np.where(spend > 0, spend, 1.0)
        return _Forecast(amount, amount / spend_or_one, _column(base, "stacked_p_active_next"))
    if method == "combined_gg":
        if months != 1:
            return "the combined forecast is for the next month only"
        if base.get_column("combined_expected_amount").null_count() or result.dropout is None:
            return f"no combined forecast at this origin: {result.forecast_reason}"
        amount = _column(base, "combined_expected_amount")
        spend_or_one = np.where(spend > 0, spend, 1.0)
        return _Forecast(amount, amount / spend_or_one, _column(base, "dropout_p_active_next"))
    if method == "dropout_gg":
        if result.dropout is None:
            return f"the periodic BG/NBD could not be fitted: {result.forecast_reason}"
        if months == 1:  # value's own columns, bit for bit
            count = _column(base, "dropout_expected_frequency")
            return _Forecast(
                _column(base, "dropout_expected_amount"),
                count,
                _column(base, "dropout_p_active_next"),
            )
        count = result.dropout.expected_count(months, base)
        return _Forecast(count * spend, count, result.dropout.probability_active(months, base))
    if months == 1:  # value's own next-period columns, bit for bit
        count = _column(base, "expected_frequency")
        amount = _column(base, "expected_amount")
        p_active = _column(base, "p_active_next")
    else:
        count = result.nbd.expected_purchases(months, base).to_numpy()
        amount = count * spend
        p_active = 1.0 - result.nbd.predictive_pmf(0, months, base).to_numpy()
    if method == "nbd_gg":
        return _Forecast(amount, count, p_active)
    if method == "nbd_gg_alive":
        if base.get_column("p_alive").null_count():
            why = result.info.bg_nbd_error or "P(alive) is missing"
            return f"no BG/NBD P(alive) at this origin: {why}"
        alive = _column(base, "p_alive")
        return _Forecast(amount * alive, count * alive, p_active * alive)
    # markov: the chain gives the next period only.
    if months != 1:
        return "the Markov chain's figure is for the next month only"
    if result.chain is None:
        return "value built no Markov chain at this origin"
    chain = _column(base, "p_active_next_markov")
    ratio = chain / p_active  # p_active_next = P(X' ≥ 1) > 0 under the NBD
    return _Forecast(amount * ratio, count * ratio, chain)


def _actuals(
    prepared: _io.PreparedTransactions,
    base: pl.DataFrame,
    start_us: int,
    end_us: int,
    res_us: int,
) -> tuple[FloatArray, FloatArray]:
    """Each origin customer's revenue and occasions (distinct ``resolution`` buckets) in
    (start, end]; customers born after the origin are not among them."""
    window = (
        prepared.frame.filter((pl.col("ts") > start_us) & (pl.col("ts") <= end_us))
        .group_by("customer")
        .agg(
            pl.col("amount").sort().sum().alias("amount"),
            (pl.col("ts") - pl.col("ts") % res_us).n_unique().alias("count"),
        )
        .rename({"customer": "customer_id"})
    )
    amount = np.nan_to_num(_aligned(base, window, "amount"), nan=0.0)
    count = np.nan_to_num(_aligned(base, window, "count"), nan=0.0)
    return amount, count


# -- the back-test --------------------------------------------------------------------------------
def backtest(
    data: Any,
    *,
    origins: int | Sequence[AsOf] = BACKTEST_ORIGINS,
    horizons: Sequence[str | int] | str = BACKTEST_HORIZONS,
    methods: Sequence[str] | str | None = None,
    as_of: AsOf | None = None,
    details: bool = True,
    resolution: str | timedelta = RESOLUTION,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str = AMOUNT_COL,
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> BacktestResult:
    """Rolling-origin back-test of winback's forecasts on these transactions
    (docs/methods.md#backtest).

    For every origin (a month end), each method is calibrated on the transactions up to the end
    of that day — :func:`winback.value` (period NBD × Gamma–Gamma, BG/NBD P(alive), the Markov
    chain) and the daily BG/NBD, MBG/NBD and Pareto/NBD on :func:`winback.summary` — and
    forecasts every customer's revenue and purchase occasions over each horizon, which are
    compared with what the customer did. Customers whose first purchase is after the origin are
    not forecast from it (``origins`` frame: ``customers_born_after``); every customer whose
    first purchase is on or before it appears exactly once per origin, horizon and method.

    Parameters
    ----------
    data
        Transactions with an amount column; anything :func:`winback.prepare` reads, or a
        :class:`~winback.PreparedTransactions`.
    origins
        Month-end dates (``date`` or ISO text), or a number N: the last N month ends that leave
        the longest horizon inside the data. A date that is not a month end, one before the
        first purchase, or one whose horizon ends after the data is a
        :class:`~winback.WinbackConfigError`.
    horizons
        Whole numbers of calendar months after the origin: ``"1M"``, ``"3M"`` … (or ints).
    methods
        Names from :data:`METHODS` (default: :data:`DEFAULT_METHODS`, all but ``stacked_gg`` and
        ``combined_gg``), ``naive_mean<k>`` for any k ≥ 1.
    as_of
        The end of the data (a date is the end of that day); default: the end of the latest
        purchase's day (docs/methods.md#as-of).
    details
        Keep the per-customer forecasts (``BacktestResult.details``; one row per origin ×
        horizon × customer).
    resolution, customer_col, time_col, amount_col, order_col, tz, on_invalid, time_format,
    id_type
        As for :func:`winback.prepare` and :func:`winback.value`.

    Returns
    -------
    BacktestResult
        The frames are sorted by origin, horizon (shortest first) and method (in the order
        given); the same for any row order of the input and any thread count.

    Examples
    --------
    >>> import winback
    >>> from winback.datasets import load_cdnow
    >>> result = winback.backtest(load_cdnow(), origins=["1998-03-31"], horizons=["1M"],
    ...                           methods=["bgnbd_gg", "naive_mean3", "zero"], details=False)
    >>> result.frame.select("method", "customers").rows()
    [('bgnbd_gg', 23570), ('naive_mean3', 23570), ('zero', 23570)]
    """
    months = _check_horizons(horizons)
    method_list = _check_methods(methods)
    res_us = _io.parse_resolution(resolution)
    prepared = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
        time_format=time_format,
        id_type=id_type,
    )
    if not prepared.has_amount:
        raise WinbackInputError(
            f"column {amount_col!r} (the amount) is not in the input; the back-test compares "
            "revenue. Pass amount_col='...' to name it."
        )
    if prepared.frame.height == 0:
        raise WinbackInputError("backtest: the input has no purchases; nothing to back-test")
    data_end_us = _io.snapshot_end(prepared, as_of)
    first_us = int(prepared.frame.get_column("ts").min())  # type: ignore[arg-type]
    chosen = _choose_origins(origins, first_us, data_end_us, months[-1])
    births = prepared.frame.group_by("customer").agg(pl.col("ts").min().alias("first"))
    rows: list[dict[str, Any]] = []
    origin_rows: list[dict[str, Any]] = []
    detail_frames: list[pl.DataFrame] = []
    reliability = {(h, m): _Reliability.empty() for h in months for m in method_list}
    for origin in chosen:
        cal = _calibrate(prepared, origin, method_list, resolution, res_us)
        first = births.get_column("first")
        origin_rows.append(
            {
                "origin": origin,
                "customers": cal.base.height,
                "customers_born_after": int(((first > cal.end_us) & (first <= data_end_us)).sum()),
                "data_end": _io.micros_to_datetime(data_end_us),
            }
        )
        for h in months:
            horizon_end = _months_later(origin, h)
            days = (horizon_end - origin).days
            actual, actual_count = _actuals(
                prepared, cal.base, cal.end_us, _io.as_of_to_micros(horizon_end, None), res_us
            )
            label = f"{h}M"
            columns: dict[str, Any] = {
                "customer_id": cal.base.get_column("customer_id"),
                "actual_amount": actual,
                "actual_count": actual_count,
                "active": actual_count > 0,
            }
            for method in method_list:
                forecast = _forecast(cal, method, h, days)
                row: dict[str, Any] = {
                    "origin": origin,
                    "horizon": label,
                    "method": method,
                    "customers": cal.base.height,
                }
                if isinstance(forecast, str):
                    row["note"] = forecast
                    nothing = np.full(cal.base.height, np.nan)
                    columns[method] = columns[f"{method}_count"] = nothing
                    if method in _PROBABILISTIC:
                        columns[f"{method}_p_active"] = nothing
                else:
                    row.update(
                        _metrics(
                            forecast.amount, actual, forecast.count, actual_count, forecast.p_active
                        )
                    )
                    columns[method] = forecast.amount
                    columns[f"{method}_count"] = forecast.count
                    if forecast.p_active is not None:
                        columns[f"{method}_p_active"] = forecast.p_active
                        reliability[(h, method)].add(
                            forecast.p_active, (actual_count > 0).astype(np.float64)
                        )
                rows.append(row)
            if details:
                detail = pl.DataFrame(columns).with_columns(
                    pl.lit(origin).alias("origin"), pl.lit(label).alias("horizon")
                )
                detail_frames.append(
                    detail.select(
                        "origin", "horizon", pl.exclude("origin", "horizon")
                    ).with_columns(pl.selectors.float().fill_nan(None))
                )
    frame = _frame(rows)
    return BacktestResult(
        frame=frame,
        summary=_summary(frame, months, method_list),
        reliability=_reliability_frame(reliability),
        origins=pl.DataFrame(
            origin_rows,
            schema={
                "origin": pl.Date,
                "customers": pl.Int64,
                "customers_born_after": pl.Int64,
                "data_end": pl.Datetime("us"),
            },
        ),
        details=pl.concat(detail_frames) if details else None,
        methods=tuple(method_list),
        horizons=tuple(f"{h}M" for h in months),
    )


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, Any] = dict.fromkeys(BACKTEST_COLUMNS, pl.Float64)
    schema.update(
        origin=pl.Date, horizon=pl.String, method=pl.String, customers=pl.Int64, note=pl.String
    )
    return pl.DataFrame(
        [{name: row.get(name) for name in BACKTEST_COLUMNS} for row in rows], schema=schema
    )


def _summary(frame: pl.DataFrame, months: list[int], methods: list[str]) -> pl.DataFrame:
    """Per horizon × method over the origins with figures (docs/methods.md#backtest)."""
    computed = pl.col("note").is_null()
    forecast = pl.col("forecast_total").filter(computed).sum()
    actual = pl.col("actual_total").filter(computed).sum()
    out = (
        frame.group_by("horizon", "method", maintain_order=True)
        .agg(
            computed.sum().cast(pl.Int64).alias("origins"),
            pl.col("customers").filter(computed).sum().alias("customers"),
            actual.alias("actual_total"),
            forecast.alias("forecast_total"),
            pl.when(actual > 0).then(forecast / actual - 1.0).alias("pooled_total_error"),
            pl.col("total_error").abs().mean().alias("mean_abs_total_error"),
            pl.when(pl.col("actual_count").filter(computed).sum() > 0)
            .then(
                pl.col("forecast_count").filter(computed).sum()
                / pl.col("actual_count").filter(computed).sum()
                - 1.0
            )
            .alias("pooled_count_error"),
            *(pl.col(c).mean() for c in ("rmse", "mae", "spearman", "top_decile_capture")),
            pl.col("brier").mean(),
            pl.col("note").drop_nulls().first().alias("note"),
        )
        .with_columns(pl.col("customers").cast(pl.Int64))
    )
    order = pl.DataFrame(
        {
            "horizon": [f"{h}M" for h in months for _ in methods],
            "method": [m for _ in months for m in methods],
        }
    )
    return order.join(out, on=["horizon", "method"], how="left", maintain_order="left").select(
        SUMMARY_COLUMNS
    )


def _reliability_frame(sums: dict[tuple[int, str], _Reliability]) -> pl.DataFrame:
    rows = []
    for (h, method), r in sums.items():
        if not r.customers.sum():
            continue
        for d in range(DECILES):
            n = float(r.customers[d])
            if n == 0:
                continue
            predicted, observed = r.predicted[d] / n, r.observed[d] / n
            rows.append(
                {
                    "horizon": f"{h}M",
                    "method": method,
                    "decile": d + 1,
                    "customers": int(n),
                    "mean_p_active": float(predicted),
                    "observed_rate": float(observed),
                    "gap": float(observed - predicted),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "horizon": pl.String,
            "method": pl.String,
            "decile": pl.Int64,
            "customers": pl.Int64,
            "mean_p_active": pl.Float64,
            "observed_rate": pl.Float64,
            "gap": pl.Float64,
        },
    )
