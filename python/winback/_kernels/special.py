"""Special functions shared by the kernels: ψ (digamma), ψ' (trigamma) and the differences
lnΓ(a+b) − lnΓ(a), ψ(a+b) − ψ(a) formed without cancellation (SPEC §5).

``likelihood`` uses the differences (:func:`lgamma_diff`, :func:`digamma_diff`), ``newton`` uses
:func:`digamma_fast` and :func:`trigamma`. Every function has one implementation except ψ itself:
:func:`digamma` (any real x, full relative accuracy at its root; behind :func:`digamma_array`)
and :func:`digamma_fast` (x > 0, the Newton passes' ψ) round differently and are kept apart so
that fitted parameters stay the same bits (see :func:`digamma_fast`). The kernels are scalar.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from winback._kernels import jit

__all__ = [
    "digamma",
    "digamma_array",
    "digamma_diff",
    "digamma_fast",
    "lgamma_diff",
    "psi_asymptotic_tail",
    "trigamma",
]

F64 = NDArray[np.float64]

# The positive root of ψ, split in two doubles, and the Taylor coefficients of ψ about it:
# ψ(x0 + h) = Σ_k (−1)^(k+1) ζ(k+1, x0) h^k (computed with mpmath at 50 digits).
_PSI_ROOT_HI = 1.4616321449683622
_PSI_ROOT_LO = 9.549995429965697e-17
_PSI_ROOT_COEF = np.array(
    [
        0.9676722454476212,
        -0.4427631689835921,
        0.258499760955651,
        -0.16394270544240652,
        0.10782405069126237,
        -0.07219956125645471,
        0.04880428816414311,
        -0.03316112647484736,
        0.022597648232218104,
        -0.01542476590494896,
        0.010538791616612175,
        -0.007204534386356869,
        0.004926781395729853,
        -0.003369801655439328,
        0.002305126326734928,
        -0.0015769367714301972,
        0.0010788252019162967,
        -0.0007380709389960052,
        0.000504953265834602,
        -0.0003454680251063077,
        0.00023635601564027053,
        -0.00016170622091974803,
        0.0001106337276874741,
        -7.569179582195066e-05,
        5.178575795222081e-05,
        -3.5430070947659604e-05,
    ]
)


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
def _digamma_positive(x: float) -> float:
    """ψ(x) for x > 0."""
    if math.isinf(x):
        return math.inf
    h = (x - _PSI_ROOT_HI) - _PSI_ROOT_LO
    if abs(h) < 0.2:
        # near the root the recurrence below loses all relative accuracy: Taylor series
        acc = 0.0
        for k in range(_PSI_ROOT_COEF.shape[0] - 1, -1, -1):
            acc = acc * h + _PSI_ROOT_COEF[k]
        return acc * h
    shift = 0.0
    while x < 10.0:
        shift += 1.0 / x
        x += 1.0
    return math.log(x) - 0.5 / x - psi_asymptotic_tail(x) - shift


@jit
def digamma(x: float) -> float:
    """ψ(x) = d lnΓ(x)/dx for any real x.

    Recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 10, then the asymptotic series; a Taylor series about
    the positive root x0 ≈ 1.4616 keeps full relative accuracy where ψ crosses zero; reflection
    for negative non-integers; NaN at the poles 0, −1, −2, ….
    """
    if math.isnan(x):
        return math.nan
    if x > 0.0:
        return _digamma_positive(x)
    if x == math.floor(x):
        return math.nan  # poles at 0, −1, −2, …
    # reflection ψ(x) = ψ(1 − x) − π / tan(π x) (no recursion: numba caches it badly)
    return _digamma_positive(1.0 - x) - math.pi / math.tan(math.pi * x)


@jit
def _digamma_loop(x: F64) -> F64:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = digamma(x[i])
    return out


def digamma_array(x: ArrayLike) -> F64 | float:
    """:func:`digamma` of every element of ``x`` (a float for a scalar ``x``)."""
    arr = np.asarray(x, dtype=np.float64)
    out = _digamma_loop(np.ascontiguousarray(arr.reshape(-1)))
    if arr.ndim == 0:
        return float(out[0])
    return np.asarray(out.reshape(arr.shape), dtype=np.float64)


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
def digamma_fast(x: float) -> float:
    """ψ(x) for x > 0: recurrence up to x ≥ 6, then the asymptotic series (error < 1e-15).

    The ψ of the Newton passes (``newton``). A second ψ next to :func:`digamma` on purpose: the
    two round differently (recurrence to 6 vs 10, no Taylor series at the root), and every fitted
    BG/NBD, MBG/NBD and Gamma–Gamma parameter comes out of these passes, so running them on
    :func:`digamma` would change fitted parameters and values in their last bits. :func:`digamma`
    stays for ``digamma_array`` (any real x, full relative accuracy at the root).
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
    """ψ'(x) for x > 0: recurrence up to x ≥ 6, then the asymptotic series (the twin of
    :func:`digamma_fast`)."""
    result = 0.0
    while x < 6.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * inv2 * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 / 30)))
    return result + inv + 0.5 * inv2 + series
