"""Pareto/NBD's exact-Hessian Newton fit (docs/methods.md#pareto-nbd): the second-order jets of
the ₂F₁ pieces against mpmath, the pass's value, gradient and Hessian against the first-order
kernel and its finite differences, and the fit against the general (L-BFGS-B) path."""

from __future__ import annotations

import math
from pathlib import Path

import mpmath as mp
import numpy as np
import polars as pl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from winback._kernels import likelihood as lik
from winback._kernels import newton as kernels
from winback._kernels import special
from winback.models import ParetoNBDModel, simulate
from winback.models import _fitting as fitting
from winback.models._summary_data import checked_rft, compressed_rft

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
F64 = NDArray[np.float64]

# Entries of a jet in three variables: value, gradient, upper Hessian (row-major).
ORDERS_3 = [
    (0, 0, 0),
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (2, 0, 0),
    (1, 1, 0),
    (1, 0, 1),
    (0, 2, 0),
    (0, 1, 1),
    (0, 0, 2),
]


def _mp_jet(
    function: object, point: tuple[float, float, float], orders: list[tuple[int, ...]]
) -> F64:
    """Derivatives of ``function`` at ``point`` by mpmath (25 digits; mp.diff's own steps)."""
    with mp.workdps(25):
        args = tuple(mp.mpf(v) for v in point)
        return np.array([float(mp.diff(function, args, order)) for order in orders])


def _log_hyp(R: object, Rp: object, z: object) -> object:
    return mp.log(mp.hyp2f1(1, R, R + Rp, z))


def _log_split(R: object, Rp: object, eps: object) -> object:
    """ln ∫_ε^1 w^−R' (1−w)^(R+R'−2) dw = N ln(1−ε) + (1−R') ln ε + ln ₂F₁(1, R; R+R'; 1−ε) − ln N
    (the substitution that gives likelihood's two forms of Φ), N = R+R'−1."""
    N = R + Rp - 1
    return N * mp.log(1 - eps) + (1 - Rp) * mp.log(eps) + _log_hyp(R, Rp, 1 - eps) - mp.log(N)


def _close(got: F64, want: F64, tol: float) -> None:
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert np.all(err <= tol), (got, want, err)


