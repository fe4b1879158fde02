"""The Gamma–Gamma spend upside's upper incomplete-beta tails (docs/methods.md#upside) against
mpmath at 40 digits.

The engine takes an upper tail 1 − I_u(a, b) (``upper_tail``) as the complement of the lower
tail while that is ≤ 0.75, else as the swapped lower tail I_y(b, a), y = G/(G + c m) computed
directly (not 1 − u), with scipy's double-precision ``betainc`` — 15× faster than ``betaincc``,
which Boost evaluates in long double — and ``betaincc`` only for tails under 1e-100. Here both
are compared with the exact tail at the exact argument (u = c m/(G + c m) in 40-digit arithmetic
from the same float inputs), over the ranges the value engine uses and beyond: a = p c (+1) for
p in [0.05, 30] and c ≤ 6.5, b = Q (−1) = q + p x for q in (1, 51] and x ≤ 500, amounts m/G
over 14 orders of magnitude.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import special

from winback.models.gamma_gamma import spend_upside_and_mass, upper_tail


def _exact_upper(a: float, b: float, c: float, m: float, G: float) -> float:
    """1 − I_u(a, b) at u = c m/(G + c m) exactly, i.e. I_y(b, a) at y = G/(G + c m)."""
    with mpmath.workdps(40):
        y = mpmath.mpf(G) / (mpmath.mpf(G) + mpmath.mpf(c) * mpmath.mpf(m))
        return float(mpmath.betainc(b, a, 0, y, regularized=True))


def _errors(a: float, b: float, c: float, m: float, G: float) -> tuple[float, float, float]:
    """(the exact tail, ``upper_tail``'s relative error, ``betaincc``'s relative error)."""
    u, y = c * m / (G + c * m), G / (G + c * m)
    exact = _exact_upper(a, b, c, m, G)
    one = np.ones(1)
    below = special.betainc(a * one, b * one, u * one)
    ours = float(upper_tail(a * one, b * one, u * one, y * one, below)[0])
    theirs = float(special.betaincc(a, b, u))
    scale = max(exact, 1e-300)
    return exact, abs(ours - exact) / scale, abs(theirs - exact) / scale


@settings(max_examples=150, deadline=None)
@given(
    p=st.floats(0.05, 30.0),
    c=st.sampled_from([1.0, 2.0, 3.0, 4.0, 6.5]),
    shift=st.sampled_from([0.0, 1.0]),
    q=st.floats(1.01, 51.0),
    x=st.integers(0, 500),
    log_ratio=st.floats(-7.0, 7.0),
)
@example(p=0.05, c=1.0, shift=0.0, q=1.01, x=0, log_ratio=-6.0)  # y within 1e-6 of 1, a small
@example(p=30.0, c=4.0, shift=1.0, q=51.0, x=500, log_ratio=0.0)  # b ≈ 15,000
@example(p=1.4, c=1.0, shift=0.0, q=22.0, x=0, log_ratio=7.0)  # a tail under 1e-100
@example(p=5.3, c=1.0, shift=0.0, q=2.5, x=3, log_ratio=1.0)
def test_upper_tail_matches_mpmath(
    p: float, c: float, shift: float, q: float, x: int, log_ratio: float
) -> None:
    exact, ours, theirs = _errors(
        p * c + shift, q + p * x - shift, c, 100.0 * 10.0**log_ratio, 100.0
    )
    if exact >= 1e-3:
        assert ours <= 2e-13
    elif exact >= 1e-100:
        assert ours <= 1e-12
    else:  # betaincc's own result there (or the complement): no worse than it
        assert ours <= max(theirs, 1e-12)


def test_upper_tail_is_close_to_betaincc_on_spend_arguments() -> None:
    """On 300 drawn spend arguments (the posterior mean amount near the customer's own, as in
    the engine), ``upper_tail``'s median error against mpmath is within a few ulps and its
    largest under 1e-13 (``betaincc``: under 1 ulp in the median)."""
    rng = np.random.default_rng(18)
    ours, theirs = [], []
    for _ in range(300):
        p, q, x = rng.uniform(0.1, 12.0), rng.uniform(1.1, 20.0), float(rng.integers(1, 60))
        c, gamma = float(rng.integers(1, 5)), rng.uniform(10.0, 500.0)
        z = gamma * 10.0 ** rng.uniform(-2.0, 1.0) / max(x, 1.0)
        exact, mine, scipys = _errors(p * c, q + p * x, c, z, gamma + x * z)
        if exact >= 1e-300:
            ours.append(mine)
            theirs.append(scipys)
    assert len(ours) > 250
    assert np.median(ours) <= 4 * 2.0**-52
    assert np.max(ours) < 1e-13


def test_spend_upside_mass_matches_mpmath_interval() -> None:
    """P(m_i ≤ M' ≤ m_max) and the upside from ``spend_upside_and_mass`` (upper-tail branch:
    m_i above the median) against the exact BetaPrime interval in mpmath."""
    p, q, gamma = 2.5, 3.0, 40.0
    x = np.array([1.0, 4.0, 12.0, 60.0])
    z = np.array([200.0, 80.0, 30.0, 25.0])
    Q, G = q + p * x, gamma + x * z
    upper = 1e4
    value, mass = spend_upside_and_mass(p, 1.0, z, Q, G, upper)
    for i in range(x.size):
        with mpmath.workdps(40):
            lo = mpmath.mpf(z[i]) / (mpmath.mpf(G[i]) + mpmath.mpf(z[i]))
            hi = mpmath.mpf(upper) / (mpmath.mpf(G[i]) + mpmath.mpf(upper))
            exact_mass = mpmath.betainc(p, Q[i], lo, hi, regularized=True)
            first = mpmath.betainc(p + 1.0, Q[i] - 1.0, lo, hi, regularized=True)
            exact_value = p * G[i] / (Q[i] - 1.0) * first / exact_mass
        assert math.isclose(mass[i], float(exact_mass), rel_tol=1e-13)
        assert math.isclose(value[i], float(exact_value), rel_tol=1e-13)
