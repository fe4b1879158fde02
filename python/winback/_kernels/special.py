"""Special functions shared by the kernels, each implemented once: ψ (digamma), ψ' (trigamma)
and the differences lnΓ(a+b) − lnΓ(a), ψ(a+b) − ψ(a) formed without cancellation
(docs/methods.md#models).

``likelihood`` uses the differences (:func:`lgamma_diff`, :func:`digamma_diff`), ``newton`` uses
:func:`digamma` and :func:`trigamma`. The kernels are scalar and compiled with ``jit``.
"""

from __future__ import annotations

import math

from winback._kernels import jit

__all__ = [
    "digamma",
    "digamma_diff",
    "lgamma_diff",
    "psi_asymptotic_tail",
    "trigamma",
]


@jit
def psi_asymptotic_tail(x: float) -> float:
    """Σ_k B_2k / (2k x^2k) for x ≥ 10 (the part of ψ after ln x − 1/(2x)); error < 1e-17."""
    u = 1.0 / (x * x)
    return u * (
        1.0 / 12.0
        - u
        * (
            1.0 / 120.0
            - u
            * (
                1.0 / 252.0
                - u
                * (
                    1.0 / 240.0
                    - u
                    * (1.0 / 132.0 - u * (691.0 / 32760.0 - u * (1.0 / 12.0 - u * 3617.0 / 8160.0)))
                )
            )
        )
    )


@jit
def _lgamma_corr(x: float) -> float:
    """lnΓ(x) − [(x − ½) ln x − x + ½ ln 2π] for x ≥ 10 (Stirling series; error < 1e-17)."""
    u = 1.0 / (x * x)
    return (
        1.0
        / x
        * (
            1.0 / 12.0
            - u
            * (
                1.0 / 360.0
                - u
                * (
                    1.0 / 1260.0
                    - u * (1.0 / 1680.0 - u * (1.0 / 1188.0 - u * (691.0 / 360360.0 - u / 156.0)))
                )
            )
        )
    )


@jit
def lgamma_diff(a: float, b: float) -> float:
    """lnΓ(a + b) − lnΓ(a) for a > 0, b ≥ 0, without the cancellation of two large lgammas."""
    if b == 0.0:
        return 0.0
    if a < 10.0 and b >= 1.0:
        # |lnΓ(a)| ≤ 13 here, so the direct difference keeps ~1e-15 absolute accuracy
        return math.lgamma(a + b) - math.lgamma(a)
    # b < 1: step a up with lnΓ(a+1) = lnΓ(a) + ln a (each step adds −ln((a+b)/a)), then Stirling
    head = 0.0
    while a < 10.0:
        head -= math.log1p(b / a)
        a += 1.0
    ab = a + b
    return head + (
        b * math.log(ab) + (a - 0.5) * math.log1p(b / a) - b + (_lgamma_corr(ab) - _lgamma_corr(a))
    )


@jit
def digamma_diff(a: float, b: float) -> float:
    """ψ(a + b) − ψ(a) for a > 0, b ≥ 0, without cancellation for large a or small b."""
    if b == 0.0:
        return 0.0
    # below 10, step a up with ψ(a+1) = ψ(a) + 1/a: each step adds 1/a − 1/(a+b) = b/(a(a+b))
    head = 0.0
    while a < 10.0:
        head += b / (a * (a + b))
        a += 1.0
    ab = a + b
    return head + (
        math.log1p(b / a) + 0.5 * b / (a * ab) - (psi_asymptotic_tail(ab) - psi_asymptotic_tail(a))
    )


@jit
def digamma(x: float) -> float:
    """ψ(x) = d lnΓ(x)/dx for x > 0: recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 6, then five
    terms of the asymptotic series. Error below 1e-11 × max(1, |ψ(x)|) (largest near x = 3).

    The one ψ of the kernels (the Newton passes' gradients and Hessians). The likelihoods use
    :func:`digamma_diff`, which keeps relative accuracy where ψ(a+b) − ψ(a) is small.
    """
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132)))
    )
    return result + math.log(x) - 0.5 * inv - series


