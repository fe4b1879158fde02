"""The in-process scorer (docs/methods.md#scorer): equal to the batch functions bit for bit,
one customer equal to many, thread-safe, immutable, and every configuration error typed."""

from __future__ import annotations

import json
import threading
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from tests.conftest import START, transaction_logs
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError
from winback.models import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel, ParetoNBDModel
from winback.rfm import QUADRANT_LABELS
from winback.scorer import SCORE_COLUMNS, CustomerScore, Scorer, ValueSettings
from winback.silence import SILENCE_COLUMNS

VALUE = {"horizon": 6, "value_levels": (20.0, 100.0), "quadrant_cuts": (50.0, 2.0)}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    stats = winback.summary(load_cdnow(), as_of="1998-06-30", return_info=True)
    return {
        "bgnbd": BetaGeoModel().fit(stats),
        "pareto": ParetoNBDModel().fit(stats),
        "gg": GammaGammaModel().fit(stats),
    }


@pytest.fixture(scope="module")
def scorer(fitted: dict[str, Any]) -> Scorer:
    return Scorer(models={"bgnbd": fitted["bgnbd"], "gg": fitted["gg"]}, value=VALUE)


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    """Models at a 6-hour resolution in days, and a strategy rule reading a number: the
    one-customer path's frame fallback, with datetime timestamps."""
    info = winback.summary(
        load_cdnow(), as_of="1998-06-30", unit="D", resolution="6h", return_info=True
    )
    rules = tmp_path_factory.mktemp("rules") / "numeric.toml"
    rules.write_text(
        'format = 1\n[[classifier]]\ncolumn = "strategy"\ninputs = ["p_alive", "last_ts"]\n'
        'default = "wait"\nrules = [{ label = "call", when = { p_alive = { lt = 0.6 } } }]\n'
    )
    return Scorer(
        models=[BetaGeoModel().fit(info), GammaGammaModel().fit(info)],
        rules=rules,
        value={**VALUE, "discount_rate": 0.01, "period": "quarter", "horizon": 3},
    )


@pytest.fixture(scope="module")
def discounted(fitted: dict[str, Any]) -> Scorer:
    value = {**VALUE, "discount_rate": 0.02, "margin": 0.3, "period": "week"}
    return Scorer(models={"pareto": fitted["pareto"], "gg": fitted["gg"]}, value=value)


def batch(scorer: Scorer, tx: pl.DataFrame, as_of: Any) -> pl.DataFrame:
    """The scorer's columns the batch way: winback.silence, winback.summary, the models'
    frame methods, winback.quadrant with the cuts and the rules through winback.classify."""
    settings = scorer.value_settings
    silent = winback.silence(tx, as_of=as_of, resolution=scorer.resolution)
    stats = winback.summary(
        tx, as_of=as_of, unit=scorer.unit, resolution=scorer.resolution, return_info=True
    )
    count, spend = scorer.purchase_model, scorer.spend_model
    unit_days = 7.0 if scorer.unit == "W" else 1.0
    step = settings.period_days() / unit_days
    if settings.discount_rate == 0.0:
        purchases = count.expected_purchases(settings.horizon * step, stats).to_numpy()
        discounted = purchases
    else:
        previous = np.zeros(stats[0].height)
        discounted = np.zeros(stats[0].height)
        for k in range(1, settings.horizon + 1):
            cumulative = count.expected_purchases(k * step, stats).to_numpy()
            discounted = discounted + (cumulative - previous) / (1.0 + settings.discount_rate) ** k
            previous = cumulative
        purchases = previous
    has_money = "amount" in tx.columns and spend is not None
    frame = silent.with_columns(
        stats[0].get_column("frequency"),
        stats[0].get_column("recency"),
        stats[0].get_column("T"),
        count.probability_alive(stats).alias("p_alive"),
        pl.Series("expected_purchases", purchases),
    )
    if has_money:
        assert spend is not None
        mean = spend.expected_spend(stats).to_numpy()
        frame = frame.with_columns(
            pl.Series("expected_mean_spend", mean),
            pl.Series("expected_spend", purchases * mean),
            pl.Series("expected_value", settings.margin * (discounted * mean)),
        )
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c)
            for c in ("expected_mean_spend", "expected_spend", "expected_value")
        )
    mid, high = settings.value_levels or (0.0, 0.0)
    value = pl.col("expected_value")
    frame = frame.with_columns(
        pl.when(value >= high)
        .then(pl.lit("high"))
        .when(value >= mid)
        .then(pl.lit("mid"))
        .when(value.is_not_null())
        .then(pl.lit("low"))
        .cast(pl.Enum(["high", "mid", "low"]))
        .alias("value_level")
    )
    cuts = settings.quadrant_cuts
    assert cuts is not None
    if frame.height:
        frame = winback.quadrant(frame, contribution_cut=cuts[0], loyalty_cut=cuts[1]).drop(
            "quadrant_contribution", "quadrant_loyalty"
        )
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Enum(QUADRANT_LABELS)).alias("quadrant"))
    return winback.classify(frame, scorer.rules).select(SCORE_COLUMNS)


