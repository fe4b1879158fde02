"""BG/CNBD-k and MBG/CNBD-k (docs/methods.md#cnbd-k): k = 1 against BG/NBD and MBG/NBD, the
likelihood against quadrature of the model's definition, gradients against finite differences,
recovery of parameters and k from simulated data, closed forms against Monte Carlo, the CDNOW
figure, the summary's litt column and the typed failures."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

import winback
from winback._kernels import cnbd as kernels
from winback.datasets import read_cdnow_text
from winback.errors import WinbackConfigError, WinbackInputError
from winback.models import (
    BetaGeoCNBDModel,
    BetaGeoModel,
    ModifiedBetaGeoCNBDModel,
    ModifiedBetaGeoModel,
    load,
    simulate,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PARAMS = {"r": 0.2426, "alpha": 4.414, "a": 0.7929, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return pl.read_csv(DATA / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def cdnow_litt() -> pl.DataFrame:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    return winback.summary(
        tx, calibration_end=date(1997, 9, 30), unit="W", time_col="ts", litt=True
    )


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize(
    ("cnbd", "plain"),
    [(BetaGeoCNBDModel, BetaGeoModel), (ModifiedBetaGeoCNBDModel, ModifiedBetaGeoModel)],
)
def test_k1_equals_bg_and_mbg(cnbd: type, plain: type, cdnow: pl.DataFrame) -> None:
    ours = cnbd.from_params(PARAMS, k=1)
    ref = plain.from_params(PARAMS)
    assert _rel(ours.log_likelihood(cdnow).to_numpy(), ref.log_likelihood(cdnow).to_numpy()) < 1e-10
    assert (
        _rel(ours.probability_alive(cdnow).to_numpy(), ref.probability_alive(cdnow).to_numpy())
        < 1e-10
    )
    for t in (1.0, 39.0, 200.0):
        got = ours.expected_purchases(t, cdnow).to_numpy()
        want = ref.expected_purchases(t, cdnow).to_numpy()
        assert _rel(got, want) < 1e-10
        assert ours.expected_purchases_new_customer(t) == pytest.approx(
            ref.expected_purchases_new_customer(t), rel=1e-10
        )
    fitted = cnbd(k=1).fit(cdnow)
    plain_fit = plain().fit(cdnow)
    assert fitted.log_likelihood_ == pytest.approx(plain_fit.log_likelihood_, rel=1e-10)
    for name in PARAMS:
        assert fitted.params_[name] == pytest.approx(plain_fit.params_[name], rel=1e-6)


def _quadrature_loglik(
    params: tuple[float, float, float, float],
    k: int,
    modified: bool,
    x: int,
    gaps: list[float],
    T: float,
) -> float:
    """ln L straight from the model's definition: Erlang-k densities of the gaps, then either a
    dropout after the last purchase or survival of the Erlang clock to T, integrated over
    λ ~ Gamma(r, α) by quadrature and over p ~ Beta(a, b) in closed form."""
    r, alpha, a, b = params
    t_x = sum(gaps)
    m = x + (1 if modified else 0)
    gone = math.exp(special.betaln(a + 1, b + m - 1) - special.betaln(a, b)) if m > 0 else 0.0
    alive = math.exp(special.betaln(a, b + m) - special.betaln(a, b))

    def integrand(lam: float) -> float:
        density = math.prod(
            lam**k * g ** (k - 1) * math.exp(-lam * g) / math.factorial(k - 1) for g in gaps
        )
        survive = sum((lam * (T - t_x)) ** i / math.factorial(i) for i in range(k)) * math.exp(
            -lam * (T - t_x)
        )
        prior = math.exp(
            r * math.log(alpha) + (r - 1) * math.log(lam) - alpha * lam - math.lgamma(r)
        )
        return prior * density * (gone + alive * survive)

    value, _ = integrate.quad(integrand, 0, math.inf, epsabs=0, epsrel=1e-12, limit=500)
    return math.log(value)


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_likelihood_against_quadrature(k: int, modified: bool) -> None:
    params = (1.3, 3.0, 0.7, 2.2)
    cases = [(0, [], 5.0), (1, [2.0], 6.5), (3, [1.0, 0.5, 2.5], 4.0), (2, [3.0, 1.5], 4.5)]
    for x, gaps, T in cases:
        t_x = sum(gaps)
        litt = sum(math.log(g) for g in gaps)
        got = kernels.cnbd_loglik_each(params, k, modified, [x], [t_x], [T])[0] + (k - 1) * litt
        assert got == pytest.approx(_quadrature_loglik(params, k, modified, x, gaps, T), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 6),
    modified=st.booleans(),
    log_params=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4),
    seed=st.integers(0, 10_000),
)
def test_gradient_against_finite_differences(
    k: int, modified: bool, log_params: list[float], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 8, 30).astype(float)
    T = rng.uniform(1.0, 40.0, 30)
    t_x = np.where(x > 0, T * rng.uniform(0.0, 1.0, 30), 0.0)
    w = rng.integers(1, 5, 30).astype(float)
    params = np.exp(np.array(log_params))
    value, grad = kernels.cnbd_loglik_grad(params, k, modified, x, t_x, T, w)
    assert math.isfinite(value)
    for j in range(4):
        h = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        fd = (
            kernels.cnbd_loglik_grad(up, k, modified, x, t_x, T, w)[0]
            - kernels.cnbd_loglik_grad(down, k, modified, x, t_x, T, w)[0]
        ) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-5, abs=1e-6 * max(1.0, abs(value)))


@pytest.mark.parametrize(
    ("model", "sim", "k", "truth"),
    [
        (BetaGeoCNBDModel, simulate.bgcnbd, 3, {"r": 4.0, "alpha": 6.0, "a": 0.5, "b": 3.0}),
        (
            ModifiedBetaGeoCNBDModel,
            simulate.mbgcnbd,
            2,
            {"r": 2.0, "alpha": 6.0, "a": 0.5, "b": 3.0},
        ),
    ],
)
def test_recovers_parameters_and_k(
    model: type, sim: object, k: int, truth: dict[str, float]
) -> None:
    data = sim(8000, k=k, T=52.0, seed=11, **truth)  # type: ignore[operator]
    fitted = model().fit(data)
    assert fitted.k_ == k
    assert list(fitted.k_log_likelihoods_) == list(range(1, k + 2))  # stopped after the drop
    for name, value in truth.items():
        assert abs(fitted.params_[name] - value) < 3 * fitted.params_se_[name], name


@pytest.mark.parametrize(
    ("model", "sim"),
    [(BetaGeoCNBDModel, simulate.bgcnbd), (ModifiedBetaGeoCNBDModel, simulate.mbgcnbd)],
)
def test_expectations_against_monte_carlo(model: type, sim: object) -> None:
    truth = {"r": 3.0, "alpha": 5.0, "a": 0.6, "b": 2.5}
    fixed = model.from_params(truth, k=3)
    # A new customer: no calibration period at all, then t = 20 weeks.
    fresh = sim(40_000, k=3, T=0.0, holdout=20.0, seed=3, **truth)  # type: ignore[operator]
    counts = fresh["frequency_holdout"].to_numpy()
    se = counts.std() / math.sqrt(counts.size)
    assert abs(fixed.expected_purchases_new_customer(20.0) - counts.mean()) < 4 * se
    # Conditional on the calibration data: E[E[X_holdout | data]] = E[X_holdout].
    data = sim(40_000, k=3, T=30.0, holdout=20.0, seed=4, **truth)  # type: ignore[operator]
    expected = fixed.expected_purchases(20.0, data).to_numpy()
    later = data["frequency_holdout"].to_numpy()
    residual = later - expected
    assert abs(residual.mean()) < 4 * residual.std() / math.sqrt(residual.size)
    # and within frequency groups, where the Erlang clock matters most
    for x in (0, 1, 3):
        rows = data["frequency"].to_numpy() == x
        part = residual[rows]
        assert abs(part.mean()) < 4 * part.std() / math.sqrt(part.size), x


def test_cdnow_picks_k1_with_the_published_likelihood(cdnow_litt: pl.DataFrame) -> None:
    """Platzer & Reutterer (2016) report k = 1 for MBG/CNBD-k on CDNOW (2,357 customers,
    calibration to 1997-09-30, weeks), LL −9582.1: MBG/NBD's."""
    fitted = ModifiedBetaGeoCNBDModel().fit(cdnow_litt)
    assert fitted.k_ == 1
    assert round(fitted.log_likelihood_, 1) == -9582.1
    assert fitted.k_log_likelihoods_[2] < fitted.k_log_likelihoods_[1]