@jit
def trigamma(x: float) -> float:
    """ψ'(x) for x > 0: recurrence up to x ≥ 6, then four terms of the asymptotic series (the twin
    of :func:`digamma`). Error below 2e-10 × max(1, ψ'(x)) (largest just above x = 6); it only
    scales Newton steps, whose fixed point is set by the gradient."""
    result = 0.0
    while x < 6.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * inv2 * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 / 30)))
    return result + inv + 0.5 * inv2 + series


# ---------------------------------------------------------------------------------------------
# Second-order jets and the Gauss hypergeometric pieces of Pareto/NBD's Newton pass
# ---------------------------------------------------------------------------------------------
#
# A jet of a function of nv variables is a float64 array [value, gradient (nv), upper triangle of
# the Hessian (row-major, i ≤ j)]: 10 entries for 3 variables, 15 for 4. The operations below
# write their result to ``out``, which may be one of the operands (each entry is read before it
# is overwritten), so a kernel needs a few scratch rows and no allocation per operation.


@jit
def jet_size(nv: int) -> int:
    """Entries of a jet in ``nv`` variables: 1 + nv + nv(nv+1)/2."""
    return 1 + nv + nv * (nv + 1) // 2


@jit
def jet_mul(a, b, out, nv):  # type: ignore[no-untyped-def]
    """out = a · b."""
    a0 = a[0]
    b0 = b[0]
    k = 1 + nv
    for i in range(nv):
        ai = a[1 + i]
        bi = b[1 + i]
        for j in range(i, nv):
            out[k] = a[k] * b0 + a0 * b[k] + ai * b[1 + j] + a[1 + j] * bi
            k += 1
    for i in range(nv):
        out[1 + i] = a[1 + i] * b0 + a0 * b[1 + i]
    out[0] = a0 * b0


@jit
def jet_apply(a, f0, f1, f2, out, nv):  # type: ignore[no-untyped-def]
    """out = f(a), given f(a₀) = f0, f'(a₀) = f1, f''(a₀) = f2 (the chain rule to second order)."""
    k = 1 + nv
    for i in range(nv):
        ai = a[1 + i]
        for j in range(i, nv):
            out[k] = f1 * a[k] + f2 * ai * a[1 + j]
            k += 1
    for i in range(nv):
        out[1 + i] = f1 * a[1 + i]
    out[0] = f0


@jit
def jet_axpby(ca, a, cb, b, out):  # type: ignore[no-untyped-def]
    """out = ca · a + cb · b, entry by entry."""
    for k in range(out.shape[0]):
        out[k] = ca * a[k] + cb * b[k]


@jit
def jet_log(a, out, nv):  # type: ignore[no-untyped-def]
    """out = ln a (a₀ > 0)."""
    v = a[0]
    jet_apply(a, math.log(v), 1.0 / v, -1.0 / (v * v), out, nv)


@jit
def jet_recip(a, out, nv):  # type: ignore[no-untyped-def]
    """out = 1 / a."""
    inv = 1.0 / a[0]
    jet_apply(a, inv, -inv * inv, 2.0 * inv * inv * inv, out, nv)