def assert_bits_equal(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert left.columns == right.columns
    assert_frame_equal(left, right, check_exact=True)
    for name in left.columns:
        if left.schema[name] == pl.Float64:  # bit for bit, not just ==
            a = left.get_column(name).to_numpy().view(np.int64)
            b = right.get_column(name).to_numpy().view(np.int64)
            assert np.array_equal(a, b), name


def as_of_of(day: int | None) -> Any:
    return None if day is None else START + timedelta(days=day, hours=13)


@given(log=transaction_logs(), day=st.none() | st.integers(-2, 45), amounts=st.booleans())
def test_score_equals_the_batch_functions(
    scorer: Scorer,
    discounted: Scorer,
    hourly: Scorer,
    log: pl.DataFrame,
    day: int | None,
    amounts: bool,
) -> None:
    tx = log if amounts else log.drop("amount")
    for each in (scorer, discounted, hourly):
        as_of = as_of_of(day)
        if as_of is not None and tx.height and as_of < tx.get_column("ts").min():
            # an as_of before every purchase: refused by the batch functions and the scorer alike
            with pytest.raises(WinbackConfigError) as batch_error:
                batch(each, tx, as_of)
            with pytest.raises(WinbackConfigError) as scorer_error:
                each.score(tx, as_of=as_of)
            assert str(scorer_error.value) == str(batch_error.value)
            continue
        assert_bits_equal(each.score(tx, as_of=as_of), batch(each, tx, as_of))


@given(log=transaction_logs(string_ids=False), day=st.integers(-2, 45), amounts=st.booleans())
def test_score_one_equals_its_row_of_score(
    scorer: Scorer,
    discounted: Scorer,
    hourly: Scorer,
    log: pl.DataFrame,
    day: int,
    amounts: bool,
) -> None:
    tx = log if amounts else log.drop("amount")
    as_of = as_of_of(day)
    for each in (scorer, discounted, hourly):
        if tx.height and as_of < tx.get_column("ts").min():
            with pytest.raises(WinbackConfigError, match="before the first purchase"):
                each.score(tx, as_of=as_of)
            first = tx.sort("ts").row(0, named=True)
            with pytest.raises(WinbackConfigError, match="before the first purchase"):
                each.score_one(np.array([first["ts"]], dtype="datetime64[us]"), as_of=as_of)
            continue
        many = each.score(tx, as_of=as_of)
        for row in many.iter_rows(named=True):
            rows = tx.filter(pl.col("customer_id") == row.pop("customer_id"))
            times = rows.get_column("ts").to_numpy()
            money = rows.get_column("amount").to_numpy() if amounts else None
            one = each.score_one(times, money, as_of=as_of).as_dict()
            assert list(one) == list(row)
            for name, value in row.items():
                got = one[name]
                assert got == value, (name, got, value)
                assert type(got) is type(value), (name, got, value)
                if isinstance(value, float):
                    assert np.float64(got).view(np.int64) == np.float64(value).view(np.int64)


def test_score_one_defaults_to_the_customers_latest_purchase(scorer: Scorer) -> None:
    days = np.array(["2024-01-03", "2024-02-10", "2024-05-01"], dtype="datetime64[D]")
    money = np.array([30.0, 12.5, 40.0])
    one = scorer.score_one(days, money)
    tx = pl.DataFrame({"customer_id": [7, 7, 7], "ts": days, "amount": money})
    row = scorer.score(tx).drop("customer_id").row(0, named=True)
    assert one.as_dict() == row
    assert one.recency_days == 0.0  # as_of: the end of that day, floored to its bucket
    typo = np.array(["2024-01-03", "2024-02-10", "2204-05-01"], dtype="datetime64[D]")
    with pytest.raises(WinbackInputError, match="look like typos") as batch_error:
        scorer.score(pl.DataFrame({"customer_id": [7, 7, 7], "ts": typo}))
    with pytest.raises(WinbackInputError, match="look like typos") as one_error:
        scorer.score_one(typo, customer_id=7)
    assert str(one_error.value) == str(batch_error.value)
    assert isinstance(one, CustomerScore)


def test_concurrent_scores_are_identical(scorer: Scorer) -> None:
    tx = load_cdnow()
    expected = scorer.score(tx, as_of="1998-06-30")
    results: list[pl.DataFrame] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(2):
                results.append(scorer.score(tx, as_of="1998-06-30"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 16
    for result in results:
        assert_bits_equal(result, expected)


def test_concurrent_score_one_is_identical(scorer: Scorer) -> None:
    rng = np.random.default_rng(5)
    histories = [
        (
            np.datetime64("2024-01-01")
            + np.sort(rng.integers(0, 400, 50)).astype("timedelta64[D]"),
            rng.gamma(2.0, 20.0, 50),
        )
        for _ in range(40)
    ]
    expected = [scorer.score_one(t, a, as_of="2025-03-01") for t, a in histories]
    outcomes: list[bool] = []

    def work() -> None:
        outcomes.append(
            [scorer.score_one(t, a, as_of="2025-03-01") for t, a in histories] == expected
        )

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [True] * 8


def test_from_dir_reads_what_winback_fit_writes(
    tmp_path: Path, fitted: dict[str, Any], scorer: Scorer
) -> None:
    for name in ("bgnbd", "gg"):
        fitted[name].save(tmp_path / f"{name}.json")
    loaded = Scorer.from_dir(tmp_path, value=VALUE)
    tx = load_cdnow().filter(pl.col("customer_id") < 500)
    assert_bits_equal(loaded.score(tx), scorer.score(tx))
    assert loaded.describe()["purchase_model"]["name"] == "bgnbd"
    json.dumps(loaded.describe())


def test_from_dir_written_by_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from winback.cli import app

    data = tmp_path / "tx.parquet"
    load_cdnow().filter(pl.col("customer_id") < 3000).write_parquet(data)
    result = CliRunner().invoke(app, ["fit", str(data), "-o", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    loaded = Scorer.from_dir(tmp_path / "models")
    assert loaded.score(data).height == 3000 - 1


def test_the_scorer_is_immutable_and_keeps_its_own_models(
    fitted: dict[str, Any], scorer: Scorer
) -> None:
    with pytest.raises(AttributeError, match="immutable"):
        scorer._count = None  # type: ignore[misc]
    model = BetaGeoModel.from_dict(fitted["bgnbd"].to_dict())
    mine = Scorer(models=[model])
    before = mine.score_one(np.array(["2024-01-01", "2024-03-01"], dtype="datetime64[D]"))
    model.params_["r"] = 50.0
    mine.purchase_model.params_["r"] = 50.0
    after = mine.score_one(np.array(["2024-01-01", "2024-03-01"], dtype="datetime64[D]"))
    assert before == after
    assert after.expected_value is None
    assert after.strategy == "message"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "holds no .json model files"),
        (lambda d: _write(d / "bgnbd.json", "{not json"), r"bgnbd\.json.*not valid JSON"),
        (lambda d: _write(d / "gg.json", json.dumps({"format": "x"})), r"gg\.json': field 'model'"),
    ],
)
def test_from_dir_errors_name_the_file(tmp_path: Path, setup: Any, message: str) -> None:
    setup(tmp_path)
    with pytest.raises(WinbackConfigError, match=message):
        Scorer.from_dir(tmp_path)


def test_configuration_errors(tmp_path: Path, fitted: dict[str, Any]) -> None:
    bg, gg, pareto = fitted["bgnbd"], fitted["gg"], fitted["pareto"]
    with pytest.raises(WinbackConfigError, match="does not exist"):
        Scorer.from_dir(tmp_path / "missing")
    with pytest.raises(WinbackConfigError, match="no purchase model"):
        Scorer(models={"gg": gg})
    with pytest.raises(WinbackConfigError, match="several models could be the purchase_model"):
        Scorer(models={"bgnbd": bg, "pareto": pareto})
    assert Scorer(models={"bgnbd": bg, "pareto": pareto}, purchase_model="pareto")
    with pytest.raises(WinbackConfigError, match="purchase_model='gg' is a GammaGammaModel"):
        Scorer(models={"bgnbd": bg, "gg": gg}, purchase_model="gg")
    with pytest.raises(WinbackConfigError, match="not fitted"):
        Scorer(models=[BetaGeoModel()])
    with pytest.raises(WinbackConfigError, match="not a winback model"):
        Scorer(models={"x": object()})  # type: ignore[dict-item]
    old = bg.to_dict()
    old["unit"] = None
    with pytest.raises(WinbackConfigError, match="field 'unit' is missing"):
        Scorer(models={"old": BetaGeoModel.from_dict(old)})
    weekly = bg.to_dict()
    weekly["resolution"] = "week"  # a summary(resolution="week") fit: calendar weeks
    with pytest.raises(WinbackConfigError, match=r"calendar weeks.*refit with resolution='1d'"):
        Scorer(models={"weekly": BetaGeoModel.from_dict(weekly)})
    hourly = gg.to_dict()
    hourly["resolution"] = "1h"
    with pytest.raises(WinbackConfigError, match="field 'resolution' is '1h'"):
        Scorer(models={"bgnbd": bg, "gg": GammaGammaModel.from_dict(hourly)})
    with pytest.raises(WinbackConfigError, match="no classifier writes column 'strategy'"):
        Scorer(models=[bg], rules="salon")
    rules = _write(
        tmp_path / "r.toml",
        'format = 1\n[[classifier]]\ncolumn = "strategy"\ninputs = ["lifetime"]\n'
        'rules = [{ label = "x", when = { lifetime = { gt = 1 } } }]\n',
    )
    with pytest.raises(WinbackConfigError, match="unknown column 'lifetime'"):
        Scorer(models=[bg], rules=rules)
    for bad, message in [
        ({"horizon": 0}, "'horizon'"),
        ({"period": "fortnight"}, "'period'"),
        ({"discount_rate": -1.0}, "'discount_rate'"),
        ({"margin": 1.5}, "'margin'"),
        ({"value_levels": (100.0, 20.0)}, "'value_levels'"),
        ({"quadrant_cuts": (1.0, float("nan"))}, "'quadrant_cuts'"),
        ({"horizons": 3}, "'horizons' is unknown"),
    ]:
        with pytest.raises(WinbackConfigError, match=message):
            Scorer(models=[bg], value=bad)
    with pytest.raises(WinbackConfigError, match="min_occasions"):
        Scorer(models=[bg], min_occasions=0)


def test_a_numeric_strategy_rule_is_applied_per_customer(
    tmp_path: Path, fitted: dict[str, Any]
) -> None:
    rules = _write(
        tmp_path / "r.toml",
        'format = 1\n[[classifier]]\ncolumn = "strategy"\ninputs = ["p_alive"]\n'
        'default = "wait"\nrules = [{ label = "call", when = { p_alive = { lt = 0.3 } } }]\n',
    )
    scorer = Scorer(models=[fitted["bgnbd"]], rules=rules)
    tx = load_cdnow().filter(pl.col("customer_id") < 200)
    many = scorer.score(tx, as_of="1998-06-30")
    assert set(many.get_column("strategy").cast(pl.String)) == {"call", "wait"}
    for row in many.head(20).iter_rows(named=True):
        times = tx.filter(pl.col("customer_id") == row["customer_id"]).get_column("ts")
        assert scorer.score_one(times.to_numpy(), as_of="1998-06-30").strategy == row["strategy"]


def test_score_one_refuses_bad_input(scorer: Scorer) -> None:
    days = np.array(["2024-01-03", "2024-02-10"], dtype="datetime64[D]")
    with pytest.raises(WinbackInputError, match="empty"):
        scorer.score_one(np.array([], dtype="datetime64[D]"))
    with pytest.raises(WinbackInputError, match="NaT"):
        scorer.score_one(np.array(["2024-01-03", "NaT"], dtype="datetime64[D]"))
    with pytest.raises(WinbackInputError, match="integers are ambiguous"):
        scorer.score_one(np.array([1, 2]))
    with pytest.raises(WinbackInputError, match="one amount per purchase"):
        scorer.score_one(days, np.array([1.0]))
    with pytest.raises(WinbackInputError, match="NaN or infinite"):
        scorer.score_one(days, np.array([1.0, np.inf]))
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        scorer.score_one(days, as_of="2023-12-31")
    with pytest.raises(WinbackConfigError, match="not an ISO date"):
        scorer.score_one(days, as_of="yesterday")


def test_value_settings_defaults_come_from_options() -> None:
    from winback._options import HORIZON_PERIODS, PERIOD

    settings = ValueSettings()
    assert (settings.horizon, settings.period) == (HORIZON_PERIODS, PERIOD)
    assert ValueSettings(period="14d").period_days() == 14.0


def test_silence_columns_lead_the_output(scorer: Scorer) -> None:
    assert SCORE_COLUMNS[: len(SILENCE_COLUMNS)] == SILENCE_COLUMNS
    out = scorer.score(pl.DataFrame(schema={"customer_id": pl.Int64, "ts": pl.Datetime("us")}))
    assert out.height == 0
    assert out.columns == list(SCORE_COLUMNS)


def test_the_benchmark_runs_small() -> None:
    import importlib.util
    import sys

    benches = Path(__file__).resolve().parents[1] / "benches"
    sys.path.insert(0, str(benches))
    try:
        spec = importlib.util.spec_from_file_location("bench_scorer", benches / "bench_scorer.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.run(calls=50, customers=300, repeat=2)
    finally:
        sys.path.remove(str(benches))
    assert result["score_one"]["p50_us"] > 0
    assert result["score"]["customers"] == 300


# -- the one-customer scalar path (docs/methods.md#scorer) ----------------------------------------
@pytest.fixture(scope="module")
def scalar_scorers(fitted: dict[str, Any]) -> list[Scorer]:
    """Scorers whose one-customer path runs on floats: BG/NBD and MBG/NBD, with and without
    discounting, with Gamma–Gamma."""
    stats = winback.summary(load_cdnow(), as_of="1998-06-30", return_info=True)
    modified = ModifiedBetaGeoModel().fit(stats)
    discounting = {**VALUE, "discount_rate": 0.02, "margin": 0.3, "period": "week"}
    return [
        Scorer(models={"bgnbd": fitted["bgnbd"], "gg": fitted["gg"]}, value=VALUE),
        Scorer(models={"bgnbd": fitted["bgnbd"], "gg": fitted["gg"]}, value=discounting),
        Scorer(models={"mbgnbd": modified, "gg": fitted["gg"]}, value=VALUE),
        Scorer(models={"mbgnbd": modified, "gg": fitted["gg"]}, value=discounting),
    ]


def _bits(value: float | None) -> int | None:
    return None if value is None else int(np.float64(value).view(np.int64))


def _array_path(
    scorer: Scorer, x: float, t_x: float, T: float, spend_x: float, z: float
) -> list[float | None]:
    arrays = scorer._predict(
        np.array([x]), np.array([t_x]), np.array([T]), np.array([spend_x]), np.array([z])
    )
    return [None if v is None else float(v[0]) for v in arrays]


def test_scalar_path_equals_the_array_path_on_every_cdnow_customer(
    scalar_scorers: list[Scorer],
) -> None:
    """All 2,357 CDNOW customers through the models' array methods at once and through the
    float path one by one: the same bits, and the float path is taken for every one of them
    (it is not silently bypassed)."""
    stats = winback.summary(load_cdnow(), as_of="1998-06-30")
    x = stats.get_column("frequency").cast(pl.Float64).to_numpy()
    t_x, T = stats.get_column("recency").to_numpy(), stats.get_column("T").to_numpy()
    spend_x = stats.get_column("spend_frequency").cast(pl.Float64).to_numpy()
    z = stats.get_column("monetary_value").to_numpy()
    for scorer in scalar_scorers:
        many = scorer._predict(x, t_x, T, spend_x, z)
        for i in range(x.shape[0]):
            one = scorer._predict_scalar(float(x[i]), t_x[i], T[i], float(spend_x[i]), z[i])
            assert one is not None, (scorer, i)
            got = [_bits(v) for v in one]
            assert got == [_bits(None if c is None else float(c[i])) for c in many], (scorer, i)


@given(
    x=st.integers(0, 60) | st.integers(61, 20_000),
    share=st.floats(0.0, 1.0),
    T=st.floats(0.0, 800.0) | st.floats(800.0, 1e5),
    spend_x=st.integers(0, 60),
    z=st.just(0.0) | st.floats(1e-3, 1e5),
    which=st.integers(0, 3),
)
def test_scalar_path_equals_the_array_path(
    scalar_scorers: list[Scorer],
    x: int,
    share: float,
    T: float,
    spend_x: int,
    z: float,
    which: int,
) -> None:
    """Random and extreme summaries (up to 20,000 repeat purchases, where ₂F₁ overflows and the
    models take their quadrature fallback): the float path gives the array path's bits or
    declines (None), and score_one then takes the array path."""
    scorer = scalar_scorers[which]
    t_x = T * share if x > 0 else 0.0
    one = scorer._predict_scalar(float(x), t_x, T, float(spend_x), z)
    if one is None:
        return
    assert [_bits(v) for v in one] == [
        _bits(v) for v in _array_path(scorer, float(x), t_x, T, float(spend_x), z)
    ]


def test_float_path_declines_where_the_closed_form_fails(scalar_scorers: list[Scorer]) -> None:
    """20,000 repeat purchases in 401 weeks (possible at an hourly resolution): ₂F₁ overflows,
    the models take their quadrature fallback and the float path declines, so score_one uses
    the array path (the models' own fallback) instead of returning its own value."""
    for scorer in scalar_scorers[0::2]:  # a horizon of 6 months
        assert scorer._predict_scalar(20_000.0, 400.0, 401.0, 20_000.0, 30.0) is None
        assert all(
            v is not None and np.isfinite(v)
            for v in _array_path(scorer, 20_000.0, 400.0, 401.0, 20_000.0, 30.0)
        )


def test_score_one_reads_an_aware_as_of_each_time(scorer: Scorer) -> None:
    """The same instant in two zones is two wall-clock cut-offs (docs/methods.md#as-of): the
    one-customer path's memory of as_of values must not mix them up."""
    days = np.array(["2024-01-03", "2024-02-10"], dtype="datetime64[D]")
    utc = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=2)))  # 2024-03-02 01:00 on the wall clock
    tx = pl.DataFrame({"customer_id": [1, 1], "ts": days})
    seen = []
    for as_of in (utc, east, utc, "2024-03-01", date(2024, 3, 1)):
        one = scorer.score_one(days, as_of=as_of).as_dict()
        assert one == scorer.score(tx, as_of=as_of).drop("customer_id").row(0, named=True)
        seen.append(one["recency_days"])
    assert seen[1] == seen[0] + 1.0
    assert seen[0] == seen[2] == seen[3] == seen[4]


