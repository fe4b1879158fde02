"""Log-likelihoods and analytic gradients of the frequency and spend models
(docs/methods.md#models), in Numba.

Every model is evaluated on compressed sufficient statistics: unique data tuples with float64
weights (customer counts). Each public function takes the natural parameters as a float64 array in
the order its docstring gives and returns the weighted sum (``*_loglik``), the sum and its gradient
with respect to the natural parameters (``*_loglik_grad``), or the unweighted per-tuple values
(``*_loglik_each``). The log-parameter chain rule and the optimiser belong to the callers.

Conventions shared by all kernels:

* Per-tuple terms are computed into arrays by nogil kernels over contiguous chunks on the shared
  pool of ``winback._parallel`` (``WINBACK_NUM_THREADS``, else all cores); the total is then
  summed sequentially, in tuple order, with Neumaier's compensated sum. Results are bit-for-bit
  identical for any thread count.
* Invalid parameters (not finite or not > 0) give ``-inf`` and a zero gradient, so an optimiser
  backs off; tuples with weight 0 contribute exactly 0. No kernel raises and none returns NaN.
* Differences such as lnΓ(a+b) − lnΓ(a) and ψ(a+b) − ψ(a) are formed without cancellation for
  large a or small b (``special.lgamma_diff``, ``special.digamma_diff``), and ln α − ln(α+T) as
  −log1p(T/α).

STYLE: Numba handles the loops over compressed sufficient statistics; fastmath stays off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from winback._kernels import jit
from winback._kernels.special import digamma_diff, lgamma_diff
from winback._parallel import chunk_bounds, map_chunks

__all__ = [
    "bgnbd_loglik",
    "bgnbd_loglik_each",
    "bgnbd_loglik_grad",
    "gamma_gamma_loglik",
    "gamma_gamma_loglik_each",
    "gamma_gamma_loglik_grad",
    "mbgnbd_loglik",
    "mbgnbd_loglik_each",
    "mbgnbd_loglik_grad",
    "nbd_loglik",
    "nbd_loglik_each",
    "nbd_loglik_grad",
    "pareto_nbd_log_p_alive",
    "pareto_nbd_loglik",
    "pareto_nbd_loglik_each",
    "pareto_nbd_loglik_grad",
]

F64 = NDArray[np.float64]

_NEG_INF = -math.inf
_TOL = 1e-17  # relative size of the last term kept in a series of positive terms
_MAX_ITER = 100_000

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@jit
def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@jit
def _log_expm1_ratio(t: float) -> float:
    """ln((e^t − 1)/t), stable for every real t (0 at t = 0)."""
    if abs(t) < 1e-3:
        t2 = t * t
        return t / 2.0 + t2 / 24.0 - t2 * t2 / 2880.0
    if t > 0.0:
        return t + math.log(-math.expm1(-t)) - math.log(t)
    return math.log(-math.expm1(t)) - math.log(-t)


@jit
def _log_expm1_ratio_deriv(t: float) -> float:
    """d/dt ln((e^t − 1)/t) = 1/(1 − e^−t) − 1/t, stable for every real t (½ at t = 0)."""
    if abs(t) < 0.1:
        t2 = t * t
        return 0.5 + t * (1.0 / 12.0 - t2 * (1.0 / 720.0 - t2 * (1.0 / 30240.0 - t2 / 1209600.0)))
    return 1.0 / (-math.expm1(-t)) - 1.0 / t


@jit
def _neumaier(v: F64, w: F64) -> float:
    """Σ w_i v_i in index order with Neumaier compensation; w_i = 0 terms are skipped."""
    s = 0.0
    c = 0.0
    for i in range(v.shape[0]):
        if w[i] == 0.0:
            continue
        t = w[i] * v[i]
        u = s + t
        if abs(s) >= abs(t):
            c += (s - u) + t
        else:
            c += (t - u) + s
        s = u
    return s + c


@jit
def _weighted_total(ll: F64, grad: F64, w: F64) -> tuple[float, F64]:
    k = grad.shape[1]
    g = np.zeros(k)
    total = _neumaier(ll, w)
    if not math.isfinite(total):
        return _NEG_INF, g
    for j in range(k):
        g[j] = _neumaier(np.ascontiguousarray(grad[:, j]), w)
    return total, g


@jit
def _params_ok(p: F64) -> bool:
    for j in range(p.shape[0]):
        v = p[j]
        if not (math.isfinite(v) and v > 0.0):
            return False
    return True


@jit
def _clean(i: int, ll: F64, grad: F64) -> None:
    """Turn a NaN term into −inf and non-finite gradient entries into 0 (never hand NaN back)."""
    if math.isnan(ll[i]):
        ll[i] = _NEG_INF
    for j in range(grad.shape[1]):
        if not math.isfinite(grad[i, j]):
            grad[i, j] = 0.0


# ---------------------------------------------------------------------------------------------
# NBD: params [r, alpha] over (X, T)
# ---------------------------------------------------------------------------------------------


@jit
def _nbd_terms(p: F64, X: F64, T: F64, w: F64, ll: F64, grad: F64, lo: int, hi: int) -> None:
    r = p[0]
    alpha = p[1]
    for i in range(lo, hi):
        if w[i] == 0.0:
            ll[i] = 0.0
            grad[i, 0] = 0.0
            grad[i, 1] = 0.0
            continue
        x = X[i]
        t = T[i]
        ll[i] = lgamma_diff(r, x) - r * math.log1p(t / alpha) - x * math.log(alpha + t)
        grad[i, 0] = digamma_diff(r, x) - math.log1p(t / alpha)
        grad[i, 1] = (r * t / alpha - x) / (alpha + t)
        _clean(i, ll, grad)


# ---------------------------------------------------------------------------------------------
# Gamma–Gamma: params [p, q, gamma] over (x, mean_amount)
# ---------------------------------------------------------------------------------------------


@jit
def _gamma_gamma_terms(
    pr: F64, X: F64, Z: F64, w: F64, ll: F64, grad: F64, lo: int, hi: int
) -> None:
    p = pr[0]
    q = pr[1]
    gam = pr[2]
    lgq = math.lgamma(q)
    for i in range(lo, hi):
        x = X[i]
        if w[i] == 0.0 or x <= 0.0:
            # no repeat amounts: no spend information, contributes nothing
            ll[i] = 0.0
            grad[i, 0] = 0.0
            grad[i, 1] = 0.0
            grad[i, 2] = 0.0
            continue
        z = Z[i]
        if not z > 0.0:
            ll[i] = _NEG_INF  # a mean of positive amounts must be positive
            grad[i, 0] = 0.0
            grad[i, 1] = 0.0
            grad[i, 2] = 0.0
            continue
        px = p * x
        xz = x * z
        l_gz = math.log1p(gam / xz)  # ln((γ + x z̄)/(x z̄))
        l_zg = math.log1p(xz / gam)  # ln((γ + x z̄)/γ)
        # lnΓ(px+q) − lnΓ(px) − lnΓ(q), the difference taken from the larger argument
        lg = lgamma_diff(q, px) - math.lgamma(px) if q >= px else lgamma_diff(px, q) - lgq
        ll[i] = lg - math.log(z) - px * l_gz - q * l_zg
        grad[i, 0] = x * (digamma_diff(px, q) - l_gz)
        grad[i, 1] = digamma_diff(q, px) - l_zg
        grad[i, 2] = (q * xz / gam - px) / (gam + xz)
        _clean(i, ll, grad)


# ---------------------------------------------------------------------------------------------
# BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007):
# params [r, alpha, a, b] over (x, t_x, T)
# ---------------------------------------------------------------------------------------------


@jit
def _bg_tuple(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: float,
    tx: float,
    T: float,
    modified: bool,
    grad: F64,
    i: int,
) -> float:
    """One tuple of BG/NBD (``modified=False``) or MBG/NBD (``modified=True``).

    BG/NBD:  L = B(a, b+x)/B(a, b) Γ(r+x) α^r/Γ(r)
                 · [(α+T)^−(r+x) + 1{x>0} a/(b+x−1) (α+t_x)^−(r+x)]
    MBG/NBD: L = B(a, b+x+1)/B(a, b) Γ(r+x) α^r/Γ(r) · [(α+T)^−(r+x) + a/(b+x) (α+t_x)^−(r+x)]
    (the MBG/NBD customer may also drop out right after the first purchase, so the second term is
    present at x = 0 too). With e1, e2 the logs of the two bracketed terms times α^r:
    ℓ = [lnΓ(r+x) − lnΓ(r)] + [lnΓ(b+k) − lnΓ(b)] − [lnΓ(a+b+k) − lnΓ(a+b)] + logaddexp(e1, e2),
    k = x (BG) or x + 1 (MBG).
    """
    k = x + 1.0 if modified else x
    base = lgamma_diff(r, x) + lgamma_diff(b, k) - lgamma_diff(a + b, k)
    e1 = -r * math.log1p(T / alpha) - x * math.log(alpha + T)
    has2 = modified or x > 0.0
    bk = b + x if modified else b + x - 1.0
    if has2:
        e2 = math.log(a) - math.log(bk) - r * math.log1p(tx / alpha) - x * math.log(alpha + tx)
        lse = _logaddexp(e1, e2)
        p1 = math.exp(e1 - lse)
        p2 = math.exp(e2 - lse)
    else:
        lse = e1
        p1 = 1.0
        p2 = 0.0
    dab = digamma_diff(a + b, k)
    grad[i, 0] = digamma_diff(r, x) - p1 * math.log1p(T / alpha)
    grad[i, 1] = p1 * (r * T / alpha - x) / (alpha + T)
    grad[i, 2] = -dab
    grad[i, 3] = digamma_diff(b, k) - dab
    if has2:
        grad[i, 0] -= p2 * math.log1p(tx / alpha)
        grad[i, 1] += p2 * (r * tx / alpha - x) / (alpha + tx)
        grad[i, 2] += p2 / a
        grad[i, 3] -= p2 / bk
    return base + lse


@jit
def _bg_terms(
    p: F64, X: F64, TX: F64, T: F64, w: F64, modified: bool, ll: F64, grad: F64, lo: int, hi: int
) -> None:
    r = p[0]
    alpha = p[1]
    a = p[2]
    b = p[3]
    for i in range(lo, hi):
        if w[i] == 0.0:
            ll[i] = 0.0
            for j in range(4):
                grad[i, j] = 0.0
            continue
        ll[i] = _bg_tuple(r, alpha, a, b, X[i], TX[i], T[i], modified, grad, i)
        _clean(i, ll, grad)


# ---------------------------------------------------------------------------------------------
# Pareto/NBD (Schmittlein, Morrison & Colombo 1987): params [r, alpha, s, beta] over (x, t_x, T)
# ---------------------------------------------------------------------------------------------
#
# Fader & Hardie (2005, "A Note on Deriving the Pareto/NBD Model and Related Expressions") write
#   L = Γ(r+x) α^r β^s / Γ(r) · { (α+T)^−(r+x) (β+T)^−s + s/(r+s+x) · A0 },
#   A0 = Σ± 2F1(r+s+x, b; r+s+x+1; z(y)) / (max(α,β)+y)^(r+s+x) at y = t_x minus at y = T,
# with b = s+1, z = (α−β)/(α+y) when α ≥ β and b = r+x, z = (β−α)/(β+y) when α < β. Two facts make
# this exact and stable here:
#
# 1. s/(r+s+x) A0 = s ∫_{t_x}^{T} (α+τ)^−(r+x) (β+τ)^−(s+1) dτ, and integrating the first term by
#    parts, the braces equal the sum of two POSITIVE terms (no difference of near-equal numbers):
#      { … } = s Φ(t_x; r+x, s+1) + (r+x) Φ(T; r+x+1, s),
#      Φ(y; P, Q) = ∫_y^∞ (α+τ)^−P (β+τ)^−Q dτ,
#    and P(alive) = (α+T)^−(r+x) (β+T)^−s / { … }. Everything is kept in logs (log-sum-exp).
#
# 2. With M = max(α,β)+y, m = min(α,β)+y, R (R') the exponent that goes with M (m), N = R+R'−1,
#    ε = m/M and z = 1 − ε:
#      Φ = M^−R m^(1−R') F / N,  F = 2F1(1, R; R+R'; z) = Σ_n (R)_n/(R+R')_n z^n
#    (Euler's transformation of the 2F1 above: a series of positive terms, 1 ≤ F ≤ 1/ε, so no
#    overflow). Three methods for F, chosen by (z, N), each convergent to rounding error:
#      * z ≤ ½: the series itself, term ratio ≤ z, at most ~55 terms.
#      * ½ < z and ε ≥ w0 = min(½, 1/N): Gauss's continued fraction for 2F1(R, 1; N+1; z) (all
#        partial numerators positive). It converges in O(1/√ε) steps, and ε ≥ 1/N bounds the count
#        (≤ ~300 in the whole box); the plain series would need O(1/ε + R/R') terms.
#      * ε < w0 (z → 1, the slow corner for any series in z): split the Beta-type integral
#        Φ = (M−m)^−N I(ε), I(ε) = ∫_ε^1 w^−R' (1−w)^(N−1) dw = ∫_ε^w0 … + I(w0).
#        I(w0) is the case above at z = 1 − w0. On [ε, w0], (1−w)^(N−1) = Σ_k (1−N)_k/k! w^k
#        converges fast (N w0 ≤ 1 keeps the alternating terms below ~1/k!) and each ∫ w^(k−R') dw
#        is an exponential integral in ln w, formed with expm1, so R' at or near an integer (the
#        logarithmic cases of the 1−z connection formula) needs no special handling.
#    Derivatives w.r.t. R, R' and z are carried along term by term (series, continued fraction
#    via forward-mode Lentz, and the split sum); dI/dε is the integrand at ε in closed form.
#    Accuracy against mpmath (40 digits; the tests' oracle integrates A0 by quadrature): ln Φ to
#    ≤ 2e-12·max(1, |ln Φ|), typically 1e-15, over the box P, Q ∈ [1e-4, 1e5], α, β ∈ [1e-4, 1e4],
#    y ∈ [0, 1e4]; ℓ to ≤ 1e-11·max(1, |ℓ|). The error grows like N·1e-16 (the conditioning of
#    F in z as z → 1), which only matters at x ~ 1e5.


@jit
def _hyp_series(R: float, Rp: float, z: float) -> tuple[float, float, float, float]:
    """(ln F, ∂lnF/∂R, ∂lnF/∂R', ∂lnF/∂z) for F = Σ (R)_n/(R+R')_n z^n, 0 ≤ z ≤ ½."""
    c = R + Rp
    t = 1.0
    tR = 0.0
    tRp = 0.0
    tz = 0.0
    S = 1.0
    SR = 0.0
    SRp = 0.0
    Sz = 0.0
    for n in range(_MAX_ITER):
        cn = c + n
        q = (R + n) / cn
        dqR = Rp / (cn * cn)
        dqRp = -q / cn
        tR, tRp, tz = (tR * q + t * dqR) * z, (tRp * q + t * dqRp) * z, (tz * z + t) * q
        t = t * q * z
        S += t
        SR += tR
        SRp += tRp
        Sz += tz
        if (
            t <= _TOL * S
            and abs(tR) <= _TOL * abs(SR)
            and abs(tRp) <= _TOL * abs(SRp)
            and abs(tz) <= _TOL * abs(Sz)
        ):
            break
    return math.log(S), SR / S, SRp / S, Sz / S


@jit
def _hyp_cf(R: float, Rp: float, z: float) -> tuple[float, float, float, float]:
    """(ln F, ∂/∂R, ∂/∂R', ∂/∂z) for F = 2F1(R, 1; R+R'; z) by Gauss's continued fraction.

    F = 1/(1 − k1 z/(1 − k2 z/(1 − …))), N = R+R'−1, k1 = R/(N+1),
    k_{2m+1} = (R+m)(N+m)/((N+2m)(N+2m+1)), k_{2m} = m(R'−1+m)/((N+2m−1)(N+2m)),
    evaluated with the modified Lentz method, derivatives in forward mode.
    """
    N = R + Rp - 1.0
    C = 1.0
    D = 0.0
    dC0 = 0.0
    dC1 = 0.0
    dC2 = 0.0
    dD0 = 0.0
    dD1 = 0.0
    dD2 = 0.0
    lng = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    for n in range(1, _MAX_ITER):
        if n == 1:
            k = R / (N + 1.0)
            kR = Rp / ((N + 1.0) * (N + 1.0))
            kRp = -k / (N + 1.0)
        elif n % 2 == 1:
            m = (n - 1) // 2
            u1 = N + 2.0 * m
            u2 = u1 + 1.0
            k = (R + m) * (N + m) / (u1 * u2)
            common = 1.0 / (N + m) - 1.0 / u1 - 1.0 / u2
            kR = k * (1.0 / (R + m) + common)
            kRp = k * common
        else:
            m = n // 2
            u1 = N + 2.0 * m - 1.0
            u2 = u1 + 1.0
            k = m * (Rp - 1.0 + m) / (u1 * u2)
            inv = 1.0 / u1 + 1.0 / u2
            kR = -k * inv
            kRp = m / (u1 * u2) - k * inv
        a = -k * z
        da0 = -kR * z
        da1 = -kRp * z
        da2 = -k
        Dn = 1.0 / (1.0 + a * D)
        dDn0 = -Dn * Dn * (da0 * D + a * dD0)
        dDn1 = -Dn * Dn * (da1 * D + a * dD1)
        dDn2 = -Dn * Dn * (da2 * D + a * dD2)
        Cn = 1.0 + a / C
        dCn0 = da0 / C - a * dC0 / (C * C)
        dCn1 = da1 / C - a * dC1 / (C * C)
        dCn2 = da2 / C - a * dC2 / (C * C)
        delta = Cn * Dn
        lng += math.log(delta)
        h0 = dCn0 / Cn + dDn0 / Dn
        h1 = dCn1 / Cn + dDn1 / Dn
        h2 = dCn2 / Cn + dDn2 / Dn
        g0 += h0
        g1 += h1
        g2 += h2
        C = Cn
        D = Dn
        dC0 = dCn0
        dC1 = dCn1
        dC2 = dCn2
        dD0 = dDn0
        dD1 = dDn1
        dD2 = dDn2
        if (
            abs(delta - 1.0) <= 3e-16
            and abs(h0) <= 3e-16 * (1.0 + abs(g0))
            and abs(h1) <= 3e-16 * (1.0 + abs(g1))
            and abs(h2) <= 3e-16 * (1.0 + abs(g2))
        ):
            break
    return -lng, -g0, -g1, -g2


@jit
def _hyp(R: float, Rp: float, z: float) -> tuple[float, float, float, float]:
    if z <= 0.5:
        return _hyp_series(R, Rp, z)
    return _hyp_cf(R, Rp, z)


@jit
def _log_i_split(R: float, Rp: float, eps: float, w0: float) -> tuple[float, float, float, float]:
    """(ln I, ∂/∂R, ∂/∂R', ∂/∂ε) for I(ε) = ∫_ε^1 w^−R' (1−w)^(R+R'−2) dw, ε < w0 ≤ ½."""
    N = R + Rp - 1.0
    L0 = math.log(w0)
    L1 = math.log(eps)
    Dl = L0 - L1
    # ∫_ε^w0 part: Σ_k c_k J_k, c_k = (1−N)_k/k!,
    # J_k = ∫_ε^w0 w^(k−R') dw = e^(e L1) Dl (e^(e Dl) − 1)/(e Dl), e = k + 1 − R'
    e = 1.0 - Rp
    lnJ0 = e * L1 + math.log(Dl) + _log_expm1_ratio(e * Dl)
    c = 1.0
    dc = 0.0  # ∂c_k/∂N
    SA = 0.0
    SAN = 0.0
    SARp = 0.0
    for k in range(_MAX_ITER):
        e = k + 1.0 - Rp
        ed = e * Dl
        rk = math.exp(e * L1 + math.log(Dl) + _log_expm1_ratio(ed) - lnJ0)
        dlnJ = -(L1 + Dl * _log_expm1_ratio_deriv(ed))  # ∂ ln J_k / ∂R'
        t0 = c * rk
        t1 = dc * rk
        t2 = t0 * dlnJ
        SA += t0
        SAN += t1
        SARp += t2
        if (
            k > 0
            and abs(t0) <= _TOL * abs(SA)
            and abs(t1) <= _TOL * (abs(SAN) + abs(SA))
            and abs(t2) <= _TOL * (abs(SARp) + abs(SA))
        ):
            break
        f = k + 1.0 - N
        dc = (dc * f - c) / (k + 1.0)
        c = c * f / (k + 1.0)
    lnIA = lnJ0 + math.log(SA)
    dA_R = SAN / SA
    dA_Rp = (SAN + SARp) / SA
    # I(w0) = z0^N w0^(1−R') F(R, R'; z0) / N
    z0 = 1.0 - w0
    lnF, F_R, F_Rp, _ = _hyp(R, Rp, z0)
    l1w = math.log1p(-w0)
    lnIB = N * l1w + (1.0 - Rp) * L0 + lnF - math.log(N)
    dB_R = l1w + F_R - 1.0 / N
    dB_Rp = l1w - L0 + F_Rp - 1.0 / N
    lnI = _logaddexp(lnIA, lnIB)
    pA = math.exp(lnIA - lnI)
    pB = math.exp(lnIB - lnI)
    d_eps = -math.exp(-Rp * L1 + (N - 1.0) * math.log1p(-eps) - lnI)
    return lnI, pA * dA_R + pB * dB_R, pA * dA_Rp + pB * dB_Rp, d_eps


@jit
def _log_phi(
    P: float, Q: float, alpha: float, beta: float, y: float
) -> tuple[float, float, float, float, float]:
    """(v, ∂v/∂P, ∂v/∂Q, ∂v/∂α, ∂v/∂β) for v = ln Φ(y; P, Q) + P ln α + Q ln β.

    Φ(y; P, Q) = ∫_y^∞ (α+τ)^−P (β+τ)^−Q dτ, P, Q > 0, P + Q > 1 (see the block comment above).
    The scaling by α^P β^Q removes the large, cancelling ln α, ln β terms analytically.
    """
    if alpha >= beta:
        M0 = alpha
        m0 = beta
        R = P
        Rp = Q
    else:
        M0 = beta
        m0 = alpha
        R = Q
        Rp = P
    N = R + Rp - 1.0
    M = M0 + y
    m = m0 + y
    eps = m / M
    w0 = min(0.5, 1.0 / N)
    if eps >= w0:
        z = (M0 - m0) / M
        lnF, F_R, F_Rp, F_z = _hyp(R, Rp, z)
        l_M = math.log1p(y / M0)
        l_m = math.log1p(y / m0)
        v = math.log(m0) - R * l_M - (Rp - 1.0) * l_m - math.log(N) + lnF
        dR = -l_M - 1.0 / N + F_R
        dRp = -l_m - 1.0 / N + F_Rp
        dM0 = R * y / (M0 * M) + F_z * m / (M * M)
        dm0 = 1.0 / m0 + (Rp - 1.0) * y / (m0 * m) - F_z / M
    else:
        lnI, IR, IRp, Ieps = _log_i_split(R, Rp, eps, w0)
        dlt = M0 - m0
        ldlt = math.log(dlt)
        lrat = math.log1p(-m0 / M0)
        v = ldlt - R * lrat - Rp * (ldlt - math.log(m0)) + lnI
        dR = -lrat + IR
        dRp = -ldlt + math.log(m0) + IRp
        dM0 = (1.0 - Rp) / dlt - R * m0 / (M0 * dlt) - Ieps * m / (M * M)
        dm0 = N / dlt + Rp / m0 + Ieps / M
    if alpha >= beta:
        return v, dR, dRp, dM0, dm0
    return v, dRp, dR, dm0, dM0


@jit
def _pnbd_tuple(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: float,
    tx: float,
    T: float,
    grad: F64,
    i: int,
    want_alive: bool,
) -> float:
    """ℓ (or ln P(alive at T) if ``want_alive``) of one Pareto/NBD tuple; gradient to grad[i]."""
    rx = r + x
    # s Φ(t_x; r+x, s+1) and (r+x) Φ(T; r+x+1, s), each times α^(r+x) β^s, in logs
    vh, hP, hQ, ha, hb = _log_phi(rx, s + 1.0, alpha, beta, tx)
    vk, kP, kQ, ka, kb = _log_phi(rx + 1.0, s, alpha, beta, T)
    lh = math.log(s) - math.log(beta) + vh
    lk = math.log(rx) - math.log(alpha) + vk
    lse = _logaddexp(lh, lk)
    if want_alive:
        first = -rx * math.log1p(T / alpha) - s * math.log1p(T / beta)
        return min(0.0, first - lse)
    ph = math.exp(lh - lse)
    pk = math.exp(lk - lse)
    grad[i, 0] = digamma_diff(r, x) + ph * hP + pk * (1.0 / rx + kP)
    grad[i, 1] = -x / alpha + ph * ha + pk * (ka - 1.0 / alpha)
    grad[i, 2] = ph * (1.0 / s + hQ) + pk * kQ
    grad[i, 3] = ph * (hb - 1.0 / beta) + pk * kb
    return lgamma_diff(r, x) - x * math.log(alpha) + lse


@jit
def _pnbd_terms(
    p: F64,
    X: F64,
    TX: F64,
    T: F64,
    w: F64,
    want_alive: bool,
    ll: F64,
    grad: F64,
    lo: int,
    hi: int,
) -> None:
    r = p[0]
    alpha = p[1]
    s = p[2]
    beta = p[3]
    for i in range(lo, hi):
        if w[i] == 0.0:
            ll[i] = 0.0
            for j in range(4):
                grad[i, j] = 0.0
            continue
        ll[i] = _pnbd_tuple(r, alpha, s, beta, X[i], TX[i], T[i], grad, i, want_alive)
        _clean(i, ll, grad)


# ---------------------------------------------------------------------------------------------
# Drivers (sequential, deterministic sums) and the typed public API
# ---------------------------------------------------------------------------------------------

_BG, _MBG, _PNBD, _NBD, _GG = 0, 1, 2, 3, 4
_N_PARAMS = (4, 4, 4, 2, 3)
#: Tuples per chunk of the per-tuple kernels. Each tuple's value is written in place, so the split
#: does not change any result; it only has to be large enough to amortise a call.
CHUNK_TUPLES = 8192


def _run_chunks(kernel: Callable[..., None], args: tuple[object, ...], n: int) -> None:
    """Call ``kernel(*args, lo, hi)`` over [0, n) in contiguous chunks on the shared pool.

    The kernels release the GIL (nogil) and write disjoint slices of the output arrays, so the
    per-tuple values do not depend on the split or the thread count. Plain threads rather than
    ``parallel=True``: numba's cached parallel gufuncs can segfault when loaded from a cache
    written by another process or called from another cached function (numba issues #8578,
    #10128).
    """

    def work(lo: int, hi: int) -> None:
        kernel(*args, lo, hi)

    map_chunks(work, chunk_bounds(n, CHUNK_TUPLES))


def _terms(
    model: int, p: F64, d0: F64, d1: F64, d2: F64, w: F64, *, want_alive: bool = False
) -> tuple[F64, F64]:
    """Per-tuple log-likelihoods (unweighted) and gradients; zero-weight tuples give 0."""
    n = d0.shape[0]
    ll = np.empty(n)
    grad = np.empty((n, p.shape[0]))
    if not _params_ok(p):
        ll[:] = -np.inf
        grad[:] = 0.0
        return ll, grad
    if model in (_BG, _MBG):
        _run_chunks(_bg_terms, (p, d0, d1, d2, w, model == _MBG, ll, grad), n)
    elif model == _PNBD:
        _run_chunks(_pnbd_terms, (p, d0, d1, d2, w, want_alive, ll, grad), n)
    elif model == _NBD:
        _run_chunks(_nbd_terms, (p, d0, d1, w, ll, grad), n)
    else:
        _run_chunks(_gamma_gamma_terms, (p, d0, d1, w, ll, grad), n)
    return ll, grad


def _as_f64(a: ArrayLike) -> F64:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))


def _params(params: ArrayLike, model: int) -> F64:
    p = _as_f64(params)
    if p.shape[0] != _N_PARAMS[model]:
        raise ValueError(f"expected {_N_PARAMS[model]} parameters, got {p.shape[0]}")
    return p


def _columns(*cols: ArrayLike) -> list[F64]:
    out = [_as_f64(c) for c in cols]
    n = out[0].shape[0]
    if any(c.shape[0] != n for c in out):
        raise ValueError(f"data columns differ in length: {[c.shape[0] for c in out]}")
    return out


def _run_total(model: int, params: ArrayLike, *cols: ArrayLike) -> tuple[float, F64]:
    p = _params(params, model)
    c = _columns(*cols)
    if model in (_NBD, _GG):  # two data columns + weights; pad the unused slot
        d0, d1, w = c
        d2 = d1
    else:
        d0, d1, d2, w = c
    if not _params_ok(p):
        return -math.inf, np.zeros(p.shape[0])
    ll, grad = _terms(model, p, d0, d1, d2, w)
    value, total_grad = _weighted_total(ll, grad, w)
    return float(value), np.asarray(total_grad, dtype=np.float64)


def _run_each(model: int, params: ArrayLike, *cols: ArrayLike) -> F64:
    p = _params(params, model)
    c = _columns(*cols)
    ones = np.ones(c[0].shape[0])
    if model in (_NBD, _GG):
        d0, d1 = c
        d2 = d1
    else:
        d0, d1, d2 = c
    ll, _ = _terms(model, p, d0, d1, d2, ones)
    return np.asarray(ll, dtype=np.float64)


def bgnbd_loglik(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> float:
    """BG/NBD log-likelihood Σ w ℓ(x, t_x, T), params [r, alpha, a, b] (Fader, Hardie, Lee 2005)."""
    return _run_total(_BG, params, x, t_x, T, w)[0]


def bgnbd_loglik_grad(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """BG/NBD log-likelihood and its gradient w.r.t. [r, alpha, a, b]."""
    return _run_total(_BG, params, x, t_x, T, w)


def bgnbd_loglik_each(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> F64:
    """Per-tuple (unweighted) BG/NBD log-likelihoods."""
    return _run_each(_BG, params, x, t_x, T)


def mbgnbd_loglik(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> float:
    """MBG/NBD log-likelihood, params [r, alpha, a, b] (Batislam, Denizel & Filiztekin 2007)."""
    return _run_total(_MBG, params, x, t_x, T, w)[0]


def mbgnbd_loglik_grad(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """MBG/NBD log-likelihood and its gradient w.r.t. [r, alpha, a, b]."""
    return _run_total(_MBG, params, x, t_x, T, w)


def mbgnbd_loglik_each(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> F64:
    """Per-tuple (unweighted) MBG/NBD log-likelihoods."""
    return _run_each(_MBG, params, x, t_x, T)


def pareto_nbd_loglik(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> float:
    """Pareto/NBD log-likelihood, params [r, alpha, s, beta] (Schmittlein et al. 1987)."""
    return _run_total(_PNBD, params, x, t_x, T, w)[0]


def pareto_nbd_loglik_grad(
    params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """Pareto/NBD log-likelihood and its gradient w.r.t. [r, alpha, s, beta]."""
    return _run_total(_PNBD, params, x, t_x, T, w)


def pareto_nbd_loglik_each(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> F64:
    """Per-tuple (unweighted) Pareto/NBD log-likelihoods."""
    return _run_each(_PNBD, params, x, t_x, T)


def pareto_nbd_log_p_alive(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> F64:
    """ln P(alive at T | x, t_x, T) under Pareto/NBD, per tuple (−inf for invalid params)."""
    p = _params(params, _PNBD)
    d0, d1, d2 = _columns(x, t_x, T)
    ll, _ = _terms(_PNBD, p, d0, d1, d2, np.ones(d0.shape[0]), want_alive=True)
    return ll


def nbd_loglik(params: ArrayLike, X: ArrayLike, T: ArrayLike, w: ArrayLike) -> float:
    """NBD log-likelihood over (X, T), params [r, alpha] (docs/methods.md#nbd).

    ℓ = lnΓ(r+X) − lnΓ(r) + r ln α − (r+X) ln(α+T); the data-only constant −Σ_k ln x_k! (period
    panel) or X ln T − ln X! (continuous time) is dropped, so this is the log-likelihood up to a
    term that does not depend on the parameters. The same kernel serves the period panel (X = total
    count over T periods) and the continuous-time NBD on (x, T).
    """
    return _run_total(_NBD, params, X, T, w)[0]


def nbd_loglik_grad(
    params: ArrayLike, X: ArrayLike, T: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """NBD log-likelihood (without the data-only constant) and its gradient w.r.t. [r, alpha]."""
    return _run_total(_NBD, params, X, T, w)


def nbd_loglik_each(params: ArrayLike, X: ArrayLike, T: ArrayLike) -> F64:
    """Per-tuple (unweighted) NBD log-likelihoods, without the data-only constant."""
    return _run_each(_NBD, params, X, T)


def gamma_gamma_loglik(
    params: ArrayLike, x: ArrayLike, mean_amount: ArrayLike, w: ArrayLike
) -> float:
    """Gamma–Gamma spend log-likelihood, params [p, q, gamma] (docs/methods.md#gamma-gamma).

    ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln z̄ + px ln x − (px+q) ln(γ + x z̄), the
    density of the mean z̄ of x amounts. Tuples with x ≤ 0 carry no spend information and contribute
    0; a tuple with x > 0 and z̄ ≤ 0 is impossible under the model and gives −inf.
    """
    return _run_total(_GG, params, x, mean_amount, w)[0]


def gamma_gamma_loglik_grad(
    params: ArrayLike, x: ArrayLike, mean_amount: ArrayLike, w: ArrayLike
) -> tuple[float, F64]:
    """Gamma–Gamma log-likelihood and its gradient w.r.t. [p, q, gamma]."""
    return _run_total(_GG, params, x, mean_amount, w)


def gamma_gamma_loglik_each(params: ArrayLike, x: ArrayLike, mean_amount: ArrayLike) -> F64:
    """Per-tuple (unweighted) Gamma–Gamma log-likelihoods."""
    return _run_each(_GG, params, x, mean_amount)
