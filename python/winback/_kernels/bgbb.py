"""The discrete-time BG/BB model (Fader, Hardie & Shang 2010) in Numba: log-likelihood, gradient and
exact Hessian over compressed (x, t_x, n) patterns, and the sums behind its predictions
(docs/methods.md#bg-bb).

Parameters are ``[alpha, beta, gamma, delta]``: the transaction probability p ~ Beta(α, β) and the
dropout probability θ ~ Beta(γ, δ). Per pattern the likelihood is a sum of n − t_x + 1 products of
Beta-function ratios,

    L = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
        + Σ_{i=0}^{n−t_x−1} B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ),

summed in the log domain (log-sum-exp). Every ratio ln B(a+j, b+k) − ln B(a, b) is formed from
``special.lgamma_diff`` (lnΓ(a+j) − lnΓ(a) without cancellation), so nothing overflows for any n,
and every derivative from ``special.digamma_diff`` (ψ) and ``special.trigamma`` (ψ').

As in ``likelihood``: per-pattern terms are computed on contiguous chunks on the shared pool and
summed in pattern order with Neumaier compensation (the same bits for any thread count); invalid
parameters give −inf and a zero gradient; zero-weight patterns contribute exactly 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from winback._kernels import jit
from winback._kernels.likelihood import _neumaier  # the same compensated sum as the BG family
from winback._kernels.special import digamma_diff, lgamma_diff, trigamma
from winback._parallel import chunk_bounds, map_chunks

__all__ = [
    "bgbb_discounted_sum",
    "bgbb_expected_sum",
    "bgbb_log_alive",
    "bgbb_loglik",
    "bgbb_loglik_each",
    "bgbb_loglik_grad",
    "bgbb_newton_terms",
]

F64 = NDArray[np.float64]
_NEG_INF = -math.inf
#: Patterns per chunk (each pattern's values are written in place: the split changes no result).
CHUNK_PATTERNS = 4096
#: Above this many future opportunities the expected-count sum uses lnΓ differences, not a loop.
_LOOP_OPPORTUNITIES = 100_000


@jit
def _log_beta_ratio(a: float, b: float, j: float, k: float) -> float:
    """ln B(a+j, b+k) − ln B(a, b) for a, b > 0 and j, k ≥ 0."""
    return lgamma_diff(a, j) + lgamma_diff(b, k) - lgamma_diff(a + b, j + k)


@jit
def _accumulate(  # type: ignore[no-untyped-def]
    state, acc_g, acc_h, log_term, g, h, want_hess
):
    """Adds e^(log_term) · (g, h + g gᵀ) to the running sums, scaled by e^(−max so far)
    (``state`` = [max, Σ e^(s − max)]): log-sum-exp in one pass, without storing the terms."""
    if log_term > state[0]:
        scale = math.exp(state[0] - log_term) if state[1] > 0.0 else 0.0
        state[0] = log_term
        state[1] *= scale
        for j in range(4):
            acc_g[j] *= scale
            if want_hess:
                for l in range(4):  # noqa: E741
                    acc_h[j, l] *= scale
    share = math.exp(log_term - state[0])
    state[1] += share
    for j in range(4):
        acc_g[j] += share * g[j]
        if want_hess:
            for l in range(4):  # noqa: E741
                acc_h[j, l] += share * (h[j, l] + g[j] * g[l])


@jit
def _pattern(  # type: ignore[no-untyped-def]
    p, x, t_x, n, want_hess, grad_out, hess_out
):
    """ℓ(x, t_x, n); gradient into grad_out[4]; with want_hess the Hessian into hess_out[4, 4].

    Term 0 (alive through opportunity n) and the first dropout term are evaluated from lnΓ/ψ/ψ'
    differences; each later dropout term (one more opportunity alive, one more without a
    transaction) follows from the previous one by the recurrences lnΓ(z+1) = lnΓ(z) + ln z,
    ψ(z+1) = ψ(z) + 1/z, ψ'(z+1) = ψ'(z) − 1/z², so a pattern costs O(1) special functions."""
    alpha, beta, gamma, delta = p[0], p[1], p[2], p[3]
    ab = alpha + beta
    gd = gamma + delta
    state = np.zeros(2)
    state[0] = -math.inf
    acc_g = np.zeros(4)
    acc_h = np.zeros((4, 4))
    g = np.empty(4)
    h = np.zeros((4, 4))
    g_alpha_x = digamma_diff(alpha, x)
    tri_alpha = trigamma(alpha + x) - trigamma(alpha) if want_hess else 0.0
    # Term 0: B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ).
    m = n - x
    log_term = _log_beta_ratio(alpha, beta, x, m) + _log_beta_ratio(gamma, delta, 0.0, n)
    g[0] = g_alpha_x - digamma_diff(ab, x + m)
    g[1] = digamma_diff(beta, m) - digamma_diff(ab, x + m)
    g[2] = -digamma_diff(gd, n)
    g[3] = digamma_diff(delta, n) - digamma_diff(gd, n)
    if want_hess:
        t_ab = trigamma(ab) - trigamma(ab + x + m)
        t_gd = trigamma(gd) - trigamma(gd + n)
        h[0, 0] = tri_alpha + t_ab
        h[1, 1] = trigamma(beta + m) - trigamma(beta) + t_ab
        h[0, 1] = h[1, 0] = t_ab
        h[2, 2] = t_gd
        h[3, 3] = trigamma(delta + n) - trigamma(delta) + t_gd
        h[2, 3] = h[3, 2] = t_gd
    _accumulate(state, acc_g, acc_h, log_term, g, h, want_hess)
    n_dropout = int(n - t_x)
    if n_dropout > 0:
        # Term i: B(α+x, β+m)/B(α,β) · B(γ+1, δ+e)/B(γ,δ), m = t_x − x + i, e = t_x + i.
        m = t_x - x
        e = t_x
        log_term = _log_beta_ratio(alpha, beta, x, m) + _log_beta_ratio(gamma, delta, 1.0, e)
        psi_b = digamma_diff(beta, m)  # ψ(β+m) − ψ(β)
        psi_ab = digamma_diff(ab, x + m)  # ψ(α+β+x+m) − ψ(α+β)
        psi_d = digamma_diff(delta, e)  # ψ(δ+e) − ψ(δ)
        psi_gd = digamma_diff(gd, 1.0 + e)  # ψ(γ+δ+1+e) − ψ(γ+δ)
        psi_g = 1.0 / gamma  # ψ(γ+1) − ψ(γ)
        tri_b = tri_ab = tri_d = tri_gd = 0.0
        tri_g = -1.0 / (gamma * gamma)  # ψ'(γ+1) − ψ'(γ)
        if want_hess:
            tri_b = trigamma(beta + m) - trigamma(beta)
            tri_ab = trigamma(ab) - trigamma(ab + x + m)
            tri_d = trigamma(delta + e) - trigamma(delta)
            tri_gd = trigamma(gd) - trigamma(gd + 1.0 + e)
        for i in range(n_dropout):
            if i > 0:
                # one step: m → m + 1 and e → e + 1 (previous m, e on the right)
                z_b, z_ab, z_d, z_gd = beta + m, ab + x + m, delta + e, gd + 1.0 + e
                log_term += math.log(z_b / z_ab) + math.log(z_d / z_gd)
                psi_b += 1.0 / z_b
                psi_ab += 1.0 / z_ab
                psi_d += 1.0 / z_d
                psi_gd += 1.0 / z_gd
                if want_hess:
                    tri_b -= 1.0 / (z_b * z_b)
                    tri_ab += 1.0 / (z_ab * z_ab)
                    tri_d -= 1.0 / (z_d * z_d)
                    tri_gd += 1.0 / (z_gd * z_gd)
                m += 1.0
                e += 1.0
            g[0] = g_alpha_x - psi_ab
            g[1] = psi_b - psi_ab
            g[2] = psi_g - psi_gd
            g[3] = psi_d - psi_gd
            if want_hess:
                h[0, 0] = tri_alpha + tri_ab
                h[1, 1] = tri_b + tri_ab
                h[0, 1] = h[1, 0] = tri_ab
                h[2, 2] = tri_g + tri_gd
                h[3, 3] = tri_d + tri_gd
                h[2, 3] = h[3, 2] = tri_gd
            _accumulate(state, acc_g, acc_h, log_term, g, h, want_hess)
    total = state[1]
    for j in range(4):
        grad_out[j] = acc_g[j] / total
    if want_hess:
        for j in range(4):
            for l in range(4):  # noqa: E741
                hess_out[j, l] = acc_h[j, l] / total - grad_out[j] * grad_out[l]
    return state[0] + math.log(total)


@jit
def _terms(  # type: ignore[no-untyped-def]
    p, x, t_x, n, w, want_hess, ll, grad, hess, lo, hi
):
    g = np.empty(4)
    h = np.empty((4, 4))
    for i in range(lo, hi):
        if w[i] == 0.0:
            ll[i] = 0.0
            for j in range(4):
                grad[i, j] = 0.0
                for l in range(4):  # noqa: E741
                    hess[i, j, l] = 0.0
            continue
        value = _pattern(p, x[i], t_x[i], n[i], want_hess, g, h)
        ll[i] = _NEG_INF if math.isnan(value) else value
        for j in range(4):
            grad[i, j] = g[j] if math.isfinite(g[j]) else 0.0
            for l in range(4):  # noqa: E741
                hess[i, j, l] = h[j, l] if want_hess else 0.0


def _as_f64(a: ArrayLike) -> F64:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))


def _params_ok(p: F64) -> bool:
    return p.shape[0] == 4 and bool(np.all(np.isfinite(p) & (p > 0)))


def _per_pattern(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike, w: F64, want_hess: bool
) -> tuple[F64, F64, F64]:
    p = _as_f64(params)
    xs, ts, ns = _as_f64(x), _as_f64(t_x), _as_f64(n)
    size = xs.shape[0]
    ll = np.empty(size)
    grad = np.empty((size, 4))
    hess = np.empty((size, 4, 4))
    if not _params_ok(p):
        ll[:] = -np.inf
        grad[:] = 0.0
        hess[:] = 0.0
        return ll, grad, hess

    def work(lo: int, hi: int) -> None:
        _terms(p, xs, ts, ns, w, want_hess, ll, grad, hess, lo, hi)

    map_chunks(work, chunk_bounds(size, CHUNK_PATTERNS))
    return ll, grad, hess


def _total(
    params: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    n: ArrayLike,
    w: ArrayLike,
    want_hess: bool,
) -> tuple[float, F64, F64]:
    weights = _as_f64(w)
    ll, grad, hess = _per_pattern(params, x, t_x, n, weights, want_hess)
    total = _neumaier(ll, weights)
    if not math.isfinite(total):
        return -math.inf, np.zeros(4), np.zeros((4, 4))
    g = np.array([_neumaier(np.ascontiguousarray(grad[:, j]), weights) for j in range(4)])
    h = np.zeros((4, 4))
    if want_hess:
        for j in range(4):
            for k in range(j, 4):
                h[j, k] = h[k, j] = _neumaier(np.ascontiguousarray(hess[:, j, k]), weights)
    return float(total), g, h


def bgbb_loglik(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike, w: ArrayLike
) -> float:
    """BG/BB log-likelihood Σ w ℓ(x, t_x, n), params [alpha, beta, gamma, delta]."""
    return _total(params, x, t_x, n, w, False)[0]


def bgbb_loglik_grad(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """BG/BB log-likelihood and its gradient w.r.t. [alpha, beta, gamma, delta]."""
    value, grad, _ = _total(params, x, t_x, n, w, False)
    return value, grad


def bgbb_newton_terms(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike, w: ArrayLike
) -> tuple[float, F64, F64]:
    """BG/BB log-likelihood, gradient and exact Hessian (natural parameters) in one pass."""
    return _total(params, x, t_x, n, w, True)


def bgbb_loglik_each(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike) -> F64:
    """Per-pattern (unweighted) BG/BB log-likelihoods."""
    ones = np.ones(_as_f64(x).shape[0])
    return _per_pattern(params, x, t_x, n, ones, False)[0]


@jit
def _log_alive_rows(p, x, n, ahead, ll, out):  # type: ignore[no-untyped-def]
    alpha, beta, gamma, delta = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        value = (
            _log_beta_ratio(alpha, beta, x[i], n[i] - x[i])
            + _log_beta_ratio(gamma, delta, 0.0, n[i] + ahead)
            - ll[i]
        )
        out[i] = min(value, 0.0)


def bgbb_log_alive(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike, ahead: float = 0.0
) -> F64:
    """ln P(alive at opportunity n + ahead | x, t_x, n) per row: ln[B(α+x, β+n−x)/B(α,β) ·
    B(γ, δ+n+ahead)/B(γ,δ)] − ℓ (Fader, Hardie & Shang 2010, eq. 11 with ahead = 1)."""
    p = _as_f64(params)
    xs, ns = _as_f64(x), _as_f64(n)
    ll = bgbb_loglik_each(p, xs, t_x, ns)
    out = np.empty(xs.shape[0])
    _log_alive_rows(p, xs, ns, float(ahead), ll, out)
    return out


@jit
def _expected_sum_one(gamma: float, delta: float, m: float) -> float:
    """S(m) = Σ_{t=1}^{m} E[(1−θ)^t], θ ~ Beta(γ, δ): the expected number of the next m
    opportunities a customer alive now is still alive for. Closed form
    δ/(γ−1) · [1 − Γ(γ+δ)Γ(δ+m+1)/(Γ(δ+1)Γ(γ+δ+m))] written as δ · (1 − e^{−E})/(γ − 1) with
    E = Σ_j ln(1 + (γ−1)/(1+δ+j)), which has no cancellation at γ = 1 (limit δ Σ_j 1/(1+δ+j))."""
    if m <= 0.0:
        return 0.0
    eps = gamma - 1.0
    if m <= _LOOP_OPPORTUNITIES:
        big_e = 0.0
        harmonic = 0.0
        for j in range(int(m)):
            big_e += math.log1p(eps / (1.0 + delta + j))
            harmonic += 1.0 / (1.0 + delta + j)
        if eps == 0.0:
            return delta * harmonic
        return delta * (-math.expm1(-big_e)) / eps
    if abs(eps) < 1e-4:
        # E = ε ψ-difference + ε²/2 ψ'-difference + O(ε³)
        d1 = digamma_diff(1.0 + delta, m)
        d2 = trigamma(1.0 + delta + m) - trigamma(1.0 + delta)
        big_e = eps * d1 + 0.5 * eps * eps * d2
        if eps == 0.0:
            return delta * d1
        return delta * (-math.expm1(-big_e)) / eps
    big_e = lgamma_diff(gamma + delta, m) - lgamma_diff(1.0 + delta, m)
    return delta * (-math.expm1(-big_e)) / eps


@jit
def _expected_sum_rows(gamma, delta, m, out):  # type: ignore[no-untyped-def]
    for i in range(delta.shape[0]):
        out[i] = _expected_sum_one(gamma, delta[i], m)


def bgbb_expected_sum(gamma: float, delta: ArrayLike, m: float) -> F64:
    """Σ_{t=1}^{m} B(γ, δ+t)/B(γ, δ) per δ (an array): the expected alive opportunities among the
    next m for a customer alive now whose dropout posterior is Beta(γ, δ)."""
    deltas = _as_f64(delta)
    out = np.empty(deltas.shape[0])
    _expected_sum_rows(float(gamma), deltas, float(m), out)
    return out


@jit
def _discounted_sum_one(gamma: float, delta: float, z: float) -> float:
    """Σ_{t≥1} z^t B(γ, δ+t)/B(γ, δ) = z B(γ,δ+1)/B(γ,δ) ₂F₁(1, δ+1; γ+δ+1; z), by its series:
    each term is the last times z (δ+t−1)/(γ+δ+t−1) < z, so they fall geometrically."""
    term = 1.0
    total = 0.0
    t = 1
    while True:
        term *= z * (delta + t - 1.0) / (gamma + delta + t - 1.0)
        total += term
        if term <= 1e-17 * total or term == 0.0:
            return total
        t += 1


@jit
def _discounted_sum_rows(gamma, delta, z, out):  # type: ignore[no-untyped-def]
    for i in range(delta.shape[0]):
        out[i] = _discounted_sum_one(gamma, delta[i], z)


def bgbb_discounted_sum(gamma: float, delta: ArrayLike, discount_rate: float) -> F64:
    """Σ_{t≥1} B(γ, δ+t)/B(γ, δ) / (1+d)^t per δ (an array): the discounted expected alive
    opportunities ahead of a customer alive now (the DERT factor, Fader, Hardie & Shang 2010)."""
    deltas = _as_f64(delta)
    out = np.empty(deltas.shape[0])
    _discounted_sum_rows(float(gamma), deltas, 1.0 / (1.0 + float(discount_rate)), out)
    return out