# -- the one-customer path's input checks (docs/methods.md#scorer) --------------------------------
@given(
    days=st.lists(st.integers(0, 3_000), min_size=1, max_size=40),
    missing=st.data(),
    unit=st.sampled_from(["D", "s", "us", "ns"]),
)
def test_score_one_names_the_first_missing_time_and_bad_amount(
    scorer: Scorer, days: list[int], missing: st.DataObject, unit: str
) -> None:
    """NaT anywhere, in any datetime64 unit: refused naming the first one's position (found by
    the one argmin that also gives the first purchase); likewise the first non-finite amount.
    Without either, the first purchase read off the argmin decides the as_of refusal exactly
    as the frame path's minimum does."""
    base = np.datetime64("2020-01-01", unit)
    times = base + np.array(days, dtype="timedelta64[D]").astype(f"timedelta64[{unit}]")
    holes = sorted(set(missing.draw(st.lists(st.integers(0, len(days) - 1), max_size=3))))
    amounts = np.full(len(days), 10.0)
    if holes:
        gappy = times.copy()
        gappy[holes] = np.datetime64("NaT")
        with pytest.raises(WinbackInputError, match=f"position {holes[0]} is missing"):
            scorer.score_one(gappy, amounts, as_of="2030-01-01")
        bad = amounts.copy()
        bad[holes] = [np.nan, np.inf, -np.inf][: len(holes)]
        with pytest.raises(WinbackInputError, match=f"at position {holes[0]} is NaN"):
            scorer.score_one(times, bad, as_of="2030-01-01")
    first = str(np.datetime64(times.min(), "D"))
    day_before = str(np.datetime64(first) - np.timedelta64(1, "D"))
    with pytest.raises(WinbackConfigError, match="before the first purchase"):
        scorer.score_one(times, amounts, as_of=day_before)
    assert scorer.score_one(times, amounts, as_of=first).n_occasions >= 1


def test_customer_score_built_without_init_equals_the_dataclass(scorer: Scorer) -> None:
    """score_one's CustomerScore (built without the frozen __init__) is the dataclass built
    field by field: equal, same hash and repr, frozen, as_dict a copy in field order."""
    days = np.array(["2024-01-03", "2024-02-10", "2024-05-01"], dtype="datetime64[D]")
    one = scorer.score_one(days, np.array([30.0, 12.5, 40.0]), as_of="2024-06-30")
    values = one.as_dict()
    rebuilt = CustomerScore(**values)
    assert one == rebuilt
    assert hash(one) == hash(rebuilt)
    assert repr(one) == repr(rebuilt)
    assert list(values) == [f.name for f in fields(CustomerScore)]
    values["strategy"] = "changed"
    assert one.strategy != "changed"
    with pytest.raises(AttributeError):
        one.strategy = "changed"  # type: ignore[misc]