@jit
def jet_compose(f, u0, u1, u2, out, nv):  # type: ignore[no-untyped-def]
    """out = f(u0, u1, u2): f a jet in 3 variables, u0..u2 jets in ``nv`` variables."""
    # f's gradient and Hessian (3-variable layout: 0 v, 1-3 grad, 4 00, 5 01, 6 02, 7 11, 8 12,
    # 9 22)
    g0 = f[1]
    g1 = f[2]
    g2 = f[3]
    h00 = f[4]
    h01 = f[5]
    h02 = f[6]
    h11 = f[7]
    h12 = f[8]
    h22 = f[9]
    k = 1 + nv
    for i in range(nv):
        a0 = u0[1 + i]
        a1 = u1[1 + i]
        a2 = u2[1 + i]
        # (∇²f) · (∂u/∂θ_i)
        m0 = h00 * a0 + h01 * a1 + h02 * a2
        m1 = h01 * a0 + h11 * a1 + h12 * a2
        m2 = h02 * a0 + h12 * a1 + h22 * a2
        for j in range(i, nv):
            out[k] = (
                g0 * u0[k]
                + g1 * u1[k]
                + g2 * u2[k]
                + m0 * u0[1 + j]
                + m1 * u1[1 + j]
                + m2 * u2[1 + j]
            )
            k += 1
    for i in range(nv):
        out[1 + i] = g0 * u0[1 + i] + g1 * u1[1 + i] + g2 * u2[1 + i]
    out[0] = f[0]


_JET_TOL = 1e-17
_JET_MAX_ITER = 100_000


@jit
def hyp_series_jet(R: float, Rp: float, z: float, out) -> None:  # type: ignore[no-untyped-def]
    """Jet of ln F in (R, R', z), F = Σ_n (R)_n/(R+R')_n z^n = ₂F₁(1, R; R+R'; z), 0 ≤ z ≤ ½.

    Term n is c_n z^n with ln c_n = Σ_{k<n} [ln(R+k) − ln(R+R'+k)], whose derivatives are running
    sums of 1/(R+k), 1/(R+R'+k) and their squares; the z-derivatives use c_n z^(n−1) and
    c_n z^(n−2), so z = 0 needs no special case.
    """
    c = R + Rp
    coef = 1.0  # c_n
    zn2 = 0.0  # z^(n−2) (n ≥ 2)
    zn1 = 1.0  # z^(n−1) (n ≥ 1)
    A1 = 0.0
    A2 = 0.0
    B1 = 0.0
    B2 = 0.0
    S = 1.0
    SR = 0.0
    SRp = 0.0
    Sz = 0.0
    SRR = 0.0
    SRRp = 0.0
    SRz = 0.0
    SRpRp = 0.0
    SRpz = 0.0
    Szz = 0.0
    for n in range(1, _JET_MAX_ITER):
        k = n - 1.0
        iR = 1.0 / (R + k)
        ic = 1.0 / (c + k)
        coef *= (R + k) * ic
        A1 += iR
        A2 += ic
        B1 += iR * iR
        B2 += ic * ic
        aR = A1 - A2
        aRp = -A2
        if n >= 2:
            zn2 = zn1
            zn1 = zn1 * z
        t1 = n * coef * zn1  # ∂(c_n z^n)/∂z
        t = t1 * z / n  # c_n z^n
        t2 = n * (n - 1.0) * coef * zn2 if n >= 2 else 0.0
        S += t
        SR += t * aR
        SRp += t * aRp
        Sz += t1
        dRR = t * (aR * aR + B2 - B1)
        dRRp = t * (aR * aRp + B2)
        dRpRp = t * (aRp * aRp + B2)
        SRR += dRR
        SRRp += dRRp
        SRpRp += dRpRp
        SRz += t1 * aR
        SRpz += t1 * aRp
        Szz += t2
        floor = _JET_TOL * S
        if (
            t <= floor
            and abs(t * aR) <= _JET_TOL * abs(SR) + 1e-300
            and abs(t * aRp) <= _JET_TOL * abs(SRp) + 1e-300
            and t1 <= _JET_TOL * Sz + 1e-300
            and abs(dRR) <= floor
            and abs(dRRp) <= floor
            and abs(dRpRp) <= floor
            and abs(t1 * aR) <= floor
            and abs(t1 * aRp) <= floor
            and t2 <= floor
        ):
            break
    gR = SR / S
    gRp = SRp / S
    gz = Sz / S
    out[0] = math.log(S)
    out[1] = gR
    out[2] = gRp
    out[3] = gz
    out[4] = SRR / S - gR * gR
    out[5] = SRRp / S - gR * gRp
    out[6] = SRz / S - gR * gz
    out[7] = SRpRp / S - gRp * gRp
    out[8] = SRpz / S - gRp * gz
    out[9] = Szz / S - gz * gz


