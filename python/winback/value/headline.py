"""The headline next-period forecast of :func:`winback.value` (docs/methods.md#headline-forecast):
the period NBD's ``expected_amount`` (``forecast="nbd"``), the periodic BG/NBD's
(``forecast="dropout"``, docs/methods.md#periodic-bg-nbd), or the one of the two that forecast
the user's own last periods better (``forecast="auto"``).

The dropout forecast's components are columns of their own (``dropout_p_alive``,
``dropout_p_active_next``, ``dropout_expected_frequency``, ``dropout_expected_amount``) next to
the NBD's, and ``forecast_amount`` is the chosen headline.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from winback._options import FORECASTS
from winback.errors import WinbackFitError
from winback.models import NBDModel
from winback.value.dropout import PeriodicBGNBD, dropout_statistics
from winback.value.result import ValueResult

__all__ = [
    "AUTO_MIN_CALIBRATION",
    "AUTO_ORIGINS",
    "FORECASTS",
    "HEADLINE_COLUMNS",
    "Choice",
    "add_headline",
    "choose_forecast",
]

_log = logging.getLogger("winback.value")

#: Columns appended to the value frame when ``forecast`` is not ``"nbd"``, in order.
HEADLINE_COLUMNS = (
    "last_active_offset",
    "active_periods",
    "dropout_p_alive",
    "dropout_p_active_next",
    "dropout_expected_frequency",
    "dropout_expected_amount",
    "forecast_amount",
)
#: ``forecast="auto"`` holds out each of (up to) the last AUTO_ORIGINS complete periods in turn,
#: when at least AUTO_MIN_CALIBRATION complete periods precede it
#: (docs/methods.md#headline-forecast).
AUTO_ORIGINS = 3
AUTO_MIN_CALIBRATION = 4


@dataclass(frozen=True)
class Choice:
    """What ``forecast="auto"`` chose and the evidence: the method, a one-line reason and the
    per-held-out-period figures (``period``, ``method``, ``actual``, ``forecast``,
    ``total_error``, ``rmse``)."""

    method: str
    reason: str
    evidence: pl.DataFrame


def _statistics(panel: pl.DataFrame, cutoff: int) -> pl.DataFrame:
    """Per customer born before period ``cutoff``: (X, t_x, k, T) over the periods before it,
    and the occasions of period ``cutoff`` (``actual``)."""
    active = (pl.col("occasions") > 0) & (pl.col("period") < cutoff)
    before = panel.filter(pl.col("period") <= cutoff).with_columns(
        pl.col("period").filter(active).min().over("customer_id").alias("_birth")
    )
    return (
        before.filter(pl.col("_birth").is_not_null())
        .group_by("customer_id")
        .agg(
            pl.col("occasions")
            .filter(active & (pl.col("period") > pl.col("_birth")))
            .sum()
            .cast(pl.Int64)
            .alias("period_frequency"),
            (pl.col("period").filter(active).max() - pl.col("_birth").first())
            .cast(pl.Int64)
            .alias("last_active_offset"),
            active.sum().cast(pl.Int64).alias("active_periods"),
            (cutoff - 1 - pl.col("_birth").first()).cast(pl.Int64).alias("n_periods"),
            pl.col("occasions")
            .filter(pl.col("period") == cutoff)
            .sum()
            .cast(pl.Float64)
            .alias("actual"),
        )
        .sort("customer_id")
    )


def choose_forecast(panel: pl.DataFrame, n_complete: int) -> Choice:
    """``forecast="auto"`` (docs/methods.md#headline-forecast): each of the last
    :data:`AUTO_ORIGINS` complete periods with at least :data:`AUTO_MIN_CALIBRATION` complete
    periods before it is held out in turn; the period NBD and the periodic BG/NBD are fitted on
    the periods before it and forecast its occasions per customer. The method with the smaller
    mean |total error| of occasions over the held-out periods wins (the spend side is the same
    Gamma–Gamma for both); a tie, no held-out period or a failed fit keeps ``"nbd"``."""
    cutoffs = [c for c in range(n_complete - AUTO_ORIGINS, n_complete) if c >= AUTO_MIN_CALIBRATION]
    rows = []
    for cutoff in cutoffs:
        stats = _statistics(panel, cutoff)
        stats = stats.filter(pl.col("n_periods") > 0)
        actual = stats.get_column("actual").to_numpy()
        if stats.height == 0 or actual.sum() <= 0:
            continue
        try:
            nbd = NBDModel().fit(stats, frequency_col="period_frequency", periods_col="n_periods")
            dropout = PeriodicBGNBD().fit(stats)
        except WinbackFitError as error:
            return Choice(
                "nbd", f"auto: a fit failed on the held-out periods ({error})", pl.DataFrame()
            )
        forecasts = {
            "nbd": nbd.expected_purchases(1, stats).to_numpy(),
            "dropout": dropout.expected_count(1, stats),
        }
        for method, forecast in forecasts.items():
            rows.append(
                {
                    "period": cutoff,
                    "method": method,
                    "actual": float(actual.sum()),
                    "forecast": float(forecast.sum()),
                    "total_error": float(forecast.sum() / actual.sum() - 1.0),
                    "rmse": float(np.sqrt(((forecast - actual) ** 2).mean())),
                }
            )
    evidence = pl.DataFrame(
        rows,
        schema={
            "period": pl.Int64,
            "method": pl.String,
            "actual": pl.Float64,
            "forecast": pl.Float64,
            "total_error": pl.Float64,
            "rmse": pl.Float64,
        },
    )
    if evidence.height == 0:
        return Choice(
            "nbd",
            f"auto: fewer than {AUTO_MIN_CALIBRATION + 1} complete periods with purchases to "
            "back-test on; kept the period NBD",
            evidence,
        )
    score = (
        evidence.group_by("method")
        .agg(pl.col("total_error").abs().mean().alias("err"), pl.col("rmse").mean())
        .sort("method")
    )
    err = dict(zip(score.get_column("method"), score.get_column("err"), strict=True))
    rmse = dict(zip(score.get_column("method"), score.get_column("rmse"), strict=True))
    method = "dropout" if err["dropout"] < err["nbd"] else "nbd"
    chosen = "the periodic BG/NBD" if method == "dropout" else "the period NBD"
    reason = (
        f"auto: over the last {evidence.height // 2} complete period(s) held out, the mean "
        f"|total error| of next-period occasions was {err['dropout']:.1%} for the periodic "
        f"BG/NBD and {err['nbd']:.1%} for the period NBD (RMSE {rmse['dropout']:.4f} vs "
        f"{rmse['nbd']:.4f}); chose {chosen}"
    )
    return Choice(method, reason, evidence)


def add_headline(
    result: ValueResult, panel: pl.DataFrame, n_complete: int, forecast: str
) -> ValueResult:
    """``result`` with the periodic BG/NBD's columns and ``forecast_amount`` appended
    (:data:`HEADLINE_COLUMNS`), the fitted model and the choice recorded."""
    frame = result.frame
    if forecast == "auto":
        choice = choose_forecast(panel, n_complete)
    else:
        choice = Choice(forecast, f"forecast={forecast!r} was asked for", pl.DataFrame())
    stats = dropout_statistics(panel, n_complete)
    frame = frame.join(stats, on="customer_id", how="left", maintain_order="left")
    modelled = frame.filter(pl.col("status") == "modelled")
    model: PeriodicBGNBD | None = None
    columns: dict[str, pl.Series] = {}
    method = choice.method
    reason = choice.reason
    if modelled.height:
        try:
            model = PeriodicBGNBD().fit(modelled)
        except WinbackFitError as error:
            if method == "dropout":
                method, reason = "nbd", f"{reason}; the periodic BG/NBD failed ({error}): kept nbd"
    if model is not None:
        count = model.expected_count(1, modelled)
        amount = count * modelled.get_column("expected_mean_amount").to_numpy()
        columns = {
            "dropout_p_alive": pl.Series(model.probability_alive(modelled)),
            "dropout_p_active_next": pl.Series(model.probability_active(1, modelled)),
            "dropout_expected_frequency": pl.Series(count),
            "dropout_expected_amount": pl.Series(amount),
        }
    extra = modelled.select("customer_id").with_columns(
        **{name: columns.get(name, pl.lit(None, pl.Float64)) for name in HEADLINE_COLUMNS[2:6]}
    )
    frame = frame.join(extra, on="customer_id", how="left", maintain_order="left")
    headline = "dropout_expected_amount" if method == "dropout" else "expected_amount"
    frame = frame.with_columns(pl.col(headline).alias("forecast_amount"))
    _log.info("value: headline forecast %s (%s)", method, reason)
    return dataclasses.replace(
        result, frame=frame, dropout=model, forecast=method, forecast_reason=reason
    )
