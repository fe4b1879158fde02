"""Reference log-likelihoods written straight from the papers' formulas (no shared code with winback).

Two flavours per model:

* ``<model>_loglik_each(params, *data)``: vectorised numpy + scipy.special, the published formulas
  as printed (gammaln, betaln, hyp2f1). Fine at everyday parameter values (CDNOW).
* ``<model>_loglik_mp(params, *row)``: one tuple in mpmath at 40 significant digits, for extreme
  x, T and parameters where double-precision formulas cancel or overflow (this is the oracle of
  the property tests). For Pareto/NBD the term s/(r+s+x)·A0 is the integral it stands for,
  integrated by quadrature (``pareto_nbd_a0_integral_mp``); the paper's closed form with the Gauss
  hypergeometric function, branches included, is ``pareto_nbd_a0_closed_form_mp`` and is checked
  against the quadrature where mpmath's hyp2f1 is reliable.
"""

from __future__ import annotations

from collections.abc import Sequence

import mpmath as mp
import numpy as np
from numpy.typing import NDArray
from scipy.special import betaln, gammaln, hyp2f1

F64 = NDArray[np.float64]
DPS = 40


# --- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", eq. (3) -------


def bgnbd_loglik_each(params: Sequence[float], x: F64, t_x: F64, T: F64) -> F64:
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    term1 = betaln(a, b + x) - betaln(a, b) + common - (r + x) * np.log(alpha + T)
    with np.errstate(invalid="ignore", divide="ignore"):
        term2 = betaln(a + 1, b + x - 1) - betaln(a, b) + common - (r + x) * np.log(alpha + t_x)
    term2 = np.where(x > 0, term2, -np.inf)
    return np.logaddexp(term1, term2)


def bgnbd_loglik_mp(params: Sequence[float], x: float, t_x: float, T: float) -> float:
    with mp.workdps(DPS):
        r, alpha, a, b = (mp.mpf(v) for v in params)
        x, t_x, T = mp.mpf(x), mp.mpf(t_x), mp.mpf(T)
        common = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha)
        lik = mp.exp(mp.log(mp.beta(a, b + x)) - mp.log(mp.beta(a, b)) + common) / (alpha + T) ** (
            r + x
        )
        if x > 0:
            lik += mp.exp(mp.log(mp.beta(a + 1, b + x - 1)) - mp.log(mp.beta(a, b)) + common) / (
                alpha + t_x
            ) ** (r + x)
        return float(mp.log(lik))


# --- MBG/NBD: Batislam, Denizel & Filiztekin (2007); lifetimes' ModifiedBetaGeoFitter ------------


def mbgnbd_loglik_each(params: Sequence[float], x: F64, t_x: F64, T: F64) -> F64:
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1) - betaln(a, b)
    term1 = -(r + x) * np.log(alpha + T)
    term2 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    return common + np.logaddexp(term1, term2)


def mbgnbd_loglik_mp(params: Sequence[float], x: float, t_x: float, T: float) -> float:
    with mp.workdps(DPS):
        r, alpha, a, b = (mp.mpf(v) for v in params)
        x, t_x, T = mp.mpf(x), mp.mpf(t_x), mp.mpf(T)
        common = (
            mp.loggamma(r + x)
            - mp.loggamma(r)
            + r * mp.log(alpha)
            + mp.log(mp.beta(a, b + x + 1))
            - mp.log(mp.beta(a, b))
        )
        bracket = 1 / (alpha + T) ** (r + x) + a / (b + x) / (alpha + t_x) ** (r + x)
        return float(common + mp.log(bracket))


# --- Pareto/NBD: Schmittlein, Morrison & Colombo (1987); Fader & Hardie (2005) note, eq. (22)-(24)


def _pareto_a0_terms(
    r: float, alpha: float, s: float, beta: float, x: F64, y: F64
) -> tuple[F64, F64]:
    rsx = r + s + x
    if alpha >= beta:
        return hyp2f1(rsx, s + 1, rsx + 1, (alpha - beta) / (alpha + y)), alpha + y
    return hyp2f1(rsx, r + x, rsx + 1, (beta - alpha) / (beta + y)), beta + y