@jit
def _cf_numerator(R: float, Rp: float, n: int, k):  # type: ignore[no-untyped-def]
    """Jet in (R, R') (z-entries zero) of the n-th partial numerator k_n of Gauss's continued
    fraction for ₂F₁(R, 1; N+1; z), N = R+R'−1 (see :func:`hyp_cf_jet`)."""
    N = R + Rp - 1.0
    for i in range(10):
        k[i] = 0.0
    if n == 1:
        # k = R/(R+R'): ln k = ln R − ln(R+R')
        c = R + Rp
        val = R / c
        lR = 1.0 / R - 1.0 / c
        lRp = -1.0 / c
        ic2 = 1.0 / (c * c)
        k[0] = val
        k[1] = val * lR
        k[2] = val * lRp
        k[4] = val * (lR * lR - 1.0 / (R * R) + ic2)
        k[5] = val * (lR * lRp + ic2)
        k[7] = val * (lRp * lRp + ic2)
        return
    # g = 1/(u1 u2) with u1, u2 linear in N (∂N/∂R = ∂N/∂R' = 1)
    if n % 2 == 1:
        m = (n - 1) // 2
        u1 = N + 2.0 * m
    else:
        m = n // 2
        u1 = N + 2.0 * m - 1.0
    u2 = u1 + 1.0
    g = 1.0 / (u1 * u2)
    s1 = 1.0 / u1 + 1.0 / u2
    gN = -g * s1
    gNN = g * (s1 * s1 + 1.0 / (u1 * u1) + 1.0 / (u2 * u2))
    if n % 2 == 1:
        # k = b1 b2 g, b1 = R+m (∂R = 1), b2 = N+m (∂R = ∂R' = 1)
        b1 = R + m
        b2 = N + m
        k[0] = b1 * b2 * g
        k[1] = b2 * g + b1 * g + b1 * b2 * gN
        k[2] = b1 * g + b1 * b2 * gN
        k[4] = 2.0 * g + 2.0 * (b1 + b2) * gN + b1 * b2 * gNN
        k[5] = g + (2.0 * b1 + b2) * gN + b1 * b2 * gNN
        k[7] = 2.0 * b1 * gN + b1 * b2 * gNN
    else:
        # k = m a g, a = R'−1+m (∂R' = 1)
        a = Rp - 1.0 + m
        k[0] = m * a * g
        k[1] = m * a * gN
        k[2] = m * (g + a * gN)
        k[4] = m * a * gNN
        k[5] = m * (gN + a * gNN)
        k[7] = m * (2.0 * gN + a * gNN)


@jit
def hyp_cf_jet(R: float, Rp: float, z: float, out, scratch) -> None:  # type: ignore[no-untyped-def]
    """Jet of ln F in (R, R', z), F = ₂F₁(R, 1; R+R'; z), by Gauss's continued fraction.

    F = 1/(1 − k1 z/(1 − k2 z/(1 − …))), N = R+R'−1, k1 = R/(N+1),
    k_{2m+1} = (R+m)(N+m)/((N+2m)(N+2m+1)), k_{2m} = m(R'−1+m)/((N+2m−1)(N+2m)),
    evaluated with the modified Lentz method carrying second-order jets (forward mode).
    ``scratch`` is a (≥ 5, ≥ 10) float64 array.
    """
    a = scratch[0]
    C = scratch[1]
    D = scratch[2]
    t = scratch[3]
    u = scratch[4]
    for i in range(10):
        C[i] = 0.0
        D[i] = 0.0
        out[i] = 0.0
    C[0] = 1.0
    for n in range(1, _JET_MAX_ITER):
        _cf_numerator(R, Rp, n, a)
        # a = −k z: the z-entries come from k's value and R, R' entries
        a[3] = -a[0]
        a[6] = -a[1]
        a[8] = -a[2]
        a[9] = 0.0
        a[0] *= -z
        a[1] *= -z
        a[2] *= -z
        a[4] *= -z
        a[5] *= -z
        a[7] *= -z
        # D ← 1/(1 + a D)
        jet_mul(a, D, t, 3)
        t[0] += 1.0
        jet_recip(t, D, 3)
        # C ← 1 + a/C
        jet_recip(C, u, 3)
        jet_mul(a, u, C, 3)
        C[0] += 1.0
        # ln F −= ln(C D)
        jet_mul(C, D, t, 3)
        delta = t[0]
        jet_log(t, u, 3)
        converged = abs(delta - 1.0) <= 3e-16
        for i in range(10):
            out[i] -= u[i]
            if i > 0 and abs(u[i]) > 3e-16 * (1.0 + abs(out[i])):
                converged = False
        if converged:
            break