def test_summary_litt_by_hand() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3, 3],
            "ts": [
                date(2024, 1, 1),
                date(2024, 1, 8),
                date(2024, 1, 8),
                date(2024, 1, 22),
                date(2024, 1, 3),
                date(2024, 1, 5),
                date(2024, 3, 1),
            ],
            "amount": [1.0] * 7,
        }
    )
    plain = winback.summary(tx, calibration_end=date(2024, 2, 1), unit="W")
    out = winback.summary(tx, calibration_end=date(2024, 2, 1), unit="W", litt=True)
    assert out.drop("litt").equals(plain)  # the other columns' bits are unchanged
    # customer 1: gaps of 7 and 14 days = 1 and 2 weeks; 2: one occasion; 3: the later one is holdout
    assert out["litt"].to_list() == pytest.approx(
        [math.log(1.0) + math.log(2.0), 0.0, 0.0], abs=1e-15
    )
    days = winback.summary(tx, calibration_end=date(2024, 2, 1), unit="D", litt=True)
    assert days["litt"][0] == pytest.approx(math.log(7.0) + math.log(14.0), rel=1e-15)


def test_save_load_from_params_and_errors(tmp_path: Path, cdnow: pl.DataFrame) -> None:
    model = BetaGeoCNBDModel.from_params(PARAMS, k=3)
    assert model.k_ == 3
    data = cdnow.with_columns(litt=pl.when(pl.col("frequency") > 0).then(0.5).otherwise(0.0))
    path = model.save(tmp_path / "m.json")
    back = load(path)
    assert isinstance(back, BetaGeoCNBDModel)
    assert back.k_ == 3
    np.testing.assert_array_equal(
        back.probability_alive(data).to_numpy(), model.probability_alive(data).to_numpy()
    )
    with pytest.raises(WinbackInputError, match="litt"):
        BetaGeoCNBDModel().fit(cdnow)
    with pytest.raises(WinbackInputError, match="row"):
        BetaGeoCNBDModel().fit(data.with_columns(litt=pl.lit(1.0)))  # x = 0 with litt ≠ 0
    with pytest.raises(WinbackConfigError, match="k must"):
        BetaGeoCNBDModel(k=0).fit(data)
    with pytest.raises(WinbackConfigError, match="k must"):
        BetaGeoCNBDModel.from_params(PARAMS, k=1.5)  # type: ignore[arg-type]
    # per-customer log-likelihoods add up to the fit's (litt term included)
    fitted = BetaGeoCNBDModel(k=2).fit(data)
    assert fitted.log_likelihood().sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 5),
    modified=st.booleans(),
    log_params=st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4),
    seed=st.integers(0, 10_000),
)
def test_newton_pass_against_gradient_kernel_and_finite_differences(
    k: int, modified: bool, log_params: list[float], seed: int
) -> None:
    """The fast pass's value and gradient equal the per-tuple kernel's; its Hessian matches
    central differences of that kernel's gradient."""
    from winback.models._base import compress

    rng = np.random.default_rng(seed)
    n = 60
    x = rng.integers(0, 6, n).astype(float)
    T = np.round(rng.uniform(1.0, 30.0, n), 1)
    t_x = np.where(x > 0, np.round(T * rng.uniform(0.0, 1.0, n), 1), 0.0)
    data = compress(pl.DataFrame({"frequency": x, "recency": t_x, "T": T}), ranked=True)
    cols = (data["frequency"], data["recency"], data["T"], data.weights)
    x_values, starts = data.runs("frequency")
    params = np.exp(np.array(log_params))
    value, grad, hess = kernels.cnbd_newton_terms(
        params,
        k,
        modified,
        starts,
        x_values,
        data.rank("recency"),
        data.distinct("recency"),
        data.rank("T"),
        data.distinct("T"),
        data.weights,
    )
    ref_value, ref_grad = kernels.cnbd_loglik_grad(params, k, modified, *cols)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9 * abs(ref_value))
    for j in range(4):
        h = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        fd = (
            kernels.cnbd_loglik_grad(up, k, modified, *cols)[1]
            - kernels.cnbd_loglik_grad(down, k, modified, *cols)[1]
        ) / (2 * h)
        np.testing.assert_allclose(hess[j], fd, rtol=2e-5, atol=1e-6 * max(1.0, abs(ref_value)))


