"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007),
docs/methods.md#bg-nbd.

Both models: while alive a customer buys at Poisson rate λ ~ Gamma(r, rate α); after each repeat
purchase they drop out with probability p ~ Beta(a, b) (MBG/NBD: also right after the first
purchase). Predictions use one identity: given the customer is alive at T, the future is a fresh
BG/NBD process with the posterior parameters (r + x, α + T, a, b + x) — (…, b + x + 1) for MBG/NBD —
so every conditional expectation is P(alive) times the new-customer formula at those parameters.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special

from winback._kernels import likelihood as lik
from winback._kernels import newton as kernels
from winback.errors import WinbackConfigError
from winback.models._base import Compressed, by_horizon, check_count, check_horizon
from winback.models._count_base import CountModel
from winback.models._fitting import LogLikGradHess

__all__ = ["BetaGeoModel", "ModifiedBetaGeoModel"]

FloatArray = NDArray[np.float64]


def _log_nb_pmf(n: float, r: FloatArray, log_p: FloatArray, log_q: FloatArray) -> FloatArray:
    """log NB(n; r, π) = lnΓ(r+n) − lnΓ(r) − ln n! + r ln π + n ln(1−π)."""
    log_pmf: FloatArray = (
        special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1) + r * log_p + n * log_q
    )
    return log_pmf


def fresh_expected(r: Any, alpha: Any, a: Any, b: Any, t: Any) -> FloatArray:
    """E[X(t)] for a BG/NBD customer alive at time 0 (FHL 2005 eq. 7):
    (a+b−1)/(a−1) · [1 − (α/(α+t))^r · ₂F₁(r, b; a+b−1; t/(α+t))].

    Where that closed form cannot be evaluated — ₂F₁ overflows for the posterior of a customer
    with tens of thousands of purchases (r + x, b + x huge) and ∞ · 0 gave NaN, or a → 1 — or
    falls outside its bounds 0 ≤ E ≤ r t/α, the same expectation is taken as an integral over
    the dropout probability (:func:`_expected_by_quadrature`), docs/methods.md#bg-nbd."""
    r, alpha, a, b, t = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, t))
    )
    z = t / (alpha + t)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        hyp = special.hyp2f1(r, b, a + b - 1.0, z)
        bracket = 1.0 - np.exp(r * (np.log(alpha) - np.log(alpha + t))) * hyp
        out = (a + b - 1.0) / (a - 1.0) * bracket
        ceiling = r * t / alpha  # no dropout at all
    # Near a = 1 the closed form cancels ((a+b−1)/(a−1) times a bracket of order a−1).
    bad = (t > 0) & (
        ~(np.isfinite(out) & (out >= 0.0) & (out <= ceiling * (1.0 + 1e-9)))
        | (np.abs(a - 1.0) < 1e-6)
    )
    if bad.any():
        out = np.array(out, dtype=np.float64, copy=True)
        out[bad] = _expected_by_quadrature(r[bad], alpha[bad], a[bad], b[bad], t[bad])
    return np.where(t > 0, out, 0.0)


