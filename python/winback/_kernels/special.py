"""Special functions shared by the kernels, each implemented once: ψ (digamma), ψ' (trigamma)
and the differences lnΓ(a+b) − lnΓ(a), ψ(a+b) − ψ(a) formed without cancellation
(docs/methods.md#models).

``likelihood`` uses the differences (:func:`lgamma_diff`, :func:`digamma_diff`), ``newton`` uses
:func:`digamma` and :func:`trigamma`. The kernels are scalar and compiled with ``jit``.

Also the second-order jets (value, gradient, Hessian as one tuple) and the Gauss hypergeometric
pieces of Pareto/NBD's exact-Hessian Newton pass: ln ₂F₁(1, R; R+R'; z) by power series or
continued fraction (:func:`hyp_jet`) and the split lifetime integral near ₂F₁'s singular end
(:func:`split_integral_jet`), each with its derivatives to second order in (R, R', z or ε)
(docs/methods.md#pareto-nbd).
"""

from __future__ import annotations

import math

from winback._kernels import jit

__all__ = [
    "digamma",
    "digamma_diff",
    "hyp_cf_jet",
    "hyp_jet",
    "hyp_series_jet",
    "jet3_apply",
    "jet3_lin",
    "jet3_log",
    "jet3_mul",
    "jet3_recip",
    "jet3_shift",
    "jet4_apply",
    "jet4_compose",
    "jet4_lin",
    "jet4_mul",
    "lgamma_diff",
    "psi_asymptotic_tail",
    "split_integral_jet",
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
# A jet of a function of nv variables is a tuple (value, gradient (nv), upper triangle of the
# Hessian, row-major, i ≤ j): 10 entries for 3 variables, 15 for 4. Tuples rather than arrays:
# they live in registers, so a jet operation costs its few dozen flops and nothing else. The
# operations are written out entry by entry (product and chain rules to second order).


@jit
def jet3_mul(a, b):  # type: ignore[no-untyped-def]
    """a · b for jets in 3 variables."""
    return (
        a[0] * b[0],
        a[1] * b[0] + a[0] * b[1],
        a[2] * b[0] + a[0] * b[2],
        a[3] * b[0] + a[0] * b[3],
        a[4] * b[0] + a[0] * b[4] + a[1] * b[1] + a[1] * b[1],
        a[5] * b[0] + a[0] * b[5] + a[1] * b[2] + a[2] * b[1],
        a[6] * b[0] + a[0] * b[6] + a[1] * b[3] + a[3] * b[1],
        a[7] * b[0] + a[0] * b[7] + a[2] * b[2] + a[2] * b[2],
        a[8] * b[0] + a[0] * b[8] + a[2] * b[3] + a[3] * b[2],
        a[9] * b[0] + a[0] * b[9] + a[3] * b[3] + a[3] * b[3],
    )


@jit
def jet3_apply(a, f0, f1, f2):  # type: ignore[no-untyped-def]
    """f(a) for a jet in 3 variables, given f(a₀), f'(a₀), f''(a₀)."""
    return (
        f0,
        f1 * a[1],
        f1 * a[2],
        f1 * a[3],
        f1 * a[4] + f2 * a[1] * a[1],
        f1 * a[5] + f2 * a[1] * a[2],
        f1 * a[6] + f2 * a[1] * a[3],
        f1 * a[7] + f2 * a[2] * a[2],
        f1 * a[8] + f2 * a[2] * a[3],
        f1 * a[9] + f2 * a[3] * a[3],
    )


@jit
def jet3_lin(ca, a, cb, b):  # type: ignore[no-untyped-def]
    """ca · a + cb · b for jets in 3 variables."""
    return (
        ca * a[0] + cb * b[0],
        ca * a[1] + cb * b[1],
        ca * a[2] + cb * b[2],
        ca * a[3] + cb * b[3],
        ca * a[4] + cb * b[4],
        ca * a[5] + cb * b[5],
        ca * a[6] + cb * b[6],
        ca * a[7] + cb * b[7],
        ca * a[8] + cb * b[8],
        ca * a[9] + cb * b[9],
    )


@jit
def jet4_mul(a, b):  # type: ignore[no-untyped-def]
    """a · b for jets in 4 variables."""
    return (
        a[0] * b[0],
        a[1] * b[0] + a[0] * b[1],
        a[2] * b[0] + a[0] * b[2],
        a[3] * b[0] + a[0] * b[3],
        a[4] * b[0] + a[0] * b[4],
        a[5] * b[0] + a[0] * b[5] + a[1] * b[1] + a[1] * b[1],
        a[6] * b[0] + a[0] * b[6] + a[1] * b[2] + a[2] * b[1],
        a[7] * b[0] + a[0] * b[7] + a[1] * b[3] + a[3] * b[1],
        a[8] * b[0] + a[0] * b[8] + a[1] * b[4] + a[4] * b[1],
        a[9] * b[0] + a[0] * b[9] + a[2] * b[2] + a[2] * b[2],
        a[10] * b[0] + a[0] * b[10] + a[2] * b[3] + a[3] * b[2],
        a[11] * b[0] + a[0] * b[11] + a[2] * b[4] + a[4] * b[2],
        a[12] * b[0] + a[0] * b[12] + a[3] * b[3] + a[3] * b[3],
        a[13] * b[0] + a[0] * b[13] + a[3] * b[4] + a[4] * b[3],
        a[14] * b[0] + a[0] * b[14] + a[4] * b[4] + a[4] * b[4],
    )


@jit
def jet4_apply(a, f0, f1, f2):  # type: ignore[no-untyped-def]
    """f(a) for a jet in 4 variables, given f(a₀), f'(a₀), f''(a₀)."""
    return (
        f0,
        f1 * a[1],
        f1 * a[2],
        f1 * a[3],
        f1 * a[4],
        f1 * a[5] + f2 * a[1] * a[1],
        f1 * a[6] + f2 * a[1] * a[2],
        f1 * a[7] + f2 * a[1] * a[3],
        f1 * a[8] + f2 * a[1] * a[4],
        f1 * a[9] + f2 * a[2] * a[2],
        f1 * a[10] + f2 * a[2] * a[3],
        f1 * a[11] + f2 * a[2] * a[4],
        f1 * a[12] + f2 * a[3] * a[3],
        f1 * a[13] + f2 * a[3] * a[4],
        f1 * a[14] + f2 * a[4] * a[4],
    )


@jit
def jet4_lin(ca, a, cb, b):  # type: ignore[no-untyped-def]
    """ca · a + cb · b for jets in 4 variables."""
    return (
        ca * a[0] + cb * b[0],
        ca * a[1] + cb * b[1],
        ca * a[2] + cb * b[2],
        ca * a[3] + cb * b[3],
        ca * a[4] + cb * b[4],
        ca * a[5] + cb * b[5],
        ca * a[6] + cb * b[6],
        ca * a[7] + cb * b[7],
        ca * a[8] + cb * b[8],
        ca * a[9] + cb * b[9],
        ca * a[10] + cb * b[10],
        ca * a[11] + cb * b[11],
        ca * a[12] + cb * b[12],
        ca * a[13] + cb * b[13],
        ca * a[14] + cb * b[14],
    )


@jit
def jet4_compose(f, u0, u1, u2):  # type: ignore[no-untyped-def]
    """f(u0, u1, u2): f a jet in 3 variables, u0..u2 jets in 4 variables."""
    return (
        f[0],
        f[1] * u0[1] + f[2] * u1[1] + f[3] * u2[1],
        f[1] * u0[2] + f[2] * u1[2] + f[3] * u2[2],
        f[1] * u0[3] + f[2] * u1[3] + f[3] * u2[3],
        f[1] * u0[4] + f[2] * u1[4] + f[3] * u2[4],
        f[1] * u0[5]
        + f[2] * u1[5]
        + f[3] * u2[5]
        + f[4] * u0[1] * u0[1]
        + f[5] * u0[1] * u1[1]
        + f[6] * u0[1] * u2[1]
        + f[5] * u1[1] * u0[1]
        + f[7] * u1[1] * u1[1]
        + f[8] * u1[1] * u2[1]
        + f[6] * u2[1] * u0[1]
        + f[8] * u2[1] * u1[1]
        + f[9] * u2[1] * u2[1],
        f[1] * u0[6]
        + f[2] * u1[6]
        + f[3] * u2[6]
        + f[4] * u0[1] * u0[2]
        + f[5] * u0[1] * u1[2]
        + f[6] * u0[1] * u2[2]
        + f[5] * u1[1] * u0[2]
        + f[7] * u1[1] * u1[2]
        + f[8] * u1[1] * u2[2]
        + f[6] * u2[1] * u0[2]
        + f[8] * u2[1] * u1[2]
        + f[9] * u2[1] * u2[2],
        f[1] * u0[7]
        + f[2] * u1[7]
        + f[3] * u2[7]
        + f[4] * u0[1] * u0[3]
        + f[5] * u0[1] * u1[3]
        + f[6] * u0[1] * u2[3]
        + f[5] * u1[1] * u0[3]
        + f[7] * u1[1] * u1[3]
        + f[8] * u1[1] * u2[3]
        + f[6] * u2[1] * u0[3]
        + f[8] * u2[1] * u1[3]
        + f[9] * u2[1] * u2[3],
        f[1] * u0[8]
        + f[2] * u1[8]
        + f[3] * u2[8]
        + f[4] * u0[1] * u0[4]
        + f[5] * u0[1] * u1[4]
        + f[6] * u0[1] * u2[4]
        + f[5] * u1[1] * u0[4]
        + f[7] * u1[1] * u1[4]
        + f[8] * u1[1] * u2[4]
        + f[6] * u2[1] * u0[4]
        + f[8] * u2[1] * u1[4]
        + f[9] * u2[1] * u2[4],
        f[1] * u0[9]
        + f[2] * u1[9]
        + f[3] * u2[9]
        + f[4] * u0[2] * u0[2]
        + f[5] * u0[2] * u1[2]
        + f[6] * u0[2] * u2[2]
        + f[5] * u1[2] * u0[2]
        + f[7] * u1[2] * u1[2]
        + f[8] * u1[2] * u2[2]
        + f[6] * u2[2] * u0[2]
        + f[8] * u2[2] * u1[2]
        + f[9] * u2[2] * u2[2],
        f[1] * u0[10]
        + f[2] * u1[10]
        + f[3] * u2[10]
        + f[4] * u0[2] * u0[3]
        + f[5] * u0[2] * u1[3]
        + f[6] * u0[2] * u2[3]
        + f[5] * u1[2] * u0[3]
        + f[7] * u1[2] * u1[3]
        + f[8] * u1[2] * u2[3]
        + f[6] * u2[2] * u0[3]
        + f[8] * u2[2] * u1[3]
        + f[9] * u2[2] * u2[3],
        f[1] * u0[11]
        + f[2] * u1[11]
        + f[3] * u2[11]
        + f[4] * u0[2] * u0[4]
        + f[5] * u0[2] * u1[4]
        + f[6] * u0[2] * u2[4]
        + f[5] * u1[2] * u0[4]
        + f[7] * u1[2] * u1[4]
        + f[8] * u1[2] * u2[4]
        + f[6] * u2[2] * u0[4]
        + f[8] * u2[2] * u1[4]
        + f[9] * u2[2] * u2[4],
        f[1] * u0[12]
        + f[2] * u1[12]
        + f[3] * u2[12]
        + f[4] * u0[3] * u0[3]
        + f[5] * u0[3] * u1[3]
        + f[6] * u0[3] * u2[3]
        + f[5] * u1[3] * u0[3]
        + f[7] * u1[3] * u1[3]
        + f[8] * u1[3] * u2[3]
        + f[6] * u2[3] * u0[3]
        + f[8] * u2[3] * u1[3]
        + f[9] * u2[3] * u2[3],
        f[1] * u0[13]
        + f[2] * u1[13]
        + f[3] * u2[13]
        + f[4] * u0[3] * u0[4]
        + f[5] * u0[3] * u1[4]
        + f[6] * u0[3] * u2[4]
        + f[5] * u1[3] * u0[4]
        + f[7] * u1[3] * u1[4]
        + f[8] * u1[3] * u2[4]
        + f[6] * u2[3] * u0[4]
        + f[8] * u2[3] * u1[4]
        + f[9] * u2[3] * u2[4],
        f[1] * u0[14]
        + f[2] * u1[14]
        + f[3] * u2[14]
        + f[4] * u0[4] * u0[4]
        + f[5] * u0[4] * u1[4]
        + f[6] * u0[4] * u2[4]
        + f[5] * u1[4] * u0[4]
        + f[7] * u1[4] * u1[4]
        + f[8] * u1[4] * u2[4]
        + f[6] * u2[4] * u0[4]
        + f[8] * u2[4] * u1[4]
        + f[9] * u2[4] * u2[4],
    )


@jit
def jet3_shift(a, c):  # type: ignore[no-untyped-def]
    """a + c for a jet in 3 variables and a constant c."""
    return (a[0] + c, a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9])


