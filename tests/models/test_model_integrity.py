"""Nothing lost, nothing misread in the models (issue 19): no NaN/inf from any prediction, model
files validated field by field, the summary's unit saved with the model, degenerate fits refused
(docs/methods.md#fitting, #bg-nbd)."""

from __future__ import annotations

import json
import math
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winback import summary
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    NBDModel,
    ParetoNBDModel,
    load,
)

CDNOW_BGNBD = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}


def _with_params(cls: type, params: dict[str, float]) -> Any:
    model = cls()
    model.params_ = dict(params)
    return model


# -- 1. predictions are always finite -------------------------------------------------------------
@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_bgnbd_expected_purchases_for_a_huge_frequency_is_finite(cls: type) -> None:
    # Issue 19: x = 99,999 gave NaN (₂F₁ overflows to inf, times (α/(α+t))^(r+x) = 0).
    model = _with_params(cls, CDNOW_BGNBD)
    data = pl.DataFrame(
        {"frequency": [99_999.0, 2.0, 1e6], "recency": [39.0, 30.0, 1e5], "T": [39.0, 39.0, 1e5]}
    )
    expected = model.expected_purchases(39.0, data).to_numpy()
    assert np.all(np.isfinite(expected))
    r, alpha = CDNOW_BGNBD["r"], CDNOW_BGNBD["alpha"]
    ceiling = (r + data["frequency"].to_numpy()) * 39.0 / (alpha + data["T"].to_numpy())
    assert np.all(expected > 0)
    assert np.all(expected <= ceiling)
    # The customer with 99,999 purchases in 39 weeks is nearly surely alive and keeps buying.
    assert expected[0] > 0.5 * ceiling[0]
    # Ordinary customers keep the closed form, bit for bit.
    ordinary = model.expected_purchases(39.0, data.slice(1, 1)).item()
    assert expected[1] == ordinary


@pytest.mark.parametrize(
    ("a", "b"), [(0.7929, 2.4259), (0.3, 5.0), (3.0, 1.0), (1.2, 0.4), (0.05, 40.0)]
)
def test_bgnbd_quadrature_agrees_with_the_closed_form(a: float, b: float) -> None:
    from winback.models.beta_geo import _expected_by_quadrature, fresh_expected

    x = np.array([0.0, 2.0, 10.0, 1000.0, 10.0, 3.0])
    T = np.array([39.0, 39.0, 30.0, 39.0, 1e5, 1.0])
    t = np.array([39.0, 39.0, 39.0, 39.0, 39.0, 1000.0])
    r, alpha = 0.2426 + x, 4.4136 + T
    a_, b_ = np.full(x.size, a), b + x
    np.testing.assert_allclose(
        _expected_by_quadrature(r, alpha, a_, b_, t), fresh_expected(r, alpha, a_, b_, t), rtol=1e-9
    )


def test_bgnbd_expectation_is_continuous_at_a_equal_one() -> None:
    from winback.models.beta_geo import fresh_expected

    # (a+b−1)/(a−1) · [...] is 0/0 at a = 1 (NaN before) and cancels next to it.
    at, below, above = (
        float(fresh_expected(2.25, 43.4, a, 4.4, 39.0)) for a in (1.0, 1.0 - 1e-9, 1.0 + 1e-4)
    )
    assert math.isfinite(at)
    assert at == pytest.approx(below, rel=1e-9)
    assert at == pytest.approx(above, rel=1e-3)