def _hyp_points(n: int, seed: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < n:
        R, Rp = 10.0 ** rng.uniform(-2.0, 2.5, 2)
        if R + Rp <= 1.05:
            continue
        # both methods: the series (z ≤ ½) and the continued fraction up to z = 1 − w0, where
        # the split integral takes over (w0 = min(½, 1/N), N = R+R'−1)
        top = 1.0 - min(0.5, 1.0 / (R + Rp - 1.0))
        z = rng.uniform(0.0, 0.5) if rng.random() < 0.4 else rng.uniform(0.5, top)
        points.append((float(R), float(Rp), float(z)))
    return points


def test_hyp_jet_value_and_gradient_match_mpmath_at_300_points() -> None:
    for point in _hyp_points(300, seed=1):
        got = np.array(special.hyp_jet(*point))[:4]
        _close(got, _mp_jet(_log_hyp, point, ORDERS_3[:4]), 1e-11)


def test_hyp_jet_hessian_matches_mpmath() -> None:
    for point in _hyp_points(60, seed=2):
        got = np.array(special.hyp_jet(*point))
        _close(got, _mp_jet(_log_hyp, point, ORDERS_3), 1e-9)


def _split_points(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < n:
        R, Rp = 10.0 ** rng.uniform(-2.0, 2.5, 2)
        N = R + Rp - 1.0
        if N <= 0.05:
            continue
        w0 = min(0.5, 1.0 / N)
        eps = w0 * 10.0 ** rng.uniform(-6.0, -0.01)
        points.append((float(R), float(Rp), float(eps), w0))
    return points


def test_split_integral_jet_matches_mpmath() -> None:
    for R, Rp, eps, w0 in _split_points(60, seed=3):
        got = np.array(special.split_integral_jet(R, Rp, eps, w0))
        orders = ORDERS_3 if R < 100 else ORDERS_3[:4]
        want = _mp_jet(_log_split, (R, Rp, eps), orders)
        _close(got[: len(orders)], want, 1e-9)


# --- the pass: value and gradient equal the first-order kernel's, Hessian its differences --------

log_param = st.floats(-3.0, 3.0).map(lambda e: float(10.0**e))
x_counts = st.one_of(st.just(0.0), st.integers(1, 30).map(float), st.integers(1, 3_000).map(float))
horizons = st.floats(-2.0, 3.5).map(lambda e: float(10.0**e))


@st.composite
def pareto_params(draw: st.DrawFn) -> list[float]:
    """Anywhere in [1e-3, 1e3]^4, often with β equal or very close to α (₂F₁'s branch point)."""
    r, alpha, s, beta = (draw(log_param) for _ in range(4))
    tie = draw(st.sampled_from([None, None, 0.0, 1e-12, -1e-9, 1e-4]))
    if tie is not None:
        beta = alpha * (1.0 + tie)
    return [r, alpha, s, beta]


@st.composite
def rfm_tuple(draw: st.DrawFn) -> tuple[float, float, float]:
    x = draw(x_counts)
    T = draw(horizons)
    if x == 0.0:
        return 0.0, 0.0, T
    share = draw(st.one_of(st.sampled_from([0.0, 1.0, 1e-6]), st.floats(0.0, 1.0)))
    return x, T * share, T


def _pass(params: list[float], x: F64, t_x: F64, T: F64, w: F64) -> tuple[float, F64, F64]:
    """The Newton pass over tuples sorted by (x, t_x, T)."""
    order = np.lexsort((T, t_x, x))
    x, t_x, T, w = (np.ascontiguousarray(v[order], dtype=np.float64) for v in (x, t_x, T, w))
    x_values, first = np.unique(x, return_index=True)
    group_starts = np.append(first, x.size).astype(np.int64)
    T_values, T_rank = np.unique(T, return_inverse=True)
    return kernels.pareto_nbd_newton_terms(
        np.asarray(params, dtype=np.float64),
        group_starts,
        x_values,
        t_x,
        T_rank.astype(np.uint32),
        T_values,
        w,
    )


def _first_order(params: F64, x: F64, t_x: F64, T: F64, w: F64) -> tuple[float, F64]:
    value, grad = lik.pareto_nbd_loglik_grad(params, x, t_x, T, w)
    return float(value), np.asarray(grad)


def _check_against_first_order(params: list[float], x: F64, t_x: F64, T: F64, w: F64) -> None:
    p = np.asarray(params, dtype=np.float64)
    value, grad, hess = _pass(params, x, t_x, T, w)
    want_value, want_grad = _first_order(p, x, t_x, T, w)
    assert math.isfinite(value)
    assert np.all(np.isfinite(grad))
    assert np.all(np.isfinite(hess))
    assert abs(value - want_value) <= 1e-11 * max(1.0, abs(want_value))
    # in log-parameters, where every entry has the scale of ℓ
    grad_u = grad * p
    want_u = want_grad * p
    scale = max(1.0, float(np.max(np.abs(want_u))), abs(want_value) * 1e-3)
    assert np.all(np.abs(grad_u - want_u) <= 1e-9 * scale), (grad_u, want_u)
    # Hessian w.r.t. ln θ: central differences of the first-order gradient (in log-space)
    step = 1e-5
    hess_u = hess * p[:, None] * p[None, :] + np.diag(grad_u)
    fd = np.empty((4, 4))
    for j in range(4):
        up, down = p.copy(), p.copy()
        up[j] *= math.exp(step)
        down[j] *= math.exp(-step)
        fd[:, j] = (
            _first_order(up, x, t_x, T, w)[1] * up - _first_order(down, x, t_x, T, w)[1] * down
        ) / (2.0 * step)
    # truncation ~1e-10 relative, rounding ~1e-13 |ℓ| / step
    tol = 1e-5 * max(1.0, float(np.max(np.abs(fd)))) + 1e-8 * scale / step
    assert np.all(np.abs(hess_u - fd) <= tol), (hess_u, fd)
    assert np.allclose(hess, hess.T, rtol=0.0, atol=0.0)


@given(params=pareto_params(), row=rfm_tuple())
@example(params=[0.553, 10.58, 0.606, 11.67], row=(2.0, 30.43, 38.86))
@example(params=[0.553, 10.58, 0.606, 10.58], row=(0.0, 0.0, 38.86))  # α = β: z = 0
@example(params=[0.82, 44.6, 2.03, 744.0], row=(160.0, 700.0, 730.0))  # large x, z → 1
@example(params=[1.0, 2.0, 1.0, 1.0 + 1e-12], row=(1.0, 0.5, 2.0))
@example(params=[0.5, 1e-3, 2.0, 1e3], row=(3000.0, 1e3, 3e3))  # the split integral
def test_pass_matches_first_order_kernel_and_its_differences(
    params: list[float], row: tuple[float, float, float]
) -> None:
    x, t_x, T = (np.array([v]) for v in row)
    _check_against_first_order(params, x, t_x, T, np.ones(1))


def test_pass_over_many_tuples_with_weights_and_shared_pairs() -> None:
    """Tuples sharing (x, t_x) and (x, T) pairs, zero weights and fractional weights: the pass
    equals the first-order kernel summed over tuples."""
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.integers(0, 40, n).astype(np.float64)
    T = rng.integers(1, 60, n).astype(np.float64)
    t_x = np.where(x > 0, np.floor(T * rng.random(n)), 0.0)
    w = rng.integers(0, 4, n).astype(np.float64) * 0.5
    for params in ([0.55, 10.6, 0.61, 11.7], [0.8, 3.0, 2.0, 40.0], [2.0, 30.0, 0.3, 3.0]):
        _check_against_first_order(params, x, t_x, T, w)


# --- the fit -----------------------------------------------------------------------------------


def _general_fit(frame: pl.DataFrame) -> tuple[F64, float]:
    """The optimum by the general path (L-BFGS-B then Newton polish), as before the fast path."""
    model = ParetoNBDModel()
    checked = checked_rft(
        frame, model="Pareto/NBD", frequency_col="frequency", recency_col="recency", T_col="T"
    )
    data = compressed_rft(checked, None, model="Pareto/NBD")
    result = fitting.maximise(
        lambda params: model._loglik_grad(params, data),
        model._starts(data),
        n_observations=data.n_customers,
        model="Pareto/NBD",
        param_names=model.param_names,
        all_starts=False,
    )
    return result.params, result.log_likelihood


def _assert_same_optimum(model: ParetoNBDModel, frame: pl.DataFrame) -> None:
    params, loglik = _general_fit(frame)
    got = np.array([model.params_[n] for n in model.param_names])
    assert np.max(np.abs(got / params - 1.0)) <= 1e-6, (got, params)
    assert model.log_likelihood_ >= loglik - 1e-9 * abs(loglik)


def test_cdnow_fit_is_the_general_paths_optimum() -> None:
    path = SHARED / "cdnow_customers_summary.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    frame = pl.read_csv(path)
    model = ParetoNBDModel().fit(frame)
    assert model.converged_
    _assert_same_optimum(model, frame)
    # Fader, Hardie & Lee (2005): r=0.55, α=10.58, s=0.61, β=11.67 (LL −9595.0)
    assert [round(model.params_[n], 2) for n in model.param_names] == [0.55, 10.58, 0.61, 11.67]
    assert round(model.log_likelihood_, 1) == -9595.0


def test_sampled_warm_start_reaches_the_same_optimum() -> None:
    """Above the warm-start threshold the fit starts on a small sample, then finishes on all
    tuples: same optimum as the general path."""
    T = np.floor(np.random.default_rng(0).uniform(52.0, 104.0, 60_000))
    frame = simulate.pareto_nbd(60_000, r=0.7, alpha=8.0, s=1.2, beta=20.0, T=T, seed=21)
    frame = frame.with_columns(pl.col("recency").round(1))
    model = ParetoNBDModel().fit(frame)
    assert model.data_summary_["n_unique"] > 8_000
    _assert_same_optimum(model, frame)


def test_falls_back_to_the_general_path_when_newton_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = simulate.pareto_nbd(3_000, r=0.7, alpha=8.0, s=1.2, beta=20.0, T=52.0, seed=4)
    fast = ParetoNBDModel().fit(frame)
    monkeypatch.setattr("winback.models._base.newton_maximise", lambda *a, **k: None)
    monkeypatch.setattr("winback.models.pareto_nbd.newton_maximise", lambda *a, **k: None)
    slow = ParetoNBDModel().fit(frame)
    for name in fast.param_names:
        assert fast.params_[name] == pytest.approx(slow.params_[name], rel=1e-6)
    assert fast.log_likelihood_ >= slow.log_likelihood_ - 1e-9 * abs(slow.log_likelihood_)