def _tanh_sinh(step: float, reach: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Tanh–sinh (double-exponential) rule on (0, 1): nodes u, their complements 1 − u (exact,
    for the upper end) and weights. Robust to algebraic end-point singularities."""
    k = np.arange(-reach / step, reach / step + 1.0) * step
    s = np.pi / 2.0 * np.sinh(k)
    u = 1.0 / (1.0 + np.exp(-2.0 * s))
    complement = 1.0 / (1.0 + np.exp(2.0 * s))
    weights = step * np.pi / 4.0 * np.cosh(k) / np.cosh(s) ** 2
    keep = (u > 0) & (complement > 0) & (weights > 0)
    return u[keep], complement[keep], weights[keep]


#: Nodes of the quadrature fallback of :func:`fresh_expected` (193 nodes, ~1e−12 relative).
_U, _U_COMPLEMENT, _U_WEIGHTS = _tanh_sinh(1.0 / 16.0, 6.0)
#: The quadrature weights of the nodes ``_U`` (Σ = 1), shared with the CNBD-k DERT.
U_WEIGHTS = _U_WEIGHTS
_ROWS_PER_CHUNK = 4096


def _expected_by_quadrature(
    r: FloatArray, alpha: FloatArray, a: FloatArray, b: FloatArray, t: FloatArray
) -> FloatArray:
    """E[X(t)] = E_p[(1 − (α/(α + p t))^r)/p], p ~ Beta(a, b) (given p, purchases stop after a
    geometric number of them; λ integrated out), by tanh–sinh quadrature in the Beta CDF scale
    u = I_p(a, b), where the integrand is bounded (0 < · ≤ r t/α) and smooth inside (0, 1).
    Every term is finite for any valid input; agreement with the closed form ~1e−12 relative
    where that is accurate (tested)."""
    out = np.empty(r.shape, dtype=np.float64)
    for lo in range(0, r.size, _ROWS_PER_CHUNK):
        rows = slice(lo, lo + _ROWS_PER_CHUNK)
        aa, bb = a[rows, None], b[rows, None]
        lower = _U[None, :] <= 0.5
        with np.errstate(under="ignore", invalid="ignore"):
            p = np.where(
                lower,
                special.betaincinv(aa, bb, _U[None, :]),
                special.betainccinv(aa, bb, _U_COMPLEMENT[None, :]),
            )
        # The inverse fails only at nodes within ~1e−200 of an end: those are the end.
        p = np.where(np.isnan(p), np.where(lower, 0.0, 1.0), p)
        ceiling = (r[rows] * t[rows] / alpha[rows])[:, None]
        safe = np.maximum(p, 1e-300)
        g = -np.expm1(-r[rows, None] * np.log1p(safe * (t[rows] / alpha[rows])[:, None])) / safe
        g = np.where(p > 1e-300, np.minimum(g, ceiling), ceiling)  # p → 0: no dropout
        out[rows] = g @ _U_WEIGHTS
    return out


def survival_given_alive(r: Any, alpha: Any, a: Any, b: Any, t: float) -> FloatArray:
    """P(alive at t | alive at 0) of a BG/NBD customer with (r, α, a, b) — the posterior ones
    for a customer alive at T (docs/methods.md#bg-nbd): dropout happens only at purchases, so it
    is E[(1−p)^N(t)] = E_p[(1 + p t/α)^−r] = ₂F₁(r, a; a+b; −t/α), evaluated after Pfaff's
    transformation as (1 + t/α)^−r ₂F₁(r, b; a+b; z), z = t/(α+t) ∈ [0, 1) (a series of
    positive terms); where that is not finite or leaves [0, 1], by tanh–sinh quadrature over p."""
    r, alpha, a, b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b))
    )
    z = t / (alpha + t)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.exp(-r * np.log1p(t / alpha) + np.log(special.hyp2f1(r, b, a + b, z)))
    bad = ~(np.isfinite(out) & (out >= 0.0) & (out <= 1.0 + 1e-12))
    if bad.any():
        out = np.array(out, dtype=np.float64, copy=True)
        rb, alb, ab, bb = r[bad], alpha[bad], a[bad], b[bad]
        value = np.empty(rb.shape)
        for lo in range(0, rb.size, _ROWS_PER_CHUNK):
            rows = slice(lo, lo + _ROWS_PER_CHUNK)
            aa, bbb = ab[rows, None], bb[rows, None]
            lower = _U[None, :] <= 0.5
            with np.errstate(under="ignore", invalid="ignore"):
                p = np.where(
                    lower,
                    special.betaincinv(aa, bbb, _U[None, :]),
                    special.betainccinv(aa, bbb, _U_COMPLEMENT[None, :]),
                )
            p = np.where(np.isnan(p), np.where(lower, 0.0, 1.0), p)
            f = np.exp(-rb[rows, None] * np.log1p(p * (t / alb[rows])[:, None]))
            value[rows] = f @ _U_WEIGHTS
        out[bad] = value
    return np.where(t > 0, np.minimum(out, 1.0), 1.0)


def check_discount_rate(discount_rate: float) -> float:
    """A continuous discount rate δ per unit of time, refused unless finite and > 0
    (docs/methods.md#dert)."""
    try:
        value = float(discount_rate)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise WinbackConfigError(
            f"discount_rate must be a finite continuous rate > 0 per unit of the summary's time "
            f"(e.g. 0.15 a year → ln(1.15)/52 ≈ 0.0027 a week), got {discount_rate!r}; without "
            "discounting the residual count of a customer who never leaves is infinite"
        )
    return value


def gamma_nodes(shape: float) -> FloatArray:
    """Quantiles of Gamma(shape, rate 1) at the tanh–sinh nodes ``_U`` (the upper half from the
    complement, so the tail is exact); a node whose inverse under- or overflows is its end
    (0 or the largest float)."""
    lower = _U <= 0.5
    with np.errstate(under="ignore", invalid="ignore", over="ignore"):
        q = np.where(
            lower,
            special.gammaincinv(shape, _U),
            special.gammainccinv(shape, _U_COMPLEMENT),
        )
    q = np.where(np.isnan(q), np.where(lower, 0.0, np.finfo(np.float64).max), q)
    return np.asarray(q, dtype=np.float64)


def beta_nodes(a: float, b: float) -> FloatArray:
    """Quantiles of Beta(a, b) at the tanh–sinh nodes ``_U`` (complement for the upper half)."""
    lower = _U <= 0.5
    with np.errstate(under="ignore", invalid="ignore"):
        p = np.where(lower, special.betaincinv(a, b, _U), special.betainccinv(a, b, _U_COMPLEMENT))
    p = np.where(np.isnan(p), np.where(lower, 0.0, 1.0), p)
    return np.asarray(p, dtype=np.float64)


#: Rows of the (customers × λ nodes × p nodes) block in :func:`fresh_dert`.
_DERT_BLOCK = 32


def fresh_dert(
    r: FloatArray, alpha: FloatArray, a: float, b: FloatArray, delta: float
) -> FloatArray:
    """∫_0^∞ e^{−δt} dE[X(t)] for a BG/NBD customer alive at time 0 (docs/methods.md#dert).

    Given λ and p the customer makes purchase j at the j-th Poisson epoch S_j if none of the
    j − 1 before ended their life, so the discounted count is
    Σ_j (1−p)^{j−1} E[e^{−δ S_j}] = Σ_j (1−p)^{j−1} (λ/(λ+δ))^j = λ/(δ + pλ). Its mean over
    λ ~ Gamma(r, α), p ~ Beta(a, b) is taken by tanh–sinh quadrature in both CDF scales
    (λ = G/α with G ~ Gamma(r, 1)): the integrand λ/(δ+pλ) ≤ λ/δ is smooth inside the square
    and its end singularities are algebraic. r and b depend on the frequency only, so the nodes
    are computed once per distinct (r, b)."""
    r, alpha, b = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (r, alpha, b))
    # Customers share (r, α, b) when they share (x, T): compute each distinct triple once.
    triples, back = np.unique(np.stack([r, b, alpha], axis=1), axis=0, return_inverse=True)
    values = np.empty(triples.shape[0], dtype=np.float64)
    weights_2d = (_U_WEIGHTS[:, None] * _U_WEIGHTS[None, :]).reshape(-1)
    starts = np.flatnonzero(np.r_[True, np.any(np.diff(triples[:, :2], axis=0) != 0, axis=1)])
    for first, stop in zip(starts, [*starts[1:], triples.shape[0]], strict=True):
        rr, bb = triples[first, 0], triples[first, 1]
        g = gamma_nodes(float(rr))[:, None]  # λ α
        p = beta_nodes(a, float(bb))[None, :]
        huge = ~(g < 1e300)
        for lo in range(first, stop, _DERT_BLOCK):
            hi = min(lo + _DERT_BLOCK, stop)
            da = (delta * triples[lo:hi, 2])[:, None, None]
            with np.errstate(over="ignore", invalid="ignore"):
                # λ/(δ + pλ) = G/(δα + pG); G → ∞ gives 1/p.
                block = np.where(huge, 1.0 / np.maximum(p, 1e-300), g / (da + p * g))
            values[lo:hi] = block.reshape(hi - lo, -1) @ weights_2d
    out: FloatArray = values[back.reshape(-1)]
    return out


def fresh_pmf(n: int, r: Any, alpha: Any, a: Any, b: Any, t: Any) -> FloatArray:
    """P(X(t) = n) for a BG/NBD customer alive at time 0 (FHL 2005 eq. 8):
    B(a, b+n)/B(a, b) · NB(n; r, α/(α+t))
    + [n > 0] B(a+1, b+n−1)/B(a, b) · P(NB(r, α/(α+t)) ≥ n)."""
    r, alpha, a, b, t = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, t))
    )
    log_p = np.log(alpha) - np.log(alpha + t)
    # t = 0 is masked below; the floor only keeps the log finite there.
    log_q = np.log(np.maximum(t, 1e-300)) - np.log(alpha + t)
    first = np.exp(
        special.betaln(a, b + n) - special.betaln(a, b) + _log_nb_pmf(float(n), r, log_p, log_q)
    )
    if n == 0:
        return np.where(t > 0, first, 1.0)
    tail = special.betainc(float(n), r, t / (alpha + t))  # P(NB ≥ n) = I_{1−π}(n, r)
    second = np.exp(special.betaln(a + 1.0, b + n - 1.0) - special.betaln(a, b)) * tail
    return np.where(t > 0, first + second, 0.0)


