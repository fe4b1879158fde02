"""BG/CNBD-k and MBG/CNBD-k (Platzer & Reutterer 2016), docs/methods.md#cnbd-k, in Numba.

While alive a customer's inter-purchase times are Erlang-k with rate λ ~ Gamma(r, rate α) (each
purchase is the k-th event of a Poisson process of "phases" at rate λ, so the mean gap is k/λ);
after each repeat purchase — MBG/CNBD-k: also right after the first — they drop out with
probability p ~ Beta(a, b). k = 1 is BG/NBD (MBG/NBD).

With m = x + s (s = 0 for BG, 1 for MBG), K = k x and Δ = T − t_x, one customer's likelihood is

    L = exp((k−1) litt − x lnΓ(k)) · Γ(r+K)/Γ(r) · B(a, b+m)/B(a, b)
        · [ (α/(α+T))^r (α+T)^−K S + 1{m>0} a/(b+m−1) (α/(α+t_x))^r (α+t_x)^−K ],
    S = Σ_{i<k} ρ_i,  ρ_i = Π_{j=1..i} Δ (r+K+j−1) / (j (α+T)),

where litt = Σ ln(t_j − t_{j−1}) over the repeat purchases. The first bracketed term is "alive
at T" (the Erlang clock has run Δ without completing: i < k phases since t_x), the second "gone
after the last purchase"; P(alive) is the first's share. The kernels here leave out the
parameter-free factor exp((k−1) litt) (the caller adds (k−1) Σ litt) and keep −x lnΓ(k); at
k = 1 every term reduces to the BG/NBD kernel's expression, in the same order of operations.

Conventions as in ``likelihood``: per-tuple terms in nogil chunks on the shared pool, summed in
tuple order with Neumaier's compensation; invalid parameters give −inf and a zero gradient.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from winback._kernels import jit
from winback._kernels.likelihood import _clean, _logaddexp, _params_ok, _weighted_total
from winback._kernels.special import digamma_diff, lgamma_diff
from winback._parallel import chunk_bounds, map_chunks

__all__ = [
    "cnbd_conditional_expected",
    "cnbd_log_alive",
    "cnbd_loglik_each",
    "cnbd_loglik_grad",
]

F64 = NDArray[np.float64]
_CHUNK = 8192
#: Relative size of the NB tail left out of the conditional expectation's series.
_TAIL = 1e-17
_MAX_TERMS = 50_000_000


@jit
def _cnbd_tuple(
    r: float,
    alpha: float,
    a: float,
    b: float,
    k: int,
    x: float,
    tx: float,
    T: float,
    modified: bool,
    grad: F64,
    i: int,
) -> tuple[float, float]:
    """(ℓ without the litt term, ln P(alive at T)) of one tuple; its gradient into grad[i]."""
    m = x + 1.0 if modified else x
    K = k * x
    base = lgamma_diff(r, K) + lgamma_diff(b, m) - lgamma_diff(a + b, m) - x * math.lgamma(k)
    # S = Σ ρ_i and its derivatives: ∂ρ_i/∂r = ρ_i Σ_{j≤i} 1/(r+K+j−1), ∂ρ_i/∂α = −i ρ_i/(α+T).
    s = 1.0
    s_r = 0.0
    s_alpha = 0.0
    delta = T - tx
    if k > 1 and delta > 0.0:
        rho = 1.0
        d_r = 0.0
        for j in range(1, k):
            rho *= delta * (r + K + j - 1.0) / (j * (alpha + T))
            d_r += 1.0 / (r + K + j - 1.0)
            s += rho
            s_r += rho * d_r
            s_alpha += j * rho
    e1 = -r * math.log1p(T / alpha) - K * math.log(alpha + T)
    if k > 1:
        e1 += math.log(s)
    has2 = modified or x > 0.0
    bk = b + m - 1.0
    if has2:
        e2 = math.log(a) - math.log(bk) - r * math.log1p(tx / alpha) - K * math.log(alpha + tx)
        lse = _logaddexp(e1, e2)
        p1 = math.exp(e1 - lse)
        p2 = math.exp(e2 - lse)
    else:
        lse = e1
        p1 = 1.0
        p2 = 0.0
    dab = digamma_diff(a + b, m)
    grad[i, 0] = digamma_diff(r, K) - p1 * math.log1p(T / alpha)
    grad[i, 1] = p1 * (r * T / alpha - K) / (alpha + T)
    if k > 1:
        grad[i, 0] += p1 * s_r / s
        grad[i, 1] -= p1 * s_alpha / (s * (alpha + T))
    grad[i, 2] = -dab
    grad[i, 3] = digamma_diff(b, m) - dab
    if has2:
        grad[i, 0] -= p2 * math.log1p(tx / alpha)
        grad[i, 1] += p2 * (r * tx / alpha - K) / (alpha + tx)
        grad[i, 2] += p2 / a
        grad[i, 3] -= p2 / bk
    return base + lse, e1 - lse


@jit
def _cnbd_terms(
    p: F64,
    k: int,
    X: F64,
    TX: F64,
    T: F64,
    w: F64,
    modified: bool,
    ll: F64,
    log_alive: F64,
    grad: F64,
    lo: int,
    hi: int,
) -> None:
    for i in range(lo, hi):
        if w[i] == 0.0:
            ll[i] = 0.0
            log_alive[i] = 0.0
            for j in range(4):
                grad[i, j] = 0.0
            continue
        ll[i], log_alive[i] = _cnbd_tuple(
            p[0], p[1], p[2], p[3], k, X[i], TX[i], T[i], modified, grad, i
        )
        _clean(i, ll, grad)


def _f64(a: ArrayLike) -> F64:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))


def _terms(
    params: ArrayLike, k: int, modified: bool, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, w: F64
) -> tuple[F64, F64, F64]:
    p = _f64(params)
    if p.shape[0] != 4:
        raise ValueError(f"expected 4 parameters [r, alpha, a, b], got {p.shape[0]}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a whole number ≥ 1, got {k!r}")
    xs, txs, Ts = _f64(x), _f64(t_x), _f64(T)
    n = xs.shape[0]
    if txs.shape[0] != n or Ts.shape[0] != n or w.shape[0] != n:
        raise ValueError("data columns differ in length")
    ll = np.empty(n)
    log_alive = np.empty(n)
    grad = np.empty((n, 4))
    if not _params_ok(p):
        ll[:] = -np.inf
        log_alive[:] = np.nan
        grad[:] = 0.0
        return ll, log_alive, grad

    def work(lo: int, hi: int) -> None:
        _cnbd_terms(p, int(k), xs, txs, Ts, w, modified, ll, log_alive, grad, lo, hi)

    map_chunks(work, chunk_bounds(n, _CHUNK))
    return ll, log_alive, grad


def cnbd_loglik_grad(
    params: ArrayLike,
    k: int,
    modified: bool,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    w: ArrayLike,
) -> tuple[float, F64]:
    """Σ w ℓ over (x, t_x, T) tuples and its gradient w.r.t. [r, alpha, a, b], without the
    (k−1) Σ litt term (parameter-free; the caller adds it)."""
    weights = _f64(w)
    ll, _, grad = _terms(params, k, modified, x, t_x, T, weights)
    if not np.all(np.isfinite(grad)):  # only on invalid parameters (zeros then)
        grad = np.where(np.isfinite(grad), grad, 0.0)
    value, total = _weighted_total(ll, grad, weights)
    return float(value), np.asarray(total, dtype=np.float64)


def cnbd_loglik_each(
    params: ArrayLike, k: int, modified: bool, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> F64:
    """Per-tuple ℓ without the (k−1) litt term."""
    xs = _f64(x)
    ll, _, _ = _terms(params, k, modified, xs, t_x, T, np.ones(xs.shape[0]))
    return np.asarray(ll, dtype=np.float64)


def cnbd_log_alive(
    params: ArrayLike, k: int, modified: bool, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> F64:
    """ln P(alive at T | x, t_x, T) per tuple."""
    xs = _f64(x)
    _, log_alive, _ = _terms(params, k, modified, xs, t_x, T, np.ones(xs.shape[0]))
    return np.asarray(log_alive, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Conditional expectation
# ---------------------------------------------------------------------------------------------
#
# Given alive at T, the posterior factorises: p ~ Beta(a, b') with b' = b + m, and (λ, j) — j < k
# phases completed since t_x — has weight ρ_j / S with λ | j ~ Gamma(r + K + j, α + T). In
# (T, T + t] the phases N ~ Poisson(λ t), i.e. NB(r + K + j, π = (α+T)/(α+T+t)) after λ, complete
# ⌊(j + N)/k⌋ purchase clocks, and with dropout after each purchase the expected purchases given
# M clocks are g(M) = Σ_{n=1..M} E[(1−p)^{n−1}] = Σ_{n=1..M} c_n, c_1 = 1,
# c_{n+1} = c_n (b'+n−1)/(a+b'+n−1). So E = Σ_j ρ_j/S Σ_N NB(N) g(⌊(j+N)/k⌋), a series of
# positive terms summed until the NB tail is below _TAIL of the total.


@jit
def _expected_one(
    r: float,
    alpha: float,
    a: float,
    b: float,
    k: int,
    x: float,
    tx: float,
    T: float,
    t: float,
    modified: bool,
) -> float:
    if t <= 0.0:
        return 0.0
    m = x + 1.0 if modified else x
    K = k * x
    bp = b + m
    ap = alpha + T
    log_q = math.log(t) - math.log(ap + t)
    q = math.exp(log_q)
    log_pi = -math.log1p(t / ap)
    delta = T - tx
    total = 0.0
    weight_sum = 0.0
    rho = 1.0
    for j in range(k):
        if j > 0:
            if delta <= 0.0:
                break
            rho *= delta * (r + K + j - 1.0) / (j * ap)
        rj = r + K + j
        mean = rj * q / (1.0 - q) if q < 1.0 else math.inf
        log_pmf = rj * log_pi
        acc = 0.0
        g = 0.0  # g(M) for the current M = ⌊(j+N)/k⌋
        c = 1.0  # c_{M+1}: the next increment of g
        clocks = 0.0  # M
        phase = j  # (j + N) mod k, counted up with N
        for n in range(_MAX_TERMS):
            if n > 0:
                log_pmf += math.log((rj + n - 1.0) / n) + log_q
                phase += 1
                if phase == k:
                    phase = 0
                    clocks += 1.0
                    g += c
                    c *= (bp + clocks - 1.0) / (a + bp + clocks - 1.0)
            pmf = math.exp(log_pmf)
            acc += pmf * g
            if n > mean:
                ratio = q * (rj + n) / (n + 1.0)
                bound = max(ratio, q)
                if bound < 1.0:
                    tail = pmf * bound / (1.0 - bound) * (g + (n + 1.0) / k + 1.0 / (1.0 - bound))
                    if tail <= _TAIL * acc or (acc == 0.0 and pmf == 0.0):
                        break
        total += rho * acc
        weight_sum += rho
    return total / weight_sum


@jit
def _expected_rows(
    p: F64, k: int, t: float, X: F64, TX: F64, T: F64, modified: bool, out: F64, lo: int, hi: int
) -> None:
    for i in range(lo, hi):
        out[i] = _expected_one(p[0], p[1], p[2], p[3], k, X[i], TX[i], T[i], t, modified)


def cnbd_conditional_expected(
    params: ArrayLike,
    k: int,
    modified: bool,
    t: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
) -> F64:
    """E[purchases in (T, T + t] | alive at T, x, t_x, T] per customer (multiply by P(alive)
    for the conditional expectation); at x = t_x = T = 0 the new customer's E[X(t)] given
    alive at 0."""
    p = _f64(params)
    xs, txs, Ts = _f64(x), _f64(t_x), _f64(T)
    out = np.empty(xs.shape[0])

    def work(lo: int, hi: int) -> None:
        _expected_rows(p, int(k), float(t), xs, txs, Ts, modified, out, lo, hi)

    map_chunks(work, chunk_bounds(xs.shape[0], 1024))
    return out