_positive = st.floats(min_value=1e-3, max_value=1e3)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    x=st.integers(min_value=0, max_value=1_000_000),
    T=st.floats(min_value=1e-3, max_value=1e5),
    recency_share=st.floats(min_value=0.0, max_value=1.0),
    t=st.floats(min_value=0.0, max_value=1e5),
    params=st.tuples(_positive, _positive, _positive, _positive),
)
def test_every_prediction_is_finite(
    x: int, T: float, recency_share: float, t: float, params: tuple[float, ...]
) -> None:
    t_x = 0.0 if x == 0 else T * recency_share
    data = pl.DataFrame(
        {
            "frequency": [float(x), float(x)],
            "recency": [t_x, 0.0 if x == 0 else T],  # t_x = T as well
            "T": [T, T],
            "period_frequency": [float(x), float(x)],
            "n_periods": [T, T],
            "spend_frequency": [float(x), float(x)],
            "monetary_value": [params[3] if x else 0.0, 1e6 if x else 0.0],
        }
    )
    outputs: list[Any] = []
    for cls, names in (
        (BetaGeoModel, ("r", "alpha", "a", "b")),
        (ModifiedBetaGeoModel, ("r", "alpha", "a", "b")),
        (ParetoNBDModel, ("r", "alpha", "s", "beta")),
    ):
        model = _with_params(cls, dict(zip(names, params, strict=True)))
        outputs += [
            model.probability_alive(data),
            model.expected_purchases(t, data),
            model.probability_of_n_purchases(t, 2, data),
            model.expected_purchases_new_customer(t),
        ]
    nbd = _with_params(NBDModel, {"r": params[0], "alpha": params[1]})
    outputs += [
        nbd.expected_purchases(t, data),
        nbd.predictive_pmf(2, t, data),
        nbd.predictive_cdf(2, t, data),
        nbd.frequency_upside(data, cap=1e3),
    ]
    gg = _with_params(GammaGammaModel, {"p": params[0], "q": 1.0 + params[1], "gamma": params[2]})
    outputs += [
        gg.expected_spend(data),
        gg.spend_cdf(50.0, 1.0, data),
        gg.spend_upside(data, cap=1e6),
    ]
    for output in outputs:
        assert np.all(np.isfinite(np.asarray(output, dtype=np.float64)))


def test_a_result_that_cannot_be_computed_names_the_customer() -> None:
    from winback.models._base import finite_output

    with pytest.raises(
        WinbackInputError, match=r"expected_purchases .* 1 customer\(s\) .*row \[2\]"
    ):
        finite_output("BG/NBD", "expected_purchases", np.array([1.0, 2.0, math.nan]))


# -- 2. model files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_payload() -> dict[str, Any]:
    data = pl.DataFrame(
        {
            "frequency": [0, 1, 2, 5, 0, 3, 1, 8, 0, 2] * 20,
            "recency": [0.0, 5.0, 10.0, 30.0, 0.0, 20.0, 3.0, 35.0, 0.0, 12.0] * 20,
            "T": [40.0, 38.0, 36.0, 39.0, 20.0, 30.0, 10.0, 39.0, 5.0, 25.0] * 20,
        }
    )
    model = BetaGeoModel().fit(data)
    return model.to_dict()


def _set(path: str, value: Any) -> Any:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = payload
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return edit


def _drop(path: str) -> Any:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = payload
        for part in parents:
            target = target[part]
        del target[last]

    return edit


PAYLOAD_CASES = {
    "nan parameter": (_set("params.r", math.nan), "non-number NaN"),
    "inf parameter": (_set("params.r", math.inf), "non-number Infinity"),
    "negative parameter": (_set("params.alpha", -1.0), r"'params.alpha'.*> 0"),
    "zero parameter": (_set("params.a", 0.0), r"'params.a'.*> 0"),
    "string parameter": (_set("params.b", "2.4"), r"'params.b'.*number"),
    "boolean parameter": (_set("params.r", True), r"'params.r'.*number"),
    "missing parameter": (_drop("params.b"), r"'params.b' is missing"),
    "params a list": (_set("params", [1, 2, 3, 4]), r"'params' must be a JSON object"),
    "unknown parameter": (_set("params.zeta", 1.0), r"'params' has unknown"),
    "unknown model": (_set("model", "MagicModel"), r"'model'.*MagicModel"),
    "model not a string": (_set("model", ["BetaGeoModel"]), r"'model'"),
    "unknown format version": (_set("format_version", 99), r"'format_version' 99"),
    "missing format version": (_drop("format_version"), r"'format_version' None"),
    "boolean format version": (_set("format_version", True), r"'format_version' True"),
    "missing format": (_drop("format"), r"'format'"),
    "nan standard error": (_set("params_se.r", "x"), r"'params_se.r'"),
    "negative standard error": (_set("params_se.r", -1.0), r"'params_se.r'"),
    "covariance ragged": (_set("covariance", [[1.0]]), r"'covariance' must be a 4×4"),
    "log-likelihood string": (_set("log_likelihood", "x"), r"'log_likelihood'"),
    "converged not boolean": (_set("converged", 1), r"'converged' must be a boolean"),
    "n_iter negative": (_set("n_iter", -3), r"'n_iter'"),
    "n_customers float": (_set("n_customers", 2.5), r"'n_customers' must be a whole number"),
    "data summary nested": (_set("data_summary.mean_T", {"a": 1}), r"'data_summary.mean_T'"),
    "settings not strings": (_set("settings", {"T_col": 3}), r"'settings'"),
    "huge integer parameter": (_set("params.r", 10**400), r"'params.r' must be a finite"),
    "huge float parameter": (_set("params.r", 1e300 * 1e300), "non-number Infinity"),
    "huge integer in covariance": (_set("covariance.0", [10**400, 0, 0, 0]), "'covariance'"),
    "unknown unit": (_set("unit", "M"), r"'unit' must be one of"),
    "bad resolution": (_set("resolution", "soon"), r"'resolution'"),
}


