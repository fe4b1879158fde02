"""What report sections read: the parameters and the results computed once and shared."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

import polars as pl

from winback._io import describe_moment
from winback._options import AsOf, OnInvalid
from winback._version import __version__
from winback.backtest import backtest
from winback.campaign import campaign
from winback.errors import WinbackError
from winback.migrate import Migration, migration
from winback.rfm import quadrant, rfm
from winback.silence import SilenceInfo
from winback.summary import summary
from winback.value import value

__all__ = [
    "CAPABILITIES",
    "MODEL_NAMES",
    "ReportContext",
    "ReportParameters",
    "as_frame",
    "call_capability",
    "call_capability_raw",
]

#: The winback functions sections call by name (docs/methods.md#rfm, #value, #campaign), with the
#: arguments each accepts.
CAPABILITIES: dict[str, Callable[..., Any]] = {
    "rfm": rfm,
    "quadrant": quadrant,
    "value": value,
    "campaign": campaign,
    "backtest": backtest,
}

#: ``models=`` names → (estimator class in ``winback.models``, label).
MODEL_NAMES = {
    "bgnbd": ("BetaGeoModel", "BG/NBD"),
    "mbgnbd": ("ModifiedBetaGeoModel", "MBG/NBD"),
    "pareto": ("ParetoNBDModel", "Pareto/NBD"),
}


@dataclass(frozen=True)
class ReportParameters:
    """The arguments of :func:`winback.report` that sections read."""

    as_of: AsOf | None
    previous_as_of: AsOf | None
    calibration_end: AsOf | None
    models: tuple[str, ...]
    top_n: int
    min_occasions: int
    resolution: str | timedelta
    trf_cuts: tuple[float, ...]
    s_cuts: tuple[float, ...]
    customer_col: str
    time_col: str
    amount_col: str | None
    on_invalid: OnInvalid
    num_threads: int | None
    #: The daily loop's staff scorecards (docs/methods.md#staff-scorecards), when given.
    scorecards: pl.DataFrame | None = None
    events: Any = None
    engagement_types: tuple[str, ...] = ()
    #: Origins of the back-test section (docs/methods.md#backtest); None: left out.
    backtest: int | tuple[AsOf, ...] | None = None

    def input_kwargs(self) -> dict[str, Any]:
        """Column and hygiene arguments shared by every winback function."""
        return {
            "customer_col": self.customer_col,
            "time_col": self.time_col,
            "amount_col": self.amount_col,
            "on_invalid": self.on_invalid,
            "num_threads": self.num_threads,
        }


class ReportContext:
    """The data, the parameters and the shared results (each computed on first use).

    ``scores`` and ``info`` are :func:`winback.silence`'s output at ``as_of``; ``split`` is the
    earlier snapshot of the migration section and the calibration end of the model section
    (default: halfway between the first purchase and ``as_of``).
    """

    def __init__(
        self, data: Any, params: ReportParameters, scores: pl.DataFrame, info: SilenceInfo
    ) -> None:
        self.data = data
        self.params = params
        self.scores = scores
        self.info = info

    # -- dates -----------------------------------------------------------------------------------
    @cached_property
    def as_of(self) -> AsOf:
        """The snapshot: the ``as_of`` given, else the moment silence scoring resolved."""
        if self.params.as_of is not None:
            return self.params.as_of
        if self.info.as_of is None:  # no rows at all
            raise WinbackError("the input has no transactions")
        return self.info.as_of

    @cached_property
    def first_purchase(self) -> date | datetime | None:
        value = self.scores.get_column("first_ts").min()
        return value if isinstance(value, date) else None

    @cached_property
    def last_purchase(self) -> date | datetime | None:
        value = self.scores.get_column("last_ts").max()
        return value if isinstance(value, date) else None

    def _default_split(self) -> date | None:
        first, end = self.first_purchase, self.info.as_of
        if first is None or end is None:
            return None
        first_day = first.date() if isinstance(first, datetime) else first
        span = (end.date() - first_day).days
        return first_day + timedelta(days=span // 2) if span >= 2 else None

    @cached_property
    def previous_as_of(self) -> AsOf | None:
        """The earlier snapshot of the migration section."""
        return self.params.previous_as_of or self._default_split()

    @cached_property
    def calibration_end(self) -> AsOf | None:
        """End of the calibration period of the model section."""
        return self.params.calibration_end or self._default_split()

    @property
    def has_amount(self) -> bool:
        return bool(self.scores.get_column("total_amount").is_not_null().any())

    # -- shared results --------------------------------------------------------------------------
    def scoring_kwargs(self) -> dict[str, Any]:
        p = self.params
        return {
            "resolution": p.resolution,
            "min_occasions": p.min_occasions,
            "trf_cuts": p.trf_cuts,
            "s_cuts": p.s_cuts,
            **p.input_kwargs(),
        }

    @cached_property
    def migration(self) -> Migration:
        """:func:`winback.migration` between ``previous_as_of`` and ``as_of``."""
        if self.previous_as_of is None:
            raise WinbackError("the data spans too short a time for two snapshots")
        return migration(
            self.data, as_of=[self.previous_as_of, self.as_of], **self.scoring_kwargs()
        )

    @cached_property
    def cold_start(self) -> pl.DataFrame:
        """:func:`winback.silence` at ``as_of`` with the cold-start columns
        (docs/methods.md#cold-start)."""
        from winback.silence import silence

        table: pl.DataFrame = silence(
            self.data, as_of=self.as_of, cold_start=True, **self.scoring_kwargs()
        )
        return table

    @cached_property
    def holdout_summary(self) -> pl.DataFrame:
        """:func:`winback.summary` in weeks with the calibration / holdout split."""
        if self.calibration_end is None:
            raise WinbackError("the data spans too short a time for a calibration split")
        table: pl.DataFrame = summary(
            self.data,
            calibration_end=self.calibration_end,
            holdout_end=self.as_of,
            unit="W",
            resolution=self.params.resolution,
            **self.params.input_kwargs(),
        )
        return table

    @cached_property
    def fitted_models(self) -> dict[str, Any]:
        """The requested purchase models fitted on ``holdout_summary``: name → model, or the
        reason (a string) when it could not be fitted."""
        from winback import models

        fitted: dict[str, Any] = {}
        for name in self.params.models:
            class_name, _ = MODEL_NAMES[name]
            try:
                fitted[name] = getattr(models, class_name)().fit(self.holdout_summary)
            except WinbackError as exc:
                fitted[name] = str(exc)
        return fitted

    @cached_property
    def rfm(self) -> pl.DataFrame:
        """``winback.rfm`` at ``as_of`` (when the package provides it)."""
        return call_capability("rfm", self.data, as_of=self.as_of, **self.scoring_kwargs())

    @cached_property
    def value_result(self) -> Any:
        """What ``winback.value`` at ``as_of`` returned (when the package provides it)."""
        return call_capability_raw("value", self.data, as_of=self.as_of, **self.scoring_kwargs())

    @property
    def value(self) -> pl.DataFrame:
        """The per-customer table of :attr:`value_result`."""
        return as_frame("value", self.value_result)

    def parameters_used(self) -> dict[str, Any]:
        p = self.params

        def show(value: Any) -> str:
            if value is None:
                return "—"
            if isinstance(value, datetime):
                return describe_moment(value)
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, tuple | list):
                return ", ".join(str(v) for v in value) if value else "—"
            return str(value)

        return {
            "as_of": show(self.as_of),
            "previous_as_of (migration)": show(self.previous_as_of),
            "calibration_end (models)": show(self.calibration_end),
            "holdout_end (models)": show(self.as_of),
            "models": show(p.models),
            "top_n": show(p.top_n),
            "min_occasions": show(p.min_occasions),
            "resolution": show(p.resolution),
            "trf_cuts": show(p.trf_cuts),
            "s_cuts": show(p.s_cuts),
            "customer_col": show(p.customer_col),
            "time_col": show(p.time_col),
            "amount_col": show(p.amount_col),
            "on_invalid": show(p.on_invalid),
            "winback version": __version__,
        }


def call_capability_raw(name: str, *args: Any, **kwargs: Any) -> Any:
    """Calls ``winback.<name>`` (one of :data:`CAPABILITIES`) with the keyword arguments its
    signature accepts."""
    function = CAPABILITIES[name]
    try:
        parameters = dict(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        parameters = {}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    return function(*args, **kwargs)


def as_frame(name: str, result: Any) -> pl.DataFrame:
    """A capability's result as a frame: a DataFrame, or one held by the result in a usual
    attribute."""
    if isinstance(result, pl.DataFrame):
        return result
    if isinstance(result, tuple) and result and isinstance(result[0], pl.DataFrame):
        return result[0]
    for attribute in ("customers", "table", "frame", "scores", "targets"):
        value = getattr(result, attribute, None)
        if isinstance(value, pl.DataFrame):
            return value
    raise WinbackError(f"winback.{name} returned a {type(result).__name__}, not a table")


def call_capability(name: str, *args: Any, **kwargs: Any) -> pl.DataFrame:
    """Calls ``winback.<name>`` with the keyword arguments its signature accepts and returns its
    result as a frame (a DataFrame, or one held by the result in a usual attribute)."""
    return as_frame(name, call_capability_raw(name, *args, **kwargs))