def test_search_skips_a_degenerate_k() -> None:
    """On very regular data k = 1 runs to a boundary: the search records it as −inf and goes on."""
    data = simulate.mbgcnbd(20_000, k=4, r=3.0, alpha=30.0, a=0.5, b=3.0, T=104.0, seed=5)
    fitted = ModifiedBetaGeoCNBDModel(max_k=6).fit(data)
    assert fitted.k_ == 4
    finite = {k: v for k, v in fitted.k_log_likelihoods_.items() if math.isfinite(v)}
    assert max(finite, key=finite.__getitem__) == 4


def test_summary_litt_out_of_core_equals_in_memory() -> None:
    tx = read_cdnow_text(DATA / "CDNOW_sample.txt")
    kwargs = {"calibration_end": date(1997, 9, 30), "unit": "W", "time_col": "ts", "litt": True}
    whole = winback.summary(tx, **kwargs)
    parts = winback.summary(tx, memory_limit="1MB", **kwargs)
    assert parts.sort("customer_id").equals(whole)


@pytest.mark.parametrize("modified", [False, True])
def test_probability_alive_against_quadrature(modified: bool) -> None:
    """P(alive) = the "alive at T" part of the likelihood over the whole, both by quadrature."""
    params = (1.3, 3.0, 0.7, 2.2)
    r, alpha, a, b = params
    k = 3
    model_class = ModifiedBetaGeoCNBDModel if modified else BetaGeoCNBDModel
    model = model_class.from_params(dict(zip(("r", "alpha", "a", "b"), params, strict=True)), k=k)
    for x, gaps, T in [(1, [2.0], 6.5), (3, [1.0, 0.5, 2.5], 4.0), (2, [3.0, 1.5], 9.0)]:
        t_x = sum(gaps)
        m = x + (1 if modified else 0)
        alive_beta = math.exp(special.betaln(a, b + m) - special.betaln(a, b))

        def alive_part(
            lam: float,
            gaps: list[float] = gaps,
            t_x: float = t_x,
            T: float = T,
            ab: float = alive_beta,
        ) -> float:
            density = math.prod(lam**k * g ** (k - 1) * math.exp(-lam * g) for g in gaps)
            survive = sum((lam * (T - t_x)) ** i / math.factorial(i) for i in range(k))
            prior = lam ** (r - 1) * math.exp(-alpha * lam)
            return prior * density * survive * math.exp(-lam * (T - t_x)) * ab

        def gone_part(lam: float, gaps: list[float] = gaps, m: int = m) -> float:
            density = math.prod(lam**k * g ** (k - 1) * math.exp(-lam * g) for g in gaps)
            gone = math.exp(special.betaln(a + 1, b + m - 1) - special.betaln(a, b))
            return lam ** (r - 1) * math.exp(-alpha * lam) * density * gone

        alive, _ = integrate.quad(alive_part, 0, math.inf, epsrel=1e-12, limit=400)
        gone, _ = integrate.quad(gone_part, 0, math.inf, epsrel=1e-12, limit=400)
        frame = pl.DataFrame({"frequency": [x], "recency": [t_x], "T": [T]})
        assert model.probability_alive(frame)[0] == pytest.approx(alive / (alive + gone), rel=1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000))
def test_row_order_does_not_change_a_bit(seed: int) -> None:
    data = simulate.bgcnbd(600, k=2, r=2.0, alpha=4.0, a=0.7, b=3.0, T=30.0, seed=seed)
    shuffled = data.sample(fraction=1.0, shuffle=True, seed=seed)
    one, two = BetaGeoCNBDModel(k=2).fit(data), BetaGeoCNBDModel(k=2).fit(shuffled)
    assert one.params_ == two.params_
    assert one.log_likelihood_ == two.log_likelihood_
    order = shuffled["customer_id"].to_numpy()
    np.testing.assert_array_equal(
        one.expected_purchases(10.0, data).to_numpy()[order],
        two.expected_purchases(10.0, shuffled).to_numpy(),
    )
