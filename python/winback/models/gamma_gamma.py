"""Gamma–Gamma spend model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005),
docs/methods.md#gamma-gamma.

An occasion's amount z | ν ~ Gamma(shape p, rate ν); ν ~ Gamma(shape q, rate γ) across customers.
The seed calls (p, q, γ) "p, q, k"; ``params_["gamma"]`` is γ. Posterior ν ~ Gamma(Q = q + p x,
rate G = γ + x z̄), so E[M | z̄, x] = p G / (Q − 1). Customers with an extreme number of occasions
are set aside from the fit and still predicted (docs/methods.md#spend-outliers).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, special

from winback._kernels import likelihood as lik
from winback._kernels import newton as kernels
from winback._options import TimeUnit
from winback.errors import (
    SpendOutlierWarning,
    WinbackConfigError,
    WinbackFitError,
    WinbackInputError,
)
from winback.models._base import (
    BaseModel,
    Compressed,
    check_columns,
    compress,
    finite_output,
    frame_of,
)
from winback.models._fitting import LogLikGradHess

__all__ = [
    "EXTREME_FREQUENCY_FACTOR",
    "EXTREME_FREQUENCY_MIN",
    "GammaGammaModel",
    "SpendOutlierWarning",
    "extreme_frequency_cap",
]

FloatArray = NDArray[np.float64]

#: Spend outliers (docs/methods.md#spend-outliers): a customer with more positive-amount occasions
#: than max(EXTREME_FREQUENCY_MIN, EXTREME_FREQUENCY_FACTOR × the 99th percentile of x) is set
#: aside from the fit (and still predicted from the fitted parameters).
EXTREME_FREQUENCY_FACTOR: float = 10.0
EXTREME_FREQUENCY_MIN: float = 100.0


#: Largest whole x for which :func:`extreme_frequency_cap` counts weight per value (a bincount
#: of this length is cheap); larger x fall back to sorting.
_BINCOUNT_MAX = 1 << 24


def extreme_frequency_cap(x: FloatArray, weights: FloatArray | None = None) -> float:
    """The spend-outlier cap on x (docs/methods.md#spend-outliers): max(EXTREME_FREQUENCY_MIN,
    EXTREME_FREQUENCY_FACTOR × the 99th percentile of x). The percentile is the inverted CDF
    (the smallest x whose cumulative weight share reaches 0.99), so weighted, compressed data
    give the cap of the rows they stand for.

    >>> extreme_frequency_cap(np.array([1.0, 2.0, 3.0, 100_000.0]))
    1000000.0
    >>> extreme_frequency_cap(np.arange(1.0, 1001.0))
    9900.0
    >>> extreme_frequency_cap(np.array([1.0] * 200 + [100_000.0]))
    100.0
    """
    if x.size == 0:
        return EXTREME_FREQUENCY_MIN
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    top = float(x.max())
    if float(x.min()) >= 0.0 and top < _BINCOUNT_MAX:
        whole = x.astype(np.int64)
        if np.array_equal(whole, x) and (w is None or np.array_equal(w, np.floor(w))):
            # Whole counts with whole weights: the same inverted CDF from the weight per value
            # (the partial sums are exact integers either way), without sorting every row.
            per_value = np.bincount(whole, weights=w)
            total = float(x.size) if w is None else float(w.sum())
            share_by_value = np.cumsum(per_value) / total
            value = min(int(np.searchsorted(share_by_value, 0.99, side="left")), int(top))
            return max(EXTREME_FREQUENCY_MIN, EXTREME_FREQUENCY_FACTOR * float(value))
    w = np.ones_like(x) if w is None else w
    order = np.argsort(x, kind="stable")
    share = np.cumsum(w[order]) / float(w.sum())
    at = min(int(np.searchsorted(share, 0.99, side="left")), x.size - 1)
    return max(EXTREME_FREQUENCY_MIN, EXTREME_FREQUENCY_FACTOR * float(x[order][at]))


def _homogeneous_fit(data: Compressed) -> tuple[float, float, float]:
    """MLE of the q → ∞ limit, z̄ ~ Gamma(p x, rate x ν) with one ν: returns (p, ν, log-lik).

    For fixed p the optimal ν is p Σwx / Σwx z̄, leaving a concave 1-D problem in ln p.
    """
    w, x, z = data.weights, data["x"], data["mean_amount"]
    # Σ w ℓ = p Σw x ln x + p ln ν Σw x − Σw lnΓ(p x) + p Σw x ln z̄ − Σw ln z̄ − ν Σw x z̄.
    weighted_x = float((w * x).sum())
    weighted_spend = float((w * x * z).sum())
    x_log_x = float((w * x * np.log(x)).sum())
    x_log_z = float((w * x * np.log(z)).sum())
    log_z = float((w * np.log(z)).sum())
    # lnΓ(p x) depends on x alone: sum it over the distinct x with their total weights.
    x_values = data.distinct("x")
    x_weights = np.bincount(data.rank("x"), weights=w, minlength=x_values.size)

    def loglik(log_p: float) -> float:
        p = math.exp(log_p)
        rate = p * weighted_x / weighted_spend
        return (
            p * (x_log_x + x_log_z)
            + p * math.log(rate) * weighted_x
            - float((x_weights * special.gammaln(p * x_values)).sum())
            - log_z
            - rate * weighted_spend
        )

    best = optimize.minimize_scalar(
        lambda u: -loglik(u), bounds=(-20.0, 20.0), method="bounded", options={"xatol": 1e-10}
    )
    p = math.exp(float(best.x))
    return p, p * weighted_x / weighted_spend, -float(best.fun)


#: Below this lower tail, the upper tail 1 − I is taken as the complement: its absolute error,
#: ≈ 1 ulp of I, is at most 3 ulps of 1 − I ≥ 0.25.
_COMPLEMENT_BELOW = 0.75
#: Swapped lower tails under this are re-evaluated with ``betaincc``: double precision loses
#: relative digits that deep (the result nears the subnormal range).
_DEEP_TAIL = 1e-100


def upper_tail(
    a: FloatArray,
    b: FloatArray,
    u: FloatArray,
    y: FloatArray,
    below: FloatArray,
    negligible: FloatArray | None = None,
) -> FloatArray:
    """1 − I_u(a, b) from ``below`` = I_u(a, b) and ``y`` = 1 − u (computed directly by the
    caller, not by subtraction): the complement while ``below`` ≤ 0.75, else the swapped lower
    tail I_y(b, a) in double precision (scipy's ``betainc``, ≈ 0.6 µs a call, rather than
    ``betaincc``, ≈ 9 µs: Boost evaluates it in long double). The swap alone loses digits
    where y is within a few ulps' conditioning of 1 (u tiny, a small): the complement covers
    those; tails under 1e-100 (and not under ``negligible``, where they cannot change the
    caller's difference) are evaluated with ``betaincc``. Accuracy against mpmath:
    tests/value/test_beta_tails.py."""
    out = 1.0 - below
    swap = below > _COMPLEMENT_BELOW
    if swap.any():
        out[swap] = special.betainc(b[swap], a[swap], y[swap])
        deep = swap & (out < _DEEP_TAIL)
        if negligible is not None:
            deep &= ~(out < negligible)
        if deep.any():
            out[deep] = special.betaincc(a[deep], b[deep], u[deep])
    return out


def _beta_mass(
    a: FloatArray | float,
    b: FloatArray,
    u_lo: FloatArray,
    u_hi: FloatArray,
    y_lo: FloatArray,
    y_hi: FloatArray,
) -> FloatArray:
    """I_{u_hi}(a, b) − I_{u_lo}(a, b) without cancellation (``y_lo`` = 1 − u_lo and ``y_hi`` =
    1 − u_hi, each computed directly by the caller): as a difference of upper tails
    (:func:`upper_tail`) when the interval reaches the distribution's upper half, else as a
    difference of lower tails (the upper tails are then both ≈ 1 and their difference loses
    the leading digits — tested against quadrature). The tail beyond ``u_hi`` is not refined
    where it is under 2⁻⁶⁴ of the tail beyond ``u_lo`` (under half an ulp of the difference)."""
    a_arr = np.broadcast_to(np.asarray(a, dtype=np.float64), u_hi.shape)
    below_hi = special.betainc(a_arr, b, u_hi)
    below_lo = special.betainc(a_arr, b, u_lo)
    out = np.asarray(below_hi - below_lo)
    upper = ~(below_hi < 0.5)
    if upper.any():
        a_u, b_u = a_arr[upper], b[upper]
        above_lo = upper_tail(a_u, b_u, u_lo[upper], y_lo[upper], below_lo[upper])
        above_hi = upper_tail(
            a_u, b_u, u_hi[upper], y_hi[upper], below_hi[upper], above_lo * 2.0**-64
        )
        out[upper] = above_lo - above_hi
    return out


def spend_upside_and_mass(
    p: float, c: float, z: FloatArray, Q: FloatArray, G: FloatArray, upper: float
) -> tuple[FloatArray, FloatArray]:
    """The seed's transfer expectation E[M' | m_i ≤ M' ≤ m_max] (per occasion, over c of them)
    and P(m_i ≤ M' ≤ m_max), docs/methods.md#upside: m_i = z̄, m_max = ``upper``, posterior shape Q
    = q + p x and rate G = γ + x z̄. With u(m) = c m/(G + c m), the mass is I_u(pc, Q) between the
    ends and the first moment p G/(Q − 1) · I_u(pc + 1, Q − 1); the boundary value where the
    interval has no mass."""
    lower = np.maximum(z, 0.0)
    hi = np.maximum(lower, upper)
    with np.errstate(invalid="ignore"):
        u_lo = np.where(np.isinf(lower), 1.0, c * lower / (G + c * lower))
        u_hi = np.where(np.isinf(hi), 1.0, c * hi / (G + c * hi))
        y_lo = np.where(np.isinf(lower), 0.0, G / (G + c * lower))
        y_hi = np.where(np.isinf(hi), 0.0, G / (G + c * hi))
    mass = _beta_mass(p * c, Q, u_lo, u_hi, y_lo, y_hi)
    first = _beta_mass(p * c + 1.0, Q - 1.0, u_lo, u_hi, y_lo, y_hi)
    mean = p * G / (Q - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = mean * first / mass
    ok = (mass > 1e-300) & np.isfinite(value)
    return np.where(ok, np.clip(value, lower, hi), lower), mass


class GammaGammaModel(BaseModel):
    """Gamma–Gamma: ``params_`` has ``p`` (shape of an occasion's amount), ``q`` and ``gamma``
    (shape and rate of the customers' spend-rate distribution); docs/methods.md#gamma-gamma.

    Fitted on customers with at least one positive-amount repeat occasion (``spend_basis="repeat"``,
    the literature's choice): ``monetary_value`` is the mean of those occasions and
    ``spend_frequency`` their count (``winback.summary`` columns; ``frequency`` works too when
    every repeat occasion is positive).
    """

    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    model_name: ClassVar[str] = "Gamma–Gamma"
    multi_start: ClassVar[bool] = True
    _uses_time: ClassVar[bool] = False

    @classmethod
    def _check_params(cls, params: Mapping[str, float], field: Any) -> None:
        if not params["q"] > 1.0:
            raise field.error(
                "params.q",
                f"must be > 1 (the mean spend pγ/(q−1) is infinite otherwise), got {params['q']!r}",
            )

    def __init__(
        self,
        *,
        initial_params: dict[str, float] | None = None,
        n_starts: int = 5,
    ) -> None:
        super().__init__(initial_params=initial_params)
        self.n_starts = n_starts

    frequency_col: str = "spend_frequency"
    monetary_col: str = "monetary_value"

    # -- data -----------------------------------------------------------------------------------
    def _arrays(self, data: Any, *, for_fit: bool) -> tuple[FloatArray, FloatArray]:
        frame = frame_of(data)
        frequency_col = self.frequency_col
        if (
            frequency_col not in frame.columns
            and frequency_col == "spend_frequency"
            and "frequency" in frame.columns
        ):
            frequency_col = "frequency"
        checked = check_columns(
            frame,
            {"x": frequency_col, "mean_amount": self.monetary_col},
            model=self.model_name,
            integer=("x",),
        )
        x = checked["x"].to_numpy()
        mean_amount = checked["mean_amount"].to_numpy()
        if for_fit:
            unusable = (x > 0) & (mean_amount <= 0)
            if unusable.any():
                raise WinbackInputError(
                    f"{self.model_name}: {int(unusable.sum())} customer(s) have repeat occasions "
                    "but "
                    f"a mean amount ≤ 0 in {self.monetary_col!r}; spend models use positive-amount "
                    "occasions only (winback.summary's monetary_value already does)"
                )
        return np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(
            mean_amount, dtype=np.float64
        )

    def fit(
        self,
        data: Any,
        /,
        *,
        frequency_col: str = "spend_frequency",
        monetary_col: str = "monetary_value",
        weights_col: str | None = None,
        unit: TimeUnit | None = None,
        resolution: str | timedelta | None = None,
    ) -> Self:
        """Fits p, q, γ by maximum likelihood from several starts (docs/methods.md#gamma-gamma: one
        start can run along the ridge where q and γ grow together). Customers with x = 0 are
        ignored.

        Raises :class:`~winback.WinbackFitError` when the spend shows no customer-level
        heterogeneity (the maximum lies at q → ∞, γ → ∞ with γ/q fixed: every customer's spend
        rate is the same) or when q ≤ 1 (the mean spend would be infinite).

        Customers with more positive-amount occasions than :func:`extreme_frequency_cap` (10 × the
        99th percentile of x, at least 100) are set aside from the fit with a
        :class:`SpendOutlierWarning` naming them (``set_aside_``: a boolean per row of ``data``;
        ``frequency_cap_``: the cap), and are still predicted from the fitted parameters
        (docs/methods.md#spend-outliers): one such customer's mean amount is a point measurement
        of their spend rate and would otherwise decide the fit for everyone.

        ``resolution`` (what one occasion is, ``winback.summary``'s argument, or taken from a
        ``(frame, info)`` pair) is saved with the model; spend has no time unit, so ``unit`` is
        accepted (for one call that fits every model) but not recorded
        (docs/methods.md#fitting).
        """
        self.frequency_col, self.monetary_col = frequency_col, monetary_col
        frame = frame_of(self._units_of_fit(data, unit, resolution))
        x, mean_amount = self._arrays(frame, for_fit=True)
        keep = x > 0
        if not keep.any():
            raise WinbackFitError(
                f"{self.model_name}: no customer has a positive-amount repeat occasion; "
                "nothing to fit"
            )
        weights = None
        if weights_col is not None:
            weights = frame.get_column(weights_col).filter(pl.Series(keep))
        self._set_aside_outliers(frame, x, keep, weights)
        keep &= ~self.set_aside_
        if weights_col is not None and self.set_aside_.any():
            weights = frame.get_column(weights_col).filter(pl.Series(keep))
        checked = pl.DataFrame({"x": x[keep], "mean_amount": mean_amount[keep]})
        compressed = compress(checked, weights)
        try:
            self._fit_compressed(compressed)
        except WinbackFitError as exc:
            self._raise_if_homogeneous(compressed, interior=None)
            raise exc from None
        self._raise_if_homogeneous(compressed, interior=self.log_likelihood_)
        self._fit_frame = frame
        return self

    def _set_aside_outliers(
        self, frame: pl.DataFrame, x: FloatArray, keep: NDArray[np.bool_], weights: pl.Series | None
    ) -> None:
        """Marks the spend outliers (docs/methods.md#spend-outliers) in ``set_aside_`` and warns
        naming them (by ``customer_id`` when the frame has it, else by row)."""
        w = None if weights is None else weights.cast(pl.Float64).to_numpy()
        self.frequency_cap_ = extreme_frequency_cap(x[keep], w)
        self.set_aside_ = keep & (x > self.frequency_cap_)
        n = int(self.set_aside_.sum())
        if n == 0:
            return
        rows = np.flatnonzero(self.set_aside_)
        if "customer_id" in frame.columns:
            named = "customer_id " + ", ".join(
                str(v) for v in frame.get_column("customer_id").gather(rows[:5]).to_list()
            )
        else:
            named = "rows " + ", ".join(str(int(r)) for r in rows[:5])
        more = " …" if n > 5 else ""
        warnings.warn(
            SpendOutlierWarning(
                f"{self.model_name}: {n} customer(s) with more than {self.frequency_cap_:.0f} "
                f"positive-amount occasions (10 × the 99th percentile, at least "
                f"{EXTREME_FREQUENCY_MIN:.0f}) were set aside from the fit ({named}{more}); "
                "they are predicted from the fitted parameters (docs/methods.md#spend-outliers)"
            ),
            stacklevel=3,
        )

    def _raise_if_homogeneous(self, data: Compressed, interior: float | None) -> None:
        """Raises when the no-heterogeneity limit (q, γ → ∞ with γ/q fixed: one spend rate ν for
        everyone) fits at least as well as any interior point — the maximum is on the boundary."""
        p, rate, boundary = _homogeneous_fit(data)
        if interior is not None and boundary < interior + 1e-9 * max(1.0, abs(interior)):
            return
        for name in ("params_", "params_se_", "covariance_"):
            self.__dict__.pop(name, None)
        raise WinbackFitError(
            f"{self.model_name}: the spend shows no customer-level heterogeneity: the likelihood "
            f"is maximised on the boundary q, γ → ∞ (every customer shares one spend rate; the "
            f"limit model has p = {p:.4g}, mean amount {p / rate:.4g}, log-likelihood "
            f"{boundary:.2f}). Gamma–Gamma adds nothing here; use the population mean amount"
        )

    def _starts(self, data: Compressed) -> list[list[float]]:
        w, x, z = data.weights, data["x"], data["mean_amount"]
        mean = float((w * z).sum() / w.sum())
        # Method-of-moments-flavoured starts, then spread along the q–γ ridge.
        starts = [
            [1.0, 2.0, mean],
            [2.0, 3.0, 2.0 * mean],
            [5.0, 5.0, 4.0 * mean],
            [1.0, 10.0, 9.0 * mean],
        ]
        starts += [[0.5, 1.5, 0.25 * mean], [10.0, 2.0, 0.1 * mean]]
        del x
        return starts[: max(1, self.n_starts)]

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        mean_amount, w = data["mean_amount"], data.weights
        x_values, group_starts = data.runs("x")

        def objective(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            value, grad, hess = kernels.gamma_gamma_newton_terms(
                params, group_starts, x_values, mean_amount, w
            )
            return float(value), grad, hess

        return objective

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        value, grad = lik.gamma_gamma_loglik_grad(
            params, data["x"], data["mean_amount"], data.weights
        )
        return float(value), np.asarray(grad)

    def _loglik_each(self, data: Any | None) -> FloatArray:
        """Per customer; 0 for customers without a positive-amount repeat occasion (x = 0 or
        z̄ ≤ 0), whom the fit leaves out."""
        x, z = self._arrays(self._prediction_frame(data), for_fit=False)
        used = (x > 0) & (z > 0)
        out = np.zeros(x.shape[0])
        if used.any():
            out[used] = lik.gamma_gamma_loglik_each(self._param_array(), x[used], z[used])
        return out

    def _check_fit(self, params: FloatArray, data: Compressed) -> None:
        q = float(params[1])
        if q <= 1.0:
            raise WinbackFitError(
                f"{self.model_name}: fitted q = {q:.4g} ≤ 1, so the population's mean spend is "
                "infinite (E[M] = pγ/(q−1)); the amounts are too heavy-tailed for this model — "
                "cap outliers or model log amounts"
            )

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        w = data.weights
        return {
            "n_customers": float(w.sum()),
            "n_unique": float(data.n_unique),
            "mean_x": float((w * data["x"]).sum() / w.sum()),
            "mean_amount": float((w * data["mean_amount"]).sum() / w.sum()),
            "max_amount": float(data["mean_amount"].max()),
        }

    def _settings(self) -> dict[str, Any]:
        return {"frequency_col": self.frequency_col, "monetary_col": self.monetary_col}

    def _restore_settings(self, settings: Any) -> None:
        self.frequency_col = settings.get("frequency_col", "spend_frequency")
        self.monetary_col = settings.get("monetary_col", "monetary_value")

    # -- predictions ----------------------------------------------------------------------------
    def _posterior(self, data: Any | None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(x, z̄, Q, G) per customer; customers with x = 0 keep the prior (Q = q, G = γ)."""
        x, z = self._arrays(self._prediction_frame(data), for_fit=False)
        return self._posterior_at(x, z)

    def _posterior_at(
        self, x: FloatArray, z: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        p, q, gamma = self._param_array()
        x = np.where(z > 0, x, 0.0)  # no positive spend: nothing learnt about ν
        return x, z, q + p * x, gamma + x * np.where(x > 0, z, 0.0)

    @property
    def population_mean_spend(self) -> float:
        """E[M] for a customer with no spend history: p γ / (q − 1)."""
        p, q, gamma = self._param_array()
        return float(p * gamma / (q - 1.0))

    def expected_spend(self, data: Any | None = None) -> pl.Series:
        """E[M | z̄, x] = p (γ + x z̄) / (p x + q − 1) per customer
        (docs/methods.md#gamma-gamma)."""
        p = self.params_["p"] if self.is_fitted else math.nan
        _, _, Q, G = self._posterior(data)
        return finite_output(self.model_name, "expected_spend", p * G / (Q - 1.0))

    def expected_spend_at(self, x: FloatArray, z: FloatArray) -> FloatArray:
        """E[M | z̄, x] on checked float64 arrays of x (``spend_frequency``) and z̄
        (``monetary_value``): what :meth:`expected_spend` computes, without the frame (the
        in-process scorer's path, docs/methods.md#scorer)."""
        p = self.params_["p"]
        _, _, Q, G = self._posterior_at(x, z)
        spend: FloatArray = p * G / (Q - 1.0)
        return spend

    def expected_spend_interval(
        self, data: Any | None = None, *, level: float = 0.95
    ) -> pl.DataFrame:
        """:meth:`expected_spend` per customer with its standard error and a ``level`` interval
        from the parameters' uncertainty (docs/methods.md#intervals): the delta method with the
        fit's ``covariance_`` of (p, q, γ), the interval on the log scale (it stays positive).
        The uncertainty of the expected mean amount, not the spread of the amounts themselves.
        Columns ``expected`` (in the amounts' currency), ``std_error``, ``lower``, ``upper``."""
        self._check_fitted()
        x, z = self._arrays(self._prediction_frame(data), for_fit=False)
        return self._delta_interval(lambda: self.expected_spend_at(x, z), level, name="expected")

    def spend_cdf(
        self, m: float | FloatArray, c: float = 1.0, data: Any | None = None
    ) -> pl.Series:
        """P(M' ≤ m) for the mean amount over the next ``c`` occasions: I_u(p c, Q),
        u = c m / (G + c m) (docs/methods.md#gamma-gamma)."""
        if not c >= 1:
            raise WinbackConfigError(f"c (occasions in the next period) must be ≥ 1, got {c!r}")
        p = self._param_array()[0]
        _, _, Q, G = self._posterior(data)
        m_arr = np.maximum(np.asarray(m, dtype=np.float64), 0.0)
        with np.errstate(invalid="ignore"):
            u = np.where(np.isinf(m_arr), 1.0, c * m_arr / (G + c * m_arr))
        return finite_output(self.model_name, "spend_cdf", special.betainc(p * c, Q, u))

    def spend_upside(
        self,
        data: Any | None = None,
        *,
        c: float = 1.0,
        cap: float | Literal["population_max"] | None = "population_max",
    ) -> pl.Series:
        """The seed's "transfer expectation" (docs/methods.md#upside): E[M' | m_i ≤ M' ≤ m_max],
        what the customer spends per occasion if they do not decline. m_i = the customer's own mean
        amount; m_max = the fitted data's largest mean amount (``cap="population_max"``), a
        number, or ∞ (``None``). Returns the boundary value when the interval has no mass."""
        p = self._param_array()[0]
        _, z, Q, G = self._posterior(data)
        if cap == "population_max":
            upper = self.data_summary_.get("max_amount", math.inf)
        elif cap is None:
            upper = math.inf
        else:
            upper = float(cap)
        value, _ = spend_upside_and_mass(p, c, z, Q, G, upper)
        return finite_output(self.model_name, "spend_upside", value)
