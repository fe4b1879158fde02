"""What every winback model shares: input checks, compression, fitting, summary and JSON I/O."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._io import to_polars
from winback._kernels.data import pps_rows, scatter
from winback._winback import compress as compress_rows
from winback.errors import WinbackConfigError, WinbackFitError, WinbackInputError
from winback.models._fitting import (
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
    "by_horizon",
    "check_columns",
    "check_count",
    "check_horizon",
    "compress",
    "frame_of",
    "load",
]

FloatArray = NDArray[np.float64]
#: Version of the saved-model JSON layout; bumped on any incompatible change.
FORMAT_VERSION = 1
_FORMAT_NAME = "winback-model"
#: Above this many distinct tuples, Newton fits start from a fit on a systematic sample.
_WARM_START_TUPLES = 100_000
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
            ranks = self.ranks[name] = np.cumsum(starts, dtype=np.uint32)
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
    _flat_hint: ClassVar[str] = "Try another model or more data."

    params_: dict[str, float]
    params_se_: dict[str, float]
    covariance_: FloatArray
    log_likelihood_: float
    converged_: bool
    n_iter_: int
    n_customers_: int
    data_summary_: dict[str, float]

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

    def _check_fit(self, params: FloatArray, data: Compressed) -> None:
        """Hook for model-specific validity checks of the optimum (e.g. Gamma–Gamma's q > 1)."""

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        return {"n_customers": data.n_customers, "n_unique": float(data.n_unique)}

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
            return self._loglik_grad(params, data)

        newton = self._newton_objective(data)
        result: FitResult | None = None
        if newton is not None:
            result = self._newton_fit(newton, data, starts)
        if result is None:
            if data.n_unique > _WARM_START_TUPLES:
                # As for Newton: find the optimum's neighbourhood on a sample, then finish on all.
                sample = data.systematic_sample(_WARM_START_TUPLES // 4)
                try:
                    warm = maximise(
                        lambda params: self._loglik_grad(params, sample),
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
        covariance = self._invert_information(information)
        self.params_ = {n: float(v) for n, v in zip(self.param_names, result.params, strict=True)}
        self.covariance_ = covariance
        self.params_se_ = {
            n: _finite_or_inf(math.sqrt(v)) if v >= 0 else math.inf
            for n, v in zip(self.param_names, np.diag(covariance), strict=True)
        }
        self.log_likelihood_ = result.log_likelihood
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_customers_ = round(data.n_customers)
        self.data_summary_ = self._describe_data(data)
        self.start_spread_ = result.start_spread
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
        stage_newton = self._newton_objective(stage) if large else newton
        assert stage_newton is not None
        found: list[FitResult] = []
        for start in starts:
            attempt = newton_maximise(stage_newton, start, n_observations=stage.n_customers)
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
            final = newton_maximise(newton, list(best.params), n_observations=data.n_customers)
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
            "covariance": self.covariance_.tolist(),
            "log_likelihood": self.log_likelihood_,
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "n_customers": self.n_customers_,
            "data_summary": self.data_summary_,
            "settings": self._settings(),
        }

    def save(self, path: str | Path) -> Path:
        """Writes the fitted model as JSON (never pickle); returns the path written."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Rebuilds a fitted model from :meth:`to_dict` output, checking its format and type."""
        if payload.get("format") != _FORMAT_NAME:
            raise WinbackConfigError("not a saved winback model (missing format='winback-model')")
        if payload.get("format_version") != FORMAT_VERSION:
            raise WinbackConfigError(
                f"saved model format version {payload.get('format_version')} is not supported "
                f"(this winback reads version {FORMAT_VERSION})"
            )
        if payload.get("model") != cls.__name__:
            raise WinbackConfigError(
                f"the file holds a {payload.get('model')}, not a {cls.__name__}; use "
                "winback.models.load() to load any model"
            )
        names = tuple(payload["param_names"])
        if names != cls.param_names:
            raise WinbackConfigError(
                f"{cls.__name__}: saved parameters {names} do not match {cls.param_names}"
            )
        model = cls()
        model.params_ = {n: float(payload["params"][n]) for n in names}
        model.params_se_ = {
            n: math.inf if payload["params_se"][n] is None else float(payload["params_se"][n])
            for n in names
        }
        model.covariance_ = np.asarray(payload["covariance"], dtype=np.float64)
        model.log_likelihood_ = float(payload["log_likelihood"])
        model.converged_ = bool(payload["converged"])
        model.n_iter_ = int(payload["n_iter"])
        model.n_customers_ = int(payload["n_customers"])
        model.data_summary_ = {k: float(v) for k, v in payload["data_summary"].items()}
        model._restore_settings(payload.get("settings", {}))
        return model

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Reads a model written by :meth:`save`."""
        return cls.from_dict(_read_json(path))


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        payload = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WinbackConfigError(f"model file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise WinbackConfigError(f"model file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WinbackConfigError(f"model file {str(path)!r} does not hold a winback model")
    return payload


def load(path: str | Path) -> BaseModel:
    """Loads any saved winback model, choosing the class recorded in the file."""
    payload = _read_json(path)
    name = payload.get("model")
    cls = _MODELS.get(str(name))
    if cls is None:
        raise WinbackConfigError(f"model file {str(path)!r} names an unknown model {name!r}")
    return cls.from_dict(payload)


def by_horizon(name: str, t: float | FloatArray, values: FloatArray) -> float | pl.Series:
    """A float for a scalar horizon ``t``, else a Polars Series aligned with ``t``."""
    if np.ndim(t) == 0:
        return float(values)
    return pl.Series(name, np.asarray(values, dtype=np.float64).reshape(-1))


def frame_of(data: Any) -> pl.DataFrame:
    """Any supported container as an eager Polars frame."""
    return _as_frame(data)


def check_horizon(t: float) -> float:
    """``t`` as a float, refused unless it is a finite duration ≥ 0."""
    value = float(t)
    if not np.isfinite(value) or value < 0:
        raise WinbackConfigError(
            f"t must be a finite duration ≥ 0 in the summary's unit, got {t!r}"
        )
    return value


def check_count(n: int) -> int:
    """``n`` as an int, refused unless it is a whole number ≥ 0."""
    if int(n) != n or n < 0:
        raise WinbackConfigError(f"n must be a whole number ≥ 0, got {n!r}")
    return int(n)
