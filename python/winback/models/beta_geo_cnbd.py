"""BG/CNBD-k and MBG/CNBD-k (Platzer & Reutterer 2016), docs/methods.md#cnbd-k.

BG/NBD (MBG/NBD) with Erlang-k inter-purchase times: each purchase is the k-th event of a Poisson
process of rate λ ~ Gamma(r, rate α), so customers with k > 1 buy on a rhythm (the gaps have
coefficient of variation 1/√k); after each repeat purchase (MBG: also right after the first) they
drop out with probability p ~ Beta(a, b). k = 1 is BG/NBD (MBG/NBD). The likelihood needs, besides
(x, t_x, T), each customer's sum of log inter-purchase times ``litt`` (0 with no repeat purchase);
k is fixed or chosen by likelihood over 1, 2, …
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._kernels import cnbd as kernels
from winback._options import CNBD_MAX_K, LITT_COL, TimeUnit
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.models._base import (
    Compressed,
    by_horizon,
    check_horizon,
    frame_of,
    split_summary,
)
from winback.models._count_base import CountModel
from winback.models._fitting import FitResult, LogLikGradHess
from winback.models.beta_geo import U_WEIGHTS, beta_nodes, check_discount_rate, gamma_nodes

__all__ = ["BetaGeoCNBDModel", "ModifiedBetaGeoCNBDModel"]

FloatArray = NDArray[np.float64]
#: Newton passes (per data stage) after which the k search gives up on a k.
_SEARCH_PASSES = 150


def _check_k(k: Any, max_k: Any) -> tuple[int | None, int]:
    """(fixed k or None for the search, the search's largest k), refused unless whole ≥ 1."""

    def whole(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise WinbackConfigError(f"{name} must be a whole number ≥ 1, got {value!r}")
        return int(value)

    fixed = None if isinstance(k, str) and k == "auto" else whole("k", k)
    return fixed, whole("max_k", max_k)


#: Customers per (customers × λ nodes × p nodes) block in :func:`cnbd_dert_given_alive`.
_DERT_BLOCK = 16


def cnbd_dert_given_alive(
    params: FloatArray,
    k: int,
    modified: bool,
    delta: float,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """E[∫_T^∞ e^{−δ(t−T)} dX(t) | alive at T, x, t_x, T] for the CNBD-k models
    (docs/methods.md#dert).

    Given alive at T, j < k phases run since the last purchase (weight ρ_j/S), the phase rate
    λ ~ Gamma(r+kx+j, α+T) and p ~ Beta(a, b+m): the n-th future purchase is the
    (k−j + (n−1)k)-th phase epoch after T, made if none of the n − 1 future purchases before it
    ended the customer's life, so with q = λ/(λ+δ) the discounted count is
    Σ_n (1−p)^{n−1} q^{k−j+(n−1)k} = q^{k−j} / (1 − (1−p) q^k) (λ/(δ+pλ) at k = 1). Its mean
    is taken by tanh–sinh quadrature in both CDF scales, as for BG/NBD, once per distinct
    (x, T) and j."""
    r, alpha, a, b = (float(v) for v in params)
    weights_2d = (U_WEIGHTS[:, None] * U_WEIGHTS[None, :]).reshape(-1)
    # ρ_j / S per customer: ρ_0 = 1, ρ_j = ρ_{j−1} Δ (r+kx+j−1) / (j (α+T)), Δ = T − t_x.
    rho = np.ones((x.size, k))
    gap = np.maximum(T - t_x, 0.0)
    for j in range(1, k):
        rho[:, j] = rho[:, j - 1] * gap * (r + k * x + j - 1.0) / (j * (alpha + T))
    share = rho / rho.sum(axis=1, keepdims=True)
    pairs, back = np.unique(np.stack([x, T], axis=1), axis=0, return_inverse=True)
    values = np.empty((pairs.shape[0], k))
    starts = np.flatnonzero(np.r_[True, np.diff(pairs[:, 0]) != 0])
    for first, stop in zip(starts, [*starts[1:], pairs.shape[0]], strict=True):
        xx = pairs[first, 0]
        p = beta_nodes(a, b + (xx + 1.0 if modified else xx))[None, None, :]
        with np.errstate(divide="ignore"):
            log_keep = np.log1p(-np.minimum(p, 1.0))  # ln(1 − p); −inf at p = 1
        for j in range(k):
            g = gamma_nodes(r + k * xx + j)[None, :, None]  # λ (α+T), G ~ Gamma(shape, 1)
            huge = ~(g < 1e300)
            for lo in range(first, stop, _DERT_BLOCK):
                hi = min(lo + _DERT_BLOCK, stop)
                da = (delta * (alpha + pairs[lo:hi, 1]))[:, None, None]
                with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                    log_q = -np.log1p(da / g)  # ln λ/(λ+δ) = −ln(1 + δ(α+T)/G)
                    block = np.exp((k - j) * log_q) / -np.expm1(k * log_q + log_keep)
                    # G → ∞: q → 1, the count → 1/p.
                    block = np.where(huge, 1.0 / np.maximum(p, 1e-300), block)
                    block = np.where(g > 0.0, block, 0.0)
                values[lo:hi, j] = block.reshape(hi - lo, -1) @ weights_2d
    out: FloatArray = np.einsum("cj,cj->c", share, values[back.reshape(-1)])
    return out


class _CNBDFamily(CountModel):
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    _modified: ClassVar[bool] = False
    #: The Erlang order of the fitted (or given) model.
    k_: int
    #: Log-likelihood of each k tried by the search (one entry for a fixed k).
    k_log_likelihoods_: dict[int, float]

    def __init__(
        self,
        k: int | Literal["auto"] = "auto",
        *,
        max_k: int = CNBD_MAX_K,
        initial_params: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(initial_params=initial_params)
        self.k = k
        self.max_k = max_k

    # -- fitting --------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        /,
        *,
        frequency_col: str = "frequency",
        recency_col: str = "recency",
        T_col: str = "T",
        litt_col: str = LITT_COL,
        weights_col: str | None = None,
        unit: TimeUnit | None = None,
        resolution: str | timedelta | None = None,
        penalizer: float = 0.0,
        penalize: Literal["natural", "log"] = "natural",
    ) -> Self:
        """Fits (r, α, a, b) by maximum likelihood for the fixed ``k``, or for k = 1, 2, … up to
        ``max_k`` (stopping at the first k whose likelihood is lower than its predecessor's)
        keeping the most likely (docs/methods.md#cnbd-k); a k whose fit fails (degenerate for a
        wrong k) is recorded with log-likelihood −inf in ``k_log_likelihoods_`` and skipped.
        ``litt_col`` names each customer's sum of log inter-purchase times in the summary's
        unit (0 with no repeat purchase); it is not needed for ``k=1``. The other arguments are
        :meth:`CountModel.fit`'s; with ``weights_col`` each row's ``litt`` is that of one of its
        customers.
        Raises :class:`~winback.WinbackFitError` when no k can be fitted."""
        fixed, max_k = _check_k(self.k, self.max_k)
        self.litt_col = litt_col
        frame = frame_of(split_summary(data)[0])
        if fixed == 1:
            self._litt_total = 0.0
        else:
            litt = self._litt(frame, frequency_col)
            weights = (
                np.asarray(frame.get_column(weights_col).cast(pl.Float64).to_numpy())
                if weights_col is not None and weights_col in frame.columns
                else None
            )
            # fsum is exactly rounded, so the total (and the fit's log-likelihood) does not
            # depend on the row order.
            self._litt_total = math.fsum(litt * weights if weights is not None else litt)
        self._k_candidates = [fixed] if fixed is not None else list(range(1, max_k + 1))
        return super().fit(
            data,
            frequency_col=frequency_col,
            recency_col=recency_col,
            T_col=T_col,
            weights_col=weights_col,
            unit=unit,
            resolution=resolution,
            penalizer=penalizer,
            penalize=penalize,
        )

    def _litt(self, frame: pl.DataFrame, frequency_col: str) -> FloatArray:
        """The checked litt column: finite, and 0 where there is no repeat purchase."""
        name = getattr(self, "litt_col", LITT_COL)
        if name not in frame.columns:
            raise WinbackInputError(
                f"{self.model_name}: column {name!r} (sum of log inter-purchase times) not found; "
                "build the summary with winback.summary(..., litt=True), pass litt_col=, or fix "
                "k=1 (which does not need it)"
            )
        series = frame.get_column(name)
        if not series.dtype.is_numeric():
            raise WinbackInputError(f"{self.model_name}: column {name!r} must be numeric")
        values = np.asarray(series.cast(pl.Float64).fill_null(math.nan).to_numpy())
        bad = ~np.isfinite(values)
        if frequency_col in frame.columns:
            x = np.asarray(frame.get_column(frequency_col).cast(pl.Float64).to_numpy())
            bad |= (x == 0) & (values != 0)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise WinbackInputError(
                f"{self.model_name}: column {name!r} has {int(bad.sum())} invalid value(s), first "
                f"at row {rows}: it must be finite (inter-purchase times > 0) and 0 for customers "
                "without a repeat purchase"
            )
        return values

    def _starts(self, data: Compressed) -> list[list[float]]:
        w = data.weights
        exposure = float(np.dot(w, data["T"]))
        mean_T = exposure / float(w.sum())
        rate = float(np.dot(w, data["frequency"])) / max(exposure, 1e-12)
        # λ is the phase rate: k phases per purchase.
        alpha0 = 1.0 / max(rate * self._k_fit, 1e-6)
        starts = [
            [1.0, alpha0, 1.0, 1.0],
            [0.5, max(mean_T / 8, 1e-3), 0.8, 2.5],
            [2.0, 2 * alpha0, 0.5, 5.0],
        ]
        warm = getattr(self, "_warm", None)
        return [warm, *starts] if warm is not None else starts

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = kernels.cnbd_loglik_grad(
            params,
            self._k_fit,
            self._modified,
            data["frequency"],
            data["recency"],
            data["T"],
            data.weights,
        )
        return float(value) + (self._k_fit - 1) * self._litt_total, grad

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        x_values, group_starts = data.runs("frequency")

        def table(name: str) -> tuple[NDArray[np.uint32], FloatArray]:
            # A pass computes ln(α+·) per distinct value; a sample indexes its population's
            # distinct values, which with continuous times outnumber its own tuples.
            values = data.distinct(name)
            if values.size <= data.n_unique:
                return data.rank(name), values
            return np.arange(data.n_unique, dtype=np.uint32), data[name]

        tables = (*table("recency"), *table("T"), data.weights)
        k = self._k_fit
        constant = (k - 1) * self._litt_total

        def objective(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            value, grad, hess = kernels.cnbd_newton_terms(
                params, k, self._modified, group_starts, x_values, *tables
            )
            return value + constant, grad, hess

        return objective

    def _objective_newton(self, data: Compressed) -> LogLikGradHess | None:
        objective = super()._objective_newton(data)
        if objective is None or len(self._k_candidates) == 1:
            return objective
        plain = objective
        passes = [0]

        def budgeted(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            # In the search a k whose Newton fit has not converged in _SEARCH_PASSES passes is
            # a wrong k whose likelihood runs to a boundary (say a → 0 for k = 1 on regular
            # data): it is skipped rather than chased for hundreds of passes and a fallback.
            passes[0] += 1
            if passes[0] > _SEARCH_PASSES:
                raise WinbackFitError(
                    f"{self.model_name}: no interior optimum for k = {self._k_fit} within "
                    f"{_SEARCH_PASSES} Newton passes"
                )
            return plain(params)

        return budgeted

    def _newton_fit(
        self, newton: LogLikGradHess, data: Compressed, starts: list[list[float]]
    ) -> FitResult | None:
        result = super()._newton_fit(newton, data, starts)
        if result is None and len(self._k_candidates) > 1:
            raise WinbackFitError(f"{self.model_name}: no interior optimum for k = {self._k_fit}")
        return result

    def _fit_compressed(self, data: Compressed) -> Self:
        best: dict[str, Any] | None = None
        tried: dict[int, float] = {}
        failure: WinbackFitError | None = None
        self._warm = None
        for k in self._k_candidates:
            self._k_fit = k
            try:
                super()._fit_compressed(data)
            except WinbackFitError as exc:
                # A wrong k can be degenerate (say k = 1 on very regular data, where a → 0):
                # it is left out of the comparison and the search goes on.
                failure = exc
                tried[k] = -math.inf
                continue
            tried[k] = self.log_likelihood_
            if best is not None and self.log_likelihood_ < best["log_likelihood_"]:
                break
            best = {name: value for name, value in vars(self).items() if name.endswith("_")}
            best["k_"] = k
            best["_last_params"] = self._last_params
            r, alpha, a, b = self._last_params
            # The next k's phase rate is about k/(k−1) times this one's: scale α to match.
            self._warm = [r, alpha * k / (k + 1), a, b]
        self._warm = None
        if best is None:
            assert failure is not None
            raise failure
        for name, value in best.items():
            setattr(self, name, value)
        self.k_log_likelihoods_ = tried
        return self

    # -- persistence ----------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        settings = super()._settings()
        settings["litt_col"] = getattr(self, "litt_col", LITT_COL)
        settings["k"] = str(getattr(self, "k_", 1))
        return settings

    def _restore_settings(self, settings: Any) -> None:
        super()._restore_settings(settings)
        self.litt_col = settings.get("litt_col", LITT_COL)
        text = settings.get("k", "1")
        if not text.isdigit() or int(text) < 1:
            raise WinbackConfigError(f"field 'settings.k' must be a whole number ≥ 1, got {text!r}")
        self.k_ = int(text)
        self.k = self.k_
        self.k_log_likelihoods_ = {}

    @classmethod
    def from_params(  # type: ignore[override]
        cls,
        params: Mapping[str, float] | None = None,
        /,
        *,
        k: int = 1,
        unit: str | None = None,
        resolution: str | timedelta | None = None,
        **named: float,
    ) -> Self:
        """:meth:`BaseModel.from_params` with the Erlang order ``k`` (whole ≥ 1, default 1)."""
        fixed, _ = _check_k(k, 1)
        model = super().from_params(params, unit=unit, resolution=resolution, **named)
        assert fixed is not None
        model.k = model.k_ = fixed
        model.k_log_likelihoods_ = {}
        return model

    # -- predictions ----------------------------------------------------------------------------
    def _loglik_each(self, data: Any | None) -> FloatArray:
        x, t_x, T = self._rft(data)
        values = kernels.cnbd_loglik_each(self._param_array(), self.k_, self._modified, x, t_x, T)
        if self.k_ > 1:
            frame = self._prediction_frame(data)
            values = values + (self.k_ - 1) * self._litt(frame, self.frequency_col)
        return values

    def probability_alive_at(self, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
        """P(alive at T | x, t_x, T) on checked float64 arrays."""
        log_alive = kernels.cnbd_log_alive(self._param_array(), self.k_, self._modified, x, t_x, T)
        return np.exp(log_alive)

    def expected_purchases_at(
        self,
        t: float,
        x: FloatArray,
        t_x: FloatArray,
        T: FloatArray,
        alive: FloatArray | None = None,
    ) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] on checked float64 arrays."""
        if alive is None:
            alive = self.probability_alive_at(x, t_x, T)
        given_alive = kernels.cnbd_conditional_expected(
            self._param_array(), self.k_, self._modified, t, x, t_x, T
        )
        value: FloatArray = alive * given_alive
        return value

    def probability_alive(self, data: Any | None = None, *, future_t: float = 0.0) -> pl.Series:
        """P(alive at T | x, t_x, T) per customer of ``data`` (default: the fitted summary);
        with ``future_t`` = t > 0, P(alive at T + t | x, t_x, T): dropout happens only at
        purchases, so times E[(1−p)^M] over the purchase clocks M completed in (T, T + t]
        (docs/methods.md#cnbd-k)."""
        future_t = check_horizon(future_t)
        x, t_x, T = self._rft(data)
        alive = self.probability_alive_at(x, t_x, T)
        if future_t > 0:
            alive = alive * kernels.cnbd_conditional_expected(
                self._param_array(), self.k_, self._modified, future_t, x, t_x, T, survival=True
            )
        return self._series("probability_alive", alive)

    def expected_purchases(self, t: float, data: Any | None = None) -> pl.Series:
        """E[purchases in (T, T + t] | x, t_x, T] per customer (t in the summary's time unit):
        P(alive) times the expectation given alive, which accounts for the phases of the
        Erlang clock already run since the last purchase (docs/methods.md#cnbd-k)."""
        t = check_horizon(t)
        x, t_x, T = self._rft(data)
        return self._series("expected_purchases", self.expected_purchases_at(t, x, t_x, T))

    def expected_purchases_new_customer(self, t: float | FloatArray) -> float | pl.Series:
        """E[X(t)] for a customer just acquired (first purchase at 0)."""
        horizons = np.asarray(t, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(horizons) & (horizons >= 0)):
            raise WinbackConfigError(f"t must be finite durations ≥ 0, got {t!r}")
        zero = np.zeros(1)
        values = np.array(
            [self.expected_purchases_at(float(h), zero, zero, zero)[0] for h in horizons]
        ).reshape(np.shape(t))
        return by_horizon("expected_purchases_new_customer", t, values)

    def dert(self, discount_rate: float, data: Any | None = None) -> pl.Series:
        """Discounted expected residual transactions per customer (docs/methods.md#dert):
        E[∫_T^∞ e^{−δ(t−T)} dX(t) | x, t_x, T] with ``discount_rate`` δ a continuous rate per
        unit of the summary's time (> 0); P(alive) times the value given alive, which accounts
        for the phases of the Erlang clock already run since the last purchase."""
        delta = check_discount_rate(discount_rate)
        x, t_x, T = self._rft(data)
        alive = self.probability_alive_at(x, t_x, T)
        given_alive = cnbd_dert_given_alive(
            self._param_array(), self.k_, self._modified, delta, x, t_x, T
        )
        return self._series("dert", alive * given_alive)

    def probability_of_n_purchases(self, t: float, n: int, data: Any | None = None) -> pl.Series:
        """Not available for the CNBD-k models yet."""
        del t, n, data
        raise WinbackConfigError(
            f"{self.model_name}: probability_of_n_purchases is not available for the CNBD-k "
            "models; use BetaGeoModel/ModifiedBetaGeoModel (k = 1) for it"
        )

    def __repr__(self) -> str:
        text = super().__repr__()
        return text if not self.is_fitted else text.replace("(", f"(k={self.k_}, ", 1)


class BetaGeoCNBDModel(_CNBDFamily):
    """BG/CNBD-k: ``params_`` ``r, alpha`` (phase rate λ ~ Gamma(r, rate α); a purchase every
    k phases) and ``a, b`` (dropout probability after each repeat purchase p ~ Beta(a, b));
    ``k_`` the Erlang order, fixed (``k=3``) or chosen by likelihood (``k="auto"``, default);
    docs/methods.md#cnbd-k.

    Examples
    --------
    >>> from winback.models import BetaGeoCNBDModel, simulate
    >>> data = simulate.bgcnbd(2000, k=3, r=4.0, alpha=6.0, a=0.5, b=3.0, T=52.0, seed=1)
    >>> BetaGeoCNBDModel().fit(data).k_
    3
    """

    model_name: ClassVar[str] = "BG/CNBD-k"
    _modified: ClassVar[bool] = False


class ModifiedBetaGeoCNBDModel(_CNBDFamily):
    """MBG/CNBD-k: like :class:`BetaGeoCNBDModel`, but a customer may also drop out right after
    the first purchase (MBG/NBD's assumption); docs/methods.md#cnbd-k."""

    model_name: ClassVar[str] = "MBG/CNBD-k"
    _modified: ClassVar[bool] = True
