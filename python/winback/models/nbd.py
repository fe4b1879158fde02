"""NBD (Poisson–Gamma) purchase frequency per period, docs/methods.md#nbd (seed assumptions 3–4).

x_k | λ ~ Poisson(λ) in each period, λ ~ Gamma(shape r, rate α) across customers, shared by a
customer's periods; the seed calls (r, α) "a, b". Fitted on each customer's total occasions X over
their T observed periods (``winback.summary``'s ``period_frequency`` and ``n_periods``); the same
model in continuous time is fitted by passing ``frequency_col="frequency", periods_col="T"``.
Posterior λ ~ Gamma(r' = r + X, rate α' = α + T); over the next t periods X' ~ NegBin(r',
π = α'/(α' + t)).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special

from winback._kernels import likelihood as lik
from winback._options import TimeUnit
from winback.errors import WinbackFitError, WinbackInputError
from winback.models._base import (
    BaseModel,
    Compressed,
    by_horizon,
    check_columns,
    check_count,
    check_horizon,
    compress,
    finite_output,
    frame_of,
)

__all__ = ["NBDModel"]

FloatArray = NDArray[np.float64]


class NBDModel(BaseModel):
    """NBD: ``params_`` has ``r`` (shape) and ``alpha`` (rate) of the purchase-rate distribution."""

    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha")
    model_name: ClassVar[str] = "NBD"

    frequency_col: str = "period_frequency"
    periods_col: str = "n_periods"

    def _arrays(self, data: Any) -> tuple[FloatArray, FloatArray]:
        checked = check_columns(
            frame_of(data),
            {"X": self.frequency_col, "T": self.periods_col},
            model=self.model_name,
            integer=("X",),
        )
        return (
            np.ascontiguousarray(checked["X"].to_numpy(), dtype=np.float64),
            np.ascontiguousarray(checked["T"].to_numpy(), dtype=np.float64),
        )

    def fit(
        self,
        data: Any,
        /,
        *,
        frequency_col: str = "period_frequency",
        periods_col: str = "n_periods",
        weights_col: str | None = None,
        unit: TimeUnit | None = None,
        resolution: str | timedelta | None = None,
    ) -> Self:
        """Fits r, α by maximum likelihood on the unique (X, T) pairs (docs/methods.md#nbd).
        Customers with T = 0 observed periods carry no information and are skipped.
        ``unit`` (of T when fitted in continuous time) and ``resolution`` are saved with the model
        (docs/methods.md#fitting)."""
        self.frequency_col, self.periods_col = frequency_col, periods_col
        frame = frame_of(self._units_of_fit(data, unit, resolution))
        X, T = self._arrays(frame)
        stray = (T == 0) & (X > 0)
        if stray.any():
            raise WinbackInputError(
                f"{self.model_name}: {int(stray.sum())} customer(s) have purchases in "
                f"{frequency_col!r} but 0 periods in {periods_col!r}"
            )
        keep = T > 0
        if not keep.any():
            raise WinbackFitError(
                f"{self.model_name}: no customer has an observed period after their first "
                "purchase; "
                "use a later as_of or a shorter period"
            )
        if float(X[keep].max()) == 0.0:
            raise WinbackFitError(
                f"{self.model_name}: nobody purchased in the observed periods (every X is 0), "
                "so the "
                "purchase rate's distribution is not identified"
            )
        weights = None
        if weights_col is not None:
            weights = frame.get_column(weights_col).filter(pl.Series(keep))
        self._fit_compressed(compress(pl.DataFrame({"X": X[keep], "T": T[keep]}), weights))
        self._fit_frame = frame
        return self

    def _starts(self, data: Compressed) -> list[list[float]]:
        w, X, T = data.weights, data["X"], data["T"]
        rate = float((w * X).sum() / (w * T).sum())
        per = X / T
        mean = float((w * per).sum() / w.sum())
        var = float((w * (per - mean) ** 2).sum() / w.sum())
        # Moments of λ: mean r/α, variance r/α²; the Poisson noise inflates var, so clamp.
        alpha0 = mean / var if var > mean * 1e-3 else 1.0 / max(rate, 1e-9)
        r0 = max(mean * alpha0, 1e-3)
        return [[r0, alpha0], [1.0, 1.0 / max(rate, 1e-9)], [0.1, 0.1 / max(rate, 1e-9)]]

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = lik.nbd_loglik_grad(params, data["X"], data["T"], data.weights)
        return float(value), np.asarray(grad)

    def _loglik_each(self, data: Any | None) -> FloatArray:
        """Per customer, without the constant Σ ln x_k! (as the fit); 0 for T = 0."""
        X, T = self._arrays(self._prediction_frame(data))
        return np.asarray(lik.nbd_loglik_each(self._param_array(), X, T))

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        w = data.weights
        return {
            "n_customers": float(w.sum()),
            "n_unique": float(data.n_unique),
            "mean_frequency": float((w * data["X"]).sum() / w.sum()),
            "mean_periods": float((w * data["T"]).sum() / w.sum()),
            "max_frequency": float(data["X"].max()),
            "max_rate": float((data["X"] / data["T"]).max()),
        }

    def _settings(self) -> dict[str, Any]:
        return {"frequency_col": self.frequency_col, "periods_col": self.periods_col}

    def _restore_settings(self, settings: Any) -> None:
        self.frequency_col = settings.get("frequency_col", "period_frequency")
        self.periods_col = settings.get("periods_col", "n_periods")

    # -- predictions ----------------------------------------------------------------------------
    def _posterior(self, data: Any | None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(X, T, r', α') per customer of ``data`` (default: the fitted frame)."""
        X, T = self._arrays(self._prediction_frame(data))
        r, alpha = self._param_array()
        return X, T, r + X, alpha + T

    def expected_purchases(self, t: float = 1.0, data: Any | None = None) -> pl.Series:
        """E[X' over the next t periods] = t (r + X)/(α + T) per customer."""
        t = check_horizon(t)
        _, _, r_post, alpha_post = self._posterior(data)
        return finite_output(self.model_name, "expected_purchases", t * r_post / alpha_post)

    def predictive_pmf(self, j: int, t: float = 1.0, data: Any | None = None) -> pl.Series:
        """P(X' = j) over the next t periods: Γ(r'+j)/(Γ(r') j!) π^{r'} (1−π)^j, π = α'/(α'+t)."""
        j = check_count(j)
        t = check_horizon(t)
        _, _, r_post, alpha_post = self._posterior(data)
        if t == 0:
            return finite_output(
                self.model_name, "predictive_pmf", np.full(r_post.shape, 1.0 if j == 0 else 0.0)
            )
        log_pi = np.log(alpha_post) - np.log(alpha_post + t)
        log_one_minus = math.log(t) - np.log(alpha_post + t)
        value = np.exp(
            special.gammaln(r_post + j)
            - special.gammaln(r_post)
            - special.gammaln(j + 1.0)
            + r_post * log_pi
            + j * log_one_minus
        )
        return finite_output(self.model_name, "predictive_pmf", value)

    def probability_of_n_purchases(self, t: float, n: int, data: Any | None = None) -> pl.Series:
        """P(exactly n purchases in the next t periods); the same as :meth:`predictive_pmf`."""
        return self.predictive_pmf(n, t, data).alias("probability_of_n_purchases")

    def predictive_cdf(self, j: int, t: float = 1.0, data: Any | None = None) -> pl.Series:
        """P(X' ≤ j) = I_π(r', j + 1)."""
        j = check_count(j)
        t = check_horizon(t)
        _, _, r_post, alpha_post = self._posterior(data)
        return finite_output(
            self.model_name,
            "predictive_cdf",
            special.betainc(r_post, j + 1.0, alpha_post / (alpha_post + t)),
        )

    def expected_purchases_new_customer(self, t: float | FloatArray) -> float | pl.Series:
        """E[X(t)] = r t / α for a customer with no history."""
        r, alpha = self._param_array()
        values = r * np.asarray(t, dtype=np.float64) / alpha
        return by_horizon("expected_purchases_new_customer", t, values)

    def frequency_upside(
        self,
        data: Any | None = None,
        *,
        current: str | FloatArray | None = None,
        cap: float | None = None,
    ) -> pl.Series:
        """The seed's "transfer expectation" for frequency (docs/methods.md#upside): E[X' | x_i ≤ X'
        ≤ x_max] over the next period, "if this customer does not decline".

        x_i is the customer's current per-period count — ``current`` (a column name or array;
        default ⌈X/T⌉, the observed mean rounded up) — and x_max is ``cap`` (default: the
        largest per-period mean in the fitted data, rounded up; ``math.inf`` for no cap). Uses
        j·NB(j; r', π) = r'(1−π)/π · NB(j−1; r'+1, π), so both sums are incomplete-beta
        differences. Returns x_i when the interval has no mass.
        """
        X, T, r_post, alpha_post = self._posterior(data)
        if current is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                lo = np.where(T > 0, np.ceil(X / np.where(T > 0, T, 1.0)), 0.0)
        elif isinstance(current, str):
            lo = self._prediction_frame(data).get_column(current).cast(pl.Float64).to_numpy()
        else:
            lo = np.asarray(current, dtype=np.float64)
        lo = np.floor(np.maximum(lo, 0.0))
        hi_value = math.ceil(self.data_summary_.get("max_rate", math.inf)) if cap is None else cap
        hi = np.maximum(lo, np.floor(hi_value) if math.isfinite(hi_value) else math.inf)
        pi = alpha_post / (alpha_post + 1.0)

        def upper_tail(shape: FloatArray, k: FloatArray) -> FloatArray:
            """P(NB(shape, π) ≥ k) = I_{1−π}(k, shape); 1 for k ≤ 0."""
            safe_k = np.maximum(k, 1.0)
            return np.where(k <= 0, 1.0, special.betainc(safe_k, shape, 1.0 - pi))

        def mass(shape: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
            """P(a ≤ NB ≤ b)."""
            beyond = np.where(
                np.isinf(b), 0.0, upper_tail(shape, np.where(np.isinf(b), 0.0, b + 1.0))
            )
            return upper_tail(shape, a) - beyond

        probability = mass(r_post, lo, hi)
        partial = r_post * (1.0 - pi) / pi * mass(r_post + 1.0, lo - 1.0, hi - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = partial / probability
        ok = (probability > 1e-300) & np.isfinite(value)
        return finite_output(
            self.model_name, "frequency_upside", np.where(ok, np.clip(value, lo, hi), lo)
        )
