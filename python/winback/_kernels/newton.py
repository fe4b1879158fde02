"""Exact Hessians for the Newton fast path of BG/NBD, MBG/NBD and Gamma–Gamma
(docs/methods.md#fitting).

One pass over the compressed tuples returns the log-likelihood, its gradient and its Hessian
w.r.t. (r, α, a, b). With them a fit converges in a handful of passes instead of the hundred or so
a quasi-Newton method needs. A pass runs over fixed ``CHUNK_TUPLES``-tuple chunks on the shared
pool of ``winback._parallel`` (the kernels release the GIL) and adds the chunks' sums in chunk
order, so results never depend on the thread count. Not ``parallel=True``: cached parallel
kernels segfaulted here, and OpenMP barriers on a busy two-core machine cost more than they save.

Per customer, with A(x) the part that depends on x alone,
    ℓ = A(x) + ln(e^u + [x > 0 or MBG] e^v),
    u = −(r+x) ln(α+T),   v = ln a − ln(b+x−1+m) − (r+x) ln(α+t_x)     (m = 1 for MBG/NBD),
    A(x) = lnΓ(r+x) − lnΓ(r) + r ln α + ln B(a, b+x+m) − ln B(a, b),
and with s = e^v/(e^u+e^v): ∇ℓ = ∇A + (1−s)∇u + s∇v,
∇²ℓ = ∇²A + (1−s)∇²u + s∇²v + s(1−s)(∇v−∇u)(∇v−∇u)ᵀ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from winback._kernels import jit
from winback._kernels.special import (
    digamma,
    digamma_diff,
    hyp_jet,
    jet4_apply,
    jet4_compose,
    jet4_lin,
    jet4_mul,
    lgamma_diff,
    split_integral_jet,
    trigamma,
)
from winback._parallel import chunk_bounds, map_chunks

__all__ = [
    "CHUNK_TUPLES",
    "beta_geo_newton_terms",
    "chunked_terms",
    "gamma_gamma_newton_terms",
    "pareto_nbd_log_phi_jet",
    "pareto_nbd_newton_terms",
    "rank_tables",
    "read_only",
]

#: Tuples per chunk of a pass. Chunks depend only on the data size, and their sums are added in
#: chunk order, so a pass gives the same bits on any number of threads.
CHUNK_TUPLES = 1 << 15


def read_only(arg: Any) -> Any:
    """A read-only view (no copy) of an array argument, else the argument itself.

    Numba compiles one specialisation per mix of writable and read-only array arguments; the
    models pass arrays of both kinds (the Rust compression's are read-only), so a kernel called
    with views made read-only here is compiled (empty cache) and loaded (filled cache) once
    instead of once per mix. The arithmetic is the same."""
    if isinstance(arg, np.ndarray) and arg.flags.writeable:
        view = arg.view()
        view.flags.writeable = False
        return view
    return arg


def chunked_terms(
    kernel: Any, n_params: int, n_tuples: int, args: tuple[Any, ...]
) -> tuple[float, Any, Any]:
    """Runs ``kernel(*args, lo, hi)`` over fixed chunks (on the shared pool when there are
    several) and assembles (ℓ, ∇ℓ, ∇²ℓ) from the summed upper-triangle layout."""
    # No tuples: one empty chunk, so the sums below start from the kernel's zeros.
    bounds = chunk_bounds(n_tuples, CHUNK_TUPLES) or [(0, 0)]
    args = tuple(read_only(arg) for arg in args)

    def work(lo: int, hi: int) -> Any:
        return kernel(*args, lo, hi)

    parts = map_chunks(work, bounds)
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    grad = total[1 : 1 + n_params].copy()
    hess = np.empty((n_params, n_params))
    index = 1 + n_params
    for i in range(n_params):
        for j in range(i, n_params):
            hess[i, j] = hess[j, i] = total[index]
            index += 1
    return float(total[0]), grad, hess


def rank_tables(alpha: float, t_x_values: Any, T_values: Any) -> tuple[Any, Any, Any, Any]:
    """ln(α+t_x), 1/(α+t_x), ln(α+T), 1/(α+T) per distinct value: what the BG-family passes
    look up by rank instead of computing per tuple."""
    return (
        np.log(alpha + t_x_values),
        1.0 / (alpha + t_x_values),
        np.log(alpha + T_values),
        1.0 / (alpha + T_values),
    )


def beta_geo_newton_terms(
    params: Any,
    modified: bool,
    group_starts: Any,
    x_values: Any,
    t_x_rank: Any,
    t_x_values: Any,
    T_rank: Any,
    T_values: Any,
    w: Any,
) -> tuple[float, Any, Any]:
    """(ℓ, ∇ℓ, ∇²ℓ) of BG/NBD (``modified=False``) or MBG/NBD over tuples sorted by x: group g
    is tuples ``group_starts[g]:group_starts[g+1]``, all with frequency ``x_values[g]``.
    t_x and T come as ranks into their distinct values: ln(α+·) and 1/(α+·) are computed once
    per distinct value (a few thousand days) instead of once per tuple."""
    tables = rank_tables(float(params[1]), t_x_values, T_values)
    return chunked_terms(
        _beta_geo_range,
        4,
        w.size,
        (params, modified, group_starts, x_values, t_x_rank, T_rank, *tables, w),
    )


def gamma_gamma_newton_terms(
    params: Any, group_starts: Any, x_values: Any, mean_amount: Any, w: Any
) -> tuple[float, Any, Any]:
    """(ℓ, ∇ℓ, ∇²ℓ) of Gamma–Gamma w.r.t. (p, q, γ) over tuples sorted by x (all x > 0)."""
    return chunked_terms(
        _gamma_gamma_range, 3, w.size, (params, group_starts, x_values, mean_amount, w)
    )


@jit
def _beta_geo_range(  # type: ignore[no-untyped-def]
    params,
    modified,
    group_starts,
    x_values,
    t_x_rank,
    T_rank,
    log_tx,
    inv_tx,
    log_T,
    inv_T,
    w,
    lo,
    hi,
):
    """Sums of (ℓ, ∇ℓ, upper ∇²ℓ) over tuples lo:hi, sorted by x: group g is tuples
    ``group_starts[g]:group_starts[g+1]``, all with frequency ``x_values[g]``; ``log_T[T_rank[k]]``
    is ln(α + T) of tuple k (likewise 1/(α+T) and the t_x tables)."""
    r, alpha, a, b = params[0], params[1], params[2], params[3]
    shift = 1.0 if modified else 0.0
    # ll, gradient (4), Hessian upper triangle (10):
    # r-r, r-α, r-a, r-b, α-α, α-a, α-b, a-a, a-b, b-b
    total = np.zeros(15)
    for g in range(x_values.size):
        first = max(group_starts[g], lo)
        stop = min(group_starts[g + 1], hi)
        if first >= stop:
            continue
        x = x_values[g]
        rx = r + x
        bx = b + x + shift
        has_v = modified or x > 0
        sw = 0.0
        s_ll = 0.0
        product = 1.0
        in_product = 0
        s_r = 0.0
        s_al = 0.0
        h_rr = 0.0
        h_ral = 0.0
        h_alal = 0.0
        sum_s = 0.0
        sum_q = 0.0
        sum_q_dr = 0.0
        sum_q_dal = 0.0
        log_ratio_v = 0.0
        inv_bv = 0.0
        if has_v:
            log_ratio_v = math.log(a) - math.log(b + x - 1.0 + shift)
            inv_bv = 1.0 / (b + x - 1.0 + shift)
        v_a = 1.0 / a
        v_aa = -v_a * v_a
        v_bb = inv_bv * inv_bv
        for k in range(first, stop):
            wk = w[k]
            sw += wk
            iT = inv_T[T_rank[k]]
            lT = log_T[T_rank[k]]
            u = -rx * lT
            u_al = -rx * iT
            if not has_v:
                s_ll += wk * u
                s_r -= wk * lT
                s_al += wk * u_al
                h_ral -= wk * iT
                h_alal += wk * rx * iT * iT
                continue
            itx = inv_tx[t_x_rank[k]]
            ltx = log_tx[t_x_rank[k]]
            v = log_ratio_v - rx * ltx
            d = v - u
            # ln(e^u + e^v) = max(u, v) + ln(1 + e), e = e^{−|d|} ≤ 1. For unit weights the
            # factors 1 + e ∈ (1, 2] are multiplied and their log taken once per 64 tuples
            # (the product stays below 2^64): one log per 64 tuples instead of a log1p each.
            if d > 0:
                e = math.exp(-d)
                top = v
                s = 1.0 / (1.0 + e)
            else:
                e = math.exp(d)
                top = u
                s = e / (1.0 + e)
            if wk == 1.0:
                s_ll += top
                product *= 1.0 + e
                in_product += 1
                if in_product == 64:
                    s_ll += math.log(product)
                    product = 1.0
                    in_product = 0
            else:
                s_ll += wk * (top + math.log1p(e))
            # s = e^v/(e^u+e^v), q = s(1 − s); the a- and b-derivatives of v are constant within
            # the group, so their terms need only Σ w s, Σ w q, Σ w q dr and Σ w q dα (below).
            dr = lT - ltx  # v_r − u_r
            dal = rx * (iT - itx)  # v_α − u_α
            ws = wk * s
            wq = ws * (1.0 - s)
            w_u = wk - ws  # w (1 − s)
            sum_s += ws
            sum_q += wq
            q_dr = wq * dr
            q_dal = wq * dal
            sum_q_dr += q_dr
            sum_q_dal += q_dal
            s_r += ws * dr - wk * lT
            s_al += ws * dal + wk * u_al
            h_rr += q_dr * dr
            h_ral += q_dr * dal - w_u * iT - ws * itx
            h_alal += q_dal * dal + rx * (w_u * iT * iT + ws * itx * itx)
        db = -inv_bv
        s_a = sum_s * v_a
        s_b = sum_s * db
        h_ra = sum_q_dr * v_a
        h_rb = sum_q_dr * db
        h_ala = sum_q_dal * v_a
        h_alb = sum_q_dal * db
        h_aa = sum_s * v_aa + sum_q * v_a * v_a
        h_ab = sum_q * v_a * db
        h_bb = sum_s * v_bb + sum_q * db * db
        # A(x) and its derivatives, once per group.
        const = (
            math.lgamma(rx)
            - math.lgamma(r)
            + r * math.log(alpha)
            + math.lgamma(bx)
            - math.lgamma(a + bx)
            - math.lgamma(b)
            + math.lgamma(a + b)
        )
        psi_abx = digamma(a + bx)
        psi_ab = digamma(a + b)
        tri_abx = trigamma(a + bx)
        tri_ab = trigamma(a + b)
        total[0] += s_ll + math.log(product) + sw * const
        total[1] += s_r + sw * (digamma(rx) - digamma(r) + math.log(alpha))
        total[2] += s_al + sw * (r / alpha)
        total[3] += s_a + sw * (psi_ab - psi_abx)
        total[4] += s_b + sw * (digamma(bx) - psi_abx - digamma(b) + psi_ab)
        total[5] += h_rr + sw * (trigamma(rx) - trigamma(r))
        total[6] += h_ral + sw / alpha
        total[7] += h_ra
        total[8] += h_rb
        total[9] += h_alal - sw * r / (alpha * alpha)
        total[10] += h_ala
        total[11] += h_alb
        total[12] += h_aa + sw * (tri_ab - tri_abx)
        total[13] += h_ab + sw * (tri_ab - tri_abx)
        total[14] += h_bb + sw * (trigamma(bx) - tri_abx - trigamma(b) + tri_ab)
    return total


@jit
def _gamma_gamma_range(params, group_starts, x_values, mean_amount, w, lo, hi):  # type: ignore[no-untyped-def]
    """Sums of (ℓ, ∇ℓ, upper ∇²ℓ) of Gamma–Gamma w.r.t. (p, q, γ) over tuples lo:hi, sorted by
    x (all x > 0).

    Per customer ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln z̄ + px ln x
    − (px+q) ln(γ + x z̄) (docs/methods.md#gamma-gamma): only ln(γ + x z̄) and 1/(γ + x z̄) vary
    within a group of equal x, so a tuple costs one log and one division; the special functions run
    per group.
    """
    p, q, gamma = params[0], params[1], params[2]
    total = np.zeros(10)  # ll, grad (3), Hessian upper triangle: pp, pq, pγ, qq, qγ, γγ
    log_gamma = math.log(gamma)
    lgamma_q = math.lgamma(q)
    psi_q = digamma(q)
    tri_q = trigamma(q)
    for g in range(x_values.size):
        first = max(group_starts[g], lo)
        stop = min(group_starts[g + 1], hi)
        if first >= stop:
            continue
        x = x_values[g]
        px = p * x
        shape = px + q
        sw = 0.0
        s_log_z = 0.0
        s_log = 0.0
        s_inv = 0.0
        s_inv2 = 0.0
        for k in range(first, stop):
            wk = w[k]
            rate = gamma + x * mean_amount[k]
            inv = 1.0 / rate
            sw += wk
            s_log_z += wk * math.log(mean_amount[k])
            s_log += wk * math.log(rate)
            s_inv += wk * inv
            s_inv2 += wk * inv * inv
        log_x = math.log(x)
        psi_shape = digamma(shape)
        tri_shape = trigamma(shape)
        total[0] += (
            sw * (math.lgamma(shape) - math.lgamma(px) - lgamma_q + q * log_gamma + px * log_x)
            + (px - 1.0) * s_log_z
            - shape * s_log
        )
        total[1] += x * (sw * (psi_shape - digamma(px) + log_x) + s_log_z - s_log)
        total[2] += sw * (psi_shape - psi_q + log_gamma) - s_log
        total[3] += sw * q / gamma - shape * s_inv
        total[4] += sw * x * x * (tri_shape - trigamma(px))
        total[5] += sw * x * tri_shape
        total[6] -= x * s_inv
        total[7] += sw * (tri_shape - tri_q)
        total[8] += sw / gamma - s_inv
        total[9] += -sw * q / (gamma * gamma) + shape * s_inv2
    return total


# ---------------------------------------------------------------------------------------------
# Pareto/NBD (docs/methods.md#pareto-nbd)
# ---------------------------------------------------------------------------------------------
#
# Per customer (``likelihood``'s block comment on Pareto/NBD has the derivation)
#     ℓ = lnΓ(r+x) − lnΓ(r) − x ln α + ln(e^h + e^k),
#     h = ln s − ln β + v(t_x; r+x, s+1),   k = ln(r+x) − ln α + v(T; r+x+1, s),
#     v(y; P, Q) = ln Φ(y; P, Q) + P ln α + Q ln β,  Φ = ∫_y^∞ (α+τ)^−P (β+τ)^−Q dτ,
# where v is a ₂F₁ (or, near its singular end, a split integral) times elementary factors. h
# depends on the tuple through (x, t_x) only and k through (x, T) only: a million customers at
# day resolution hold ~580k distinct (x, t_x, T) tuples but only ~30k (x, t_x) and ~21k (x, T)
# pairs. Tuples come sorted by (x, t_x, T), so h is computed once per run of equal t_x, and k once
# per distinct T within an x group (a small cache indexed by T's rank). Each is a second-order
# jet (value, gradient, Hessian in (r, α, s, β)); with p = e^h/(e^h+e^k):
#     ∇²ℓ = ∇²A + p∇²h + (1−p)∇²k + p(1−p)(∇h−∇k)(∇h−∇k)ᵀ.
#
# Jets in (r, α, s, β) have 15 entries: 0 value; 1 r, 2 α, 3 s, 4 β; Hessian 5 rr, 6 rα, 7 rs,
# 8 rβ, 9 αα, 10 αs, 11 αβ, 12 ss, 13 sβ, 14 ββ.

_JET = 15


@jit
def _variable(value, index):  # type: ignore[no-untyped-def]
    """The jet of variable ``index`` (0 r, 1 α, 2 s, 3 β) shifted to ``value``."""
    z = 0.0
    return (
        value,
        1.0 if index == 0 else z,
        1.0 if index == 1 else z,
        1.0 if index == 2 else z,
        1.0 if index == 3 else z,
        z,
        z,
        z,
        z,
        z,
        z,
        z,
        z,
        z,
        z,
    )


@jit
def _log(a):  # type: ignore[no-untyped-def]
    v = a[0]
    return jet4_apply(a, math.log(v), 1.0 / v, -1.0 / (v * v))


@jit
def _recip(a):  # type: ignore[no-untyped-def]
    inv = 1.0 / a[0]
    return jet4_apply(a, inv, -inv * inv, 2.0 * inv * inv * inv)


@jit
def _log1p_ratio(a, y):  # type: ignore[no-untyped-def]
    """ln(1 + y/a) for a jet a > 0 and a constant y ≥ 0."""
    v = a[0]
    big = v + y
    return jet4_apply(a, math.log1p(y / v), -y / (v * big), y * (big + v) / (v * big) ** 2)


@jit
def pareto_nbd_log_phi_jet(P, Q, alpha, beta, y):  # type: ignore[no-untyped-def]
    """Jet in (r, α, s, β) of v = ln Φ(y; P, Q) + P ln α + Q ln β, where P = r + a constant and
    Q = s + a constant.

    Branches as ``likelihood._log_phi``: with M0 = max(α, β), m0 = min(α, β), R (R') the exponent
    that goes with M0 (m0), N = R+R'−1, ε = (m0+y)/(M0+y) and w0 = min(½, 1/N):
      ε ≥ w0:  v = ln m0 − R ln(1+y/M0) − (R'−1) ln(1+y/m0) − ln N + ln ₂F₁(1, R; R+R'; z),
               z = (M0−m0)/(M0+y);
      ε < w0:  v = ln(M0−m0) − R ln(1−m0/M0) − R'(ln(M0−m0) − ln m0) + ln I(ε).
    The ₂F₁ and I come as jets in (R, R', z or ε) and are composed with those variables' jets.
    """
    if alpha >= beta:
        M0 = _variable(alpha, 1)
        m0 = _variable(beta, 3)
        R = _variable(P, 0)
        Rp = _variable(Q, 2)
    else:
        M0 = _variable(beta, 3)
        m0 = _variable(alpha, 1)
        R = _variable(Q, 2)
        Rp = _variable(P, 0)
    N = R[0] + Rp[0] - 1.0
    Mv = M0[0] + y
    eps = (m0[0] + y) / Mv
    w0 = min(0.5, 1.0 / N)
    inv_M = _recip(_variable(Mv, 1 if alpha >= beta else 3))
    if eps >= w0:
        z = jet4_mul(jet4_lin(1.0, M0, -1.0, m0), inv_M)
        f = hyp_jet(R[0], Rp[0], z[0])
        v = jet4_compose(f, R, Rp, z)
        v = jet4_lin(1.0, v, 1.0, _log(m0))
        v = jet4_lin(1.0, v, -1.0, jet4_mul(R, _log1p_ratio(M0, y)))
        Rp1 = jet4_lin(1.0, Rp, 1.0, _variable(-1.0, -1))
        v = jet4_lin(1.0, v, -1.0, jet4_mul(Rp1, _log1p_ratio(m0, y)))
        N_jet = jet4_lin(1.0, R, 1.0, Rp1)
        return jet4_lin(1.0, v, -1.0, _log(N_jet))
    e = jet4_mul(jet4_lin(1.0, m0, 1.0, _variable(y, -1)), inv_M)
    f = split_integral_jet(R[0], Rp[0], eps, w0)
    v = jet4_compose(f, R, Rp, e)
    ldlt = _log(jet4_lin(1.0, M0, -1.0, m0))
    v = jet4_lin(1.0, v, 1.0, ldlt)
    lrat = jet4_lin(1.0, ldlt, -1.0, _log(M0))  # ln(1 − m0/M0)
    v = jet4_lin(1.0, v, -1.0, jet4_mul(R, lrat))
    return jet4_lin(1.0, v, -1.0, jet4_mul(Rp, jet4_lin(1.0, ldlt, -1.0, _log(m0))))


@jit
def _add_jet(total, weight, jet, offset):  # type: ignore[no-untyped-def]
    """total[1:] += weight · (gradient, Hessian) of the jet stored at ``jet[offset:]``."""
    for i in range(1, _JET):
        total[i] += weight * jet[offset + i]


@jit
def _add_outer(total, weight, a, a_offset, b, b_offset):  # type: ignore[no-untyped-def]
    """total's Hessian += weight · (∇a ∇bᵀ + ∇b ∇aᵀ)/2 (upper triangle), gradients read at
    ``a[a_offset + 1 :]`` and ``b[b_offset + 1 :]``."""
    idx = 5
    for i in range(4):
        ai = a[a_offset + 1 + i]
        bi = b[b_offset + 1 + i]
        for j in range(i, 4):
            total[idx] += 0.5 * weight * (ai * b[b_offset + 1 + j] + bi * a[a_offset + 1 + j])
            idx += 1


@jit
def _pareto_range(  # type: ignore[no-untyped-def]
    params, group_starts, x_values, t_x, T_rank, T_values, w, lo, hi
):
    """Sums of (ℓ, ∇ℓ, upper ∇²ℓ) of Pareto/NBD over tuples lo:hi, sorted by (x, t_x, T): group g
    is tuples ``group_starts[g]:group_starts[g+1]``, all with frequency ``x_values[g]``; T of
    tuple k is ``T_values[T_rank[k]]``. Zero-weight tuples contribute exactly 0.

    A tuple needs only p = e^h/(e^h+e^k) and ln(e^h+e^k): the jets' terms are summed per pair.
    With q = p(1−p) and d = ∇h − ∇k, Σ w q d dᵀ = (Σ w q) ∇h∇hᵀ − 2 sym(∇h (Σ w q ∇k)ᵀ)
    + Σ_k-pairs (Σ w q) ∇k∇kᵀ: per h-run the sums Σ w p, Σ w q and Σ w q ∇k, per k-pair (in the
    cache row, after its jet) Σ w (1−p) and Σ w q, added to the total when the run or the x group
    ends.
    """
    r, alpha, s, beta = params[0], params[1], params[2], params[3]
    total = np.zeros(_JET)
    h = np.zeros(_JET)
    n_T = T_values.size
    # cache row: the k jet (15), Σ w (1−p), Σ w q
    cache = np.zeros((n_T, _JET + 2))
    stamp = np.full(n_T, -1, dtype=np.int64)
    touched = np.empty(n_T, dtype=np.int64)
    qk = np.zeros(4)  # Σ w q ∇k over the current h-run
    log_s_over_beta = math.log(s) - math.log(beta)
    log_alpha = math.log(alpha)
    tri_r = trigamma(r)
    comp = 0.0  # Neumaier compensation of the value
    for g in range(x_values.size):
        first = max(group_starts[g], lo)
        stop = min(group_starts[g + 1], hi)
        if first >= stop:
            continue
        x = x_values[g]
        rx = r + x
        sw = 0.0
        have_h = False
        last_tx = 0.0
        n_touched = 0
        run_p = 0.0
        run_q = 0.0
        for k in range(first, stop + 1):
            wk = w[k] if k < stop else 0.0
            if k < stop and wk == 0.0:
                continue
            tx = t_x[k] if k < stop else 0.0
            if have_h and (k == stop or tx != last_tx):
                # close the h-run
                _add_jet(total, run_p, h, 0)
                _add_outer(total, run_q, h, 0, h, 0)
                idx = 5
                for i in range(4):
                    for j in range(i, 4):
                        total[idx] -= h[1 + i] * qk[j] + qk[i] * h[1 + j]
                        idx += 1
                run_p = 0.0
                run_q = 0.0
                for i in range(4):
                    qk[i] = 0.0
            if k == stop:
                break
            sw += wk
            if not have_h or tx != last_tx:
                jet = pareto_nbd_log_phi_jet(rx, s + 1.0, alpha, beta, tx)
                for i in range(_JET):
                    h[i] = jet[i]
                h[0] += log_s_over_beta
                h[3] += 1.0 / s
                h[4] -= 1.0 / beta
                h[12] -= 1.0 / (s * s)
                h[14] += 1.0 / (beta * beta)
                have_h = True
                last_tx = tx
            rank = T_rank[k]
            if stamp[rank] != g:
                jet = pareto_nbd_log_phi_jet(rx + 1.0, s, alpha, beta, T_values[rank])
                for i in range(_JET):
                    cache[rank, i] = jet[i]
                cache[rank, 0] += math.log(rx) - log_alpha
                cache[rank, 1] += 1.0 / rx
                cache[rank, 2] -= 1.0 / alpha
                cache[rank, 5] -= 1.0 / (rx * rx)
                cache[rank, 9] += 1.0 / (alpha * alpha)
                cache[rank, _JET] = 0.0
                cache[rank, _JET + 1] = 0.0
                stamp[rank] = g
                touched[n_touched] = rank
                n_touched += 1
            a = h[0]
            b = cache[rank, 0]
            if a > b:
                ph = 1.0 / (1.0 + math.exp(b - a))
                lse = a + math.log1p(math.exp(b - a))
            else:
                e = math.exp(a - b)
                ph = e / (1.0 + e)
                lse = b + math.log1p(e)
            term = wk * lse
            acc = total[0] + term
            if abs(total[0]) >= abs(term):
                comp += (total[0] - acc) + term
            else:
                comp += (term - acc) + total[0]
            total[0] = acc
            wph = wk * ph
            wq = wph * (1.0 - ph)
            run_p += wph
            run_q += wq
            cache[rank, _JET] += wk - wph
            cache[rank, _JET + 1] += wq
            for i in range(4):
                qk[i] += wq * cache[rank, 1 + i]
        for m in range(n_touched):
            rank = touched[m]
            row = cache[rank]
            _add_jet(total, row[_JET], row, 0)
            _add_outer(total, row[_JET + 1], row, 0, row, 0)
        if sw == 0.0:
            continue
        term = sw * (lgamma_diff(r, x) - x * log_alpha)
        acc = total[0] + term
        if abs(total[0]) >= abs(term):
            comp += (total[0] - acc) + term
        else:
            comp += (term - acc) + total[0]
        total[0] = acc
        total[1] += sw * digamma_diff(r, x)
        total[2] -= sw * x / alpha
        if x > 0.0:
            total[5] += sw * (trigamma(rx) - tri_r)
            total[9] += sw * x / (alpha * alpha)
    total[0] += comp
    return total


def pareto_nbd_newton_terms(
    params: Any, group_starts: Any, x_values: Any, t_x: Any, T_rank: Any, T_values: Any, w: Any
) -> tuple[float, Any, Any]:
    """(ℓ, ∇ℓ, ∇²ℓ) of Pareto/NBD w.r.t. (r, α, s, β) over tuples sorted by (x, t_x, T): group g
    is tuples ``group_starts[g]:group_starts[g+1]``, all with frequency ``x_values[g]``; T comes
    as ranks into its sorted distinct values."""
    return chunked_terms(
        _pareto_range,
        4,
        w.size,
        (params, group_starts, x_values, t_x, T_rank, T_values, w),
    )
