"""Discounted customer lifetime value, as lifetimes users know it (docs/methods.md#clv-discounted):
a count model's expected purchases per period times a spend model's expected amount, each period
discounted by (1 + d)^i."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import polars as pl

from winback.errors import WinbackConfigError
from winback.models._base import finite_output
from winback.models._count_base import CountModel
from winback.models.gamma_gamma import GammaGammaModel

__all__ = ["PERIODS_PER_MONTH", "customer_lifetime_value"]

#: Units of the summary's time per month, lifetimes' factors: a month is 30 days, 4.345 weeks.
PERIODS_PER_MONTH: dict[str, float] = {"H": 30.0 * 24.0, "D": 30.0, "W": 4.345, "M": 1.0}


def _months(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise WinbackConfigError(f"months must be a whole number ≥ 1, got {value!r}")
    if not (math.isfinite(float(value)) and float(value) == int(value) and value >= 1):
        raise WinbackConfigError(f"months must be a whole number ≥ 1, got {value!r}")
    return int(value)


def _rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or not (math.isfinite(rate) and rate >= 0.0):
        raise WinbackConfigError(
            f"discount_rate must be a finite rate ≥ 0 per month (0.01 = 1 % a month), got {value!r}"
        )
    return rate


def _factor(count_model: CountModel, freq: str | None) -> float:
    unit = freq if freq is not None else getattr(count_model, "unit_", None)
    if unit is None:
        raise WinbackConfigError(
            "customer_lifetime_value: the count model's time unit is unknown (fitted on a plain "
            "frame); pass freq='D' or 'W' (the unit of the summary's recency and T)"
        )
    if freq is not None and getattr(count_model, "unit_", None) not in (None, freq):
        raise WinbackConfigError(
            f"customer_lifetime_value: freq={freq!r} contradicts the count model's unit "
            f"{count_model.unit_!r}"
        )
    if unit not in PERIODS_PER_MONTH:
        raise WinbackConfigError(
            f"freq must be one of {sorted(PERIODS_PER_MONTH)} (the summary's time unit), got "
            f"{unit!r}"
        )
    return PERIODS_PER_MONTH[unit]


def customer_lifetime_value(
    count_model: CountModel,
    spend_model: GammaGammaModel,
    data: Any | None = None,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    freq: Literal["H", "D", "W", "M"] | None = None,
) -> pl.Series:
    """Discounted value of each customer's purchases over the next ``months`` months
    (lifetimes' ``customer_lifetime_value``; docs/methods.md#clv-discounted).

    The value is::

        CLV = Σ_{i=1}^{months} (E[X(T, T+iΔ)] − E[X(T, T+(i−1)Δ)]) · E[M] / (1 + d)^i,

    Δ = one month in the summary's time unit (``freq``: 30 days, 4.345 weeks; default the count
    model's ``unit_``), E[M] the spend model's :meth:`~GammaGammaModel.expected_spend` and
    d = ``discount_rate`` per month. ``data`` is a summary with the count model's columns and
    the spend model's (``winback.summary`` output has both); default the count model's fitted
    frame. Returns the Float64 Series ``clv``, one value per row of ``data``.
    """
    if not isinstance(count_model, CountModel):
        raise WinbackConfigError(
            "count_model must be a fitted BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel, "
            f"got {type(count_model).__name__}"
        )
    if not isinstance(spend_model, GammaGammaModel):
        raise WinbackConfigError(
            f"spend_model must be a fitted GammaGammaModel, got {type(spend_model).__name__}"
        )
    horizon = _months(months)
    rate = _rate(discount_rate)
    factor = _factor(count_model, freq)
    if data is None:
        data = count_model._prediction_frame(None)  # the fitted summary (refused if none)
    spend = spend_model.expected_spend(data).to_numpy()
    value = np.zeros(spend.shape, dtype=np.float64)
    previous = np.zeros(spend.shape, dtype=np.float64)
    for i in range(1, horizon + 1):
        cumulative = count_model.expected_purchases(i * factor, data).to_numpy()
        value += (cumulative - previous) * spend / (1.0 + rate) ** i
        previous = cumulative
    return finite_output(count_model.model_name, "clv", value)