def pareto_nbd_loglik_each(params: Sequence[float], x: F64, t_x: F64, T: F64) -> F64:
    """The paper's formula in double precision (scipy hyp2f1): moderate parameters only."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float)
    rsx = r + s + x
    f1, q1 = _pareto_a0_terms(r, alpha, s, beta, x, t_x)
    f2, q2 = _pareto_a0_terms(r, alpha, s, beta, x, T)
    a0 = f1 / q1**rsx - f2 / q2**rsx
    first = 1.0 / ((alpha + T) ** (r + x) * (beta + T) ** s)
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.log(first + s / rsx * a0)
    )


def pareto_nbd_a0_closed_form_mp(params: Sequence[float], x: float, t_x: float, T: float) -> float:
    """ln(s/(r+s+x) A0) with A0 the Gauss hypergeometric difference of Fader & Hardie (2005), eq.
    (23)-(24), in mpmath. Only for moderate arguments: mpmath's hyp2f1 can be silently wrong for
    large parameters with z near 1 (e.g. 2F1(10519.1, 1544.03; 10520.1; 0.957) comes out ~1.6e4
    times too large even at 80 digits), which is why the oracle below integrates instead."""
    with mp.workdps(DPS):
        r, alpha, s, beta = (mp.mpf(v) for v in params)
        x, t_x, T = mp.mpf(x), mp.mpf(t_x), mp.mpf(T)
        rsx = r + s + x
        if alpha >= beta:
            b2, lo, hi = s + 1, beta, alpha
        else:
            b2, lo, hi = r + x, alpha, beta

        def term(y: mp.mpf) -> mp.mpf:
            z = (hi - lo) / (hi + y)
            return mp.hyp2f1(rsx, b2, rsx + 1, z, maxterms=10**6, maxprec=200_000) / (hi + y) ** rsx

        return float(mp.log(s / rsx * (term(t_x) - term(T))))


def pareto_nbd_a0_integral_mp(params: Sequence[float], x: float, t_x: float, T: float) -> mp.mpf:
    """s/(r+s+x) A0 = s ∫_{t_x}^{T} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ (the integral A0 comes from:
    death at τ in (t_x, T] after x purchases), by mpmath tanh-sinh quadrature."""
    r, alpha, s, beta = (mp.mpf(v) for v in params)
    x, t_x, T = mp.mpf(x), mp.mpf(t_x), mp.mpf(T)
    if t_x >= T:
        return mp.mpf(0)

    def log_f(tau: mp.mpf) -> mp.mpf:
        return -(r + x) * mp.log(alpha + tau) - (s + 1) * mp.log(beta + tau)

    top = log_f(t_x)
    # breakpoints on the geometric scale of the integrand's decay from its maximum at t_x
    scale = 1 / ((r + x) / (alpha + t_x) + (s + 1) / (beta + t_x))
    points = [t_x]
    step = scale / 64
    while t_x + step < T:
        points.append(t_x + step)
        step *= 4
    points.append(T)
    integral = mp.quad(lambda tau: mp.exp(log_f(tau) - top), points)
    return s * integral * mp.exp(top)


def _pareto_mp_parts(
    params: Sequence[float], x: float, t_x: float, T: float
) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """(log prefactor, first term, s/(r+s+x) A0) of the likelihood, in mpmath."""
    r, alpha, s, beta = (mp.mpf(v) for v in params)
    x_, T_ = mp.mpf(x), mp.mpf(T)
    log_pref = mp.loggamma(r + x_) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
    first = 1 / ((alpha + T_) ** (r + x_) * (beta + T_) ** s)
    return log_pref, first, pareto_nbd_a0_integral_mp(params, x, t_x, T)


def pareto_nbd_loglik_mp(params: Sequence[float], x: float, t_x: float, T: float) -> float:
    with mp.workdps(DPS):
        log_pref, first, rest = _pareto_mp_parts(params, x, t_x, T)
        return float(log_pref + mp.log(first + rest))


def pareto_nbd_log_p_alive_mp(params: Sequence[float], x: float, t_x: float, T: float) -> float:
    """ln P(alive at T) = ln[first / (first + s/(r+s+x) A0)] (Fader & Hardie 2005, eq. (26))."""
    with mp.workdps(DPS):
        _, first, rest = _pareto_mp_parts(params, x, t_x, T)
        return float(mp.log(first) - mp.log(first + rest))


# --- NBD (docs/methods.md#nbd), without the data-only constant ------------------------------------


def nbd_loglik_each(params: Sequence[float], X: F64, T: F64) -> F64:
    r, alpha = params
    X = np.asarray(X, dtype=float)
    return gammaln(r + X) - gammaln(r) + r * np.log(alpha) - (r + X) * np.log(alpha + T)


def nbd_loglik_mp(params: Sequence[float], X: float, T: float) -> float:
    with mp.workdps(DPS):
        r, alpha = (mp.mpf(v) for v in params)
        X, T = mp.mpf(X), mp.mpf(T)
        return float(
            mp.loggamma(r + X) - mp.loggamma(r) + r * mp.log(alpha) - (r + X) * mp.log(alpha + T)
        )


# --- Gamma–Gamma (docs/methods.md#gamma-gamma; Fader, Hardie & Lee 2005 "RFM and CLV", eq. (3)) ---


def gamma_gamma_loglik_each(params: Sequence[float], x: F64, mean_amount: F64) -> F64:
    p, q, gamma = params
    x = np.asarray(x, dtype=float)
    z = np.asarray(mean_amount, dtype=float)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(z)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * z)
    )


def gamma_gamma_loglik_mp(params: Sequence[float], x: float, mean_amount: float) -> float:
    with mp.workdps(DPS):
        p, q, gamma = (mp.mpf(v) for v in params)
        x, z = mp.mpf(x), mp.mpf(mean_amount)
        px = p * x
        return float(
            mp.loggamma(px + q)
            - mp.loggamma(px)
            - mp.loggamma(q)
            + q * mp.log(gamma)
            + (px - 1) * mp.log(z)
            + px * mp.log(x)
            - (px + q) * mp.log(gamma + x * z)
        )
