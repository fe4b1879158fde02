"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), docs/methods.md#pareto-nbd.

While alive a customer buys at Poisson rate λ ~ Gamma(r, rate α); their lifetime is exponential
with rate μ ~ Gamma(s, rate β). Given alive at T the posterior is λ ~ Gamma(r + x, α + T),
μ ~ Gamma(s, β + T), independent, and the lifetime is memoryless — so every conditional quantity is
P(alive) times the new-customer quantity at (r + x, α + T, s, β + T).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special

from winback._kernels import likelihood as lik
from winback._kernels import newton as kernels
from winback.errors import BoundaryFitWarning, WinbackFitError
from winback.models._base import Compressed, by_horizon, check_count, check_horizon
from winback.models._count_base import CountModel
from winback.models._fitting import FitResult, LogLikGradHess, newton_maximise
from winback.models.beta_geo import _U_WEIGHTS, check_discount_rate, gamma_nodes

__all__ = ["ParetoNBDModel"]

FloatArray = NDArray[np.float64]
#: Gauss–Legendre nodes for the lifetime integral of P(X(t) = n); the integrand is smooth in the
#: lifetime's CDF scale, so 64 nodes reach ~1e-12 (cross-checked against adaptive quadrature).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_CHUNK = 1 << 15
#: Above this many distinct tuples the Newton fit starts on a systematic sample of
#: ``_WARM_START_SAMPLE`` tuples (docs/methods.md#pareto-nbd). A pass costs about one ₂F₁ per
#: distinct (x, t_x) and (x, T) pair, and a sample has nearly as many pairs as tuples, so the
#: sample is kept small: the full data then take the same three or four passes from its optimum
#: as from a larger sample's.
_WARM_START_ABOVE = 8_000
_WARM_START_SAMPLE = 2_000


def _lifetime_factor(s: Any, beta: Any, t: Any) -> FloatArray:
    """[1 − (β/(β+t))^{s−1}]/(s − 1), continuous at s = 1 where it is ln(1 + t/β)."""
    s, beta, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (s, beta, t)))
    log_ratio = np.log1p(t / beta)
    near_one = np.abs(s - 1.0) < 1e-8
    safe = np.where(near_one, 2.0, s) - 1.0
    general = -np.expm1(-safe * log_ratio) / safe
    factor: FloatArray = np.where(near_one, log_ratio, general)
    return factor


def new_customer_expected(r: Any, alpha: Any, s: Any, beta: Any, t: Any) -> FloatArray:
    """E[X(t)] for a customer alive at time 0: r β/(α (s−1)) · [1 − (β/(β+t))^{s−1}]."""
    expected: FloatArray = (
        np.asarray(r) * np.asarray(beta) / np.asarray(alpha) * _lifetime_factor(s, beta, t)
    )
    return expected


def new_customer_pmf(n: int, r: Any, alpha: Any, s: Any, beta: Any, t: float) -> FloatArray:
    """P(X(t) = n) for a customer alive at time 0.

    With lifetime τ (Lomax: P(τ > u) = (β/(β+u))^s) and λ integrated out,
    P = P(τ > t) · NB(n; r, α/(α+t)) + ∫_0^t NB(n; r, α/(α+τ)) f(τ) dτ. The integral is taken in
    the CDF scale v = 1 − (β/(β+τ))^s, where the integrand is smooth, by Gauss–Legendre.
    """
    r, alpha, s, beta = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (r, alpha, s, beta))
    )
    out = np.empty(r.shape, dtype=np.float64)
    flat = [v.reshape(-1) for v in (r, alpha, s, beta)]
    result = out.reshape(-1)
    for lo in range(0, result.size, _CHUNK):
        rr, aa, ss, bb = (v[lo : lo + _CHUNK] for v in flat)
        result[lo : lo + _CHUNK] = _pmf_chunk(n, rr, aa, ss, bb, t)
    return out


def _log_nb(n: int, r: FloatArray, alpha: FloatArray, span: FloatArray) -> FloatArray:
    """log NB(n; r, α/(α+span)), with span ≥ 0."""
    log_total = np.log(alpha + span)
    with np.errstate(divide="ignore"):
        n_term = n * (np.log(span) - log_total) if n > 0 else 0.0
    log_pmf: FloatArray = (
        special.gammaln(r + n)
        - special.gammaln(r)
        - special.gammaln(n + 1.0)
        + r * (np.log(alpha) - log_total)
        + n_term
    )
    return log_pmf


def _pmf_chunk(
    n: int, r: FloatArray, alpha: FloatArray, s: FloatArray, beta: FloatArray, t: float
) -> FloatArray:
    if t == 0:
        return np.full(r.shape, 1.0 if n == 0 else 0.0)
    log_survive = s * (np.log(beta) - np.log(beta + t))
    upper = -np.expm1(log_survive)  # P(τ ≤ t)
    # Nodes on [0, upper] in the CDF scale, mapped back to lifetimes τ.
    v = (upper[:, None] / 2.0) * (_NODES[None, :] + 1.0)
    tau = beta[:, None] * np.expm1(-np.log1p(-v) / s[:, None])
    integrand = np.exp(_log_nb(n, r[:, None], alpha[:, None], tau))
    integral = (upper / 2.0) * (integrand @ _WEIGHTS)
    probability: FloatArray = np.exp(log_survive + _log_nb(n, r, alpha, np.full(r.shape, t)))
    probability = probability + integral
    return probability