@pytest.mark.parametrize("case", sorted(PAYLOAD_CASES))
def test_a_bad_model_file_names_the_file_and_the_field(
    case: str, saved_payload: dict[str, Any], tmp_path: Path
) -> None:
    edit, message = PAYLOAD_CASES[case]
    payload = json.loads(json.dumps(saved_payload))
    edit(payload)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(payload))  # NaN/inf are written as the JSON extensions
    for reader in (load, BetaGeoModel.load):
        with pytest.raises(WinbackConfigError, match=message) as caught:
            reader(path)
        assert str(path) in str(caught.value)


FILE_CASES = {
    "malformed json": ("{not json", "not valid JSON"),
    "json list": ("[1, 2]", "not a JSON object"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply|not a JSON object"),
    "deep nesting in an object": (
        '{"format": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nested too deeply|'format'",
    ),
    "binary": (b"\xff\xfe\x00garbage", "not UTF-8"),
    "empty": ("", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_an_unreadable_model_file_is_a_config_error(case: str, tmp_path: Path) -> None:
    content, message = FILE_CASES[case]
    path = tmp_path / "model.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(WinbackConfigError, match=message) as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_a_directory_or_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(WinbackConfigError, match="is a directory"):
        load(tmp_path)
    with pytest.raises(WinbackConfigError, match="does not exist"):
        BetaGeoModel.load(tmp_path / "nope.json")


def test_gamma_gamma_file_with_q_at_most_one_is_refused(tmp_path: Path) -> None:
    data = pl.DataFrame(
        {
            "spend_frequency": [1, 2, 3, 1, 4, 2, 5, 1] * 25,
            "monetary_value": [10.0, 22.0, 15.0, 40.0, 12.0, 31.0, 18.0, 25.0] * 25,
        }
    )
    data = data.with_columns(pl.col("monetary_value") * (1 + pl.int_range(pl.len()).mod(7) / 3))
    payload = GammaGammaModel().fit(data).to_dict()
    payload["params"]["q"] = 0.9
    path = tmp_path / "gg.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(WinbackConfigError, match=r"'params.q' must be > 1"):
        load(path)


# -- 3. the unit travels with the model -----------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_summaries() -> dict[str, Any]:
    transactions = load_cdnow()
    return {
        unit: summary(transactions, calibration_end="1997-09-30", unit=unit, return_info=True)
        for unit in ("W", "D")
    }


def test_a_weekly_model_refuses_a_daily_summary(
    cdnow_summaries: dict[str, Any], tmp_path: Path
) -> None:
    weekly, daily = cdnow_summaries["W"], cdnow_summaries["D"]
    model = BetaGeoModel().fit(weekly)
    assert (model.unit_, model.resolution_) == ("W", "1d")
    with pytest.raises(WinbackConfigError, match="unit 'W' but this summary is in unit 'D'"):
        model.expected_purchases(39.0 * 7, daily)
    # Same unit: fine, and the same numbers as the plain frame.
    same = model.expected_purchases(39.0, weekly).to_numpy()
    np.testing.assert_array_equal(same, model.expected_purchases(39.0, weekly[0]).to_numpy())
    # The unit is saved, and checked after loading.
    loaded = load(model.save(tmp_path / "bgnbd.json"))
    assert loaded.unit_ == "W"
    with pytest.raises(WinbackConfigError, match="unit"):
        loaded.probability_alive(daily)  # type: ignore[attr-defined]


def test_explicit_unit_and_resolution(cdnow_summaries: dict[str, Any]) -> None:
    frame, _ = cdnow_summaries["W"]
    model = ParetoNBDModel().fit(frame, unit="W", resolution="1d")
    assert model.unit_ == "W"
    daily = cdnow_summaries["D"]
    with pytest.raises(WinbackConfigError, match="unit"):
        model.expected_purchases(7.0, daily)
    with pytest.raises(WinbackConfigError, match="contradicts"):
        BetaGeoModel().fit(cdnow_summaries["W"], unit="D")
    with pytest.raises(WinbackConfigError, match="unit='M'"):
        BetaGeoModel().fit(frame, unit="M")  # type: ignore[arg-type]
    spend = GammaGammaModel().fit(cdnow_summaries["W"], unit="W")
    assert spend.unit_ is None
    assert spend.resolution_ == "1d"
    spend.expected_spend(cdnow_summaries["D"])  # spend has no time unit


def test_an_old_model_file_without_units_still_loads(
    cdnow_summaries: dict[str, Any], tmp_path: Path
) -> None:
    frame, _ = cdnow_summaries["W"]
    payload = BetaGeoModel().fit(frame).to_dict()
    del payload["unit"], payload["resolution"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(payload))
    old = load(path)
    assert old.unit_ is None
    assert np.all(np.isfinite(old.probability_alive(cdnow_summaries["D"]).to_numpy()))  # type: ignore[attr-defined]


# -- 4. degenerate fits ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_one_customer_is_a_degenerate_fit(cls: type) -> None:
    # Issue 19: r = 4e7 with standard errors ~2e11 and converged_ = True.
    data = pl.DataFrame({"frequency": [5], "recency": [1.0], "T": [40.0]})
    with pytest.raises(WinbackFitError, match=r"degenerate fit on 1 customer.*more customers"):
        cls().fit(data)


def test_one_customer_fails_with_and_without_a_calibration_split() -> None:
    days = [1, 2, 3, 4, 5, 6, 20]
    one = pl.DataFrame(
        {
            "customer_id": [7] * 7,
            "ts": [date(1997, 1, d) for d in days[:6]] + [date(1997, 11, 20)],
            "amount": [10.0] * 7,
        }
    )
    for split in ({"calibration_end": "1997-10-08"}, {}):
        frame = summary(one, **split)  # type: ignore[arg-type]
        with pytest.raises(WinbackFitError, match="more customers"):
            BetaGeoModel().fit(frame)


def test_the_bundled_data_fits_are_not_degenerate(cdnow_summaries: dict[str, Any]) -> None:
    weekly = cdnow_summaries["W"]
    for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel):
        assert cls().fit(weekly).converged_
    assert NBDModel().fit(weekly).converged_
    assert GammaGammaModel().fit(weekly).converged_


def test_an_integer_beyond_the_digit_limit_is_a_config_error(
    saved_payload: dict[str, Any], tmp_path: Path
) -> None:
    text = json.dumps(saved_payload).replace('"n_iter": ', '"n_iter": 1' + "0" * 5000 + ', "x": ')
    path = tmp_path / "model.json"
    path.write_text(text)
    with pytest.raises(WinbackConfigError, match="not a valid model file"):
        load(path)


def test_a_plain_frame_warns_once_that_the_unit_is_not_checked(
    cdnow_summaries: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 19: a weekly model given a plain daily frame predicted silently in the wrong unit.
    A plain frame names no unit, so the model says it could not check, once."""
    from winback.models import UnitNotCheckedWarning

    weekly, daily = cdnow_summaries["W"], cdnow_summaries["D"]
    model = BetaGeoModel().fit(weekly)
    with pytest.warns(UnitNotCheckedWarning, match=r"unit 'W' and resolution '1d'.*return_info"):
        model.expected_purchases(39.0 * 7, daily[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.probability_alive(daily[0])  # once per model
        model.expected_purchases(39.0, weekly[0])  # the frame it was fitted on: nothing to say
    loaded = load(model.save(tmp_path / "bgnbd.json"))
    with pytest.warns(UnitNotCheckedWarning):
        loaded.probability_alive(weekly[0])  # type: ignore[attr-defined]
    # a model that does not know its unit has nothing to check and says nothing
    unknown = BetaGeoModel().fit(weekly[0])
    assert unknown.unit_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unknown.expected_purchases(39.0, daily[0])
    # Gamma–Gamma knows only its resolution
    spend = GammaGammaModel().fit(weekly)
    with pytest.warns(UnitNotCheckedWarning, match=r"fitted with resolution '1d'"):
        spend.expected_spend(daily[0])