class _BetaGeoFamily(CountModel):
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    #: Shift of the Beta posterior's b given alive at T: b + x (BG/NBD) or b + x + 1 (MBG/NBD).
    _alive_shift: ClassVar[float] = 0.0

    def _starts(self, data: Compressed) -> list[list[float]]:
        w = data.weights
        exposure = float(np.dot(w, data["T"]))
        mean_T = exposure / float(w.sum())
        rate = float(np.dot(w, data["frequency"])) / max(exposure, 1e-12)
        alpha0 = 1.0 / max(rate, 1e-6)
        return [
            [1.0, alpha0, 1.0, 1.0],
            [0.5, max(mean_T / 8, 1e-3), 0.8, 2.5],
            [2.0, 2 * alpha0, 0.5, 5.0],
        ]

    def _log_alive_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        raise NotImplementedError  # pragma: no cover

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        x_values, group_starts = data.runs("frequency")
        modified = self._alive_shift == 1.0
        tables = (
            data.rank("recency"),
            data.distinct("recency"),
            data.rank("T"),
            data.distinct("T"),
            data.weights,
        )

        def objective(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            value, grad, hess = kernels.beta_geo_newton_terms(
                params, modified, group_starts, x_values, *tables
            )
            return float(value), grad, hess

        return objective

    def probability_alive_at(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(alive at T | x, t_x, T) on checked float64 arrays (what :meth:`probability_alive`
        computes, without the frame: the in-process scorer's path, docs/methods.md#scorer)."""
        alive: FloatArray = special.expit(-self._log_alive_odds(x, t_x, T))
        return alive

    def expected_purchases_at(
        self,
        t: float,
        x: FloatArray,
        t_x: FloatArray,
        T: FloatArray,
        alive: FloatArray | None = None,
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] on checked float64 arrays (what
        :meth:`expected_purchases` computes, without the frame); ``alive``: the customers'
        :meth:`probability_alive_at`, when the caller has it already."""
        r, alpha, a, b = self._param_array()
        if alive is None:
            alive = self.probability_alive_at(x, t_x, T)
        value: FloatArray = alive * fresh_expected(
            r + x, alpha + T, a, b + x + self._alive_shift, t
        )
        return value

    def probability_alive(self, data: Any | None = None, *, future_t: float = 0.0) -> pl.Series:
        """P(alive at T | x, t_x, T) per customer of ``data`` (default: the fitted summary);
        with ``future_t`` = t > 0, P(alive at T + t | x, t_x, T) (no purchases observed after T):
        P(alive at T) × the survival of the posterior customer (docs/methods.md#bg-nbd)."""
        future_t = check_horizon(future_t)
        x, t_x, T = self._rft(data)
        alive = self.probability_alive_at(x, t_x, T)
        if future_t > 0:
            r, alpha, a, b = self._param_array()
            alive = alive * survival_given_alive(
                r + x, alpha + T, a, b + x + self._alive_shift, future_t
            )
        return self._series("probability_alive", alive)

    def expected_purchases(self, t: float, data: Any | None = None) -> pl.Series:
        """E[purchases in (T, T + t] | x, t_x, T] per customer (t in the summary's time unit)."""
        t = check_horizon(t)
        x, t_x, T = self._rft(data)
        return self._series("expected_purchases", self.expected_purchases_at(t, x, t_x, T))

    def probability_of_n_purchases(self, t: float, n: int, data: Any | None = None) -> pl.Series:
        """P(exactly n purchases in (T, T + t] | x, t_x, T) per customer."""
        t = check_horizon(t)
        n = check_count(n)
        x, t_x, T = self._rft(data)
        r, alpha, a, b = self._param_array()
        alive = special.expit(-self._log_alive_odds(x, t_x, T))
        value = alive * fresh_pmf(n, r + x, alpha + T, a, b + x + self._alive_shift, t)
        if n == 0:
            value = value + (1.0 - alive)
        return self._series("probability_of_n_purchases", value)

    def dert(self, discount_rate: float, data: Any | None = None) -> pl.Series:
        """Discounted expected residual transactions per customer (docs/methods.md#dert):
        E[∫_T^∞ e^{−δ(t−T)} dX(t) | x, t_x, T] with ``discount_rate`` δ a continuous rate per
        unit of the summary's time (> 0): P(alive) times the new-customer value at the
        posterior parameters."""
        delta = check_discount_rate(discount_rate)
        x, t_x, T = self._rft(data)
        r, alpha, a, b = self._param_array()
        alive = special.expit(-self._log_alive_odds(x, t_x, T))
        value = alive * fresh_dert(r + x, alpha + T, float(a), b + x + self._alive_shift, delta)
        return self._series("dert", value)

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        raise NotImplementedError  # pragma: no cover


class BetaGeoModel(_BetaGeoFamily):
    """BG/NBD: ``params_`` has ``r, alpha`` (purchase rate λ ~ Gamma(r, rate α)) and ``a, b``
    (dropout probability after each repeat purchase p ~ Beta(a, b)); docs/methods.md#bg-nbd.

    Examples
    --------
    >>> import polars as pl
    >>> from winback.models import BetaGeoModel
    >>> summary = pl.read_csv(cdnow_summary_csv)  # doctest: +SKIP
    >>> BetaGeoModel().fit(summary).params_  # doctest: +SKIP
    {'r': 0.2426, 'alpha': 4.4136, 'a': 0.7929, 'b': 2.4259}
    """

    model_name: ClassVar[str] = "BG/NBD"
    _alive_shift: ClassVar[float] = 0.0

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = lik.bgnbd_loglik_grad(
            params, data["frequency"], data["recency"], data["T"], data.weights
        )
        return float(value), np.asarray(grad)

    def _loglik_rows(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:
        return np.asarray(lik.bgnbd_loglik_each(params, x, t_x, T))

    def _log_alive_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """ln[(1 − P(alive))/P(alive)] = ln(a/(b+x−1)) + (r+x) ln((α+T)/(α+t_x)) for x > 0;
        −∞ at x = 0 (FHL 2005 eq. 13)."""
        r, alpha, a, b = self._param_array()
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (
                np.log(a)
                - np.log(b + x - 1.0)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )
        return np.where(x > 0, odds, -np.inf)

    def expected_purchases_new_customer(self, t: float | FloatArray) -> float | pl.Series:
        """E[X(t)] for a customer just acquired (FHL 2005 eq. 7)."""
        r, alpha, a, b = self._param_array()
        values = fresh_expected(r, alpha, a, b, np.asarray(t, dtype=np.float64))
        return by_horizon("expected_purchases_new_customer", t, values)


class ModifiedBetaGeoModel(_BetaGeoFamily):
    """MBG/NBD: like BG/NBD, but a customer may also drop out right after the first purchase, so
    customers with no repeat purchase are not all alive; docs/methods.md#mbg-nbd.
    ``params_``: ``r, alpha, a, b``."""

    model_name: ClassVar[str] = "MBG/NBD"
    _alive_shift: ClassVar[float] = 1.0

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = lik.mbgnbd_loglik_grad(
            params, data["frequency"], data["recency"], data["T"], data.weights
        )
        return float(value), np.asarray(grad)

    def _loglik_rows(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:
        return np.asarray(lik.mbgnbd_loglik_each(params, x, t_x, T))

    def _log_alive_odds(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """ln(a/(b+x)) + (r+x) ln((α+T)/(α+t_x))."""
        r, alpha, a, b = self._param_array()
        log_odds: FloatArray = np.log(a) - np.log(b + x)
        log_odds = log_odds + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return log_odds

    def expected_purchases_new_customer(self, t: float | FloatArray) -> float | pl.Series:
        """E[X(t)] for a new customer: with probability b/(a+b) they survive the first purchase
        and then behave as BG/NBD with p ~ Beta(a, b+1)."""
        r, alpha, a, b = self._param_array()
        values = b / (a + b) * fresh_expected(r, alpha, a, b + 1.0, np.asarray(t, dtype=np.float64))
        return by_horizon("expected_purchases_new_customer", t, values)
