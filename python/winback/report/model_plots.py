"""Diagnostic plots of the count models, as Altair charts (docs/methods.md#model-plots): the
calibration/holdout plot, the tracking curve and the frequency–recency P(alive) matrix —
lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``, ``plot_cumulative_transactions``
and ``plot_probability_alive_matrix``. Each returns an ``altair.Chart`` (``.save("x.html")``,
``.to_dict()``); the data behind it is in the chart. Altair is imported when a chart is built.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl

from winback.errors import UnitNotCheckedWarning, WinbackConfigError, WinbackInputError

__all__ = ["calibration_holdout_chart", "probability_alive_matrix_chart", "tracking_chart"]

#: Calibration frequencies from here on are pooled into one point (lifetimes' n = 7 default).
MAX_FREQUENCY = 7


def calibration_holdout_chart(
    model: Any, summary: pl.DataFrame, *, max_frequency: int = MAX_FREQUENCY
) -> Any:
    """Mean holdout purchases by calibration frequency, actual against the model's conditional
    expectation over the holdout (``duration_holdout``), for a summary built with
    ``calibration_end``; frequencies ≥ ``max_frequency`` are pooled."""
    import altair as alt  # loaded on use: importing winback.report stays cheap

    needed = ["frequency", "frequency_holdout", "duration_holdout"]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise WinbackInputError(
            f"calibration_holdout_chart: columns {missing} not in the summary; build it with "
            "winback.summary(..., calibration_end=...)"
        )
    if summary.height == 0:
        raise WinbackInputError("calibration_holdout_chart: the summary has no customers")
    duration = float(summary.get_column("duration_holdout")[0])
    predicted = model.expected_purchases(duration, summary)
    frame = summary.select(
        pl.col("frequency").clip(0, max_frequency).alias("frequency"),
        pl.col("frequency_holdout").cast(pl.Float64).alias("actual"),
        predicted.alias("model"),
    )
    means = (
        frame.group_by("frequency")
        .agg(pl.col("actual").mean(), pl.col("model").mean())
        .sort("frequency")
        .unpivot(index="frequency", variable_name="series", value_name="holdout_purchases")
    )
    return (
        alt.Chart(means.to_pandas(), title="Holdout purchases by calibration frequency")
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "frequency:O",
                title=f"purchases in calibration ({max_frequency} = {max_frequency}+)",
            ),
            y=alt.Y("holdout_purchases:Q", title="mean purchases in holdout"),
            color=alt.Color("series:N", title=None),
        )
    )


def tracking_chart(tracking: pl.DataFrame) -> Any:
    """Cumulative repeat purchases, actual and expected, from
    :func:`winback.summary.expected_cumulative_transactions`."""
    import altair as alt

    missing = [c for c in ("period_end", "actual", "predicted") if c not in tracking.columns]
    if missing:
        raise WinbackInputError(
            f"tracking_chart: columns {missing} not found; pass the frame of "
            "winback.summary.expected_cumulative_transactions"
        )
    long = tracking.select(
        "period_end", pl.col("actual").cast(pl.Float64), pl.col("predicted").alias("model")
    ).unpivot(index="period_end", variable_name="series", value_name="cumulative_purchases")
    return (
        alt.Chart(long.to_pandas(), title="Tracking: cumulative repeat purchases")
        .mark_line()
        .encode(
            x=alt.X("period_end:T", title="period end"),
            y=alt.Y("cumulative_purchases:Q", title="cumulative repeat purchases"),
            color=alt.Color("series:N", title=None),
        )
    )


def probability_alive_matrix_chart(
    model: Any, *, T: float, max_frequency: int = 20, recency_steps: int = 20
) -> Any:
    """P(alive) of a customer observed for ``T`` (the model's unit) by frequency x = 0 …
    ``max_frequency`` and recency t_x on ``recency_steps`` + 1 points from 0 to T (x = 0 only
    at t_x = 0, the only recency it can have)."""
    import altair as alt

    if not (np.isfinite(T) and T > 0):
        raise WinbackConfigError(f"T must be a finite duration > 0, got {T!r}")
    if max_frequency < 1 or recency_steps < 1:
        raise WinbackConfigError("max_frequency and recency_steps must be ≥ 1")
    recency = np.linspace(0.0, float(T), recency_steps + 1)
    x = np.repeat(np.arange(1, max_frequency + 1), recency.size)
    grid = pl.DataFrame(
        {
            "frequency": np.r_[0, x],
            "recency": np.r_[0.0, np.tile(recency, max_frequency)],
            "T": np.full(x.size + 1, float(T)),
        }
    )
    unit, resolution = getattr(model, "unit_", None), getattr(model, "resolution_", None)
    if unit is not None and resolution is not None:
        # The grid is in the model's own unit: say so, so predicting on it is not a warning.
        alive = model.probability_alive((grid, SimpleNamespace(unit=unit, resolution=resolution)))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnitNotCheckedWarning)
            alive = model.probability_alive(grid)
    cells = grid.with_columns(alive.alias("probability_alive"))
    return (
        alt.Chart(cells.to_pandas(), title=f"P(alive) by frequency and recency (T = {T:g})")
        .mark_rect()
        .encode(
            x=alt.X("recency:O", title="recency t_x", axis=alt.Axis(format=".3~g")),
            y=alt.Y("frequency:O", title="frequency x", sort="descending"),
            color=alt.Color(
                "probability_alive:Q", scale=alt.Scale(domain=[0, 1]), title="P(alive)"
            ),
        )
    )
