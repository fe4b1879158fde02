"""The in-process scorer (docs/methods.md#scorer): :class:`Scorer`, built once from saved models,
scores customers' histories — silence, P(alive), expected purchases, spend and value, value
level, quadrant and the recommended strategy — without re-reading data or re-fitting models.

:meth:`Scorer.score` takes many customers (any input :func:`winback.prepare` accepts) and runs the
batch functions' kernels: :func:`winback.silence`'s and :func:`winback.summary`'s Rust kernels,
the models' prediction methods, :func:`winback.quadrant`'s expressions with fixed cuts and the
rules engine of :mod:`winback.segments` (for rules reading only categorical columns, its answers
for every combination, computed at construction, joined to the rows). :meth:`Scorer.score_one`
scores one customer from numpy arrays through the same per-customer kernels
(``_winback.score_customer``: the same Rust functions on the same occasions) and the models'
formulas on floats with their own ufuncs (or their array methods), so both paths give the batch
functions' bits (``tests/test_scorer.py`` checks this on random histories).

A :class:`Scorer` is immutable (its models are private copies; attributes cannot be set) and holds
no per-call state, so one instance serves any number of threads; the kernels release the GIL.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback import _io, _winback
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    HORIZON_PERIODS,
    MIN_OCCASIONS,
    ON_INVALID,
    PERIOD,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    AsOf,
    OnInvalid,
)
from winback.campaign import VALUE_LEVELS
from winback.errors import WinbackConfigError, WinbackInputError
from winback.rfm import QUADRANT_LABELS
from winback.segments import RuleSet, load_rules
from winback.silence import (
    BAND_LABELS,
    GROUP_LABELS,
    SILENCE_COLUMNS,
    STATUS_LABELS,
    check_parameters,
    score_prepared,
)
from winback.summary import check_period, summary

if TYPE_CHECKING:
    from winback.models import (
        BaseModel,
        BetaGeoModel,
        GammaGammaModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
    )

    CountModel = BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel

__all__ = ["SCORE_COLUMNS", "CustomerScore", "Scorer", "ValueSettings"]

FloatArray = NDArray[np.float64]

#: Columns :meth:`Scorer.score` adds to :data:`~winback.silence.SILENCE_COLUMNS`, in order.
MODEL_COLUMNS: Final = (
    "frequency",
    "recency",
    "T",
    "p_alive",
    "expected_purchases",
    "expected_mean_spend",
    "expected_spend",
    "expected_value",
    "value_level",
    "quadrant",
    "strategy",
)
#: Columns of :meth:`Scorer.score`, in order.
SCORE_COLUMNS: Final = (*SILENCE_COLUMNS, *MODEL_COLUMNS)
#: Days in one period of :class:`ValueSettings` (a month is a twelfth of a Julian year).
_PERIOD_DAYS: Final = {"week": 7.0, "month": 365.25 / 12.0, "quarter": 365.25 / 4.0}
_UNIT_DAYS: Final = {"D": 1.0, "W": 7.0}
_MICROS_PER_DAY: Final = 86_400_000_000
_EPOCH_DAY: Final = date(1970, 1, 1)
_EPOCH: Final = datetime(1970, 1, 1)
_MICROS: Final = np.dtype("datetime64[us]")
#: NaT as an int64: the least int64.
_NAT: Final = int(np.iinfo(np.int64).min)
#: Columns the strategy rules may read for the one-customer lookup table: each has a handful of
#: values, so the rules are applied once, at construction, to every combination.
_CATEGORIES: Final = {
    "status": STATUS_LABELS,
    "rank_ratio_group": GROUP_LABELS,
    "silence_band": BAND_LABELS,
    "value_level": VALUE_LEVELS,
    "quadrant": QUADRANT_LABELS,
}
#: :func:`_purchase_dates`' marker of a given ``as_of`` (no customer to name).
_NOT_NEEDED: Final = object()
_PURCHASE_MODELS: Final = ("BetaGeoModel", "ModifiedBetaGeoModel", "ParetoNBDModel")


@dataclass(frozen=True)
class ValueSettings:
    """How the scorer turns predictions into value (docs/methods.md#scorer-value).

    Attributes
    ----------
    horizon : periods the expected purchases, spend and value run over (≥ 1).
    period : ``"month"`` (a twelfth of 365.25 days), ``"week"``, ``"quarter"`` or ``"Nd"``.
    discount_rate : per period, > −1; 0 (the default) sums the horizon undiscounted (one model
        evaluation), otherwise each period's expected purchases are discounted by (1 + d)^k.
    margin : share of spend that is value, in [0, 1].
    value_levels : ``(mid, high)``: expected value at or above ``high`` is ``"high"``, at or
        above ``mid`` ``"mid"``, else ``"low"`` (fixed cuts, so a customer's level does not depend
        on who else is scored); None: ``value_level`` is null.
    quadrant_cuts : ``(contribution_cut, loyalty_cut)`` of :func:`winback.quadrant`'s default
        quadrant (M × occasions per year); None: ``quadrant`` is null.
    """

    horizon: int = HORIZON_PERIODS
    period: str = PERIOD
    discount_rate: float = 0.0
    margin: float = 1.0
    value_levels: tuple[float, float] | None = None
    quadrant_cuts: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        """Checks every setting; a bad one is a ``WinbackConfigError`` naming the field."""

        def fail(name: str, problem: str) -> WinbackConfigError:
            return WinbackConfigError(f"value setting {name!r}: {problem}")

        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise fail("horizon", f"{horizon!r} must be a whole number of periods ≥ 1")
        if not isinstance(self.period, str):
            raise fail("period", f"{self.period!r} must be month, week, quarter or Nd")
        try:
            check_period(self.period)
        except WinbackConfigError as exc:
            raise fail("period", str(exc)) from None
        rate = _number(self.discount_rate, "discount_rate", fail)
        if not rate > -1.0:
            raise fail("discount_rate", f"{rate!r} must be a number > -1")
        margin = _number(self.margin, "margin", fail)
        if not 0.0 <= margin <= 1.0:
            raise fail("margin", f"{margin!r} must be between 0 and 1")
        for name in ("value_levels", "quadrant_cuts"):
            cuts = getattr(self, name)
            if cuts is None:
                continue
            if isinstance(cuts, str) or not isinstance(cuts, Sequence) or len(cuts) != 2:
                raise fail(name, f"{cuts!r} must be two numbers")
            pair = tuple(_number(c, name, fail) for c in cuts)
            if name == "value_levels" and not pair[0] <= pair[1]:
                raise fail(name, f"{cuts!r}: the mid cut must be ≤ the high cut")
            object.__setattr__(self, name, pair)
        object.__setattr__(self, "discount_rate", rate)
        object.__setattr__(self, "margin", margin)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ValueSettings:
        """Settings from a mapping (a JSON/TOML table); unknown keys are errors."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in names]
        if unknown:
            raise WinbackConfigError(
                f"value setting {unknown[0]!r} is unknown; settings: {', '.join(names)}"
            )
        return cls(**dict(values))

    def period_days(self) -> float:
        """Length of one period in days."""
        kind = check_period(self.period)
        return float(kind) if isinstance(kind, int) else _PERIOD_DAYS[kind]


def _number(value: Any, name: str, fail: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(name, f"{value!r} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise fail(name, f"{value!r} must be a finite number")
    return number


@dataclass(frozen=True)
class CustomerScore:
    """One customer's row of :meth:`Scorer.score` (without ``customer_id``), as plain Python
    values: what :meth:`Scorer.score_one` returns. Field meanings: :data:`SCORE_COLUMNS`
    (docs/methods.md#scorer)."""

    status: str
    n_occasions: int
    first_ts: date | datetime
    last_ts: date | datetime
    tenure_days: float
    recency_days: float
    max_gap_days: float | None
    mean_gap_days: float | None
    median_gap_days: float | None
    recency_rank: int | None
    rank_ratio: float | None
    silence_score: float | None
    rank_ratio_group: str | None
    silence_band: str | None
    total_amount: float | None
    mean_amount: float | None
    frequency: int
    recency: float
    T: float
    p_alive: float
    expected_purchases: float
    expected_mean_spend: float | None
    expected_spend: float | None
    expected_value: float | None
    value_level: str | None
    quadrant: str | None
    strategy: str | None

    @classmethod
    def _of(cls, values: dict[str, Any]) -> CustomerScore:
        """A score from a dict of every field in order (taken over, not copied), without the
        frozen ``__init__``'s ``object.__setattr__`` per field (a tenth of
        :meth:`Scorer.score_one`'s time)."""
        score = object.__new__(cls)
        score.__dict__.update(values)
        return score

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, in order (JSON-ready but for the two timestamps); every
        value is immutable, so a shallow copy is a full one."""
        return dict(self.__dict__)


def _copy(model: BaseModel, source: str) -> BaseModel:
    """A private copy of a fitted model, so nobody can change the scorer's parameters."""
    if not model.is_fitted:
        raise WinbackConfigError(f"{source}: the model is not fitted; fit or load it first")
    return type(model).from_dict(model.to_dict(), source=source)


def _pick(
    found: Mapping[str, BaseModel], classes: Sequence[str], chosen: str | None, what: str
) -> tuple[str, BaseModel] | None:
    candidates = {k: m for k, m in found.items() if type(m).__name__ in classes}
    if chosen is not None:
        if chosen not in found:
            raise WinbackConfigError(
                f"{what}={chosen!r} is not one of the models ({', '.join(found) or 'none'})"
            )
        if chosen not in candidates:
            raise WinbackConfigError(
                f"{what}={chosen!r} is a {type(found[chosen]).__name__}; the scorer's {what} must "
                f"be one of {', '.join(classes)}"
            )
        return chosen, candidates[chosen]
    if len(candidates) > 1:
        raise WinbackConfigError(
            f"several models could be the {what} ({', '.join(candidates)}); choose one with "
            f"{what}=..."
        )
    return next(iter(candidates.items()), None)


class Scorer:
    """Scores customers with saved models, a strategy map and value settings
    (docs/methods.md#scorer): immutable and thread-safe.

    Parameters
    ----------
    models
        Fitted models: a mapping name → model (the names ``winback fit`` gives its files:
        ``bgnbd``, ``mbgnbd``, ``pareto``, ``gg``) or a sequence. One purchase model
        (:class:`~winback.models.BetaGeoModel`, :class:`~winback.models.ModifiedBetaGeoModel` or
        :class:`~winback.models.ParetoNBDModel`) is required; a
        :class:`~winback.models.GammaGammaModel` adds spend and value. Other models are ignored.
        The models must carry their time unit and resolution (saved by ``winback fit``).
    rules
        The strategy map: a rules file whose classifier writes ``strategy`` (preset name, path
        or :class:`~winback.RuleSet`; default the ``"strategy"`` preset of
        :func:`winback.campaign`). It may read any column of :data:`SCORE_COLUMNS`.
    value
        :class:`ValueSettings` (or a mapping of its fields): horizon, period, discount, margin,
        value-level and quadrant cuts.
    purchase_model, spend_model
        Which model to use when ``models`` holds several of a kind (by name).
    min_occasions, trf_cuts, s_cuts
        Silence scoring's settings (:func:`winback.silence`).

    Raises
    ------
    WinbackConfigError
        Anything invalid, naming the file, model or field: no purchase model, an unfitted model,
        a model without its unit, models of different resolutions, a rules file without a
        ``strategy`` classifier or reading a column the scorer does not produce, a bad setting.

    Examples
    --------
    >>> import numpy as np, winback
    >>> from winback.datasets import load_cdnow
    >>> from winback.models import BetaGeoModel, GammaGammaModel
    >>> stats = winback.summary(load_cdnow(), as_of="1998-06-30", return_info=True)
    >>> scorer = winback.Scorer(
    ...     models={"bgnbd": BetaGeoModel().fit(stats), "gg": GammaGammaModel().fit(stats)},
    ...     value={"horizon": 12, "value_levels": (20.0, 100.0)})
    >>> days = np.array(["1997-01-03", "1997-02-10", "1997-05-01"], dtype="datetime64[D]")
    >>> one = scorer.score_one(days, np.array([30.0, 12.5, 40.0]), as_of="1998-06-30")
    >>> one.rank_ratio_group, one.silence_band, round(one.p_alive, 3), one.strategy
    ('e', 'deep_silent', 0.254, 'no_action')
    """

    __slots__ = (
        "_categorical_strategy",
        "_count",
        "_fast_count",
        "_fast_spend",
        "_frozen",
        "_horizons",
        "_min_occasions",
        "_names",
        "_resolution",
        "_resolution_us",
        "_rules",
        "_s_cuts",
        "_spend",
        "_strategy_columns",
        "_strategy_frame",
        "_strategy_labels",
        "_strategy_table",
        "_trf_cuts",
        "_unit",
        "_unit_us",
        "_value",
        "_whole_days",
    )
    _categorical_strategy: bool
    _count: CountModel
    _fast_count: _BetaGeoFloats | None
    _fast_spend: tuple[float, float, float] | None
    _frozen: bool
    _horizons: tuple[float, ...]
    _min_occasions: int
    _names: tuple[str, str | None]
    _resolution: str
    _resolution_us: int
    _rules: RuleSet
    _s_cuts: tuple[float, float]
    _spend: GammaGammaModel | None
    _strategy_columns: tuple[str, ...]
    _strategy_frame: pl.DataFrame | None
    _strategy_labels: pl.DataType
    _strategy_table: dict[tuple[str | None, ...], str | None]
    _trf_cuts: tuple[float, float, float, float]
    _unit: str
    _unit_us: int
    _value: ValueSettings
    _whole_days: bool

    def __init__(
        self,
        models: Mapping[str, BaseModel] | Sequence[BaseModel],
        *,
        rules: str | Path | RuleSet = "strategy",
        value: ValueSettings | Mapping[str, Any] | None = None,
        purchase_model: str | None = None,
        spend_model: str | None = None,
        min_occasions: int = MIN_OCCASIONS,
        trf_cuts: Sequence[float] = TRF_CUTS,
        s_cuts: Sequence[float] = S_CUTS,
    ) -> None:
        from winback.models import BaseModel

        if isinstance(models, Mapping):
            named = {str(k): m for k, m in models.items()}
        elif isinstance(models, Sequence) and not isinstance(models, str):
            named = {f"model {i}": m for i, m in enumerate(models)}
        else:
            raise WinbackConfigError(
                f"models must be a mapping name → fitted model or a list of models, not "
                f"{type(models).__name__}"
            )
        for name, model in named.items():
            if not isinstance(model, BaseModel):
                raise WinbackConfigError(
                    f"model {name!r} is a {type(model).__name__}, not a winback model"
                )
        named = {k: _copy(m, f"model {k!r}") for k, m in named.items()}
        self._init(
            named, rules, value, purchase_model, spend_model, min_occasions, trf_cuts, s_cuts
        )

    def _init(
        self,
        named: dict[str, BaseModel],
        rules: str | Path | RuleSet,
        value: ValueSettings | Mapping[str, Any] | None,
        purchase_model: str | None,
        spend_model: str | None,
        min_occasions: int,
        trf_cuts: Sequence[float],
        s_cuts: Sequence[float],
    ) -> None:
        resolution_us, trf, s = check_parameters(
            "1d", _whole(min_occasions, "min_occasions"), trf_cuts, s_cuts, None
        )
        del resolution_us
        picked = _pick(named, _PURCHASE_MODELS, purchase_model, "purchase_model")
        if picked is None:
            raise WinbackConfigError(
                f"no purchase model among the models ({', '.join(named) or 'none'}): the scorer "
                "needs a BG/NBD, MBG/NBD or Pareto/NBD model (winback fit -m bgnbd)"
            )
        count_name, count = picked
        spend = _pick(named, ("GammaGammaModel",), spend_model, "spend_model")
        if count.unit_ is None:
            raise WinbackConfigError(
                f"{count_name}: field 'unit' is missing: the model's time unit is unknown (a file "
                "written before winback saved it); refit it with winback fit"
            )
        if count.resolution_ is None:
            raise WinbackConfigError(
                f"{count_name}: field 'resolution' is missing; refit it with winback fit"
            )
        resolution = count.resolution_
        if _io.parse_buckets(resolution)[1] != 0:
            # The scorer's silence and summary passes bucket from the epoch; calendar weeks
            # would need the shifted cut-offs of winback.summary (docs/methods.md#occasions).
            raise WinbackConfigError(
                f"{count_name}: field 'resolution' is {resolution!r} (calendar weeks); the "
                "scorer reads models fitted on duration buckets: refit with resolution='1d' "
                "or '7d'"
            )
        if spend is not None and spend[1].resolution_ is not None:
            other = spend[1].resolution_
            if _io.parse_resolution(other) != _io.parse_resolution(resolution):
                raise WinbackConfigError(
                    f"{spend[0]}: field 'resolution' is {other!r} but the purchase model "
                    f"{count_name} has {resolution!r}; fit both on one summary"
                )
        settings = (
            value
            if isinstance(value, ValueSettings)
            else ValueSettings()
            if value is None
            else ValueSettings.from_mapping(value)
            if isinstance(value, Mapping)
            else None
        )
        if settings is None:
            raise WinbackConfigError(
                "value must be ValueSettings or a mapping of its fields, not "
                f"{type(value).__name__}"
            )
        unit_days = _UNIT_DAYS[count.unit_]
        step = settings.period_days() / unit_days
        if settings.discount_rate == 0.0:
            horizons: tuple[float, ...] = (settings.horizon * step,)
        else:
            horizons = tuple(k * step for k in range(1, settings.horizon + 1))
        rule_set = load_rules(rules)
        rule_set.classifier("strategy")  # raises when no classifier writes "strategy"
        object.__setattr__(self, "_names", (count_name, spend[0] if spend else None))
        object.__setattr__(self, "_count", count)
        object.__setattr__(self, "_spend", spend[1] if spend else None)
        object.__setattr__(self, "_unit", count.unit_)
        object.__setattr__(self, "_unit_us", int(unit_days) * _MICROS_PER_DAY)
        object.__setattr__(self, "_resolution", resolution)
        object.__setattr__(self, "_resolution_us", _io.parse_resolution(resolution))
        object.__setattr__(self, "_whole_days", self._resolution_us % _MICROS_PER_DAY == 0)
        object.__setattr__(self, "_min_occasions", int(min_occasions))
        object.__setattr__(self, "_trf_cuts", (trf[0], trf[1], trf[2], trf[3]))
        object.__setattr__(self, "_s_cuts", (s[0], s[1]))
        object.__setattr__(self, "_value", settings)
        object.__setattr__(self, "_horizons", horizons)
        object.__setattr__(self, "_rules", rule_set)
        object.__setattr__(self, "_fast_count", _scalar_count_params(count))
        object.__setattr__(self, "_fast_spend", _scalar_spend_params(spend[1] if spend else None))
        # A dry run on an empty frame of the output's schema: unknown columns, wrong value
        # types in the rules are found now, not on the first request.
        whole_days = self._resolution_us % _MICROS_PER_DAY == 0
        labelled = rule_set.apply(_empty_scores(whole_days))
        labels = labelled.schema["strategy"]
        object.__setattr__(self, "_strategy_labels", labels)
        inputs = {c for item in rule_set.classifiers for c in item.inputs}
        categorical = inputs <= set(_CATEGORIES) | (inputs - set(SCORE_COLUMNS))
        columns = sorted(inputs & set(_CATEGORIES))
        object.__setattr__(self, "_categorical_strategy", categorical)
        object.__setattr__(self, "_strategy_columns", tuple(columns))
        object.__setattr__(self, "_strategy_table", self._lookup_table(columns))
        object.__setattr__(self, "_strategy_frame", self._lookup_frame(columns))
        object.__setattr__(self, "_frozen", True)

    def _lookup_table(self, columns: list[str]) -> dict[tuple[str | None, ...], str | None]:
        """The strategy of every combination of the categorical columns the rules read, by the
        rules engine itself (used by :meth:`score_one`)."""
        if not self._categorical_strategy:
            return {}
        combos = list(itertools.product(*[(*_CATEGORIES[c], None) for c in columns]))
        frame = _empty_scores(self._resolution_us % _MICROS_PER_DAY == 0).clear(len(combos))
        frame = frame.with_columns(
            pl.Series(c, [combo[i] for combo in combos], dtype=frame.schema[c])
            for i, c in enumerate(columns)
        )
        strategies = self._rules.apply(frame).get_column("strategy").cast(pl.String).to_list()
        return dict(zip(combos, strategies, strict=True))

    def _lookup_frame(self, columns: list[str]) -> pl.DataFrame | None:
        """:meth:`_lookup_table` as a frame to join (used by :meth:`score`), the strategy in the
        rules engine's dtype; None when the rules read a number or no column at all."""
        if not self._categorical_strategy or not columns:
            return None
        schema = _empty_scores(self._resolution_us % _MICROS_PER_DAY == 0).schema
        combos = list(self._strategy_table.items())
        return pl.DataFrame(
            [
                *(
                    pl.Series(c, [key[i] for key, _ in combos], dtype=schema[c])
                    for i, c in enumerate(columns)
                ),
                pl.Series("strategy", [label for _, label in combos], dtype=pl.String).cast(
                    self._strategy_labels
                ),
            ]
        )

    def __setattr__(self, name: str, value: Any) -> None:
        """Refused: a scorer never changes (threads share it)."""
        raise AttributeError(f"a Scorer is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        """Refused: a scorer never changes."""
        raise AttributeError(f"a Scorer is immutable; cannot delete {name!r}")

    def __repr__(self) -> str:
        """The models' names, the unit, resolution, rules and value settings."""
        count, spend = self._names
        return (
            f"Scorer(purchase_model={count!r}, spend_model={spend!r}, unit={self._unit!r}, "
            f"resolution={self._resolution!r}, rules={self._rules.name!r}, value={self._value})"
        )

    # -- construction from files ------------------------------------------------------------------
    @classmethod
    def from_dir(
        cls,
        path: str | Path,
        *,
        rules: str | Path | RuleSet = "strategy",
        value: ValueSettings | Mapping[str, Any] | None = None,
        purchase_model: str | None = None,
        spend_model: str | None = None,
        min_occasions: int = MIN_OCCASIONS,
        trf_cuts: Sequence[float] = TRF_CUTS,
        s_cuts: Sequence[float] = S_CUTS,
    ) -> Scorer:
        """A scorer from the directory ``winback fit`` writes (``<name>.json`` per model; names
        as in ``purchase_model``/``spend_model``); the other arguments as for :class:`Scorer`.
        Every file is validated (:func:`winback.models.load`): errors name the file and field."""
        from winback.models import load

        folder = Path(path)
        if not folder.is_dir():
            raise WinbackConfigError(
                f"model directory {str(folder)!r} does not exist or is not a directory"
            )
        files = sorted(folder.glob("*.json"))
        if not files:
            raise WinbackConfigError(
                f"model directory {str(folder)!r} holds no .json model files (winback fit -o DIR)"
            )
        named = {f.stem: load(f) for f in files}
        scorer = cls.__new__(cls)
        scorer._init(
            named, rules, value, purchase_model, spend_model, min_occasions, trf_cuts, s_cuts
        )
        return scorer

    # -- what it holds ----------------------------------------------------------------------------
    @property
    def purchase_model(self) -> CountModel:
        """The purchase model (a private copy: changing it does not change the scorer's)."""
        return _copy(self._count, "the purchase model")  # type: ignore[return-value]

    @property
    def spend_model(self) -> GammaGammaModel | None:
        """The spend model, or None."""
        return None if self._spend is None else _copy(self._spend, "the spend model")  # type: ignore[return-value]

    @property
    def value_settings(self) -> ValueSettings:
        """The value settings."""
        return self._value

    @property
    def rules(self) -> RuleSet:
        """The strategy rules."""
        return self._rules

    @property
    def unit(self) -> str:
        """The time unit of ``recency`` and ``T`` (the purchase model's)."""
        return self._unit

    @property
    def resolution(self) -> str:
        """The occasion resolution (the purchase model's)."""
        return self._resolution

    def describe(self) -> dict[str, Any]:
        """The loaded models and settings as plain data (for logs and a models endpoint)."""
        count, spend = self._names
        return {
            "purchase_model": {"name": count, **_model_facts(self._count)},
            "spend_model": None if spend is None else {"name": spend, **_model_facts(self._spend)},
            "unit": self._unit,
            "resolution": self._resolution,
            "rules": self._rules.name,
            "value": asdict(self._value),
            "min_occasions": self._min_occasions,
            "trf_cuts": list(self._trf_cuts),
            "s_cuts": list(self._s_cuts),
        }

    # -- scoring ----------------------------------------------------------------------------------
    def score(
        self,
        data: Any,
        *,
        as_of: AsOf | None = None,
        customer_col: str = CUSTOMER_COL,
        time_col: str = TIME_COL,
        amount_col: str | None = AMOUNT_COL,
        tz: str | None = None,
        on_invalid: OnInvalid = ON_INVALID,
    ) -> pl.DataFrame:
        """Score many customers' histories, one row per customer (docs/methods.md#scorer).

        Parameters
        ----------
        data
            Transactions: anything :func:`winback.prepare` accepts, or its result.
        as_of
            The snapshot time (default: the end of the latest purchase's day in ``data``), by
            the rule of :func:`winback.silence` (docs/methods.md#as-of).
        customer_col, time_col, amount_col, tz, on_invalid
            As in :func:`winback.prepare` (ignored for a prepared input).

        Returns
        -------
        polars.DataFrame
            :data:`SCORE_COLUMNS`, sorted by ``customer_id``: :func:`winback.silence`'s columns,
            the model inputs ``frequency``, ``recency``, ``T`` (in :attr:`unit`), ``p_alive``,
            ``expected_purchases`` over the horizon, ``expected_mean_spend`` (per occasion),
            ``expected_spend`` (over the horizon), ``expected_value``, ``value_level``,
            ``quadrant`` and ``strategy``. The money columns are null without amounts or a spend
            model; ``value_level`` and ``quadrant`` without their cuts.
        """
        prepared = _io.prepare(
            data,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            tz=tz,
            on_invalid=on_invalid,
        )
        as_of_us = _io.snapshot_end(prepared, as_of)
        silent, _, _ = score_prepared(
            prepared,
            as_of_us=as_of_us,
            resolution_us=self._resolution_us,
            min_occasions=self._min_occasions,
            trf_cuts=self._trf_cuts,
            s_cuts=self._s_cuts,
        )
        stats = summary(
            prepared,
            as_of=as_of,
            unit="W" if self._unit == "W" else "D",
            resolution=self._resolution,
        )
        ids = silent.get_column("customer_id")
        if not stats.get_column("customer_id").equals(ids):  # pragma: no cover - kernels agree
            raise WinbackInputError("the silence and summary kernels disagree on the customers")
        x = stats.get_column("frequency").cast(pl.Float64).to_numpy()
        t_x = stats.get_column("recency").to_numpy()
        T = stats.get_column("T").to_numpy()
        money = prepared.has_amount and self._spend is not None
        spend_x = stats.get_column("spend_frequency").cast(pl.Float64).to_numpy() if money else None
        spend_z = stats.get_column("monetary_value").to_numpy() if money else None
        p_alive, purchases, mean_spend, spend, value = self._predict(x, t_x, T, spend_x, spend_z)
        _check_finite(ids, [p_alive, purchases, mean_spend, spend, value])
        frame = silent.with_columns(
            stats.get_column("frequency"),
            stats.get_column("recency"),
            stats.get_column("T"),
            pl.Series("p_alive", p_alive),
            pl.Series("expected_purchases", purchases),
            _optional("expected_mean_spend", mean_spend),
            _optional("expected_spend", spend),
            _optional("expected_value", value),
        )
        frame = frame.with_columns(self._value_level(pl.col("expected_value")).alias("value_level"))
        frame = self._quadrant(frame)
        table = self._strategy_frame
        if table is None:
            return self._rules.apply(frame).select(SCORE_COLUMNS)
        # The rules read only categorical columns: their answer for every combination was
        # computed by the rules engine at construction; a join looks each row's up.
        columns = list(self._strategy_columns)
        found = frame.join(table, on=columns, how="left", nulls_equal=True, maintain_order="left")
        return found.select(SCORE_COLUMNS)

    def score_one(
        self,
        timestamps: Any,
        amounts: Any | None = None,
        *,
        as_of: AsOf | None = None,
        customer_id: int | str | None = None,
    ) -> CustomerScore:
        """Score one customer from arrays, without frames (docs/methods.md#scorer).

        ``timestamps``: their purchase times as a numpy ``datetime64`` array (or anything
        ``numpy.asarray(..., dtype="datetime64[us]")`` reads: dates, naive datetimes, ISO text),
        local wall-clock times as in :func:`winback.prepare`; ``amounts``: one number per purchase
        (optional); ``as_of``: as in :meth:`score` (default: the end of the day of the customer's
        latest purchase; pass it in a service); ``customer_id``: named in error messages.
        Equals the customer's row of :meth:`score` on the same history, bit for bit.

        Raises :class:`~winback.WinbackInputError` for no purchase, a missing time, a non-finite
        amount or arrays of different lengths, and :class:`~winback.WinbackConfigError` for an
        ``as_of`` before the first purchase (as :func:`winback.silence` does).
        """
        times, first_us = _micros(timestamps)
        values = None
        if amounts is not None:
            values = np.ascontiguousarray(amounts, dtype=np.float64)
            if values.ndim != 1 or values.shape[0] != times.shape[0]:
                raise WinbackInputError(
                    f"amounts has {values.size} values but timestamps has {times.shape[0]}: give "
                    "one amount per purchase"
                )
            finite = np.isfinite(values)
            # argmin of the mask: the first non-finite amount, if any (cheaper than .all()).
            at = int(finite.argmin()) if finite.shape[0] else 0
            if finite.shape[0] and not finite[at]:
                raise WinbackInputError(
                    f"amount {values[at]!r} at position {at} is NaN or infinite; every amount "
                    "must be a finite number"
                )
        if first_us is None:
            raise WinbackInputError("no purchases to score: timestamps is empty")
        # Text and naive dates/datetimes are remembered; an aware datetime equals its instant in
        # any zone but reads as its own wall clock, so it is converted each time.
        memo = isinstance(as_of, str) or (
            isinstance(as_of, date) and getattr(as_of, "tzinfo", None) is None
        )
        cut = _as_of_micros(as_of) if memo else None
        if cut is not None and cut >= first_us:
            as_of_us = cut
        else:  # the default as_of, or the refusal of one before the first purchase
            dates = _purchase_dates(times, customer_id if as_of is None else _NOT_NEEDED)
            as_of_us = _io.snapshot_end_at(as_of, None, dates)
        row = _winback.score_customer(
            times,
            values,
            as_of_us=as_of_us,
            resolution_us=self._resolution_us,
            min_occasions=self._min_occasions,
            trf_cuts=self._trf_cuts,
            s_cuts=self._s_cuts,
            unit_us=self._unit_us,
        )
        if row is None:
            raise WinbackInputError(
                f"no purchase at or before as_of={as_of!r}: the customer has no history to score"
            )
        return CustomerScore._of(self._row_values(row, values is not None))

    def _score_checked(
        self, times_us: Any, amounts: Any | None, as_of: str
    ) -> dict[str, Any] | None:
        """:meth:`score_one`'s fields as a dict (in order), for inputs a caller has checked
        already: what the service's one-customer requests take (docs/methods.md#scorer).

        ``times_us``: int64 µs since the epoch (local wall clock), any buffer of them, no NaT;
        ``amounts``: a float64 buffer of finite values, one per purchase, or None; ``as_of``: a
        naive ISO date or datetime. None where :meth:`score_one` would refuse the customer (no
        purchase at or before ``as_of``): the caller then calls it for its error. Skips
        :meth:`score_one`'s conversions and checks, whose numpy calls are a share of a
        one-customer request's cost; the same figures, bit for bit."""
        row = _winback.score_customer(
            times_us,
            amounts,
            as_of_us=_as_of_micros(as_of),
            resolution_us=self._resolution_us,
            min_occasions=self._min_occasions,
            trf_cuts=self._trf_cuts,
            s_cuts=self._s_cuts,
            unit_us=self._unit_us,
        )
        return None if row is None else self._row_values(row, amounts is not None)

    def _row_values(self, row: tuple[Any, ...], has_amount: bool) -> dict[str, Any]:
        """The fields of :class:`CustomerScore` (in order) from ``_winback.score_customer``'s
        row: the models' predictions, value level, quadrant and strategy added."""
        (status, n, first_us, last_us, tenure, recency_days, max_gap, mean_gap, median_gap) = row[
            :9
        ]
        rank, ratio, score, group, band, total, mean_amount, x, t_x, T, z, spend_x = row[9:]
        money = has_amount and self._spend is not None
        fast = self._predict_scalar(x, t_x, T, spend_x if money else None, z if money else None)
        if fast is None:  # a model without a scalar path, or outside the closed forms' range
            predicted = self._predict(
                np.array([x], dtype=np.float64),
                np.array([t_x], dtype=np.float64),
                np.array([T], dtype=np.float64),
                np.array([spend_x], dtype=np.float64) if money else None,
                np.array([z], dtype=np.float64) if money else None,
            )
            if not all(math.isfinite(v[0]) for v in predicted if v is not None):
                _check_finite(None, predicted)
            alive_a, purchases_a, mean_a, spend_a, value_a = predicted
            fast = (
                float(alive_a[0]),
                float(purchases_a[0]),
                None if mean_a is None else float(mean_a[0]),
                None if spend_a is None else float(spend_a[0]),
                None if value_a is None else float(value_a[0]),
            )
        p_alive, purchases, mean_spend, spend, value = fast
        scored = status == 0
        expected_value = value
        level = self._level_of(expected_value)
        total_amount = float(total) if has_amount else None
        quadrant_label = self._quadrant_of(total_amount, n, tenure)
        result = {
            "status": STATUS_LABELS[status],
            "n_occasions": n,
            "first_ts": self._moment(first_us),
            "last_ts": self._moment(last_us),
            "tenure_days": tenure,
            "recency_days": recency_days,
            "max_gap_days": max_gap if scored else None,
            "mean_gap_days": mean_gap if scored else None,
            "median_gap_days": median_gap if scored else None,
            "recency_rank": rank if scored else None,
            "rank_ratio": ratio if scored else None,
            "silence_score": score if scored else None,
            "rank_ratio_group": GROUP_LABELS[group] if scored else None,
            "silence_band": BAND_LABELS[band] if scored else None,
            "total_amount": total_amount,
            "mean_amount": float(mean_amount) if has_amount else None,
            "frequency": x,
            "recency": t_x,
            "T": T,
            "p_alive": p_alive,
            "expected_purchases": purchases,
            "expected_mean_spend": mean_spend,
            "expected_spend": spend,
            "expected_value": expected_value,
            "value_level": level,
            "quadrant": quadrant_label,
            "strategy": None,
        }
        result["strategy"] = self._strategy_of(result)
        return result

    # -- the shared steps -------------------------------------------------------------------------
    def _predict(
        self,
        x: FloatArray,
        t_x: FloatArray,
        T: FloatArray,
        spend_x: FloatArray | None,
        spend_z: FloatArray | None,
    ) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None, FloatArray | None]:
        """P(alive), expected purchases, spend and value (docs/methods.md#scorer-value) on
        arrays, through the models' array methods; the same operations for one customer and for
        many, so the bits agree."""
        count = self._count
        p_alive = count.probability_alive_at(x, t_x, T)
        horizons = self._horizons
        settings = self._value
        if len(horizons) == 1:
            purchases = count.expected_purchases_at(horizons[0], x, t_x, T, p_alive)
            discounted = purchases
        else:
            previous = np.zeros_like(x)
            discounted = np.zeros_like(x)
            for k, t in enumerate(horizons, start=1):
                cumulative = count.expected_purchases_at(t, x, t_x, T, p_alive)
                discounted = (
                    discounted + (cumulative - previous) / (1.0 + settings.discount_rate) ** k
                )
                previous = cumulative
            purchases = previous
        if spend_x is None or spend_z is None or self._spend is None:
            return p_alive, purchases, None, None, None
        mean_spend = self._spend.expected_spend_at(spend_x, spend_z)
        spend = purchases * mean_spend
        value = settings.margin * (discounted * mean_spend)
        return p_alive, purchases, mean_spend, spend, value

    def _predict_scalar(
        self, x: float, t_x: float, T: float, spend_x: float | None, spend_z: float | None
    ) -> tuple[float, float, float | None, float | None, float | None] | None:
        """:meth:`_predict` for one customer on Python floats (docs/methods.md#scorer): the
        same operations in the same order — IEEE arithmetic rounds alike on floats and arrays —
        with every transcendental function taken by the same numpy/SciPy ufunc as the models'
        array methods, all of one kind in one call, so the bits agree (``tests/test_scorer.py``
        checks it). None where that path does not apply: a model other than BG/NBD or MBG/NBD,
        or a history where the closed form needs the quadrature fallback (the array path then)."""
        params = self._fast_count
        if params is None:
            return None
        settings = self._value
        found = _bg_scalar(params, self._horizons, float(x), float(t_x), float(T))
        if found is None:
            return None
        p_alive, cumulative = found
        if len(cumulative) == 1:
            purchases = discounted = cumulative[0]
        else:
            previous = discounted = 0.0
            for k, value_k in enumerate(cumulative, start=1):
                discounted = discounted + (value_k - previous) / (1.0 + settings.discount_rate) ** k
                previous = value_k
            purchases = previous
        spend_params = self._fast_spend
        if spend_x is None or spend_z is None or spend_params is None:
            return p_alive, purchases, None, None, None
        p, q, gamma = spend_params
        n = float(spend_x) if spend_z > 0 else 0.0  # no positive spend: the prior
        mean_spend = p * (gamma + n * (spend_z if n > 0 else 0.0)) / ((q + p * n) - 1.0)
        spend = purchases * mean_spend
        value = settings.margin * (discounted * mean_spend)
        if not (math.isfinite(mean_spend) and math.isfinite(spend) and math.isfinite(value)):
            return None
        return p_alive, purchases, mean_spend, spend, value

    def _value_level(self, value: pl.Expr) -> pl.Expr:
        cuts = self._value.value_levels
        if cuts is None:
            return pl.lit(None, dtype=pl.Enum(VALUE_LEVELS))
        mid, high = cuts
        return (
            pl.when(value >= high)
            .then(pl.lit("high"))
            .when(value >= mid)
            .then(pl.lit("mid"))
            .when(value.is_not_null())
            .then(pl.lit("low"))
            .otherwise(None)
            .cast(pl.Enum(VALUE_LEVELS))
        )

    def _level_of(self, value: float | None) -> str | None:
        cuts = self._value.value_levels
        if cuts is None or value is None:
            return None
        return "high" if value >= cuts[1] else "mid" if value >= cuts[0] else "low"

    def _quadrant(self, frame: pl.DataFrame) -> pl.DataFrame:
        """:func:`winback.quadrant`'s default quadrant with the fixed cuts, by its expressions:
        M (``total_amount``) × occasions per year of tenure floored at 30 days, "high" strictly
        above the cut, null where either is null (its checks hold by construction here: one row
        per customer, finite amounts)."""
        cuts = self._value.quadrant_cuts
        if cuts is None or frame.height == 0:
            return frame.with_columns(
                pl.lit(None, dtype=pl.Enum(QUADRANT_LABELS)).alias("quadrant")
            )
        contribution = pl.col("total_amount").cast(pl.Float64)
        years = pl.max_horizontal(pl.col("tenure_days"), pl.lit(30.0)) / 365.25
        loyalty = pl.col("n_occasions").cast(pl.Float64) / years
        high_c, high_l = contribution > cuts[0], loyalty > cuts[1]
        label = (
            pl.when(contribution.is_null() | loyalty.is_null())
            .then(None)
            .when(high_c & high_l)
            .then(pl.lit("bee"))
            .when(high_c)
            .then(pl.lit("dragonfly"))
            .when(high_l)
            .then(pl.lit("butterfly"))
            .otherwise(pl.lit("mantis"))
        )
        return frame.with_columns(label.cast(pl.Enum(QUADRANT_LABELS)).alias("quadrant"))

    def _quadrant_of(self, total: float | None, n: int, tenure: float) -> str | None:
        """:func:`winback.quadrant`'s default quadrant with fixed cuts for one customer: M
        (``total_amount``) × occasions per year of tenure (floored at 30 days)."""
        cuts = self._value.quadrant_cuts
        if cuts is None or total is None:
            return None
        loyalty = float(n) / (max(tenure, 30.0) / 365.25)
        high_c, high_l = total > cuts[0], loyalty > cuts[1]
        if high_c:
            return "bee" if high_l else "dragonfly"
        return "butterfly" if high_l else "mantis"

    def _strategy_of(self, row: dict[str, Any]) -> str | None:
        if self._categorical_strategy:
            return self._strategy_table[tuple(row[c] for c in self._strategy_columns)]
        frame = _one_row(row, self._resolution_us % _MICROS_PER_DAY == 0)
        label = self._rules.apply(frame).get_column("strategy")[0]
        return None if label is None else str(label)

    def _moment(self, micros: int) -> date | datetime:
        if self._whole_days:
            return _EPOCH_DAY + timedelta(days=micros // _MICROS_PER_DAY)
        return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class _BetaGeoFloats:
    """What :func:`_bg_scalar` needs of a BG/NBD or MBG/NBD model: its parameters as floats,
    ln a as the models' ``_log_alive_odds`` takes it (on the parameter scalar), and the SciPy
    ufuncs the models call (SciPy is imported when a scorer is built, not with the module)."""

    r: float
    alpha: float
    a: float
    b: float
    log_a: float
    modified: bool
    expit: Any
    hyp2f1: Any


def _scalar_count_params(model: Any) -> _BetaGeoFloats | None:
    """The float form of a BG/NBD or MBG/NBD model (exactly those classes, whose formulas
    :func:`_bg_scalar` repeats); None for any other purchase model."""
    from scipy import special

    from winback.models import BetaGeoModel, ModifiedBetaGeoModel

    kind = type(model)
    if kind is not BetaGeoModel and kind is not ModifiedBetaGeoModel:
        return None
    params = model._param_array()
    r, alpha, a, b = (float(v) for v in params)
    log_a = float(np.log(params[2]))
    modified = kind is ModifiedBetaGeoModel
    return _BetaGeoFloats(r, alpha, a, b, log_a, modified, special.expit, special.hyp2f1)


def _scalar_spend_params(model: Any) -> tuple[float, float, float] | None:
    """(p, q, γ) of a Gamma–Gamma model (exactly that class), or None."""
    from winback.models import GammaGammaModel

    if model is None or type(model) is not GammaGammaModel:
        return None
    p, q, gamma = (float(v) for v in model._param_array())
    return p, q, gamma


def _bg_scalar(
    params: _BetaGeoFloats,
    horizons: Sequence[float],
    x: float,
    t_x: float,
    T: float,
) -> tuple[float, list[float]] | None:
    """P(alive) and E[purchases in (T, T + t]] for each horizon t of one BG/NBD (MBG/NBD)
    customer (docs/methods.md#bg-nbd), on floats: the operations of the models'
    ``_log_alive_odds``, ``probability_alive_at``, ``expected_purchases_at`` and
    ``fresh_expected`` in their order. Every logarithm is one ``numpy.log`` call on an array,
    ₂F₁ one ``scipy.special.hyp2f1`` call, the powers one ``numpy.exp`` call, so each value is
    the bits the array path gives. None where ``fresh_expected`` would take its quadrature
    fallback (the caller then uses the array path)."""
    r, alpha, a, b, log_a, modified = (
        params.r,
        params.alpha,
        params.a,
        params.b,
        params.log_a,
        params.modified,
    )
    shift = 1.0 if modified else 0.0
    big_a = alpha + T
    ends = [big_a + t for t in horizons]
    scored = modified or x > 0  # BG/NBD: odds −∞ (P(alive) = 1) without a repeat purchase
    alive_inputs = (b + x if modified else b + x - 1.0, alpha + t_x) if scored else (1.0, 1.0)
    # The ufuncs take the lists as they are (one float64 conversion inside, as np.array's).
    logs = np.log([*alive_inputs, big_a, *ends]).tolist()
    log_b, log_tx, log_big_a = logs[0], logs[1], logs[2]
    odds = log_a - log_b + (r + x) * (log_big_a - log_tx) if scored else -math.inf
    p_alive = float(params.expit(-odds))
    if not math.isfinite(p_alive):
        return None
    big_r = r + x
    big_b = b + x + shift
    c = a + big_b - 1.0
    hyp = params.hyp2f1(big_r, big_b, c, [t / (big_a + t) for t in horizons])
    powers = np.exp([big_r * (log_big_a - v) for v in logs[3:]])
    factor = c / (a - 1.0)
    near_one = abs(a - 1.0) < 1e-6
    out = []
    for t, h, e in zip(horizons, hyp.tolist(), powers.tolist(), strict=True):
        value = factor * (1.0 - e * h)
        ceiling = big_r * t / big_a
        if near_one or not (
            math.isfinite(value) and value >= 0.0 and value <= ceiling * (1.0 + 1e-9)
        ):
            return None
        out.append(p_alive * value)
    return p_alive, out


@functools.lru_cache(maxsize=256)
def _as_of_micros(as_of: AsOf) -> int:
    """:func:`winback._io.as_of_to_micros` of an ``as_of`` (no time zone), remembered: a service
    passes the same few snapshot times again and again (docs/methods.md#as-of)."""
    return _io.as_of_to_micros(as_of, None)


def _purchase_dates(times: NDArray[np.int64], customer: Any) -> _io.PurchaseDates:
    """What the snapshot rule (docs/methods.md#as-of) needs of one customer's purchase times:
    for a given ``as_of`` (``customer`` is :data:`_NOT_NEEDED`) only the first purchase (a
    cut-off before it is refused); for the default ``as_of`` (the end of the latest purchase's
    day, refused when far-future rows would set it, naming ``customer``) the whole set, as
    :func:`winback.prepare`'s frame holds it."""
    if customer is not _NOT_NEEDED:
        name = "the scored customer" if customer is None else customer
        frame = pl.DataFrame({"customer": [name] * times.shape[0], "ts": times})
        return _io.PurchaseDates.of(frame)
    dates = _io.PurchaseDates()
    dates.rows = int(times.shape[0])
    dates.first_us, dates.latest_us = int(times.min()), int(times.max())
    return dates


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WinbackConfigError(f"{name}={value!r} must be a whole number")
    return value


def _model_facts(model: BaseModel | None) -> dict[str, Any]:
    assert model is not None
    return {
        "model": type(model).__name__,
        "params": dict(model.params_),
        "n_customers": model.n_customers_,
        "log_likelihood": model.log_likelihood_,
        "unit": model.unit_,
        "resolution": model.resolution_,
    }


def _optional(name: str, values: FloatArray | None) -> pl.Series | pl.Expr:
    if values is None:
        return pl.lit(None, dtype=pl.Float64).alias(name)
    return pl.Series(name, values)


def _check_finite(ids: pl.Series | None, columns: Sequence[FloatArray | None]) -> None:
    """No NaN or infinity leaves the scorer (docs/methods.md#scorer): refused, naming the
    customers."""
    for values in columns:
        if values is None:
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            who = (
                "this customer"
                if ids is None
                else "customer(s) " + ", ".join(repr(c) for c in ids.filter(pl.Series(bad)).head(5))
            )
            raise WinbackInputError(
                f"the models give a non-finite prediction for {who}: their history lies outside "
                "the models' domain (check the data's time unit and scale against the fit's)"
            )


def _micros(timestamps: Any) -> tuple[NDArray[np.int64], int | None]:
    """Purchase times as int64 local wall-clock µs (datetime64 floored to µs, as Polars casts)
    and the earliest of them (None when there is none).

    A one-dimensional ``datetime64[us]`` array (what a service passes) is taken as it is. NaT is
    the least int64, so one ``argmin`` finds both a missing time and the earliest: a fraction of
    the cost of ``isnat(...).any()`` and ``min()`` on a few dozen values (``ndarray.min`` goes
    through a Python wrapper, ``argmin`` does not)."""
    if type(timestamps) is np.ndarray and timestamps.dtype == _MICROS and timestamps.ndim == 1:
        times = timestamps
    else:
        try:
            array = np.asarray(timestamps)
            if array.dtype.kind in "iufb":
                raise TypeError
            times = array.astype("datetime64[us]", copy=False)
        except (TypeError, ValueError) as exc:
            raise WinbackInputError(
                "timestamps must be datetime64 values, dates, naive datetimes or ISO text, not "
                f"{type(timestamps).__name__} of {getattr(np.asarray(timestamps), 'dtype', '?')}; "
                "integers are ambiguous (convert them first)"
            ) from exc
        if times.ndim != 1:
            raise WinbackInputError(f"timestamps must be one-dimensional, got shape {times.shape}")
    micros = np.ascontiguousarray(times.view(np.int64))
    if micros.shape[0] == 0:
        return micros, None
    first = int(micros[micros.argmin()])
    if first == _NAT:
        raise WinbackInputError(
            f"timestamp at position {int(np.flatnonzero(micros == _NAT)[0])} is missing (NaT); "
            "every purchase needs a time"
        )
    return micros, first


def _empty_scores(whole_days: bool = True) -> pl.DataFrame:
    """A frame of :meth:`Scorer.score`'s schema before the strategy, with no rows (timestamps
    are dates at whole-day resolutions, datetimes otherwise, as :func:`winback.silence`'s)."""
    moment = pl.Date if whole_days else pl.Datetime("us")
    schema: dict[str, Any] = {
        "customer_id": pl.Int64,
        "status": pl.Enum(STATUS_LABELS),
        "n_occasions": pl.Int64,
        "first_ts": moment,
        "last_ts": moment,
        "recency_rank": pl.Int64,
        "rank_ratio_group": pl.Enum(GROUP_LABELS),
        "silence_band": pl.Enum(BAND_LABELS),
        "frequency": pl.Int64,
        "value_level": pl.Enum(VALUE_LEVELS),
        "quadrant": pl.Enum(QUADRANT_LABELS),
    }
    names = [c for c in SCORE_COLUMNS if c != "strategy"]
    return pl.DataFrame(schema={c: schema.get(c, pl.Float64) for c in names})


def _one_row(row: Mapping[str, Any], whole_days: bool) -> pl.DataFrame:
    empty = _empty_scores(whole_days)
    values = {c: [row.get(c)] for c in empty.columns}
    return pl.DataFrame(values, schema=empty.schema)
