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
