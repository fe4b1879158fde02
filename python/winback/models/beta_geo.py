"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007),
docs/methods.md#bg-nbd.

Both models: while alive a customer buys at Poisson rate λ ~ Gamma(r, rate α); after each repeat
purchase they drop out with probability p ~ Beta(a, b) (MBG/NBD: also right after the first
purchase). Predictions use one identity: given the customer is alive at T, the future is a fresh
BG/NBD process with the posterior parameters (r + x, α + T, a, b + x) — (…, b + x + 1) for MBG/NBD —
so every conditional expectation is P(alive) times the new-customer formula at those parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special

from winback._kernels import likelihood as lik
from winback._kernels import newton as kernels
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

    def probability_alive(self, data: Any | None = None) -> pl.Series:
        """P(alive at T | x, t_x, T) per customer of ``data`` (default: the fitted summary)."""
        x, t_x, T = self._rft(data)
        return self._series("probability_alive", self.probability_alive_at(x, t_x, T))

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
