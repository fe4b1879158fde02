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
from winback._kernels.newton import chunked_terms, rank_tables
from winback._kernels.special import digamma_diff, lgamma_diff, trigamma
from winback._parallel import chunk_bounds, map_chunks

__all__ = [
    "cnbd_conditional_expected",
    "cnbd_log_alive",
    "cnbd_loglik_each",
    "cnbd_loglik_grad",
    "cnbd_newton_terms",
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
    survival: bool,
) -> float:
    """E[purchases in (T, T+t] | alive at T], or with ``survival`` P(still alive at T+t |
    alive at T) = E[(1−p)^M] (dropout happens only at purchases)."""
    if t <= 0.0:
        return 1.0 if survival else 0.0
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
            acc += pmf * (c if survival else g)  # c = E[(1−p)^M] after M clocks
            if n > mean:
                ratio = q * (rj + n) / (n + 1.0)
                bound = max(ratio, q)
                if bound < 1.0:
                    size = 1.0 if survival else g + (n + 1.0) / k + 1.0 / (1.0 - bound)
                    tail = pmf * bound / (1.0 - bound) * size
                    if tail <= _TAIL * acc or (acc == 0.0 and pmf == 0.0):
                        break
        total += rho * acc
        weight_sum += rho
    return total / weight_sum


@jit
def _expected_rows(
    p: F64,
    k: int,
    t: float,
    X: F64,
    TX: F64,
    T: F64,
    modified: bool,
    survival: bool,
    out: F64,
    lo: int,
    hi: int,
) -> None:
    for i in range(lo, hi):
        out[i] = _expected_one(p[0], p[1], p[2], p[3], k, X[i], TX[i], T[i], t, modified, survival)


def cnbd_conditional_expected(
    params: ArrayLike,
    k: int,
    modified: bool,
    t: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    survival: bool = False,
) -> F64:
    """E[purchases in (T, T + t] | alive at T, x, t_x, T] per customer (multiply by P(alive)
    for the conditional expectation); at x = t_x = T = 0 the new customer's E[X(t)] given
    alive at 0. With ``survival``: P(alive at T + t | alive at T, x, t_x, T) instead."""
    p = _f64(params)
    xs, txs, Ts = _f64(x), _f64(t_x), _f64(T)
    out = np.empty(xs.shape[0])

    def work(lo: int, hi: int) -> None:
        _expected_rows(p, int(k), float(t), xs, txs, Ts, modified, survival, out, lo, hi)

    map_chunks(work, chunk_bounds(xs.shape[0], 1024))
    return out


# ---------------------------------------------------------------------------------------------
# Newton pass: value, gradient and exact Hessian in one sweep (docs/methods.md#fitting)
# ---------------------------------------------------------------------------------------------
#
# ℓ = A(x) + ln(e^{e1} + [m > 0] e^{e2}) with
#   A(x) = lnΓ(r+K) − lnΓ(r) + r ln α + ln B(a, b+m) − ln B(a, b) − x lnΓ(k),
#   e1 = −(r+K) ln(α+T) + ln S,   e2 = ln a − ln(b+m−1) − (r+K) ln(α+t_x).
# ln S = ln Σ ρ_i is a log-sum over terms with ∂ln ρ_i/∂r = D_i = Σ_{j≤i} 1/(r+K+j−1),
# ∂²/∂r² = −E_i = −Σ 1/(r+K+j−1)², ∂/∂α = −i/(α+T), ∂²/∂α² = i/(α+T)², so with π_i = ρ_i/S its
# derivatives are the π-means of those plus the π-covariances of the first derivatives.
# With s = e^{e2}/(e^{e1}+e^{e2}): ∇ℓ = ∇A + (1−s)∇e1 + s∇e2,
# ∇²ℓ = ∇²A + (1−s)∇²e1 + s∇²e2 + s(1−s)(∇e2−∇e1)(∇e2−∇e1)ᵀ.
# Hessian layout (upper triangle): r-r, r-α, r-a, r-b, α-α, α-a, α-b, a-a, a-b, b-b.


