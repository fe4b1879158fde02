"""``winback.value(..., forecast="combined")`` and the back-test's ``combined_gg``
(docs/methods.md#combined-forecast)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest

import winback
from tests.value.conftest import SAMPLE_AS_OF
from winback.errors import ValueWarning
from winback.value import VALUE_COLUMNS, ValueResult
from winback.value.headline import COMBINED_COLUMN, HEADLINE_COLUMNS
from winback.value.stacked import (
    GLM_FEATURES,
    GLM_LOG_EPS,
    combined_forecast,
    cutoff_features,
    glm_design,
    with_model_features,
)

AS_OF = SAMPLE_AS_OF


@pytest.fixture(scope="module")
def combined(sample: pl.DataFrame) -> ValueResult:
    return winback.value(sample, as_of=AS_OF, forecast="combined")


def test_glm_design_by_hand() -> None:
    frame = pl.DataFrame(
        {
            "model_expected_amount": [2.0, 0.0],
            "model_p_alive": [0.5, 1.0],
            "model_mean_spend": [30.0, 10.0],
            "model_expected_count": [0.25, 0.0],
            "last_revenue": [12.0, -5.0],  # a return: log1p of max(x, 0)
            "revenue_last3": [40.0, 0.0],
            "revenue_per_active_period": [20.0, 3.0],
            "recency": [0.0, 4.0],
            "n_periods": [5, 6],
            "active_periods": [3, 1],
            "period_frequency": [4, 0],
            "longest_gap": [2.0, 0.0],
            "gap_regularity": [0.5, 0.0],
        }
    )
    e = GLM_LOG_EPS
    expected = np.array(
        [
            [math.log(2 + e), math.log(0.5 + e), math.log(30 + e), math.log(0.25 + e),
             math.log(13), math.log(41), math.log(21), 0.0, math.log(6), math.log(4),
             math.log(5), math.log(3), 0.5, 1.0, 1.0],
            [math.log(e), math.log(1 + e), math.log(10 + e), math.log(e),
             0.0, 0.0, math.log(4), math.log(5), math.log(7), math.log(2),
             0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )  # fmt: skip
    got = glm_design(frame)
    assert got.shape == (2, len(GLM_FEATURES))
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_every_customer_once_and_the_headline_is_the_combined(
    sample: pl.DataFrame, combined: ValueResult
) -> None:
    frame = combined.frame
    assert frame.columns == [*VALUE_COLUMNS, *HEADLINE_COLUMNS, COMBINED_COLUMN]
    assert frame.height == sample.get_column("customer_id").n_unique()
    assert frame.get_column("customer_id").is_unique().all()
    assert combined.forecast == "combined"
    assert frame.get_column("forecast_amount").equals(
        frame.get_column(COMBINED_COLUMN), check_names=False
    )
    modelled = frame.filter(pl.col("status") == "modelled")
    assert modelled.get_column(COMBINED_COLUMN).null_count() == 0
    assert modelled.get_column("stacked_expected_amount").null_count() == modelled.height
    amount = modelled.get_column(COMBINED_COLUMN).to_numpy()
    assert np.isfinite(amount).all()
    assert (amount > 0).all()
    # the default frame is untouched underneath
    default = winback.value(sample, as_of=AS_OF)
    assert frame.select(default.frame.columns).equals(default.frame)


@pytest.mark.slow
def test_combined_is_the_mean_of_the_model_and_the_glm(sample: pl.DataFrame) -> None:
    """Refit the GLM here, from the training cut-offs' features, and check the wiring."""
    from sklearn.linear_model import PoissonRegressor
    from sklearn.preprocessing import StandardScaler

    headline = __import__("winback.value.headline", fromlist=["x"])
    captured: dict[str, object] = {}
    original = headline.add_headline

    def capture(result, panel, n_complete, forecast, months=None):  # type: ignore[no-untyped-def]
        captured["panel"], captured["n"] = panel, n_complete
        return original(result, panel, n_complete, forecast, months)

    headline.add_headline = capture
    try:
        winback.value(sample, as_of=AS_OF, forecast="dropout")
    finally:
        headline.add_headline = original
    panel, n = captured["panel"], captured["n"]
    assert isinstance(panel, pl.DataFrame)
    assert isinstance(n, int)
    forecast = combined_forecast(panel, n)
    assert forecast.training_cutoffs == tuple(range(max(3, n - 6), n))
    frames = [with_model_features(cutoff_features(panel, c)) for c in forecast.training_cutoffs]
    train = pl.concat(frames, how="vertical_relaxed")
    target = with_model_features(cutoff_features(panel, n))
    scaler = StandardScaler().fit(glm_design(train))
    glm = PoissonRegressor(alpha=1e-4, solver="newton-cholesky", max_iter=1000).fit(
        scaler.transform(glm_design(train)), train.get_column("actual_revenue").to_numpy()
    )
    glm_part = glm.predict(scaler.transform(glm_design(target)))
    model = target.get_column("model_expected_amount").to_numpy()
    np.testing.assert_allclose(forecast.expected_amount, (glm_part + model) / 2, rtol=1e-9)
    # the GLM's fitted total matches the training total (Poisson score equations)
    fitted = glm.predict(scaler.transform(glm_design(train)))
    assert fitted.sum() == pytest.approx(train.get_column("actual_revenue").sum(), rel=1e-4)


def test_same_result_in_any_row_order(sample: pl.DataFrame, combined: ValueResult) -> None:
    rng = np.random.default_rng(7)
    shuffled = sample[rng.permutation(sample.height).tolist()]
    again = winback.value(shuffled, as_of=AS_OF, forecast="combined")
    assert again.frame.equals(combined.frame)


def test_too_short_a_history_keeps_the_nbd_with_the_reason(sample: pl.DataFrame) -> None:
    with warnings.catch_warnings():  # three periods: the spend model falls back too
        warnings.simplefilter("ignore", ValueWarning)
        result = winback.value(sample, as_of="1997-03-31", forecast="combined")
    assert result.forecast == "nbd"
    assert "combined forecast" in result.forecast_reason
    assert result.frame.get_column("forecast_amount").equals(
        result.frame.get_column("expected_amount"), check_names=False
    )


def test_backtest_combined_gg_is_values_column_and_next_month_only(
    sample: pl.DataFrame,
) -> None:
    result = winback.backtest(
        sample, origins=["1997-12-31"], horizons=["1M", "3M"], methods=["combined_gg"]
    )
    frame = result.frame
    one = frame.filter(pl.col("horizon") == "1M")
    three = frame.filter(pl.col("horizon") == "3M")
    assert one.get_column("note")[0] is None
    assert three.get_column("note")[0] == "the combined forecast is for the next month only"
    assert result.details is not None
    details = result.details.filter(pl.col("horizon") == "1M")
    value = winback.value(sample, as_of="1997-12-31", forecast="combined").frame
    joined = details.select("customer_id", "combined_gg").join(
        value.select("customer_id", COMBINED_COLUMN), on="customer_id", how="left"
    )
    assert joined.get_column("combined_gg").equals(
        joined.get_column(COMBINED_COLUMN), check_names=False
    )
    assert details.height == sample.get_column("customer_id").n_unique()