@jit
def hyp_jet(R: float, Rp: float, z: float, out, scratch) -> None:  # type: ignore[no-untyped-def]
    """Jet of ln ₂F₁(1, R; R+R'; z) in (R, R', z): power series for z ≤ ½, else the continued
    fraction (the two methods of ``likelihood``'s first-order Pareto/NBD kernel)."""
    if z <= 0.5:
        hyp_series_jet(R, Rp, z, out)
    else:
        hyp_cf_jet(R, Rp, z, out, scratch)


@jit
def _expm1_ratio_curvature(t: float) -> float:
    """d²/dt² ln((e^t − 1)/t) = 1/t² − 1/(4 sinh²(t/2)), stable for every real t (1/12 at 0)."""
    if abs(t) < 0.25:
        t2 = t * t
        return 1.0 / 12.0 - t2 * (
            1.0 / 240.0 - t2 * (1.0 / 6048.0 - t2 * (1.0 / 172800.0 - t2 / 5322240.0))
        )
    sh = math.sinh(0.5 * t)
    return 1.0 / (t * t) - 1.0 / (4.0 * sh * sh)


@jit
def _expm1_ratio(t: float) -> tuple[float, float]:
    """(ln((e^t − 1)/t), its derivative 1/(1 − e^−t) − 1/t), stable for every real t."""
    if abs(t) < 1e-3:
        t2 = t * t
        value = t / 2.0 + t2 / 24.0 - t2 * t2 / 2880.0
    elif t > 0.0:
        value = t + math.log(-math.expm1(-t)) - math.log(t)
    else:
        value = math.log(-math.expm1(t)) - math.log(-t)
    if abs(t) < 0.1:
        t2 = t * t
        slope = 0.5 + t * (
            1.0 / 12.0 - t2 * (1.0 / 720.0 - t2 * (1.0 / 30240.0 - t2 / 1209600.0))
        )
    else:
        slope = 1.0 / (-math.expm1(-t)) - 1.0 / t
    return value, slope


