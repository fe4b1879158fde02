"""Seeded simulation of each model's data-generating process (for recovery tests, benchmarks and
what-if analysis). Every function returns a Polars summary frame shaped like
:func:`winback.summary`'s, so it can be fed straight to the matching model's ``fit``.

The simulations draw whole customers at once (no per-purchase loop): with N purchases of a Poisson
process on [0, L], the k-th purchase time is L · Beta(k, N − k + 1) and the last is L · Beta(N, 1).

Examples
--------
>>> from winback.models import simulate
>>> simulate.bgnbd(3, r=0.25, alpha=4.0, a=0.8, b=2.5, T=39.0, seed=1).columns
['customer_id', 'frequency', 'recency', 'T']
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from winback.errors import WinbackConfigError

__all__ = [
    "bgbb",
    "bgcnbd",
    "bgnbd",
    "gamma_gamma",
    "mbgcnbd",
    "mbgnbd",
    "nbd_periods",
    "pareto_nbd",
]

FloatArray = NDArray[np.float64]


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not (np.isfinite(value) and value > 0):
            raise WinbackConfigError(f"{name} must be positive and finite, got {value!r}")


def _durations(n: int, T: ArrayLike) -> FloatArray:
    durations = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(durations) & (durations >= 0)):
        raise WinbackConfigError("T must be finite and ≥ 0")
    return durations


def _order_statistic(
    rng: np.random.Generator, k: NDArray[np.int64], n: NDArray[np.int64]
) -> FloatArray:
    """The k-th smallest of n uniforms on [0, 1] (0 where k = 0)."""
    out = np.zeros(k.shape, dtype=np.float64)
    has = k > 0
    out[has] = rng.beta(k[has], (n[has] - k[has] + 1).astype(np.float64))
    return out


def _frame(x: NDArray[np.int64], recency: FloatArray, T: FloatArray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": np.arange(x.size, dtype=np.int64),
            "frequency": x.astype(np.int64),
            "recency": recency,
            "T": T,
        }
    )


def _beta_geo(
    n: int, r: float, alpha: float, a: float, b: float, T: ArrayLike, seed: int, modified: bool
) -> pl.DataFrame:
    _positive(r=r, alpha=alpha, a=a, b=b)
    rng = np.random.default_rng(seed)
    durations = _durations(n, T)
    rate = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    # Repeat purchases made before dropping out: BG/NBD drops after the K-th (K ≥ 1) with
    # P(K = k) = (1−p)^{k−1} p; MBG/NBD may also drop at the first purchase, so K − 1 ≥ 0.
    lifetime_purchases = rng.geometric(p) - (1 if modified else 0)
    purchases_if_alive = rng.poisson(rate * durations)
    x = np.minimum(purchases_if_alive, lifetime_purchases)
    recency = durations * _order_statistic(rng, x, purchases_if_alive)
    return _frame(x, recency, durations)


def bgnbd(
    n: int, *, r: float, alpha: float, a: float, b: float, T: ArrayLike, seed: int = 0
) -> pl.DataFrame:
    """n customers from BG/NBD(r, α, a, b), each observed for T (scalar or per customer)."""
    return _beta_geo(n, r, alpha, a, b, T, seed, modified=False)


def mbgnbd(
    n: int, *, r: float, alpha: float, a: float, b: float, T: ArrayLike, seed: int = 0
) -> pl.DataFrame:
    """n customers from MBG/NBD(r, α, a, b), each observed for T (scalar or per customer)."""
    return _beta_geo(n, r, alpha, a, b, T, seed, modified=True)


def pareto_nbd(
    n: int, *, r: float, alpha: float, s: float, beta: float, T: ArrayLike, seed: int = 0
) -> pl.DataFrame:
    """n customers from Pareto/NBD(r, α, s, β), each observed for T (scalar or per customer)."""
    _positive(r=r, alpha=alpha, s=s, beta=beta)
    rng = np.random.default_rng(seed)
    durations = _durations(n, T)
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0 / dropout)
    active = np.minimum(lifetime, durations)
    x = rng.poisson(rate * active)
    recency = active * _order_statistic(rng, x, x)
    return _frame(x, recency, durations)


def nbd_periods(
    n: int, *, r: float, alpha: float, periods: ArrayLike, seed: int = 0
) -> pl.DataFrame:
    """n customers from the period NBD (docs/methods.md#nbd): ``period_frequency`` occasions over
    ``n_periods`` observed periods, λ ~ Gamma(r, rate α)."""
    _positive(r=r, alpha=alpha)
    rng = np.random.default_rng(seed)
    counts = np.broadcast_to(np.asarray(periods, dtype=np.int64), (n,)).copy()
    if np.any(counts < 0):
        raise WinbackConfigError("periods must be ≥ 0")
    rate = rng.gamma(r, 1.0 / alpha, n)
    return pl.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "period_frequency": rng.poisson(rate * counts).astype(np.int64),
            "n_periods": counts,
        }
    )


def gamma_gamma(
    n: int, *, p: float, q: float, gamma: float, frequency: ArrayLike, seed: int = 0
) -> pl.DataFrame:
    """n customers from Gamma–Gamma(p, q, γ): ``monetary_value`` is the mean of
    ``spend_frequency`` occasion amounts (0 when the frequency is 0)."""
    _positive(p=p, q=q, gamma=gamma)
    rng = np.random.default_rng(seed)
    x = np.broadcast_to(np.asarray(frequency, dtype=np.int64), (n,)).copy()
    if np.any(x < 0):
        raise WinbackConfigError("frequency must be ≥ 0")
    spend_rate = rng.gamma(q, 1.0 / gamma, n)
    has = x > 0
    mean_amount = np.zeros(n)
    # The mean of x Gamma(p, rate ν) amounts is Gamma(p x, rate x ν).
    mean_amount[has] = rng.gamma(p * x[has], 1.0 / (x[has] * spend_rate[has]))
    return pl.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "spend_frequency": x,
            "monetary_value": mean_amount,
        }
    )


#: Customer × opportunity cells drawn at once by :func:`bgbb` (bounds its memory).
_BGBB_CELLS = 1 << 22


def bgbb(
    n: int,
    *,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    n_periods: ArrayLike,
    n_holdout: int = 0,
    seed: int = 0,
) -> pl.DataFrame:
    """n customers from BG/BB(α, β, γ, δ) (docs/methods.md#bg-bb), each with ``n_periods``
    opportunities after the first (scalar or per customer): ``frequency`` (x), ``recency``
    (t_x, the last opportunity with a transaction, 0 without one) and ``n``; with
    ``n_holdout`` > 0 also ``frequency_holdout``, the transactions in the next ``n_holdout``
    opportunities.

    p ~ Beta(α, β) and θ ~ Beta(γ, δ) per customer; at the start of each opportunity an alive
    customer drops out with probability θ, and an alive customer transacts with probability p.

    >>> bgbb(3, alpha=1.2, beta=0.75, gamma=0.66, delta=2.8, n_periods=6, seed=1).columns
    ['customer_id', 'frequency', 'recency', 'n']
    """
    _positive(alpha=alpha, beta=beta, gamma=gamma, delta=delta)
    rng = np.random.default_rng(seed)
    counts = np.broadcast_to(np.asarray(n_periods, dtype=np.int64), (n,)).copy()
    if np.any(counts < 0) or int(n_holdout) != n_holdout or n_holdout < 0:
        raise WinbackConfigError("n_periods and n_holdout must be ≥ 0")
    p = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    # Opportunities survived: P(alive at opportunity t) = (1 − θ)^t.
    survived = np.minimum(rng.geometric(np.maximum(theta, 1e-300)) - 1, counts + n_holdout)
    x = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    later = np.zeros(n, dtype=np.int64)
    width = (int(counts.max()) if n else 0) + int(n_holdout)
    step = max(1, _BGBB_CELLS // max(width, 1))
    t = np.arange(1, width + 1)[None, :]
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        buys = (t <= survived[lo:hi, None]) & (rng.random((hi - lo, width)) < p[lo:hi, None])
        calibration = t <= counts[lo:hi, None]
        x[lo:hi] = (buys & calibration).sum(axis=1)
        last[lo:hi] = np.where(buys & calibration, t, 0).max(axis=1, initial=0)
        later[lo:hi] = (buys & ~calibration & (t <= counts[lo:hi, None] + n_holdout)).sum(axis=1)
    frame = pl.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "frequency": x,
            "recency": last,
            "n": counts,
        }
    )
    return frame.with_columns(frequency_holdout=later) if n_holdout else frame


def _cnbd(
    n: int,
    k: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: ArrayLike,
    holdout: float,
    seed: int,
    modified: bool,
) -> pl.DataFrame:
    _positive(r=r, alpha=alpha, a=a, b=b)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise WinbackConfigError(f"k must be a whole number ≥ 1, got {k!r}")
    if not (np.isfinite(holdout) and holdout >= 0):
        raise WinbackConfigError(f"holdout must be a finite duration ≥ 0, got {holdout!r}")
    k = int(k)
    rng = np.random.default_rng(seed)
    durations = _durations(n, T)
    rate = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    lifetime_purchases = rng.geometric(p) - (1 if modified else 0)
    # Phases: a Poisson process of rate λ on [0, T + holdout]; every k-th phase is a purchase.
    horizon = durations + holdout
    phases = rng.poisson(rate * horizon)
    owner = np.repeat(np.arange(n), phases)
    times = rng.random(owner.size) * horizon[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    first = np.concatenate([[0], np.cumsum(phases)[:-1]])
    index = np.arange(owner.size) - first[owner] + 1  # phase number within its customer
    is_purchase = (index % k == 0) & (index // k <= lifetime_purchases[owner])
    owner, times, number = owner[is_purchase], times[is_purchase], index[is_purchase] // k
    gaps = times - np.where(number > 1, np.roll(times, 1), 0.0)
    calibration = times <= durations[owner]
    x = np.bincount(owner[calibration], minlength=n).astype(np.int64)
    recency = np.zeros(n)
    np.maximum.at(recency, owner[calibration], times[calibration])
    litt = np.bincount(owner[calibration], weights=np.log(gaps[calibration]), minlength=n)
    frame = _frame(x, recency, durations).with_columns(pl.Series("litt", litt))
    if holdout > 0:
        later = np.bincount(owner[~calibration], minlength=n).astype(np.int64)
        frame = frame.with_columns(
            pl.Series("frequency_holdout", later), pl.lit(float(holdout)).alias("duration_holdout")
        )
    return frame


def bgcnbd(
    n: int,
    *,
    k: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: ArrayLike,
    holdout: float = 0.0,
    seed: int = 0,
) -> pl.DataFrame:
    """n customers from BG/CNBD-k(r, α, a, b) (docs/methods.md#cnbd-k), each observed for T
    (scalar or per customer), with ``litt`` (sum of log inter-purchase times); with
    ``holdout`` > 0 also ``frequency_holdout``, the purchases in (T, T + holdout]."""
    return _cnbd(n, k, r, alpha, a, b, T, holdout, seed, modified=False)


def mbgcnbd(
    n: int,
    *,
    k: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: ArrayLike,
    holdout: float = 0.0,
    seed: int = 0,
) -> pl.DataFrame:
    """n customers from MBG/CNBD-k(r, α, a, b), as :func:`bgcnbd` (the customer may also drop
    out right after the first purchase)."""
    return _cnbd(n, k, r, alpha, a, b, T, holdout, seed, modified=True)
