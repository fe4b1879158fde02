"""The count models' diagnostic charts (docs/methods.md#model-plots): the data behind each chart
against values computed here from the model's public predictions and the summary."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
from winback.datasets import read_cdnow_text
from winback.errors import WinbackInputError
from winback.models import BetaGeoModel
from winback.report.model_plots import (
    calibration_holdout_chart,
    probability_alive_matrix_chart,
    tracking_chart,
)
from winback.summary import expected_cumulative_transactions

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def fitted() -> tuple[BetaGeoModel, pl.DataFrame, pl.DataFrame]:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    summary, info = winback.summary(
        tx, calibration_end=date(1997, 9, 30), unit="W", time_col="ts", return_info=True
    )
    return BetaGeoModel().fit((summary, info)), summary, tx


def _values(chart: object) -> list[dict[str, object]]:
    spec = chart.to_dict()  # type: ignore[attr-defined]
    return list(next(iter(spec["datasets"].values())))


def test_calibration_holdout(fitted: tuple[BetaGeoModel, pl.DataFrame, pl.DataFrame]) -> None:
    model, summary, _ = fitted
    rows = _values(calibration_holdout_chart(model, summary))
    actual = {r["frequency"]: r["holdout_purchases"] for r in rows if r["series"] == "actual"}
    by_hand = (
        summary.with_columns(pl.col("frequency").clip(0, 7))
        .group_by("frequency")
        .agg(pl.col("frequency_holdout").mean())
    )
    for f, mean in by_hand.iter_rows():
        assert actual[f] == pytest.approx(mean, rel=1e-12)
    with pytest.raises(WinbackInputError, match="calibration_end"):
        calibration_holdout_chart(model, summary.drop("frequency_holdout"))


def test_tracking(fitted: tuple[BetaGeoModel, pl.DataFrame, pl.DataFrame]) -> None:
    model, _, tx = fitted
    curve = expected_cumulative_transactions(model, tx, periods=78, time_col="ts")
    rows = _values(tracking_chart(curve))
    assert len(rows) == 2 * 78
    last_actual = [r["cumulative_purchases"] for r in rows if r["series"] == "actual"][-1]
    assert last_actual == curve["actual"][-1]


def test_probability_alive_matrix(
    fitted: tuple[BetaGeoModel, pl.DataFrame, pl.DataFrame],
) -> None:
    model, _, _ = fitted
    rows = _values(probability_alive_matrix_chart(model, T=39.0, max_frequency=5, recency_steps=3))
    assert len(rows) == 1 + 5 * 4
    got = {(r["frequency"], r["recency"]): r["probability_alive"] for r in rows}
    assert got[(0, 0.0)] == 1.0  # BG/NBD: no repeat purchase, alive by construction
    r, alpha, a, b = (model.params_[n] for n in ("r", "alpha", "a", "b"))
    for x, t_x in ((1, 13.0), (5, 0.0), (3, 39.0)):
        # FHL 2005a eq. 13, by hand
        odds = a / (b + x - 1) * ((alpha + 39.0) / (alpha + t_x)) ** (r + x)
        assert got[(x, t_x)] == pytest.approx(1 / (1 + odds), rel=1e-12)
    assert np.all(np.diff([got[(5, t)] for t in (0.0, 13.0, 26.0, 39.0)]) > 0)