def discounted_lifetime(s: float, theta: FloatArray, delta: float) -> FloatArray:
    """E[1/(δ + μ)] = ∫_0^∞ e^{−δt} (θ/(θ+t))^s dt for μ ~ Gamma(s, rate θ): the discounted
    expected lifetime of a customer alive now (docs/methods.md#dert). Equal to
    θ^s δ^{s−1} U(s, s; δθ) (Tricomi's U; FHL 2005), which scipy evaluates slowly and not at all
    for large s, so it is taken by tanh–sinh quadrature in μ's CDF scale (μ = G/θ, G ~
    Gamma(s, 1), nodes once per fit since s is shared): the integrand θ/(δθ + G) ≤ 1/δ."""
    g = gamma_nodes(s)[None, :]
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)[:, None]
    out = np.empty(theta.shape[0], dtype=np.float64)
    for lo in range(0, out.size, _CHUNK // 8):
        rows = slice(lo, lo + _CHUNK // 8)
        with np.errstate(over="ignore"):
            out[rows] = (theta[rows] / (delta * theta[rows] + g)) @ _U_WEIGHTS
    return out


class ParetoNBDModel(CountModel):
    """Pareto/NBD: ``params_`` has ``r, alpha`` (purchase rate λ ~ Gamma(r, rate α)) and
    ``s, beta`` (dropout rate μ ~ Gamma(s, rate β)); docs/methods.md#pareto-nbd."""

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    model_name: ClassVar[str] = "Pareto/NBD"
    _flat_hint: ClassVar[str] = (
        "When s and beta grow together, the dropout rates show no heterogeneity (the limit "
        "s, β → ∞ with s/β fixed gives every customer one dropout rate); BG/NBD or MBG/NBD "
        "usually fits such data."
    )

    #: s and β running off together is the constant-dropout-rate boundary
    #: (docs/methods.md#pareto-nbd-boundary).
    _boundary_ray: ClassVar[tuple[int, int] | None] = (2, 3)

    def _starts(self, data: Compressed) -> list[list[float]]:
        w = data.weights
        mean_T = float((w * data["T"]).sum() / w.sum())
        rate = float((w * data["frequency"]).sum() / max((w * data["T"]).sum(), 1e-12))
        alpha0 = 1.0 / max(rate, 1e-6)
        return [
            [1.0, alpha0, 1.0, mean_T],
            [0.5, alpha0, 0.5, mean_T / 2],
            [2.0, 2 * alpha0, 2.0, 2 * mean_T],
        ]

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = lik.pareto_nbd_loglik_grad(
            params, data["frequency"], data["recency"], data["T"], data.weights
        )
        return float(value), np.asarray(grad)

    def _loglik_rows(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:
        return np.asarray(lik.pareto_nbd_loglik_each(params, x, t_x, T))

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        """One pass gives ℓ, its gradient and its exact Hessian (docs/methods.md#pareto-nbd):
        the lifetime integrals are evaluated once per distinct (x, t_x) and (x, T) pair."""
        x_values, group_starts = data.runs("frequency")
        tables = (data["recency"], data.rank("T"), data.distinct("T"), data.weights)

        def objective(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            value, grad, hess = kernels.pareto_nbd_newton_terms(
                params, group_starts, x_values, *tables
            )
            return float(value), grad, hess

        return objective

    def _newton_fit(
        self, newton: LogLikGradHess, data: Compressed, starts: list[list[float]]
    ) -> FitResult | None:
        """Newton on a small systematic sample from the starts, then on all tuples from the
        sample's optimum; the general path when the data are small or the sample fails."""
        if data.n_unique <= _WARM_START_ABOVE:
            return super()._newton_fit(newton, data, starts)
        sample = data.systematic_sample(_WARM_START_SAMPLE)
        sample_newton = self._objective_newton(sample)
        assert sample_newton is not None
        warm = super()._newton_fit(sample_newton, sample, starts)
        if warm is None:
            return super()._newton_fit(newton, data, starts)
        final = newton_maximise(
            newton,
            list(warm.params),
            n_observations=data.n_customers,
            ray=self._boundary_ray,
        )
        if final is None:
            return super()._newton_fit(newton, data, starts)
        return FitResult(
            final.params,
            final.log_likelihood,
            final.gradient_norm,
            warm.n_iter + final.n_iter,
            final.converged,
            final.message,
            warm.starts_tried,
            warm.start_spread,
            final.hessian,
            boundary=final.boundary,
        )

    def _boundary_fit(
        self, params: FloatArray, information: FloatArray, data: Compressed
    ) -> tuple[FloatArray, dict[str, float]]:
        """At the s, β → ∞ boundary (docs/methods.md#pareto-nbd-boundary) only r, α and
        μ = s/β are identified: their covariance is the inverse information of (r, α, μ) with s
        held at its stopping value (β = s/μ), mapped back to (r, α, s, β) — singular, with s's
        variance 0, so the delta method carries μ's uncertainty through β. The standard errors
        of s and β are infinite (not identified). Warns with :class:`BoundaryFitWarning`."""
        _r, _alpha, s, beta = (float(v) for v in params)
        mu = s / beta
        jacobian = np.zeros((4, 3))
        jacobian[0, 0] = jacobian[1, 1] = 1.0
        jacobian[3, 2] = -s / mu**2
        reduced = jacobian.T @ information @ jacobian
        eigenvalues = np.linalg.eigvalsh(reduced)
        if not np.all(np.isfinite(eigenvalues)) or eigenvalues.min() <= 0:
            raise WinbackFitError(
                f"{self.model_name}: the likelihood rises towards s, β → ∞ (one dropout rate "
                f"μ = s/β ≈ {mu:.4g} for every customer), and r, α and μ are not identified "
                f"there either. {self._flat_hint}"
            )
        reduced_cov = np.linalg.inv(reduced)
        covariance = jacobian @ reduced_cov @ jacobian.T
        covariance = (covariance + covariance.T) / 2
        params_se = {
            "r": math.sqrt(reduced_cov[0, 0]),
            "alpha": math.sqrt(reduced_cov[1, 1]),
            "s": math.inf,
            "beta": math.inf,
        }
        warnings.warn(
            f"{self.model_name} on {data.n_customers:,.0f} customers: the dropout rates show no "
            "heterogeneity, so the likelihood has no finite maximum; it rises towards s, β → ∞ "
            f"with s/β fixed. The fit stopped at s = {s:.4g}, β = {beta:.4g}, within "
            "1e-8 per customer of the supremum: every customer has nearly one dropout rate "
            f"μ = s/β = {mu:.4g} per time unit (± {math.sqrt(reduced_cov[2, 2]):.2g}); s and β "
            "are not identified apart (standard errors infinite). BG/NBD or MBG/NBD usually "
            "fits such data.",
            BoundaryFitWarning,
            stacklevel=4,
        )
        return covariance, params_se

    def _alive(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        params = self._param_array()
        return np.exp(np.asarray(lik.pareto_nbd_log_p_alive(params, x, t_x, T)))

    def probability_alive_at(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(alive at T | x, t_x, T) on checked float64 arrays (what :meth:`probability_alive`
        computes, without the frame: the in-process scorer's path, docs/methods.md#scorer)."""
        return self._alive(x, t_x, T)

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
        r, alpha, s, beta = self._param_array()
        if alive is None:
            alive = self._alive(x, t_x, T)
        value: FloatArray = alive * new_customer_expected(r + x, alpha + T, s, beta + T, t)
        return value

    def probability_alive(self, data: Any | None = None, *, future_t: float = 0.0) -> pl.Series:
        """P(alive at T | x, t_x, T) per customer; with ``future_t`` = t > 0, P(alive at T + t |
        x, t_x, T): times ((β+T)/(β+T+t))^s, the posterior survival of the exponential lifetime
        (docs/methods.md#pareto-nbd)."""
        future_t = check_horizon(future_t)
        x, t_x, T = self._rft(data)
        alive = self.probability_alive_at(x, t_x, T)
        if future_t > 0:
            s, beta = self.params_["s"], self.params_["beta"]
            alive = alive * np.exp(-s * np.log1p(future_t / (beta + T)))
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
        r, alpha, s, beta = self._param_array()
        alive = self._alive(x, t_x, T)
        value = alive * new_customer_pmf(n, r + x, alpha + T, np.full(x.shape, s), beta + T, t)
        if n == 0:
            value = value + (1.0 - alive)
        return self._series("probability_of_n_purchases", value)

    def dert(self, discount_rate: float, data: Any | None = None) -> pl.Series:
        """Discounted expected residual transactions per customer (Fader, Hardie & Lee 2005,
        "RFM and CLV"; docs/methods.md#dert): E[∫_T^∞ e^{−δ(t−T)} dX(t) | x, t_x, T] with
        ``discount_rate`` δ a continuous rate per unit of the summary's time (> 0)."""
        delta = check_discount_rate(discount_rate)
        x, t_x, T = self._rft(data)
        r, alpha, s, beta = self._param_array()
        value = (
            self._alive(x, t_x, T)
            * (r + x)
            / (alpha + T)
            * discounted_lifetime(float(s), beta + T, delta)
        )
        return self._series("dert", value)

    def expected_purchases_new_customer(self, t: float | FloatArray) -> float | pl.Series:
        """E[X(t)] for a customer just acquired: r β/(α (s−1)) · [1 − (β/(β+t))^{s−1}]."""
        r, alpha, s, beta = self._param_array()
        values = new_customer_expected(r, alpha, s, beta, np.asarray(t, dtype=np.float64))
        return by_horizon("expected_purchases_new_customer", t, values)
