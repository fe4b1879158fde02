"""The discrete-time BG/BB model (Fader, Hardie & Shang 2010), docs/methods.md#bg-bb.

For transaction opportunities that come in periods (yearly donations, monthly subscriptions,
events): while alive a customer transacts at each opportunity with probability p ~ Beta(α, β),
and at the start of each opportunity an alive customer drops out for good with probability
θ ~ Beta(γ, δ). A customer is described by the pattern (x, t_x, n): x transactions in the n
opportunities after the first one, the last at opportunity t_x (0 when x = 0).

Given alive at opportunity n the posterior is p ~ Beta(α+x, β+n−x), θ ~ Beta(γ, δ+n), independent,
so every conditional quantity is P(alive at n) × E[p | ·] × a sum over the survival of the
opportunities ahead (``winback._kernels.bgbb``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._kernels import bgbb as kernels
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.models._base import (
    BaseModel,
    Compressed,
    by_horizon,
    check_columns,
    check_count,
    check_penalizer,
    finite_output,
    frame_of,
)
from winback.models._fitting import LogLikGradHess

__all__ = ["MIN_DISCOUNT_RATE", "BetaGeoBetaBinomModel"]

FloatArray = NDArray[np.float64]
#: The smallest per-period discount rate DERT accepts: its series needs about 40/d terms.
MIN_DISCOUNT_RATE = 1e-6


class BetaGeoBetaBinomModel(BaseModel):
    """BG/BB: ``params_`` has ``alpha, beta`` (transaction probability p ~ Beta(α, β)) and
    ``gamma, delta`` (dropout probability θ ~ Beta(γ, δ)); docs/methods.md#bg-bb.

    Fitted on a pattern table with one row per customer, or per distinct pattern with a count
    (``weights_col``): ``frequency`` (x), ``recency`` (t_x) and ``n`` (opportunities), as
    :func:`winback.summary.bgbb_summary` returns.

    Examples
    --------
    >>> import polars as pl
    >>> from winback.models import BetaGeoBetaBinomModel, simulate
    >>> data = simulate.bgbb(5000, alpha=1.2, beta=0.75, gamma=0.66, delta=2.8, n_periods=6)
    >>> model = BetaGeoBetaBinomModel().fit(data)
    >>> model.n_customers_
    5000
    >>> m = BetaGeoBetaBinomModel.from_params(alpha=1.204, beta=0.750, gamma=0.657, delta=2.783)
    >>> one = pl.DataFrame({"frequency": [6], "recency": [6], "n": [6]})
    >>> round(m.probability_alive(one, periods_ahead=1)[0], 2)
    0.93
    """

    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    model_name: ClassVar[str] = "BG/BB"
    _uses_time: ClassVar[bool] = False

    frequency_col: str = "frequency"
    recency_col: str = "recency"
    n_col: str = "n"

    # -- data -----------------------------------------------------------------------------------
    def _checked(self, data: Any) -> pl.DataFrame:
        """(x, t_x, n) as whole numbers with 0 ≤ x ≤ t_x ≤ n and t_x = 0 exactly when x = 0."""
        frame = frame_of(data)
        names = {"x": self.frequency_col, "t_x": self.recency_col, "n": self.n_col}
        fast = _valid_patterns(frame, names)
        if fast is not None:
            return fast
        # Something is wrong: the column-by-column checks find it and say where.
        checked = check_columns(frame, names, model=self.model_name, integer=("x", "t_x", "n"))
        x, t_x, n = checked["x"], checked["t_x"], checked["n"]
        problems = (
            (t_x > n, f"{self.recency_col!r} (t_x) exceeds {self.n_col!r} (n)"),
            (x > t_x, f"{self.frequency_col!r} (x) exceeds {self.recency_col!r} (t_x)"),
            ((x == 0) & (t_x > 0), f"{self.frequency_col!r} is 0 but {self.recency_col!r} > 0"),
        )
        for mask, what in problems:
            if mask.any():
                rows = mask.arg_true().head(5).to_list()
                raise WinbackInputError(
                    f"{self.model_name}: {what} in {int(mask.sum())} row(s), first at index "
                    f"{rows}; a pattern has x transactions among opportunities 1…n, the last "
                    "at t_x (x ≤ t_x ≤ n, t_x = 0 when x = 0)"
                )
        return checked  # pragma: no cover - the fast path accepts every valid table

    def _arrays(self, data: Any | None) -> tuple[FloatArray, FloatArray, FloatArray]:
        checked = self._checked(self._prediction_frame(data))
        return tuple(  # type: ignore[return-value]
            np.ascontiguousarray(checked[c].to_numpy(), dtype=np.float64) for c in ("x", "t_x", "n")
        )

    def fit(
        self,
        data: Any,
        /,
        *,
        frequency_col: str = "frequency",
        recency_col: str = "recency",
        n_col: str = "n",
        weights_col: str | None = None,
        penalizer: float = 0.0,
        penalize: Literal["natural", "log"] = "natural",
    ) -> Self:
        """Fits α, β, γ, δ by maximum likelihood over the distinct (x, t_x, n) patterns
        (docs/methods.md#bg-bb); ``weights_col`` names a column of customer counts when ``data``
        is a pattern table. Raises :class:`~winback.WinbackFitError` when the fit fails, with
        the reason (no opportunities, nobody transacted, a maximum on the boundary).
        ``penalizer``/``penalize``: the L2 penalty of docs/methods.md#penalizer (lifetimes'
        ``penalizer_coef``); 0 (default) is plain maximum likelihood."""
        self.penalizer_ = check_penalizer(penalizer, penalize)
        self.penalize_ = penalize
        self.frequency_col, self.recency_col, self.n_col = frequency_col, recency_col, n_col
        frame = frame_of(data)
        checked = self._checked(frame)
        if weights_col is None:
            weights = np.ones(checked.height)
        else:
            weights = _weights(frame, weights_col, self.model_name)
        if checked.height == 0 or not float(weights.sum()) > 0:
            raise WinbackFitError(f"{self.model_name}: no customers to fit on")
        has_weight = weights > 0
        columns = {c: checked[c].to_numpy() for c in ("x", "t_x", "n")}
        if not (columns["n"][has_weight] > 0).any():
            raise WinbackFitError(
                f"{self.model_name}: no customer has a transaction opportunity after their first "
                "(every n is 0), so there is nothing to fit; use more periods"
            )
        if not (columns["x"][has_weight] > 0).any():
            raise WinbackFitError(
                f"{self.model_name}: nobody transacted at any opportunity (every frequency is 0), "
                "so the transaction and dropout probabilities cannot be told apart"
            )
        self._fit_compressed(_patterns(columns, weights))
        self._fit_frame = frame
        return self

    def _starts(self, data: Compressed) -> list[list[float]]:
        return [[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 2.0], [2.0, 1.0, 1.0, 5.0]]

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        return kernels.bgbb_loglik_grad(params, data["x"], data["t_x"], data["n"], data.weights)

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        columns = (data["x"], data["t_x"], data["n"], data.weights)

        def objective(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            return kernels.bgbb_newton_terms(params, *columns)

        return objective

    def _loglik_each(self, data: Any | None) -> FloatArray:
        x, t_x, n = self._arrays(data)
        return kernels.bgbb_loglik_each(self._param_array(), x, t_x, n)

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        w = data.weights
        total = float(w.sum())
        return {
            "n_customers": total,
            "n_unique": float(data.n_unique),
            "mean_frequency": float(np.dot(w, data["x"]) / total),
            "mean_recency": float(np.dot(w, data["t_x"]) / total),
            "mean_n": float(np.dot(w, data["n"]) / total),
            "max_n": float(data["n"].max()),
        }

    def _settings(self) -> dict[str, Any]:
        return {
            "frequency_col": self.frequency_col,
            "recency_col": self.recency_col,
            "n_col": self.n_col,
        }

    def _restore_settings(self, settings: Any) -> None:
        self.frequency_col = settings.get("frequency_col", "frequency")
        self.recency_col = settings.get("recency_col", "recency")
        self.n_col = settings.get("n_col", "n")

    # -- predictions ----------------------------------------------------------------------------
    def _alive(self, x: FloatArray, t_x: FloatArray, n: FloatArray, ahead: int = 0) -> FloatArray:
        log_alive = kernels.bgbb_log_alive(self._param_array(), x, t_x, n, float(ahead))
        return np.exp(log_alive)

    def probability_alive(self, data: Any | None = None, *, periods_ahead: int = 0) -> pl.Series:
        """P(alive at opportunity n + ``periods_ahead`` | x, t_x, n) per customer: 0 (default)
        is the end of the calibration, 1 the paper's "P(alive in the next period)" (Fader,
        Hardie & Shang 2010, eq. 11), which also survives the next opportunity's dropout."""
        ahead = check_count(periods_ahead)
        x, t_x, n = self._arrays(data)
        return finite_output(self.model_name, "probability_alive", self._alive(x, t_x, n, ahead))

    def expected_purchases(self, n_future: int, data: Any | None = None) -> pl.Series:
        """E[transactions in opportunities n+1 … n+n_future | x, t_x, n] per customer (their
        eq. 13): P(alive at n) · (α+x)/(α+β+n) · Σ_{t=1}^{n_future} B(γ, δ+n+t)/B(γ, δ+n)."""
        horizon = _opportunities(n_future, "n_future")
        x, t_x, n = self._arrays(data)
        alpha, beta, gamma, delta = self._param_array()
        survival = _by_n(n, lambda d: kernels.bgbb_expected_sum(gamma, d, horizon), delta)
        value = self._alive(x, t_x, n) * (alpha + x) / (alpha + beta + n) * survival
        return finite_output(self.model_name, "expected_purchases", value)

    def conditional_expected_purchases(self, n_future: int, data: Any | None = None) -> pl.Series:
        """The name lifetimes uses for :meth:`expected_purchases`."""
        return self.expected_purchases(n_future, data)

    def dert(self, discount_rate: float, data: Any | None = None) -> pl.Series:
        """Discounted expected residual transactions per customer (their eq. 14): the expected
        transactions at opportunities n+1, n+2, … each discounted by (1+d)^−(t−n), ``d`` the
        discount rate per period (> 0; at least :data:`MIN_DISCOUNT_RATE`)."""
        d = float(discount_rate)
        if not (math.isfinite(d) and d >= MIN_DISCOUNT_RATE):
            raise WinbackConfigError(
                f"discount_rate must be a finite rate per period ≥ {MIN_DISCOUNT_RATE:g}, got "
                f"{discount_rate!r} (without discounting the residual count is infinite for "
                "γ ≤ 1)"
            )
        x, t_x, n = self._arrays(data)
        alpha, beta, gamma, delta = self._param_array()
        survival = _by_n(n, lambda dd: kernels.bgbb_discounted_sum(gamma, dd, d), delta)
        value = self._alive(x, t_x, n) * (alpha + x) / (alpha + beta + n) * survival
        return finite_output(self.model_name, "dert", value)

    def expected_purchases_new_customer(self, n: int | FloatArray) -> float | pl.Series:
        """E[X(n)]: expected transactions in the first n opportunities after the first (their
        eq. 7), α/(α+β) · Σ_{t=1}^{n} B(γ, δ+t)/B(γ, δ); ``n`` a count or an array of counts."""
        counts = np.asarray(n, dtype=np.float64)
        flat = counts.reshape(-1)
        for value in flat:
            _opportunities(value, "n")
        alpha, beta, gamma, delta = self._param_array()
        values = np.array(
            [alpha / (alpha + beta) * kernels.bgbb_expected_sum(gamma, [delta], v)[0] for v in flat]
        ).reshape(counts.shape)
        return by_horizon("expected_purchases_new_customer", n, values)

    def frequency_distribution_new_customer(self, n: int) -> pl.DataFrame:
        """P(X(n) = x) for x = 0 … n: the distribution of transactions in the first n
        opportunities after the first (their eq. 8), as ``frequency`` and ``probability``:
        C(n,x) B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
        + Σ_{i=x}^{n−1} C(i,x) B(α+x, β+i−x)/B(α,β) · B(γ+1, δ+i)/B(γ,δ)."""
        from scipy import special

        count = int(_opportunities(n, "n"))
        alpha, beta, gamma, delta = self._param_array()
        x = np.arange(count + 1, dtype=np.float64)

        def log_choose(top: Any, k: Any) -> Any:
            return special.gammaln(top + 1) - special.gammaln(k + 1) - special.gammaln(top - k + 1)

        base_ab, base_gd = special.betaln(alpha, beta), special.betaln(gamma, delta)
        alive = np.exp(
            log_choose(count, x)
            + special.betaln(alpha + x, beta + count - x)
            - base_ab
            + special.betaln(gamma, delta + count)
            - base_gd
        )
        died = np.zeros(count + 1)
        for i in range(count):  # died at opportunity i + 1, after i opportunities alive
            k = x[: i + 1]
            died[: i + 1] += np.exp(
                log_choose(float(i), k)
                + special.betaln(alpha + k, beta + i - k)
                - base_ab
                + special.betaln(gamma + 1.0, delta + i)
                - base_gd
            )
        return pl.DataFrame(
            {"frequency": np.arange(count + 1, dtype=np.int64), "probability": alive + died}
        )


