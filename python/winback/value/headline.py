"""The headline next-period forecast of :func:`winback.value` (docs/methods.md#headline-forecast):
the period NBD's ``expected_amount`` (``forecast="nbd"``), the periodic BG/NBD's
(``forecast="dropout"``, docs/methods.md#periodic-bg-nbd), the stacked trees'
(``forecast="stacked"``, docs/methods.md#stacked-forecast), the mean of the periodic BG/NBD's
and a Poisson GLM stacker's (``forecast="combined"``, docs/methods.md#combined-forecast), or
the one of the first three that forecast the user's own last periods best
(``forecast="auto"``).

Every component is a column of its own (``dropout_p_alive``, ``dropout_p_active_next``,
``dropout_expected_frequency``, ``dropout_expected_amount``, ``stacked_expected_amount``,
``stacked_p_active_next``) next to the NBD's, and ``forecast_amount`` is the chosen headline.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from winback._options import FORECASTS
from winback.errors import WinbackFitError
from winback.models import NBDModel
from winback.value.dropout import PeriodicBGNBD, dropout_statistics
from winback.value.result import ValueResult
from winback.value.stacked import combined_forecast, sample_panel, stacked_forecast

__all__ = [
    "AUTO_MIN_CALIBRATION",
    "AUTO_ORIGINS",
    "COMBINED_COLUMN",
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
    "stacked_expected_amount",
    "stacked_p_active_next",
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


_EVIDENCE_SCHEMA = {
    "period": pl.Int64,
    "method": pl.String,
    "actual": pl.Float64,
    "forecast": pl.Float64,
    "total_error": pl.Float64,
    "rmse": pl.Float64,
}
#: The candidates of ``forecast="auto"``, simplest first (a tie keeps the simpler).
_CANDIDATES = ("nbd", "dropout", "stacked")


def choose_forecast(
    panel: pl.DataFrame,
    n_complete: int,
    period_months: Sequence[int] | None,
    cache: dict[int, pl.DataFrame],
) -> Choice:
    """``forecast="auto"`` (docs/methods.md#headline-forecast): each of the last
    :data:`AUTO_ORIGINS` complete periods with at least :data:`AUTO_MIN_CALIBRATION` complete
    periods before it is held out in turn; the period NBD, the periodic BG/NBD (both × the
    Gamma–Gamma) and the stacked trees are fitted on the periods before it and forecast each
    customer's revenue in it. The method with the smallest mean RMSE over the held-out periods
    wins; a tie keeps the simpler (nbd, dropout, stacked); no held-out period keeps ``"nbd"``; a
    method whose fit fails at a held-out period is out."""
    from winback.value.stacked import cutoff_features, with_model_features

    cutoffs = [c for c in range(n_complete - AUTO_ORIGINS, n_complete) if c >= AUTO_MIN_CALIBRATION]
    rows = []
    failed: dict[str, str] = {}
    for cutoff in cutoffs:
        try:
            if cutoff not in cache:
                cache[cutoff] = with_model_features(cutoff_features(panel, cutoff))
            frame = cache[cutoff]
        except WinbackFitError as error:
            failed.setdefault("dropout", str(error))
            continue
        actual = frame.get_column("actual_revenue").to_numpy()
        if frame.height == 0 or actual.sum() <= 0:
            continue
        spend = frame.get_column("model_mean_spend").to_numpy()
        forecasts: dict[str, np.ndarray] = {
            "dropout": frame.get_column("model_expected_amount").to_numpy()
        }
        try:
            nbd = NBDModel().fit(frame, frequency_col="period_frequency", periods_col="n_periods")
            forecasts["nbd"] = nbd.expected_purchases(1, frame).to_numpy() * spend
        except WinbackFitError as error:
            failed.setdefault("nbd", str(error))
        try:
            forecasts["stacked"] = stacked_forecast(
                panel, cutoff, period_months, cache
            ).expected_amount
        except WinbackFitError as error:
            failed.setdefault("stacked", str(error))
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
    evidence = pl.DataFrame(rows, schema=_EVIDENCE_SCHEMA)
    held_out = evidence.get_column("period").n_unique()
    complete = evidence.group_by("method").agg(pl.len().alias("n")).filter(pl.col("n") == held_out)
    candidates = [
        m for m in _CANDIDATES if m in set(complete.get_column("method")) and m not in failed
    ]
    if not candidates:
        return Choice(
            "nbd",
            f"auto: fewer than {AUTO_MIN_CALIBRATION + 1} complete periods with purchases to "
            "back-test on; kept the period NBD",
            evidence,
        )
    score = evidence.group_by("method").agg(
        pl.col("rmse").mean(), pl.col("total_error").abs().mean().alias("err")
    )
    rmse = dict(zip(score.get_column("method"), score.get_column("rmse"), strict=True))
    err = dict(zip(score.get_column("method"), score.get_column("err"), strict=True))
    best = min(candidates, key=lambda m: (rmse[m], _CANDIDATES.index(m)))
    figures = "; ".join(
        f"{m}: RMSE {rmse[m]:.3f}, mean |total error| {err[m]:.1%}" for m in candidates
    )
    reason = (
        f"auto: lowest mean next-period revenue RMSE over the last {held_out} complete "
        f"period(s) held out ({figures})"
        + (
            f"; not candidates: {', '.join(f'{m} ({w})' for m, w in failed.items())}"
            if failed
            else ""
        )
    )
    return Choice(best, reason, evidence)


def add_headline(
    result: ValueResult,
    panel: pl.DataFrame,
    n_complete: int,
    forecast: str,
    period_months: Sequence[int] | None = None,
) -> ValueResult:
    """``result`` with the periodic BG/NBD's and the stacked trees' columns and
    ``forecast_amount`` appended (:data:`HEADLINE_COLUMNS`), the fitted model and the choice
    recorded."""
    cache: dict[int, pl.DataFrame] = {}
    frame = result.frame
    stats = dropout_statistics(panel, n_complete)
    frame = frame.join(stats, on="customer_id", how="left", maintain_order="left")
    modelled = frame.filter(pl.col("status") == "modelled")
    model: PeriodicBGNBD | None = None
    columns: dict[str, pl.Series] = {}
    problems: list[str] = []
    if modelled.height:
        try:
            model = PeriodicBGNBD().fit(modelled)
        except WinbackFitError as error:
            problems.append(f"the periodic BG/NBD failed ({error})")
    if model is not None:
        count = model.expected_count(1, modelled)
        columns = {
            "dropout_p_alive": pl.Series(model.probability_alive(modelled)),
            "dropout_p_active_next": pl.Series(model.probability_active(1, modelled)),
            "dropout_expected_frequency": pl.Series(count),
            "dropout_expected_amount": pl.Series(
                count * modelled.get_column("expected_mean_amount").to_numpy()
            ),
        }
    extra = modelled.select("customer_id").with_columns(
        **{name: columns.get(name, pl.lit(None, pl.Float64)) for name in HEADLINE_COLUMNS[2:6]}
    )
    frame = frame.join(extra, on="customer_id", how="left", maintain_order="left")
    # The trees train (and "auto" back-tests) on a deterministic sample of the customers on
    # large data (docs/methods.md#stacked-forecast); the forecast covers everyone.
    training = sample_panel(panel) if forecast in ("auto", "stacked") else panel
    if forecast == "auto":
        choice = choose_forecast(training, n_complete, period_months, cache)
    else:
        choice = Choice(forecast, f"forecast={forecast!r} was asked for", pl.DataFrame())
    if forecast == "combined":
        return _add_combined(result, frame, panel, n_complete, model, modelled, problems)
    stacked = None
    # The trees are trained for the next period only when they are the headline (with "auto",
    # only when chosen: they are the costly candidate).
    if choice.method == "stacked" and modelled.height:
        try:
            stacked = stacked_forecast(
                panel, n_complete, period_months, cache, training_panel=training
            )
        except WinbackFitError as error:
            problems.append(f"the stacked forecast failed ({error})")
    if stacked is not None:
        frame = frame.join(
            pl.DataFrame(
                {
                    "customer_id": stacked.customer_id,
                    "stacked_expected_amount": stacked.expected_amount,
                    "stacked_p_active_next": stacked.p_active,
                }
            ).cast({"customer_id": frame.schema["customer_id"]}),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
    else:
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias("stacked_expected_amount"),
            pl.lit(None, pl.Float64).alias("stacked_p_active_next"),
        )
    method, reason = choice.method, choice.reason
    if (method == "dropout" and model is None) or (method == "stacked" and stacked is None):
        method, reason = "nbd", f"{reason}; {'; '.join(problems)}: kept the period NBD"
    headline = {
        "nbd": "expected_amount",
        "dropout": "dropout_expected_amount",
        "stacked": "stacked_expected_amount",
    }[method]
    frame = frame.with_columns(pl.col(headline).alias("forecast_amount"))
    evidence = choice.evidence if forecast == "auto" else None
    return _with_headline(result, frame, model, method, reason, evidence)


def _with_headline(
    result: ValueResult,
    frame: pl.DataFrame,
    model: PeriodicBGNBD | None,
    method: str,
    reason: str,
    evidence: pl.DataFrame | None,
) -> ValueResult:
    """``result`` with its headline forecast set: the frame (``forecast_amount`` filled), the
    periodic BG/NBD, the method chosen, why, and the back-test evidence of ``"auto"``."""
    _log.info("value: headline forecast %s (%s)", method, reason)
    return dataclasses.replace(
        result,
        frame=frame,
        dropout=model,
        forecast=method,
        forecast_reason=reason,
        forecast_evidence=evidence,
    )


#: The column ``forecast="combined"`` appends after :data:`HEADLINE_COLUMNS`.
COMBINED_COLUMN = "combined_expected_amount"


def _add_combined(
    result: ValueResult,
    frame: pl.DataFrame,
    panel: pl.DataFrame,
    n_complete: int,
    model: PeriodicBGNBD | None,
    modelled: pl.DataFrame,
    problems: list[str],
) -> ValueResult:
    """``forecast="combined"`` (docs/methods.md#combined-forecast): :data:`HEADLINE_COLUMNS`
    (``stacked_*`` null) and :data:`COMBINED_COLUMN`; ``forecast_amount`` is the combined
    forecast, or the period NBD's (with the reason) when it cannot be computed."""
    combined = None
    if modelled.height:
        try:
            combined = combined_forecast(panel, n_complete, training_panel=sample_panel(panel))
        except WinbackFitError as error:
            problems.append(f"the combined forecast failed ({error})")
    frame = frame.with_columns(
        pl.lit(None, pl.Float64).alias("stacked_expected_amount"),
        pl.lit(None, pl.Float64).alias("stacked_p_active_next"),
    )
    if combined is not None:
        frame = frame.join(
            pl.DataFrame(
                {"customer_id": combined.customer_id, COMBINED_COLUMN: combined.expected_amount}
            ).cast({"customer_id": frame.schema["customer_id"]}),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        method, reason, headline = "combined", "forecast='combined' was asked for", COMBINED_COLUMN
    else:
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias(COMBINED_COLUMN))
        method, headline = "nbd", "expected_amount"
        reason = f"forecast='combined' was asked for; {'; '.join(problems)}: kept the period NBD"
    frame = frame.with_columns(pl.col(headline).alias("forecast_amount")).select(
        *(c for c in frame.columns if c not in (COMBINED_COLUMN, "forecast_amount")),
        "forecast_amount",
        COMBINED_COLUMN,
    )
    return _with_headline(result, frame, model, method, reason, None)