@jit
def split_integral_jet(R: float, Rp: float, eps: float, w0: float, out, scratch) -> None:  # type: ignore[no-untyped-def]
    """Jet of ln I in (R, R', ε), I(ε) = ∫_ε^1 w^−R' (1−w)^(R+R'−2) dw, for ε < w0 ≤ ½.

    I = ∫_ε^w0 + I(w0): the first part is Σ_k c_k J_k with c_k = (1−N)_k/k! (N = R+R'−1) and
    J_k = ∫_ε^w0 w^(k−R') dw, an exponential integral in ln w formed with expm1; the second is
    z0^N w0^(1−R') ₂F₁(1, R; R+R'; z0)/N at z0 = 1 − w0 (:func:`hyp_jet`). The total does not
    depend on w0, so its derivatives are taken at fixed w0. ∂ln I/∂ε = −ε^−R' (1−ε)^(N−1)/I.
    """
    N = R + Rp - 1.0
    L0 = math.log(w0)
    L1 = math.log(eps)
    Dl = L0 - L1
    lnDl = math.log(Dl)
    e = 1.0 - Rp
    g0, _ = _expm1_ratio(e * Dl)
    lnJ0 = e * L1 + lnDl + g0
    c = 1.0
    dc = 0.0  # ∂c_k/∂N
    d2c = 0.0  # ∂²c_k/∂N²
    SA = 0.0
    SN = 0.0
    SNN = 0.0
    SRp = 0.0
    SNRp = 0.0
    SRpRp = 0.0
    for k in range(_JET_MAX_ITER):
        e = k + 1.0 - Rp
        ed = e * Dl
        gk, gk1 = _expm1_ratio(ed)
        rk = math.exp(e * L1 + lnDl + gk - lnJ0)
        a = -(L1 + Dl * gk1)  # ∂ ln J_k/∂R'
        b = Dl * Dl * _expm1_ratio_curvature(ed)  # ∂² ln J_k/∂R'²
        t0 = c * rk
        t1 = dc * rk
        t2 = d2c * rk
        SA += t0
        SN += t1
        SNN += t2
        SRp += t0 * a
        SNRp += t1 * a
        SRpRp += t0 * (a * a + b)
        floor = _JET_TOL * abs(SA)
        if (
            k > 0
            and abs(t0) <= floor
            and abs(t1) <= floor
            and abs(t2) <= floor
            and abs(t0 * a) <= floor
            and abs(t1 * a) <= floor
            and abs(t0 * (a * a + b)) <= floor
        ):
            break
        f = k + 1.0 - N
        d2c = (d2c * f - 2.0 * dc) / (k + 1.0)
        dc = (dc * f - c) / (k + 1.0)
        c = c * f / (k + 1.0)
    lnIA = lnJ0 + math.log(SA)
    aR = SN / SA
    aRp = (SN + SRp) / SA
    aRR = SNN / SA - aR * aR
    aRRp = (SNN + SNRp) / SA - aR * aRp
    aRpRp = (SNN + 2.0 * SNRp + SRpRp) / SA - aRp * aRp
    # I(w0) = z0^N w0^(1−R') F(R, R'; z0) / N
    F = scratch[5]
    hyp_jet(R, Rp, 1.0 - w0, F, scratch)
    l1w = math.log1p(-w0)
    iN = 1.0 / N
    lnIB = N * l1w + (1.0 - Rp) * L0 + F[0] - math.log(N)
    bR = l1w + F[1] - iN
    bRp = l1w - L0 + F[2] - iN
    bRR = F[4] + iN * iN
    bRRp = F[5] + iN * iN
    bRpRp = F[7] + iN * iN
    top = max(lnIA, lnIB)
    lnI = top + math.log(math.exp(lnIA - top) + math.exp(lnIB - top))
    pA = math.exp(lnIA - lnI)
    pB = math.exp(lnIB - lnI)
    dR = aR - bR
    dRp = aRp - bRp
    gR = pA * aR + pB * bR
    gRp = pA * aRp + pB * bRp
    hRR = pA * aRR + pB * bRR + pA * pB * dR * dR
    hRRp = pA * aRRp + pB * bRRp + pA * pB * dR * dRp
    hRpRp = pA * aRpRp + pB * bRpRp + pA * pB * dRp * dRp
    # ε: I_ε = −ε^−R' (1−ε)^(N−1)/I, and its derivatives from ln(−I_ε)
    l1e = math.log1p(-eps)
    ge = -math.exp(-Rp * L1 + (N - 1.0) * l1e - lnI)
    out[0] = lnI
    out[1] = gR
    out[2] = gRp
    out[3] = ge
    out[4] = hRR
    out[5] = hRRp
    out[6] = ge * (l1e - gR)
    out[7] = hRpRp
    out[8] = ge * (l1e - L1 - gRp)
    out[9] = ge * (-Rp / eps - (N - 1.0) / (1.0 - eps) - ge)