@jit
def _newton_range(  # type: ignore[no-untyped-def]
    params,
    k,
    modified,
    group_starts,
    x_values,
    t_x_rank,
    T_rank,
    log_tx,
    inv_tx,
    log_T,
    inv_T,
    T_values,
    t_x_values,
    w,
    lo,
    hi,
):
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    shift = 1.0 if modified else 0.0
    total = np.zeros(15)
    g = np.zeros(4)
    h = np.zeros(10)
    for grp in range(x_values.size):
        first = max(group_starts[grp], lo)
        stop = min(group_starts[grp + 1], hi)
        if first >= stop:
            continue
        x = x_values[grp]
        m = x + shift
        K = k * x
        rK = r + K
        has_v = m > 0.0
        log_ratio_v = 0.0
        inv_bv = 0.0
        if has_v:
            log_ratio_v = math.log(a) - math.log(b + m - 1.0)
            inv_bv = 1.0 / (b + m - 1.0)
        sw = 0.0
        for j in range(4):
            g[j] = 0.0
        for j in range(10):
            h[j] = 0.0
        s_ll = 0.0
        for t in range(first, stop):
            wt = w[t]
            if wt == 0.0:
                continue
            sw += wt
            lT = log_T[T_rank[t]]
            iT = inv_T[T_rank[t]]
            e1 = -rK * lT
            g1r = -lT
            g1a = -rK * iT
            h1rr = 0.0
            h1ra = -iT
            h1aa = rK * iT * iT
            if k > 1:
                delta = T_values[T_rank[t]] - t_x_values[t_x_rank[t]]
                if delta > 0.0:
                    rho = 1.0
                    d_cum = 0.0
                    e_cum = 0.0
                    s0 = 1.0
                    s_d = 0.0
                    s_dd = 0.0
                    s_i = 0.0
                    s_ii = 0.0
                    s_di = 0.0
                    for i in range(1, k):
                        c = rK + i - 1.0
                        rho *= delta * c * iT / i
                        d_cum += 1.0 / c
                        e_cum += 1.0 / (c * c)
                        s0 += rho
                        s_d += rho * d_cum
                        s_dd += rho * (d_cum * d_cum - e_cum)
                        s_i += rho * i
                        s_ii += rho * i * i
                        s_di += rho * d_cum * i
                    l_r = s_d / s0
                    l_a = -iT * s_i / s0
                    e1 += math.log(s0)
                    g1r += l_r
                    g1a += l_a
                    h1rr += s_dd / s0 - l_r * l_r
                    h1ra += -iT * s_di / s0 - l_r * l_a
                    h1aa += iT * iT * (s_ii + s_i) / s0 - l_a * l_a
            if has_v:
                ltx = log_tx[t_x_rank[t]]
                itx = inv_tx[t_x_rank[t]]
                e2 = log_ratio_v - rK * ltx
                if e2 > e1:
                    ee = math.exp(e1 - e2)
                    lse = e2 + math.log1p(ee)
                    s = 1.0 / (1.0 + ee)
                else:
                    ee = math.exp(e2 - e1)
                    lse = e1 + math.log1p(ee)
                    s = ee / (1.0 + ee)
                g2r = -ltx
                g2a = -rK * itx
                g2aa = 1.0 / a
                g2bb = -inv_bv
                q = s * (1.0 - s)
                dr = g2r - g1r
                dal = g2a - g1a
                da = g2aa
                db = g2bb
                s_ll += wt * lse
                g[0] += wt * ((1.0 - s) * g1r + s * g2r)
                g[1] += wt * ((1.0 - s) * g1a + s * g2a)
                g[2] += wt * s * g2aa
                g[3] += wt * s * g2bb
                h[0] += wt * ((1.0 - s) * h1rr + q * dr * dr)
                h[1] += wt * ((1.0 - s) * h1ra + s * (-itx) + q * dr * dal)
                h[2] += wt * q * dr * da
                h[3] += wt * q * dr * db
                h[4] += wt * ((1.0 - s) * h1aa + s * rK * itx * itx + q * dal * dal)
                h[5] += wt * q * dal * da
                h[6] += wt * q * dal * db
                h[7] += wt * (s * (-g2aa * g2aa) + q * da * da)
                h[8] += wt * q * da * db
                h[9] += wt * (s * inv_bv * inv_bv + q * db * db)
            else:
                s_ll += wt * e1
                g[0] += wt * g1r
                g[1] += wt * g1a
                h[0] += wt * h1rr
                h[1] += wt * h1ra
                h[4] += wt * h1aa
        if sw == 0.0:
            continue
        bm = b + m
        const = (
            lgamma_diff(r, K)
            + r * math.log(alpha)
            + lgamma_diff(b, m)
            - lgamma_diff(a + b, m)
            - x * math.lgamma(k)
        )
        dab = digamma_diff(a + b, m)
        tri_ab = trigamma(a + b) - trigamma(a + bm)
        total[0] += s_ll + sw * const
        total[1] += g[0] + sw * (digamma_diff(r, K) + math.log(alpha))
        total[2] += g[1] + sw * (r / alpha)
        total[3] += g[2] - sw * dab
        total[4] += g[3] + sw * (digamma_diff(b, m) - dab)
        total[5] += h[0] + sw * (trigamma(r + K) - trigamma(r))
        total[6] += h[1] + sw / alpha
        total[7] += h[2]
        total[8] += h[3]
        total[9] += h[4] - sw * r / (alpha * alpha)
        total[10] += h[5]
        total[11] += h[6]
        total[12] += h[7] + sw * tri_ab
        total[13] += h[8] + sw * tri_ab
        total[14] += h[9] + sw * (trigamma(bm) - trigamma(b) + tri_ab)
    return total


def cnbd_newton_terms(
    params: ArrayLike,
    k: int,
    modified: bool,
    group_starts: NDArray[np.int64],
    x_values: F64,
    t_x_rank: NDArray[np.uint32],
    t_x_values: F64,
    T_rank: NDArray[np.uint32],
    T_values: F64,
    w: F64,
) -> tuple[float, F64, F64]:
    """(ℓ, ∇ℓ, ∇²ℓ) w.r.t. [r, alpha, a, b] over tuples sorted by x (group g: tuples
    ``group_starts[g]:group_starts[g+1]`` with frequency ``x_values[g]``; t_x and T as ranks into
    their distinct values), without the (k−1) Σ litt term. Chunks of fixed size summed in
    chunk order: the same bits on any number of threads."""
    p = _f64(params)
    if not _params_ok(p):
        return -math.inf, np.zeros(4), np.zeros((4, 4))
    tables = rank_tables(float(p[1]), t_x_values, T_values)
    value, grad, hess = chunked_terms(
        _newton_range,
        4,
        w.size,
        (p, int(k), modified, group_starts, x_values, t_x_rank, T_rank, *tables, T_values,
         t_x_values, w),
    )  # fmt: skip
    if not math.isfinite(value):
        return -math.inf, np.zeros(4), np.zeros((4, 4))
    return value, grad, hess