@jit
def jet3_log(a):  # type: ignore[no-untyped-def]
    """ln a (a₀ > 0) for a jet in 3 variables."""
    v = a[0]
    return jet3_apply(a, math.log(v), 1.0 / v, -1.0 / (v * v))


@jit
def jet3_recip(a):  # type: ignore[no-untyped-def]
    """1/a for a jet in 3 variables."""
    inv = 1.0 / a[0]
    return jet3_apply(a, inv, -inv * inv, 2.0 * inv * inv * inv)


_JET_TOL = 1e-17
_JET_MAX_ITER = 100_000


@jit
def hyp_series_jet(R: float, Rp: float, z: float):  # type: ignore[no-untyped-def]
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
        t = coef * zn1 * z  # c_n z^n
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
        # Every sum's next terms are below 1e-17 of S (the ln F derivatives are sums over S).
        floor = _JET_TOL * S
        if (
            t <= floor
            and t * aR <= _JET_TOL * SR + 1e-300
            and -t * aRp <= -_JET_TOL * SRp + 1e-300
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
    return (
        math.log(S),
        gR,
        gRp,
        gz,
        SRR / S - gR * gR,
        SRRp / S - gR * gRp,
        SRz / S - gR * gz,
        SRpRp / S - gRp * gRp,
        SRpz / S - gRp * gz,
        Szz / S - gz * gz,
    )


@jit
def _cf_numerator(R: float, Rp: float, n: int):  # type: ignore[no-untyped-def]
    """(k, ∂k/∂R, ∂k/∂R', ∂²k/∂R², ∂²k/∂R∂R', ∂²k/∂R'²) of the n-th partial numerator of Gauss's
    continued fraction for ₂F₁(R, 1; N+1; z), N = R+R'−1 (see :func:`hyp_cf_jet`)."""
    N = R + Rp - 1.0
    if n == 1:
        # k = R/(R+R'): ln k = ln R − ln(R+R')
        c = R + Rp
        val = R / c
        lR = 1.0 / R - 1.0 / c
        lRp = -1.0 / c
        ic2 = 1.0 / (c * c)
        return (
            val,
            val * lR,
            val * lRp,
            val * (lR * lR - 1.0 / (R * R) + ic2),
            val * (lR * lRp + ic2),
            val * (lRp * lRp + ic2),
        )
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
        return (
            b1 * b2 * g,
            b2 * g + b1 * g + b1 * b2 * gN,
            b1 * g + b1 * b2 * gN,
            2.0 * g + 2.0 * (b1 + b2) * gN + b1 * b2 * gNN,
            g + (2.0 * b1 + b2) * gN + b1 * b2 * gNN,
            2.0 * b1 * gN + b1 * b2 * gNN,
        )
    # k = m a g, a = R'−1+m (∂R' = 1)
    a = Rp - 1.0 + m
    return (
        m * a * g,
        m * a * gN,
        m * (g + a * gN),
        m * a * gNN,
        m * (gN + a * gNN),
        m * (2.0 * gN + a * gNN),
    )


@jit
def hyp_cf_jet(R: float, Rp: float, z: float):  # type: ignore[no-untyped-def]
    """Jet of ln F in (R, R', z), F = ₂F₁(R, 1; R+R'; z), by Gauss's continued fraction.

    F = 1/(1 − k1 z/(1 − k2 z/(1 − …))), N = R+R'−1, k1 = R/(N+1),
    k_{2m+1} = (R+m)(N+m)/((N+2m)(N+2m+1)), k_{2m} = m(R'−1+m)/((N+2m−1)(N+2m)),
    evaluated with the modified Lentz method carrying second-order jets (forward mode).
    """
    zero = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    C = jet3_shift(zero, 1.0)
    D = zero
    out = zero
    for n in range(1, _JET_MAX_ITER):
        k, kR, kRp, kRR, kRRp, kRpRp = _cf_numerator(R, Rp, n)
        # a = −k z as a jet in (R, R', z)
        a = (-k * z, -kR * z, -kRp * z, -k, -kRR * z, -kRRp * z, -kR, -kRpRp * z, -kRp, 0.0)
        D = jet3_recip(jet3_shift(jet3_mul(a, D), 1.0))
        C = jet3_shift(jet3_mul(a, jet3_recip(C)), 1.0)
        step = jet3_mul(C, D)
        log_step = jet3_log(step)
        out = jet3_lin(1.0, out, -1.0, log_step)
        if abs(step[0] - 1.0) <= 3e-16:
            converged = True
            for i in range(1, 10):
                if abs(log_step[i]) > 3e-16 * (1.0 + abs(out[i])):
                    converged = False
            if converged:
                break
    return out


@jit
def hyp_jet(R: float, Rp: float, z: float):  # type: ignore[no-untyped-def]
    """Jet of ln ₂F₁(1, R; R+R'; z) in (R, R', z): power series for z ≤ ½, else the continued
    fraction (the two methods of ``likelihood``'s first-order Pareto/NBD kernel)."""
    if z <= 0.5:
        return hyp_series_jet(R, Rp, z)
    return hyp_cf_jet(R, Rp, z)


@jit
def _expm1_ratio(t: float) -> tuple[float, float, float]:
    """ln((e^t − 1)/t) and its first two derivatives, 1/(1 − e^−t) − 1/t and
    1/t² − 1/(4 sinh²(t/2)), stable for every real t (0, ½, 1/12 at t = 0)."""
    t2 = t * t
    if abs(t) < 1e-3:
        value = t / 2.0 + t2 / 24.0 - t2 * t2 / 2880.0
    elif t > 0.0:
        value = t + math.log(-math.expm1(-t)) - math.log(t)
    else:
        value = math.log(-math.expm1(t)) - math.log(-t)
    if abs(t) < 0.1:
        slope = 0.5 + t * (1.0 / 12.0 - t2 * (1.0 / 720.0 - t2 * (1.0 / 30240.0 - t2 / 1209600.0)))
    else:
        slope = 1.0 / (-math.expm1(-t)) - 1.0 / t
    if abs(t) < 0.25:
        curvature = 1.0 / 12.0 - t2 * (
            1.0 / 240.0 - t2 * (1.0 / 6048.0 - t2 * (1.0 / 172800.0 - t2 / 5322240.0))
        )
    else:
        sh = math.sinh(0.5 * t)
        curvature = 1.0 / t2 - 1.0 / (4.0 * sh * sh)
    return value, slope, curvature


@jit
def split_integral_jet(R: float, Rp: float, eps: float, w0: float):  # type: ignore[no-untyped-def]
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
    g0, _, _ = _expm1_ratio((1.0 - Rp) * Dl)
    lnJ0 = (1.0 - Rp) * L1 + lnDl + g0
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
        gk, gk1, gk2 = _expm1_ratio(e * Dl)
        rk = math.exp(e * L1 + lnDl + gk - lnJ0)
        a = -(L1 + Dl * gk1)  # ∂ ln J_k/∂R'
        b = Dl * Dl * gk2  # ∂² ln J_k/∂R'²
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
    F = hyp_jet(R, Rp, 1.0 - w0)
    l1w = math.log1p(-w0)
    iN2 = 1.0 / (N * N)
    lnIB = N * l1w + (1.0 - Rp) * L0 + F[0] - math.log(N)
    bR = l1w + F[1] - 1.0 / N
    bRp = l1w - L0 + F[2] - 1.0 / N
    top = max(lnIA, lnIB)
    lnI = top + math.log(math.exp(lnIA - top) + math.exp(lnIB - top))
    pA = math.exp(lnIA - lnI)
    pB = math.exp(lnIB - lnI)
    dR = aR - bR
    dRp = aRp - bRp
    gR = pA * aR + pB * bR
    gRp = pA * aRp + pB * bRp
    # ε: I_ε = −ε^−R' (1−ε)^(N−1)/I; its derivatives follow from ln(−I_ε)
    l1e = math.log1p(-eps)
    ge = -math.exp(-Rp * L1 + (N - 1.0) * l1e - lnI)
    return (
        lnI,
        gR,
        gRp,
        ge,
        pA * aRR + pB * (F[4] + iN2) + pA * pB * dR * dR,
        pA * aRRp + pB * (F[5] + iN2) + pA * pB * dR * dRp,
        ge * (l1e - gR),
        pA * aRpRp + pB * (F[7] + iN2) + pA * pB * dRp * dRp,
        ge * (l1e - L1 - gRp),
        ge * (-Rp / eps - (N - 1.0) / (1.0 - eps) - ge),
    )
