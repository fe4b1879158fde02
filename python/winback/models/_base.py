"""What every winback model shares: input checks, compression, fitting, summary and JSON I/O."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._io import parse_buckets, parse_resolution, to_polars
from winback._kernels.data import pps_rows, scatter
from winback._winback import compress as compress_rows
from winback.errors import (
    UnitNotCheckedWarning,
    WinbackConfigError,
    WinbackFitError,
    WinbackInputError,
)
from winback.models._fitting import (
    LOG_BOUND,
    FitResult,
    LogLikGradHess,
    maximise,
    newton_maximise,
    observed_information,
)

__all__ = [
    "FORMAT_VERSION",
    "BaseModel",
    "Compressed",
    "UnitNotCheckedWarning",
    "by_horizon",
    "check_columns",
    "check_count",
    "check_horizon",
    "check_penalizer",
    "compress",
    "finite_output",
    "frame_of",
    "load",
    "split_summary",
]

FloatArray = NDArray[np.float64]
#: The time units of a model's data (``winback.summary``'s ``unit``; docs/methods.md#fitting).
UNITS = ("D", "W")
#: Version of the saved-model JSON layout; bumped on any incompatible change.
FORMAT_VERSION = 1
_FORMAT_NAME = "winback-model"
#: Above this many distinct tuples, Newton fits start from a fit on a systematic sample.
_WARM_START_TUPLES = 100_000
#: A standard error above this many times its estimate marks a degenerate fit.
_MAX_RELATIVE_SE = 1e3
#: The models ``load`` can rebuild, by class name: every class of ``winback.models`` that sets its
#: own ``model_name`` (filled as the classes are defined).
_MODELS: dict[str, type[BaseModel]] = {}


class Compressed:
    """Unique rows of the sufficient statistics with their weights (customer counts).

    ``ranks[name]`` holds each row's index into ``distinct(name)``, the column's sorted distinct
    values, so a kernel can evaluate a function of one column once per distinct value (a few
    thousand days) and look it up per row.
    """

    def __init__(
        self,
        columns: dict[str, FloatArray],
        weights: FloatArray,
        ranks: dict[str, NDArray[np.uint32]],
        population: Compressed | None = None,
    ) -> None:
        self.columns = columns
        self.weights = weights
        self.ranks = ranks
        #: For a sample: the data it was drawn from, whose distinct values its ranks index.
        self._population = population
        self._distinct: dict[str, FloatArray] = {}

    def rank(self, name: str) -> NDArray[np.uint32]:
        """Each row's index into ``distinct(name)``: from the compression, or — for the sort's
        leading column, whose equal values are adjacent — counted from its runs."""
        ranks = self.ranks.get(name)
        if ranks is None:
            if self._population is not None or name != next(iter(self.columns)):
                raise KeyError(f"no ranks for column {name!r}: compress with ranked=True")
            values = self.columns[name]
            starts = np.empty(values.size, dtype=np.uint32)
            if values.size:
                starts[0] = 0
                np.not_equal(values[1:], values[:-1], out=starts[1:], casting="unsafe")
            ranks = np.cumsum(starts, dtype=np.uint32)
            ranks.flags.writeable = False  # as the compression's: one scatter specialisation
            self.ranks[name] = ranks
        return ranks

    def distinct(self, name: str) -> FloatArray:
        """The sorted distinct values of column ``name`` (what its ranks index)."""
        if self._population is not None:
            return self._population.distinct(name)
        values = self._distinct.get(name)
        if values is None:
            ranks = self.rank(name)
            values = scatter(ranks, self.columns[name], int(ranks.max()) + 1 if ranks.size else 0)
            self._distinct[name] = values
        return values

    def __getitem__(self, name: str) -> FloatArray:
        return self.columns[name]

    @property
    def n_unique(self) -> int:
        return int(self.weights.size)

    @property
    def n_customers(self) -> float:
        return float(self.weights.sum())

    def runs(self, name: str) -> tuple[FloatArray, NDArray[np.int64]]:
        """Runs of equal values of the sort's leading column ``name``: the values, and the
        offsets where each run starts followed by ``n_unique`` (run g is starts[g]:starts[g+1])."""
        # Every distinct value of the population, so a sample may have empty runs.
        values = self.distinct(name)
        starts = np.searchsorted(self.columns[name], values, side="left")
        return values, np.append(starts, self.n_unique).astype(np.int64)

    def systematic_sample(self, size: int) -> Compressed:
        """About ``size`` tuples drawn systematically with probability proportional to weight:
        tuples weighing at least τ = total/size are all kept with their weights; lighter ones are
        taken where the running total of their weights crosses a multiple of τ, and stand for τ
        customers each. Deterministic, it keeps every stratum of the sort, and — unlike every
        k-th tuple — never lets one heavy tuple (say the x = 0 customers of one day) stand for
        k times its weight; used to find a Newton warm start cheaply."""
        tau = max(float(self.weights.sum()) / max(size, 1), 1e-300)
        keep, weights = pps_rows(self.weights, tau)
        if self._population is None:
            self.rank(next(iter(self.columns)))  # so the sample has the leading column's too

        def taken(columns: dict[str, Any]) -> dict[str, Any]:
            return {name: v[keep] for name, v in columns.items()}

        return Compressed(taken(self.columns), weights, taken(self.ranks), self._population or self)


def _bad_rows(mask: pl.Series) -> str:
    rows = mask.arg_true().head(5).to_list()
    return f"{int(mask.sum())} row(s), first at index {rows}"


def check_columns(
    frame: pl.DataFrame,
    columns: Mapping[str, str],
    *,
    model: str,
    integer: Sequence[str] = (),
    positive: Sequence[str] = (),
) -> pl.DataFrame:
    """Selects ``columns`` (role → column name) as Float64 and checks them: present, numeric,
    finite, non-null, ≥ 0 (> 0 for ``positive`` roles), whole numbers for ``integer`` roles.
    Returns a frame whose columns are named by role."""
    missing = [name for name in columns.values() if name not in frame.columns]
    if missing:
        raise WinbackInputError(
            f"{model}: column(s) {missing} not found (have {frame.columns}); pass the *_col= "
            "arguments or build the input with winback.summary()"
        )
    out: dict[str, pl.Series] = {}
    for role, name in columns.items():
        series = frame.get_column(name)
        if not series.dtype.is_numeric():
            raise WinbackInputError(f"{model}: column {name!r} must be numeric, got {series.dtype}")
        values = series.cast(pl.Float64)
        bad = values.is_null() | ~values.is_finite().fill_null(False)
        if bad.any():
            raise WinbackInputError(
                f"{model}: column {name!r} has null or non-finite values in {_bad_rows(bad)}; "
                "drop or fill those customers first"
            )
        negative = values <= 0 if role in positive else values < 0
        if negative.any():
            sign = "≤ 0" if role in positive else "negative"
            raise WinbackInputError(
                f"{model}: column {name!r} has {sign} values in {_bad_rows(negative)}"
            )
        if role in integer:
            fractional = values != values.floor()
            if fractional.any():
                raise WinbackInputError(
                    f"{model}: column {name!r} must hold whole counts; fractional values in "
                    f"{_bad_rows(fractional)}"
                )
        out[role] = values
    return pl.DataFrame(out)


def compress(
    checked: pl.DataFrame, weights: pl.Series | None = None, *, ranked: bool = False
) -> Compressed:
    """Unique rows of ``checked`` (Float64 columns) with their total weight, sorted; with
    ``ranked``, each column's ranks into its distinct values (free when the kernel compresses by
    dictionary codes, a sort per column otherwise; the leading column's are always cheap).

    Unweighted data goes through the Rust kernel (dictionary codes, then one sort); weighted
    data, already compressed by the caller, is small and merged with Polars.
    """
    names = checked.columns
    if weights is None:
        grouped = pl.DataFrame(compress_rows(checked, ranks=ranked))
        weight = grouped.get_column("count").cast(pl.Float64)
    else:
        frame = checked.with_columns(weights.cast(pl.Float64).alias("__weight"))
        grouped = frame.group_by(names).agg(pl.col("__weight").sum()).sort(names)
        weight = grouped.get_column("__weight")
        grouped = grouped.with_columns(
            pl.col(name).rank("dense").cast(pl.UInt32).sub(1).alias(f"{name}_rank")
            for name in names
        )
    columns = {
        name: np.ascontiguousarray(grouped.get_column(name).to_numpy(), dtype=np.float64)
        for name in names
    }
    ranks = {
        name: np.ascontiguousarray(grouped.get_column(f"{name}_rank").to_numpy(), dtype=np.uint32)
        for name in names
        if f"{name}_rank" in grouped.columns
    }
    return Compressed(columns, np.ascontiguousarray(weight.to_numpy(), dtype=np.float64), ranks)


def _as_frame(data: Any) -> pl.DataFrame:
    frame = to_polars(data)
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


class BaseModel:
    """Base of the estimators: ``fit`` returns ``self``; fitted attributes end in ``_``.

    Subclasses declare ``param_names`` and implement ``_prepare`` (data → compressed statistics),
    ``_loglik_grad`` and ``_starts``.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    model_name: ClassVar[str] = ""
    #: Run the optimiser from every start (surfaces with ridges), not just until one converges.
    multi_start: ClassVar[bool] = False
    #: What a flat likelihood usually means for this model (appended to the error).
    _flat_hint: ClassVar[str] = (
        "Fit on more customers or a longer calibration window, or try another model."
    )
    #: Indices of two parameters whose joint run to infinity is a boundary of the model that the
    #: Newton fit stops on (``newton_maximise``'s ``ray``); None: no such boundary.
    _boundary_ray: ClassVar[tuple[int, int] | None] = None

    params_: dict[str, float]
    params_se_: dict[str, float]
    covariance_: FloatArray
    log_likelihood_: float
    converged_: bool
    #: True when the fit stopped on the model's boundary ray (docs/methods.md#pareto-nbd-boundary).
    boundary_: bool = False
    n_iter_: int
    n_customers_: int
    data_summary_: dict[str, float]
    #: Time unit ("D"/"W") and occasion resolution of the fitted summary; None when unknown.
    unit_: str | None = None
    resolution_: str | None = None
    #: Whether the model's data hold durations (recency, T): a spend model has none, so only
    #: the resolution (what an occasion is) matters to it.
    _uses_time: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("winback.models.") and "model_name" in cls.__dict__:
            _MODELS[cls.__name__] = cls

    def __init__(self, *, initial_params: Mapping[str, float] | None = None) -> None:
        self.initial_params = initial_params

    # -- to implement ---------------------------------------------------------------------------
    def _prepare(self, frame: pl.DataFrame) -> Compressed:  # pragma: no cover - abstract
        raise NotImplementedError

    def _loglik_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _starts(self, data: Compressed) -> list[list[float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _newton_objective(self, data: Compressed) -> LogLikGradHess | None:
        """Value, gradient and exact Hessian in one pass, where a model has them (fast path)."""
        del data
        return None

    #: L2 penalty coefficient c of the last ``fit`` (docs/methods.md#penalizer): the fit maximises
    #: ℓ(θ) − N c Σθ² (N customers), lifetimes' ``penalizer_coef``. 0: plain maximum likelihood.
    penalizer_: float = 0.0
    #: What the penalty squares: the parameters ("natural", lifetimes' definition) or their logs
    #: ("log": c Σ(ln θ)², which also keeps parameters away from 0).
    penalize_: str = "natural"

    def _objective_grad(self, params: FloatArray, data: Compressed) -> tuple[float, FloatArray]:
        """The fit's objective and gradient: the log-likelihood, minus the L2 penalty when
        ``penalizer_`` > 0 (docs/methods.md#penalizer)."""
        if self.penalizer_ == 0.0:
            return self._loglik_grad(params, data)
        value, grad = self._loglik_grad(params, data)
        penalty, penalty_grad, _ = self._penalty(params, data)
        return value - penalty, grad - penalty_grad

    def _penalty(
        self, params: FloatArray, data: Compressed
    ) -> tuple[float, FloatArray, FloatArray]:
        """N c Σθ² (or N c Σ(ln θ)²), its gradient and its diagonal Hessian in θ."""
        weight = self.penalizer_ * data.n_customers
        if self.penalize_ == "log":
            logs = np.log(params)
            return (
                weight * float(logs @ logs),
                2.0 * weight * logs / params,
                np.diag(2.0 * weight * (1.0 - logs) / params**2),
            )
        return (
            weight * float(params @ params),
            2.0 * weight * params,
            2.0 * weight * np.eye(params.size),
        )

    def _objective_newton(self, data: Compressed) -> LogLikGradHess | None:
        """:meth:`_newton_objective` with the L2 penalty's value, gradient and (constant,
        diagonal) Hessian −2 N c I subtracted when ``penalizer_`` > 0."""
        newton = self._newton_objective(data)
        if newton is None or self.penalizer_ == 0.0:
            return newton
        plain = newton

        def penalised(params: FloatArray) -> tuple[float, FloatArray, FloatArray]:
            value, grad, hess = plain(params)
            penalty, penalty_grad, penalty_hess = self._penalty(params, data)
            return value - penalty, grad - penalty_grad, hess - penalty_hess

        return penalised

    def _check_fit(self, params: FloatArray, data: Compressed) -> None:
        """Hook for model-specific validity checks of the optimum (e.g. Gamma–Gamma's q > 1)."""

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        return {"n_customers": data.n_customers, "n_unique": float(data.n_unique)}

    def _loglik_each(self, data: Any | None) -> FloatArray:  # pragma: no cover - abstract
        """Each row's log-likelihood at the model's parameters, in the fit's convention, for
        ``data`` (None: the fitted frame)."""
        raise NotImplementedError

    # -- fitting --------------------------------------------------------------------------------
    def _fit_compressed(self, data: Compressed) -> Self:
        if data.n_customers <= 0:
            raise WinbackFitError(f"{self.model_name}: no customers to fit on")
        starts = self._starts(data)
        if self.initial_params is not None:
            unknown = set(self.initial_params) - set(self.param_names)
            if unknown:
                raise WinbackConfigError(
                    f"{self.model_name}: unknown initial_params {sorted(unknown)}; "
                    f"valid names are {list(self.param_names)}"
                )
            given = [
                float(self.initial_params.get(n, s))
                for n, s in zip(self.param_names, starts[0], strict=True)
            ]
            if not all(math.isfinite(v) and v > 0 for v in given):
                raise WinbackConfigError(
                    f"{self.model_name}: initial_params must be positive and finite, got {given}"
                )
            starts = [given, *starts]

        def loglik_grad(params: FloatArray) -> tuple[float, FloatArray]:
            return self._objective_grad(params, data)

        newton = self._objective_newton(data)
        result: FitResult | None = None
        if newton is not None:
            result = self._newton_fit(newton, data, starts)
        if result is None:
            if data.n_unique > _WARM_START_TUPLES:
                # As for Newton: find the optimum's neighbourhood on a sample, then finish on all.
                sample = data.systematic_sample(_WARM_START_TUPLES // 4)
                try:
                    warm = maximise(
                        lambda params: self._objective_grad(params, sample),
                        starts,
                        n_observations=sample.n_customers,
                        model=self.model_name,
                        param_names=self.param_names,
                        all_starts=self.multi_start,
                    )
                    starts = [list(warm.params), *starts]
                except WinbackFitError:
                    pass  # the full data decide
            result = maximise(
                loglik_grad,
                starts,
                n_observations=data.n_customers,
                model=self.model_name,
                param_names=self.param_names,
                all_starts=self.multi_start,
            )
        self._check_fit(result.params, data)
        self._last_params = result.params
        if result.hessian is not None:
            information = -result.hessian
        elif newton is not None:
            information = -newton(result.params)[2]
        else:
            information = observed_information(loglik_grad, result.params)
        self.boundary_ = result.boundary
        if result.boundary:
            covariance, params_se = self._boundary_fit(result.params, information, data)
        else:
            covariance = self._invert_information(information)
            params_se = {
                n: _finite_or_inf(math.sqrt(v)) if v >= 0 else math.inf
                for n, v in zip(self.param_names, np.diag(covariance), strict=True)
            }
            self._refuse_degenerate(result.params, params_se, data)
        self.params_ = {n: float(v) for n, v in zip(self.param_names, result.params, strict=True)}
        self.covariance_ = covariance
        self.params_se_ = params_se
        self.log_likelihood_ = result.log_likelihood
        if self.penalizer_ > 0.0:  # the data's log-likelihood at the penalised optimum
            self.log_likelihood_ = float(self._loglik_grad(result.params, data)[0])
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_customers_ = round(data.n_customers)
        self.data_summary_ = self._describe_data(data)
        self.start_spread_ = result.start_spread
        self._set_units()
        return self

    def _newton_fit(
        self, newton: LogLikGradHess, data: Compressed, starts: list[list[float]]
    ) -> FitResult | None:
        """Newton from the starts (all of them for ``multi_start`` models, else until one
        converges) — on a systematic sample when the data are large, since the early steps only
        need the likelihood's rough shape — then on all tuples from the best optimum, where each
        pass roughly doubles the correct digits."""
        large = data.n_unique > _WARM_START_TUPLES
        stage = data.systematic_sample(_WARM_START_TUPLES // 4) if large else data
        stage_newton = self._objective_newton(stage) if large else newton
        assert stage_newton is not None
        found: list[FitResult] = []
        for start in starts:
            attempt = newton_maximise(
                stage_newton, start, n_observations=stage.n_customers, ray=self._boundary_ray
            )
            if attempt is not None:
                found.append(attempt)
                if not self.multi_start:
                    break
        if not found:
            return None
        found.sort(key=lambda f: -f.log_likelihood)
        best = found[0]
        spread = 0.0
        for other in found[1:]:
            if best.log_likelihood - other.log_likelihood < 1e-6 * max(
                1.0, abs(best.log_likelihood)
            ):
                spread = max(spread, float(np.max(np.abs(other.params / best.params - 1.0))))
        if large:
            final = newton_maximise(
                newton,
                list(best.params),
                n_observations=data.n_customers,
                ray=self._boundary_ray,
            )
            if final is None:
                return None
            best = final
        return FitResult(
            best.params,
            best.log_likelihood,
            best.gradient_norm,
            best.n_iter,
            best.converged,
            best.message,
            len(found),
            spread,
            best.hessian,
            boundary=best.boundary,
        )

    def _boundary_fit(
        self, params: FloatArray, information: FloatArray, data: Compressed
    ) -> tuple[FloatArray, dict[str, float]]:
        """Covariance and standard errors of a fit stopped on ``_boundary_ray`` (only models
        with a boundary ray override it)."""
        raise NotImplementedError  # pragma: no cover - only reached with _boundary_ray set

    def _refuse_degenerate(
        self, params: FloatArray, params_se: Mapping[str, float] | None, data: Compressed
    ) -> None:
        """Refuses a degenerate optimum (docs/methods.md#fitting): a parameter within e^2 of the
        log-parameter search bounds, or a standard error over ``_MAX_RELATIVE_SE`` times its
        estimate (a 95 % interval wider than e^±2000 on the log scale). Such "optima" appear on
        data too thin to identify the model — one customer, say — where the likelihood keeps
        rising as the parameters run off together; the Newton path can stop there with a tiny
        gradient, so the optimiser's own checks do not see it."""
        logs = np.log(params)
        near_bound = [
            f"{name} = {value:.3g}"
            for name, value, u in zip(self.param_names, params, logs, strict=True)
            if abs(u) >= LOG_BOUND - 2.0
        ]
        vague = [
            f"{name} = {value:.3g} ± {(params_se or {}).get(name, math.inf):.3g}"
            for name, value in zip(self.param_names, params, strict=True)
            if params_se is not None and not params_se[name] <= _MAX_RELATIVE_SE * value
        ]
        if not near_bound and not vague:
            return
        problem = (
            f"the estimate runs to the edge of the parameter space ({', '.join(near_bound)})"
            if near_bound
            else f"the standard errors are orders of magnitude above the estimates "
            f"({', '.join(vague)})"
        )
        raise WinbackFitError(
            f"{self.model_name}: degenerate fit on {data.n_customers:,.0f} customer(s): {problem}, "
            "so the data do not identify the model's parameters. Fit on more customers or a "
            "longer calibration window (or a simpler model)."
        )

    def _invert_information(self, information: FloatArray) -> FloatArray:
        eigenvalues = np.linalg.eigvalsh(information)
        if not np.all(np.isfinite(eigenvalues)):
            raise WinbackFitError(
                f"{self.model_name}: the information matrix is not finite at the optimum"
            )
        if eigenvalues.min() <= 0 or eigenvalues.min() / eigenvalues.max() < 1e-14:
            # Name the flat direction in log-parameters, where it does not depend on units.
            scale = self._last_params
            flat = np.linalg.eigh(information * scale[:, None] * scale[None, :])[1][:, 0]
            involved = [
                f"{name} = {self._last_params[i]:.4g}"
                for i, name in enumerate(self.param_names)
                if abs(flat[i]) > 0.3
            ]
            raise WinbackFitError(
                f"{self.model_name}: the likelihood is flat at the optimum along a direction "
                f"moving {', '.join(involved)} together (information eigenvalues "
                f"{np.array2string(eigenvalues, precision=3)}): these data do not identify them. "
                f"{self._flat_hint}"
            )
        covariance = np.asarray(np.linalg.inv(information), dtype=np.float64)
        return (covariance + covariance.T) / 2

    # -- units ----------------------------------------------------------------------------------
    def _units_of_fit(self, data: Any, unit: str | None, resolution: str | timedelta | None) -> Any:
        """Records the fitted summary's unit and resolution (explicit arguments, or the
        ``SummaryInfo`` of a ``(frame, info)`` pair) and returns the frame part of ``data``."""
        frame, info_unit, info_resolution = split_summary(data)
        self._fit_input = frame  # predicting on this same frame needs no unit check
        unit = _agree("unit", unit, info_unit, self.model_name)
        resolution = _agree("resolution", resolution, info_resolution, self.model_name)
        if unit is not None and unit not in UNITS:
            raise WinbackConfigError(
                f"{self.model_name}: unit={unit!r} is not a time unit; use 'D' or 'W'"
            )
        if resolution is not None:
            parse_buckets(resolution)
        self._fit_units = (unit if self._uses_time else None, _resolution_text(resolution))
        return frame

    def _set_units(self) -> None:
        self.unit_, self.resolution_ = getattr(self, "_fit_units", (None, None))

    def _warn_unchecked(self, data: Any) -> None:
        """Warns once (per model) that a plain frame's unit and resolution cannot be checked:
        a plain frame names no unit (``recency`` and ``T`` are the same columns in days and in
        weeks), so only a model that knows its own can be wrong about it, and only a frame other
        than the one it was fitted on."""
        known = (self.unit_ if self._uses_time else None) or self.resolution_
        if known is None or any(
            data is getattr(self, name, None) for name in ("_fit_input", "_internal_frame")
        ):
            return
        if getattr(self, "_unit_warned", False):
            return
        self._unit_warned = True
        what = (
            f"unit {self.unit_!r} and resolution {self.resolution_!r}"
            if self._uses_time
            else f"resolution {self.resolution_!r}"
        )
        warnings.warn(
            UnitNotCheckedWarning(
                f"{self.model_name}: the model was fitted with {what}, but a plain summary frame "
                "carries neither, so they could not be checked. Pass the (frame, info) pair of "
                "winback.summary(..., return_info=True) to check them"
            ),
            stacklevel=4,
        )

    def _check_units(self, unit: str | None, resolution: str | None) -> None:
        """Refuses a summary in another unit or resolution than the fit's (when both known)."""
        if self._uses_time and unit is not None and self.unit_ is not None and unit != self.unit_:
            raise WinbackConfigError(
                f"{self.model_name}: the model was fitted on a summary in unit {self.unit_!r} "
                f"but this summary is in unit {unit!r}; its recency and T (and t) would be read "
                f"in the wrong unit. Rebuild the summary with unit={self.unit_!r}"
            )
        if (
            resolution is not None
            and self.resolution_ is not None
            and parse_buckets(resolution) != parse_buckets(self.resolution_)
        ):
            raise WinbackConfigError(
                f"{self.model_name}: the model was fitted on occasions at resolution "
                f"{self.resolution_!r} but this summary uses {resolution!r}, so its purchase "
                f"counts mean something else. Rebuild the summary with "
                f"resolution={self.resolution_!r}"
            )

    # -- construction from known parameters and scoring ----------------------------------------
    @classmethod
    def from_params(
        cls,
        params: Mapping[str, float] | None = None,
        /,
        *,
        unit: str | None = None,
        resolution: str | timedelta | None = None,
        **named: float,
    ) -> Self:
        """A model holding known parameters (fitted elsewhere, say), ready to predict and save
        (docs/methods.md#fitting): ``Model.from_params(r=0.24, alpha=4.41, ...)`` or
        ``Model.from_params({"r": 0.24, ...})``. Every parameter is required, a finite number
        > 0 (and model-specific constraints hold, e.g. Gamma–Gamma's q > 1); otherwise a
        :class:`~winback.WinbackConfigError` names it. Nothing was estimated, so the standard
        errors, covariance and log-likelihood are NaN, ``converged_`` is False and
        ``n_customers_`` 0; ``unit`` and ``resolution`` are recorded as ``fit`` records them."""
        where = f"{cls.__name__}.from_params"
        if params is not None and named:
            raise WinbackConfigError(f"{where}: pass the parameters as a mapping or as keywords")
        given = dict(params) if params is not None else dict(named)
        unknown = sorted(str(k) for k in set(given) - set(cls.param_names))
        missing = [n for n in cls.param_names if n not in given]
        if unknown or missing:
            raise WinbackConfigError(
                f"{where}: {cls.model_name} takes exactly {list(cls.param_names)}; "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"unknown {unknown}" if unknown else "",
                    )
                    if part
                )
            )
        values: dict[str, float] = {}
        for name in cls.param_names:
            value = given[name]
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, bool
            )
            number = float(value) if ok else math.nan
            if not (math.isfinite(number) and number > 0):
                raise WinbackConfigError(
                    f"{where}: parameter {name!r} must be a finite number > 0, got {value!r}"
                )
            values[name] = number
        cls._check_params(values, _ParamErrors(where))
        model = cls()
        k = len(cls.param_names)
        model.params_ = values
        model.params_se_ = dict.fromkeys(cls.param_names, math.nan)
        model.covariance_ = np.full((k, k), math.nan)
        model.log_likelihood_ = math.nan
        model.converged_ = False
        model.n_iter_ = 0
        model.n_customers_ = 0
        model.data_summary_ = {}
        model._units_of_fit(None, unit, resolution)  # checks and records them
        model._set_units()
        return model

    def log_likelihood(self, data: Any | None = None) -> pl.Series:
        """Each customer's log-likelihood at the model's parameters (one value per row of
        ``data``, default the fitted frame), in the convention of the fit: on the data of a fit
        they sum to ``log_likelihood_`` (docs/methods.md#fitting)."""
        self._check_fitted()
        values = self._loglik_each(data)
        return finite_output(self.model_name, "log_likelihood", values)

    def _delta_interval(
        self, evaluate: Callable[[], FloatArray], level: float, *, name: str
    ) -> pl.DataFrame:
        """``evaluate()`` (a positive quantity per customer at ``params_``) with its delta-method
        standard error and a ``level`` interval on the log scale (docs/methods.md#intervals):
        Var ≈ ∇' Σ ∇ with Σ the fit's ``covariance_`` and ∇ by central differences (relative
        step 1e-5). Columns ``name``, ``std_error``, ``lower``, ``upper``."""
        from scipy.stats import norm

        if not (0.0 < float(level) < 1.0):
            raise WinbackConfigError(f"level must be in (0, 1), got {level!r}")
        self._check_fitted()
        if not np.all(np.isfinite(self.covariance_)):
            raise WinbackConfigError(
                f"{self.model_name}: the model has no covariance (built with from_params or "
                "loaded without one), so there is no parameter uncertainty to propagate; fit it"
            )
        expected = evaluate()
        base = dict(self.params_)
        grads = np.empty((len(self.param_names), expected.size))
        try:
            for j, param in enumerate(self.param_names):
                step = 1e-5 * base[param]
                self.params_ = {**base, param: base[param] + step}
                up = evaluate()
                self.params_ = {**base, param: base[param] - step}
                down = evaluate()
                grads[j] = (up - down) / (2.0 * step)
        finally:
            self.params_ = base
        variance = np.einsum("ic,ij,jc->c", grads, self.covariance_, grads)
        se = np.sqrt(np.maximum(variance, 0.0))
        z = float(norm.ppf(0.5 + float(level) / 2.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(expected > 0, np.exp(z * se / expected), 1.0)
        return pl.DataFrame(
            {
                name: finite_output(self.model_name, name, expected),
                "std_error": finite_output(self.model_name, "std_error", se),
                "lower": finite_output(self.model_name, "lower", expected / spread),
                "upper": finite_output(self.model_name, "upper", expected * spread),
            }
        )

    # -- fitted state ---------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "params_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise WinbackFitError(
                f"this {type(self).__name__} is not fitted yet; call fit() or load() first"
            )

    def _prediction_frame(self, data: Any | None) -> pl.DataFrame:
        """``data`` as a frame, or the frame given to ``fit`` when ``data`` is None."""
        self._check_fitted()
        if data is not None:
            data, unit, resolution = split_summary(data)
            if unit is None and resolution is None:
                self._warn_unchecked(data)
            else:
                self._check_units(unit, resolution)
            return frame_of(data)
        frame: pl.DataFrame | None = getattr(self, "_fit_frame", None)
        if frame is None:
            raise WinbackConfigError(
                f"{type(self).__name__}: pass data= (a summary frame); a loaded model keeps no data"
            )
        return frame

    def _param_array(self) -> FloatArray:
        self._check_fitted()
        return np.array([self.params_[n] for n in self.param_names], dtype=np.float64)

    def summary(self) -> pl.DataFrame:
        """Parameter table: estimate, standard error (observed information) and a Wald 95%
        interval computed on the log scale (so it stays positive)."""
        self._check_fitted()
        names = list(self.param_names)
        estimate = np.array([self.params_[n] for n in names])
        se = np.array([self.params_se_[n] for n in names])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_se = se / estimate
            lower = estimate * np.exp(-1.959963984540054 * log_se)
            upper = estimate * np.exp(1.959963984540054 * log_se)
        return pl.DataFrame(
            {
                "param": names,
                "estimate": estimate,
                "std_error": se,
                "lower_95": np.nan_to_num(lower, nan=0.0),
                "upper_95": np.nan_to_num(upper, nan=math.inf, posinf=math.inf),
            }
        )

    def __repr__(self) -> str:
        if not self.is_fitted:
            return f"{type(self).__name__}(unfitted)"
        shown = ", ".join(f"{n}={v:.4g}" for n, v in self.params_.items())
        return (
            f"{type(self).__name__}({shown}; log-likelihood {self.log_likelihood_:.2f} "
            f"on {self.n_customers_} customers)"
        )

    # -- persistence ----------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        return {}

    def _restore_settings(self, settings: Mapping[str, Any]) -> None:
        del settings

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as plain JSON-ready data (what :meth:`save` writes)."""
        from winback._version import __version__

        self._check_fitted()
        return {
            "format": _FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "winback_version": __version__,
            "model": type(self).__name__,
            "param_names": list(self.param_names),
            "params": self.params_,
            "params_se": {k: (v if math.isfinite(v) else None) for k, v in self.params_se_.items()},
            # null for a model built from known parameters (nothing was estimated)
            "covariance": (
                self.covariance_.tolist() if np.all(np.isfinite(self.covariance_)) else None
            ),
            "log_likelihood": (
                self.log_likelihood_ if math.isfinite(self.log_likelihood_) else None
            ),
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "n_customers": self.n_customers_,
            "data_summary": self.data_summary_,
            "settings": self._settings(),
            "unit": self.unit_,
            "resolution": self.resolution_,
        }

    def save(self, path: str | Path) -> Path:
        """Writes the fitted model as JSON (never pickle); returns the path written."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def _check_params(cls, params: Mapping[str, float], field: _Fields) -> None:
        """Hook for model-specific constraints on loaded parameters (e.g. Gamma–Gamma's q > 1)."""

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], *, source: str = "the model data") -> Self:
        """Rebuilds a fitted model from :meth:`to_dict` output, checking its format, its type and
        every field (docs/methods.md#fitting); ``source`` names the file in the errors."""
        field = _Fields(source)
        if not isinstance(payload, Mapping):
            raise field.error("", "must be a JSON object holding a winback model")
        if payload.get("format") != _FORMAT_NAME:
            raise field.error(
                "format", "is missing or wrong: not a saved winback model (format='winback-model')"
            )
        version = payload.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise field.error(
                "format_version",
                f"{version!r} is not supported (this winback reads version {FORMAT_VERSION})",
            )
        if payload.get("model") != cls.__name__:
            raise field.error(
                "model",
                f"holds a {payload.get('model')!r}: the file holds a {payload.get('model')}, not a "
                f"{cls.__name__}; use winback.models.load() to load any model",
            )
        names = field.get(payload, "param_names", list)
        if tuple(names) != cls.param_names:
            raise field.error(
                "param_names", f"{names!r} do not match {cls.__name__}'s {list(cls.param_names)}"
            )
        params_in = field.get(payload, "params", dict)
        extra = sorted(set(params_in) - set(names))
        if extra:
            raise field.error("params", f"has unknown parameter(s) {extra}")
        params = {n: field.positive(params_in, n, "params") for n in names}
        cls._check_params(params, field)
        se_in = field.get(payload, "params_se", dict)
        params_se = {n: field.standard_error(se_in, n) for n in names}
        k = len(names)
        estimated = payload.get("covariance") is not None
        # A model built from known parameters (from_params) has no covariance nor likelihood.
        covariance = field.covariance(payload, k) if estimated else np.full((k, k), math.nan)
        if not estimated:
            params_se = dict.fromkeys(names, math.nan)
        model = cls()
        model.params_ = params
        model.params_se_ = params_se
        model.covariance_ = covariance
        model.log_likelihood_ = (
            field.number(payload, "log_likelihood")
            if estimated or payload.get("log_likelihood") is not None
            else math.nan
        )
        model.converged_ = field.get(payload, "converged", bool)
        model.n_iter_ = field.count(payload, "n_iter")
        model.n_customers_ = field.count(payload, "n_customers")
        summary_in = field.get(payload, "data_summary", dict)
        model.data_summary_ = {
            str(k): field.number(summary_in, k, "data_summary") for k in summary_in
        }
        settings = payload.get("settings", {})
        if not isinstance(settings, dict) or not all(isinstance(v, str) for v in settings.values()):
            raise field.error("settings", "must be an object of column names (strings)")
        model._restore_settings(settings)
        model.unit_, model.resolution_ = field.units(payload)
        return model

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Reads a model written by :meth:`save`; raises :class:`WinbackConfigError` naming the
        file and the field when it is not a valid model file."""
        return cls.from_dict(_read_json(path), source=f"model file {str(path)!r}")


class _Fields:
    """Typed access to a saved model's fields; every failure is a :class:`WinbackConfigError`
    naming the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, name: str, problem: str) -> WinbackConfigError:
        where = f"field {name!r} " if name else ""
        return WinbackConfigError(f"{self.source}: {where}{problem}")

    def get(self, payload: Mapping[str, Any], name: str, kind: type, parent: str = "") -> Any:
        full = f"{parent}.{name}" if parent else name
        if name not in payload:
            raise self.error(full, "is missing")
        value = payload[name]
        # bool is an int in Python: never accept one for the other.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(full, f"must be a {_KIND_NAMES[kind]}, got {value!r}")
        return value

    def number(self, payload: Mapping[str, Any], name: str, parent: str = "") -> float:
        full = f"{parent}.{name}" if parent else name
        value = self.get(payload, name, (int, float), parent)  # type: ignore[arg-type]
        try:
            number = float(value)
        except OverflowError:  # a JSON integer beyond the float range
            number = math.inf
        if not math.isfinite(number):
            raise self.error(full, f"must be a finite number, got {number!r}")
        return number

    def positive(self, payload: Mapping[str, Any], name: str, parent: str) -> float:
        value = self.number(payload, name, parent)
        if not value > 0:
            raise self.error(f"{parent}.{name}", f"must be a finite number > 0, got {value!r}")
        return value

    def count(self, payload: Mapping[str, Any], name: str) -> int:
        value = self.get(payload, name, int)
        if value < 0:
            raise self.error(name, f"must be a whole number ≥ 0, got {value!r}")
        return int(value)

    def standard_error(self, payload: Mapping[str, Any], name: str) -> float:
        if name not in payload:
            raise self.error(f"params_se.{name}", "is missing")
        if payload[name] is None:
            return math.inf  # saved as null when not finite
        value = self.number(payload, name, "params_se")
        if value < 0:
            raise self.error(f"params_se.{name}", f"must be ≥ 0 or null, got {value!r}")
        return value

    def covariance(self, payload: Mapping[str, Any], k: int) -> FloatArray:
        rows = self.get(payload, "covariance", list)
        if len(rows) != k or not all(
            isinstance(row, list) and len(row) == k and all(_finite_number(v) for v in row)
            for row in rows
        ):
            raise self.error("covariance", f"must be a {k}×{k} matrix of finite numbers")
        return np.asarray(rows, dtype=np.float64)

    def units(self, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The time unit and resolution; absent in files written before they were saved
        (unknown: predictions are not checked)."""
        unit = payload.get("unit")
        if unit is not None and unit not in UNITS:
            raise self.error("unit", f"must be one of {list(UNITS)} or null, got {unit!r}")
        resolution = payload.get("resolution")
        if resolution is not None:
            if not isinstance(resolution, str):
                raise self.error("resolution", f"must be a duration string, got {resolution!r}")
            try:
                parse_buckets(resolution)
            except WinbackConfigError as exc:
                raise self.error("resolution", str(exc)) from None
        return unit, resolution


class _ParamErrors(_Fields):
    """What ``_check_params`` needs of :class:`_Fields` for :meth:`BaseModel.from_params`:
    errors naming the call and the parameter."""

    def error(self, name: str, problem: str) -> WinbackConfigError:
        return WinbackConfigError(
            f"{self.source}: parameter {name.removeprefix('params.')!r} {problem}"
        )


def _finite_number(value: Any) -> bool:
    """A JSON number (not a boolean) within the float range and finite."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


_KIND_NAMES: dict[Any, str] = {
    list: "list",
    dict: "JSON object",
    bool: "boolean",
    int: "whole number",
    (int, float): "number",
}


def _read_json(path: str | Path) -> dict[str, Any]:
    where = f"model file {str(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
        payload = json.loads(text, parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise WinbackConfigError(f"{where} does not exist") from None
    except IsADirectoryError:
        raise WinbackConfigError(f"{where} is a directory; pass the .json file") from None
    except UnicodeDecodeError:
        raise WinbackConfigError(f"{where} is not UTF-8 text (not a saved model)") from None
    except json.JSONDecodeError as exc:
        raise WinbackConfigError(f"{where} is not valid JSON: {exc}") from None
    except _NonFiniteConstantError as exc:
        raise WinbackConfigError(
            f"{where} holds the non-number {exc.args[0]}: a model field must be finite"
        ) from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise WinbackConfigError(f"{where} is not a valid model file: {exc}") from None
    except RecursionError:
        raise WinbackConfigError(f"{where} is nested too deeply to be a saved model") from None
    except OSError as exc:
        raise WinbackConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(payload, dict):
        raise WinbackConfigError(f"{where} does not hold a winback model (not a JSON object)")
    return payload


class _NonFiniteConstantError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteConstantError(name)


def load(path: str | Path) -> BaseModel:
    """Loads any saved winback model, choosing the class recorded in the file; raises
    :class:`WinbackConfigError` naming the file and the field when it is not a valid model."""
    payload = _read_json(path)
    name = payload.get("model")
    cls = _MODELS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise WinbackConfigError(
            f"model file {str(path)!r}: field 'model' names an unknown model {name!r} "
            f"(known: {sorted(_MODELS)})"
        )
    return cls.from_dict(payload, source=f"model file {str(path)!r}")


def split_summary(data: Any) -> tuple[Any, str | None, str | None]:
    """``(frame, unit, resolution)`` for a ``(frame, SummaryInfo)`` pair — what
    ``winback.summary(..., return_info=True)`` returns — and ``(data, None, None)`` for anything
    else (a plain frame does not carry its unit)."""
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and hasattr(data[1], "unit")
        and hasattr(data[1], "resolution")
    ):
        info = data[1]
        return data[0], str(info.unit), str(info.resolution)
    return data, None, None


def _resolution_text(resolution: str | timedelta | None) -> str | None:
    if resolution is None or isinstance(resolution, str):
        return resolution
    return f"{parse_resolution(resolution)}us"


def _agree(name: str, given: Any, carried: str | None, model: str) -> Any:
    """The explicit argument, else the one the summary carries; refuses a contradiction."""
    if given is None:
        return carried
    if carried is not None:
        same = (
            parse_buckets(given) == parse_buckets(carried)
            if name == "resolution"
            else given == carried
        )
        if not same:
            raise WinbackConfigError(
                f"{model}: {name}={given!r} contradicts the summary's own {name} {carried!r}"
            )
    return given


def by_horizon(name: str, t: float | FloatArray, values: FloatArray) -> float | pl.Series:
    """A float for a scalar horizon ``t``, else a Polars Series aligned with ``t``."""
    if np.ndim(t) == 0:
        return float(values)
    return pl.Series(name, np.asarray(values, dtype=np.float64).reshape(-1))


def frame_of(data: Any) -> pl.DataFrame:
    """Any supported container as an eager Polars frame."""
    return _as_frame(data)


def finite_output(model: str, name: str, values: Any) -> pl.Series:
    """``values`` as a Float64 Series named ``name``; raises :class:`WinbackInputError` naming
    the rows when any is NaN or infinite (docs/methods.md#fitting: no output is ever NaN/inf).

    The formulas are evaluated in log space and fall back to quadrature where a closed form
    overflows, so this only fires for inputs outside every model's domain."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise WinbackInputError(
            f"{model}: {name} cannot be computed for {int(bad.sum())} customer(s) (first at row "
            f"{rows}): the result is not a finite number for their (frequency, recency, T) at "
            "these parameters; check those rows and the model's unit"
        )
    return pl.Series(name, array)


def check_horizon(t: float) -> float:
    """``t`` as a float, refused unless it is a finite duration ≥ 0."""
    value = float(t)
    if not np.isfinite(value) or value < 0:
        raise WinbackConfigError(
            f"t must be a finite duration ≥ 0 in the summary's unit, got {t!r}"
        )
    return value


def check_penalizer(value: Any, penalize: Any = "natural") -> float:
    """``value`` as a float, refused unless it is a finite number ≥ 0, and ``penalize`` one of
    "natural" and "log" (docs/methods.md#penalizer)."""
    if penalize not in ("natural", "log"):
        raise WinbackConfigError(f"penalize must be 'natural' or 'log', got {penalize!r}")
    try:
        penalizer = float(value)
    except (TypeError, ValueError):
        penalizer = math.nan
    if isinstance(value, bool) or not (math.isfinite(penalizer) and penalizer >= 0.0):
        raise WinbackConfigError(f"penalizer must be a finite number ≥ 0, got {value!r}")
    return penalizer


def check_count(n: int) -> int:
    """``n`` as an int, refused unless it is a whole number ≥ 0."""
    if int(n) != n or n < 0:
        raise WinbackConfigError(f"n must be a whole number ≥ 0, got {n!r}")
    return int(n)