def _opportunities(value: Any, name: str) -> float:
    """A whole number of opportunities ≥ 0 (as a float), else a config error naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0 and number == math.floor(number)):
        raise WinbackConfigError(
            f"{name} must be a whole number of opportunities ≥ 0, got {value!r}"
        )
    return number


def _valid_patterns(frame: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame | None:
    """The checked (x, t_x, n) frame in one pass when every check passes, else None."""
    if not all(name in frame.columns for name in names.values()):
        return None
    series = [frame.get_column(name) for name in names.values()]
    if not all(s.dtype.is_numeric() and s.null_count() == 0 for s in series):
        return None
    x, t_x, n = (np.asarray(s.to_numpy(), dtype=np.float64) for s in series)
    with np.errstate(invalid="ignore"):
        ok = (
            np.isfinite(n).all()
            and (x >= 0).all()
            and (x <= t_x).all()
            and (t_x <= n).all()
            and ((x > 0) | (t_x == 0)).all()
            and all((np.floor(v) == v).all() for v in (x, t_x, n))
        )
    if not ok:
        return None
    return pl.DataFrame({"x": x, "t_x": t_x, "n": n})


def _weights(frame: pl.DataFrame, column: str, model: str) -> FloatArray:
    """The weights column (customer counts) as floats: present, numeric, finite and ≥ 0."""
    if column in frame.columns:
        series = frame.get_column(column)
        if series.dtype.is_numeric() and series.null_count() == 0:
            values = np.asarray(series.to_numpy(), dtype=np.float64)
            if np.isfinite(values).all() and (values >= 0).all():
                return values
    checked = check_columns(frame, {"w": column}, model=model)
    return np.asarray(checked["w"].to_numpy(), dtype=np.float64)  # pragma: no cover


def _patterns(columns: dict[str, FloatArray], weights: FloatArray) -> Compressed:
    """The distinct (x, t_x, n) patterns, sorted, with their total weights."""
    stacked = np.column_stack([columns["x"], columns["t_x"], columns["n"]])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    total = np.bincount(inverse.reshape(-1), weights=weights, minlength=unique.shape[0])
    return Compressed(
        {name: np.ascontiguousarray(unique[:, j]) for j, name in enumerate(("x", "t_x", "n"))},
        np.ascontiguousarray(total, dtype=np.float64),
        {},
    )


def _by_n(n: FloatArray, sums: Any, delta: float) -> FloatArray:
    """``sums(δ + n)`` evaluated once per distinct n and looked up per customer."""
    distinct, index = np.unique(n, return_inverse=True)
    values: FloatArray = np.asarray(sums(delta + distinct), dtype=np.float64)[index]
    return values
