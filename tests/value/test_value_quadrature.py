"""Closed forms of the value engine against independent numerical integration
(docs/methods.md#upside, #forecasts, #markov).

The engine evaluates the Gamma–Gamma spend predictive (the CDF and its bin masses, the upside
"transfer expectation" and its probability) through regularised incomplete beta functions, and
the NB count predictive (the upside, P(x_i ≤ X' ≤ x_max), the open frequency bucket's mass and
conditional mean count) through incomplete-beta tails. Here the same quantities come from the
densities themselves: adaptive Gauss–Legendre quadrature of the BetaPrime density in log space
(Numba), and plain summation of the NB pmf. Agreement: < 1e-8 relative (docs/methods.md#upside).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from hypothesis import example, given
from hypothesis import strategies as st
from numba import njit
from scipy import special

from winback.models import GammaGammaModel, NBDModel
from winback.value.forecast import _frequency_tuples, _spend_bin_probs, _spend_upside

RTOL = 1e-8
#: Below this mass a closed-form difference of two CDF values near 1 has no relative precision
#: to compare (its absolute error is ~1e-16); masses above it are compared relatively.
MIN_MASS = 1e-6
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


# -- the reference: adaptive Gauss–Legendre in s = ln y ----------------------------------------
@njit(cache=True)
def _log_beta_prime(s: float, a: float, b: float, power: float) -> float:
    """ln of y^power · f(y) · y at y = e^s, f the BetaPrime(a, b) density (dy = y ds)."""
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    log1p_y = s + math.log1p(math.exp(-s)) if s > 0 else math.log1p(math.exp(s))
    return (a + power) * s - (a + b) * log1p_y - log_beta


@njit(cache=True)
def _panel(
    lo: float,
    hi: float,
    a: float,
    b: float,
    power: float,
    nodes: np.ndarray,
    weights: np.ndarray,
) -> float:
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    total = 0.0
    for k in range(nodes.shape[0]):
        total += weights[k] * math.exp(_log_beta_prime(mid + half * nodes[k], a, b, power))
    return half * total


@njit(cache=True)
def beta_prime_integral(
    lo: float,
    hi: float,
    a: float,
    b: float,
    power: float,
    nodes: np.ndarray,
    weights: np.ndarray,
) -> float:
    """∫ y^power f(y) dy over [e^lo, e^hi] (s = ln y limits), f the BetaPrime(a, b) density.

    A 256-panel pass gives the integral's size; then each panel is bisected until it and its two
    halves agree to 1e-15 of that size (or it is narrower than 1e-8)."""
    if hi <= lo:
        return 0.0
    n_start = 256
    width = (hi - lo) / n_start
    stack = []
    size = 0.0
    for k in range(n_start):
        left = lo + k * width
        right = hi if k == n_start - 1 else left + width
        whole = _panel(left, right, a, b, power, nodes, weights)
        size += whole
        stack.append((left, right, whole))
    tolerance = 1e-15 * size + 1e-300
    total = 0.0
    while len(stack) > 0:
        left, right, whole = stack.pop()
        mid = 0.5 * (left + right)
        first = _panel(left, mid, a, b, power, nodes, weights)
        second = _panel(mid, right, a, b, power, nodes, weights)
        if abs(first + second - whole) <= tolerance or right - left < 1e-8:
            total += first + second
        else:
            stack.append((left, mid, first))
            stack.append((mid, right, second))
    return total


#: ln y limits standing in for 0 and ∞: with a ≥ 0.3 and b ≥ 1.2 the mass beyond them is below
#: 1e-18 of any mass compared.
S_MIN, S_MAX = -140.0, 140.0


def _s(m: float, G: float, c: float) -> float:
    """ln y for the mean amount m: y = c m / G (c·M'/G ~ BetaPrime(p c, Q))."""
    y = c * m / G
    if y <= 0:
        return S_MIN
    if math.isinf(y):
        return S_MAX
    return max(S_MIN, min(S_MAX, math.log(y)))


def spend_mass(lo: float, hi: float, p: float, Q: float, G: float, c: float) -> float:
    """P(lo ≤ M' ≤ hi) by quadrature."""
    return beta_prime_integral(_s(lo, G, c), _s(hi, G, c), p * c, Q, 0.0, _NODES, _WEIGHTS)


def spend_partial_mean(lo: float, hi: float, p: float, Q: float, G: float, c: float) -> float:
    """∫_lo^hi m g(m) dm by quadrature (m = G y / c)."""
    return G / c * beta_prime_integral(_s(lo, G, c), _s(hi, G, c), p * c, Q, 1.0, _NODES, _WEIGHTS)


def _close(closed: float, reference: float) -> bool:
    return abs(closed - reference) <= RTOL * abs(reference)


# -- Gamma–Gamma: spend bins, CDF, upside ------------------------------------------------------
spend_params = st.tuples(
    st.floats(0.3, 30.0),  # p
    st.floats(1.2, 500.0),  # Q = q + p x
    st.floats(0.5, 5_000.0),  # G = γ + x z̄
)


@given(
    params=spend_params,
    c=st.integers(1, 12),
    edges=st.lists(st.floats(0.01, 2_000.0), min_size=1, max_size=5, unique=True).map(sorted),
)
@example(params=(6.25, 3.74, 15.44), c=1, edges=[10.0, 20.0, 40.0, 80.0])  # CDNOW, FHL 2005
@example(params=(0.3, 500.0, 0.5), c=12, edges=[0.01])  # tiny G, huge Q
def test_spend_bin_masses_match_quadrature(
    params: tuple[float, float, float], c: int, edges: list[float]
) -> None:
    p, Q, G = params
    closed = _spend_bin_probs(p, np.array([Q]), np.array([G]), np.array([float(c)]), edges)[0]
    bounds = [0.0, *edges, math.inf]
    assert closed.sum() == np.float64(1.0) or abs(closed.sum() - 1.0) < 1e-14
    for k in range(len(bounds) - 1):
        reference = spend_mass(bounds[k], bounds[k + 1], p, Q, G, float(c))
        if reference > MIN_MASS:
            assert _close(closed[k], reference), (k, closed[k], reference)
        else:
            assert abs(closed[k] - reference) < 1e-12


@given(
    params=spend_params,
    z=st.floats(0.0, 3_000.0),
    upper=st.one_of(st.floats(0.01, 5_000.0), st.just(math.inf)),
)
@example(params=(6.25, 3.74 + 6.25 * 3, 15.44 + 3 * 40.0), z=40.0, upper=1_000.0)
@example(params=(2.0, 1.2, 10.0), z=5.0, upper=math.inf)  # heavy tail, Q − 1 small
def test_spend_upside_matches_quadrature(
    params: tuple[float, float, float], z: float, upper: float
) -> None:
    p, Q, G = params
    value, mass = _spend_upside(p, np.array([z]), np.array([Q]), np.array([G]), upper)
    hi = max(z, upper)
    reference_mass = spend_mass(z, hi, p, Q, G, 1.0)
    if reference_mass > MIN_MASS:
        assert _close(mass[0], reference_mass)
        reference = spend_partial_mean(z, hi, p, Q, G, 1.0) / reference_mass
        assert _close(value[0], reference), (value[0], reference)
    else:
        assert abs(mass[0] - reference_mass) < 1e-12
        assert z <= value[0] <= hi  # the boundary value, never NaN


def test_engine_spend_upside_is_the_models_and_accurate_in_the_lower_half() -> None:
    """The engine and ``GammaGammaModel.spend_upside`` share one closed form: the same bits for
    every customer, including intervals [z̄, m_max] wholly in the lower half of the spend
    distribution, where an upper-tail difference used to lose about half the digits."""
    rng = np.random.default_rng(11)
    model = GammaGammaModel()
    model.params_ = {"p": 5.3, "q": 3.9, "gamma": 17.0}
    model.data_summary_ = {"max_amount": 900.0}
    x = rng.integers(0, 20, 500).astype(np.float64)
    z = np.where(x > 0, rng.gamma(2.0, 30.0, 500), 0.0)
    frame = pl.DataFrame({"spend_frequency": x.astype(np.int64), "monetary_value": z})
    theirs = model.spend_upside(frame).to_numpy()
    Q, G = 3.9 + 5.3 * x, 17.0 + x * z
    ours, _ = _spend_upside(5.3, z, Q, G, 900.0)
    assert np.array_equal(ours, theirs)
    # A customer whose whole interval lies in the lower half: against quadrature.
    p, Q1, G1, z1, cap = 5.3, 3.9 + 5.3 * 2, 17.0 + 2 * 0.01, 0.01, 0.05  # old error: 8e-6
    model.data_summary_ = {"max_amount": cap}
    one = pl.DataFrame({"spend_frequency": [2], "monetary_value": [z1]})
    value = model.spend_upside(one).item()
    mass = spend_mass(z1, cap, p, Q1, G1, 1.0)
    assert special.betainc(p, Q1, cap / (G1 + cap)) < 0.5
    assert _close(value, spend_partial_mean(z1, cap, p, Q1, G1, 1.0) / mass)


# -- NB: upside, its probability, the open bucket ----------------------------------------------
@njit(cache=True)
def nb_sums(r: float, pi: float, lo: int, hi: int) -> tuple[float, float]:
    """(Σ_{j=lo}^{hi} P(X' = j), Σ j P(X' = j)) for X' ~ NegBin(r, π), term by term."""
    mass, first = 0.0, 0.0
    for j in range(max(lo, 0), hi + 1):
        log_pmf = (
            math.lgamma(r + j)
            - math.lgamma(r)
            - math.lgamma(j + 1.0)
            + r * math.log(pi)
            + j * math.log1p(-pi)
        )
        term = math.exp(log_pmf)
        mass += term
        first += j * term
    return mass, first


def _nbd(r: float, alpha: float, max_rate: float) -> NBDModel:
    model = NBDModel()
    model.params_ = {"r": r, "alpha": alpha}
    model.data_summary_ = {"max_rate": max_rate}
    return model


@given(
    r=st.floats(0.05, 20.0),
    alpha=st.floats(0.05, 20.0),
    X=st.integers(0, 200),
    T=st.integers(1, 36),
    max_rate=st.floats(0.5, 30.0),
    low=st.integers(2, 8),
)
@example(r=0.385, alpha=12.072, X=0, T=17, max_rate=9.0, low=5)  # CDNOW-like
@example(r=3.0, alpha=0.2, X=200, T=1, max_rate=30.0, low=2)  # far above the cap
def test_frequency_closed_forms_match_summation(
    r: float, alpha: float, X: int, T: int, max_rate: float, low: int
) -> None:
    model = _nbd(r, alpha, max_rate)
    frame = pl.DataFrame({"period_frequency": [X], "n_periods": [T]})
    got = _frequency_tuples(model, frame, [1, low])
    r_post, a_post = r + X, alpha + T
    pi = a_post / (a_post + 1.0)
    # Far enough into the tail that the rest of the sum is < 1e-17 of it.
    far = int(r_post / a_post * 50 + 200 + 40 * math.sqrt(r_post) / min(1.0, a_post))
    x_i = math.ceil(X / T)
    x_max = max(x_i, math.ceil(max_rate))
    # P(x_i ≤ X' ≤ x_max) and E[X' | x_i ≤ X' ≤ x_max] (the seed's "transfer expectation").
    mass, first = nb_sums(r_post, pi, x_i, x_max)
    if mass > MIN_MASS:
        assert _close(got.p_upside[0], mass)
        assert _close(got.upside[0], first / mass)
    else:
        assert abs(got.p_upside[0] - mass) < 1e-12
        assert x_i <= got.upside[0] <= x_max
    # The open bucket X' ≥ low: its mass and conditional mean count.
    tail, tail_first = nb_sums(r_post, pi, low, far)
    everything, _ = nb_sums(r_post, pi, 0, far)
    assert abs(everything - 1.0) < 1e-12  # the summation reached the tail
    if tail > MIN_MASS:
        assert _close(got.open_tail[0], tail)
        assert _close(got.open_count[0], tail_first / tail)
    # P(X' ≥ 1) and the pmf.
    zero, _ = nb_sums(r_post, pi, 0, 0)
    assert _close(got.p_active[0], 1.0 - zero) or got.p_active[0] < MIN_MASS
    pmf = [nb_sums(r_post, pi, j, j)[0] for j in range(got.pmf.shape[1])]
    np.testing.assert_allclose(got.pmf[0], pmf, rtol=RTOL, atol=1e-300)
