r"""The win-back target list (docs/methods.md#campaign): selection, priority, strategy, staff,
follow-up, holdout.

Every random-looking choice comes from one stable hash per customer (:func:`assignment_hash`):
the 8-byte BLAKE2b digest of ``campaign_id (UTF-8) ‖ 0x00 ‖ id`` read as a little-endian unsigned
integer ``h``, where ``id`` is the 8-byte little-endian two's complement of an integer id or the
UTF-8 bytes of a string id. In Python::

    h = int.from_bytes(hashlib.blake2b(campaign_id.encode() + b"\x00" + id_bytes,
                                       digest_size=8).digest(), "little")

- **arm**: ``control`` when ``h < holdout × 2⁶⁴``, else ``treatment`` — a pure function of
  (campaign_id, customer), so the holdout share is binomial(n, holdout) and a customer keeps their
  arm in every run, on every machine, whatever else is in the list.
- **staff**: the contacted customers, ordered by (segment, h, customer_id), are dealt to the staff
  in turn (weighted by capacity when given), so every employee gets an even share of every segment
  (shares differ by at most one customer overall). Same input → same assignment, for any row order
  and any process.
- **follow-up spread**: a cadence of ``[min, max]`` days gives ``min + (h mod 2³²) mod (max − min
  + 1)`` days, spreading the contacts evenly over the range.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from winback import _io, _winback
from winback._options import PRIORITY, PRIORITY_WEIGHTS, PriorityKind
from winback.errors import CapacityWarning, WinbackConfigError, WinbackInputError
from winback.rfm import (
    check_finite,
    check_unique_customers,
    is_scored_table,
    quadrant,
    rfm,
)
from winback.segments import RuleSet, load_rules, parse_cadence
from winback.silence import BAND_DTYPE, GROUP_DTYPE, STATUS_DTYPE

__all__ = [
    "ARM_LABELS",
    "TARGET_COLUMNS",
    "VALUE_LEVELS",
    "CapacityWarning",
    "assignment_hash",
    "campaign",
]

ARM_LABELS = ("treatment", "control")
ARM_DTYPE = pl.Enum(ARM_LABELS)
VALUE_LEVELS = ("high", "mid", "low")
#: Columns of :func:`campaign`'s target list, in order.
TARGET_COLUMNS = (
    "campaign_id",
    "customer_id",
    "priority",
    "segment",
    "strategy",
    "arm",
    "contact",
    "staff",
    "next_contact",
    "rank_ratio_group",
    "silence_score",
    "recency_days",
    "predicted_value",
    "value_level",
    "quadrant",
    "rfm_segment",
    "campaign_start",
)
_NO_ACTION = "no_action"
_TIER_LEVELS = {"platinum": "high", "gold": "high", "silver": "mid"}
_HIGH_SHARE = 0.20  # value_level "high": top 20 % (platinum + gold: docs/methods.md#value-tiers)
_MID_SHARE = 0.50  # "mid": the next 30 % (silver)
_TWO_64 = 1 << 64
#: Numeric columns the list is built from (priority, value level, quadrant): a NaN or an infinity
#: in any of them is refused, naming the customers (docs/methods.md#campaign), never written out.
_NUMERIC_READS = (
    "silence_score",
    "recency_days",
    "clv",
    "expected_value",
    "p_alive",
    "rfm_monetary",
    "total_amount",
    "tenure_days",
    "p_lapse",
)
#: Components of the blended priority (docs/methods.md#priority-blend).
PRIORITY_COMPONENTS = ("p_lapse", "value", "business")


def assignment_hash(
    customer_ids: pl.Series | Sequence[Any], campaign_id: str, *, num_threads: int | None = None
) -> pl.Series:
    r"""The stable hash ``h`` of each customer id under ``campaign_id`` (UInt64; see the module
    documentation for the definition).

    Examples
    --------
    >>> import hashlib
    >>> from winback.campaign import assignment_hash
    >>> h = assignment_hash([42], "spring-2024")[0]
    >>> h == int.from_bytes(hashlib.blake2b(b"spring-2024\x00" + (42).to_bytes(8, "little"),
    ...                                     digest_size=8).digest(), "little")
    True
    """
    series = customer_ids if isinstance(customer_ids, pl.Series) else pl.Series(customer_ids)
    if series.dtype.is_integer():
        series = series.cast(pl.Int64)
    elif series.dtype != pl.String:
        raise WinbackInputError(f"customer ids have type {series.dtype}; use integer or string ids")
    if series.null_count():
        raise WinbackInputError(f"{series.null_count()} customer ids are null")
    prefix = campaign_id.encode("utf-8") + b"\x00"
    table = _winback.stable_hash(
        series.to_frame("customer_id"), prefix=prefix, num_threads=num_threads
    )
    return pl.DataFrame(table).get_column("hash")


def _check_arguments(
    campaign_id: Any, holdout: Any, staff: Sequence[str] | None, capacity: Any
) -> tuple[list[str] | None, list[int] | None]:
    if not isinstance(campaign_id, str) or not campaign_id:
        raise WinbackConfigError(
            f"campaign_id={campaign_id!r} must be a non-empty string: it seeds the holdout and the "
            "staff assignment, so reuse it to reproduce a campaign"
        )
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 1:
        raise WinbackConfigError(
            f"holdout={holdout!r} must be in [0, 1): the share of targets kept as an uncontacted "
            "control group (0.1 = 10 %)"
        )
    if staff is None:
        if capacity is not None:
            raise WinbackConfigError("capacity= needs staff=[...]: capacity is per staff member")
        return None, None
    if isinstance(staff, str) or not isinstance(staff, Sequence):
        raise WinbackConfigError(f"staff must be a list of names, not {staff!r}")
    names = [str(s) for s in staff]
    if not names:
        raise WinbackConfigError(
            "staff is an empty list: name at least one staff member, or pass staff=None to leave "
            "the staff column empty"
        )
    if any(not n for n in names):
        raise WinbackConfigError("staff has an empty name")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise WinbackConfigError(f"staff lists {twice!r} twice")
    if capacity is None:
        return names, None
    if isinstance(capacity, Mapping):
        unknown = [k for k in capacity if k not in names]
        if unknown:
            raise WinbackConfigError(f"capacity names {unknown[0]!r}, who is not in staff")
        caps = [capacity.get(n, 0) for n in names]
    else:
        caps = [capacity] * len(names)
    for name, cap in zip(names, caps, strict=True):
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise WinbackConfigError(
                f"capacity of {name!r} is {cap!r}; use a whole number of customers ≥ 0"
            )
    if sum(caps) == 0:
        raise WinbackConfigError("the staff's total capacity is 0: nobody can be contacted")
    return names, caps


def _quotas(n: int, k: int, caps: list[int] | None) -> list[int]:
    """Customers per staff member: an even split (the first in the list take the remainder),
    never above a capacity; with capacities the total is min(n, Σ capacity)."""
    if caps is None:
        base, extra = divmod(n, k)
        return [base + (1 if i < extra else 0) for i in range(k)]
    quotas = [0] * k
    remaining = min(n, sum(caps))
    while remaining > 0:
        open_ = [i for i in range(k) if quotas[i] < caps[i]]
        share = remaining // len(open_)
        if share == 0:
            for i in open_[:remaining]:
                quotas[i] += 1
            break
        for i in open_:
            add = min(share, caps[i] - quotas[i])
            quotas[i] += add
            remaining -= add
    return quotas


def _deal(quotas: list[int]) -> np.ndarray:
    """A sequence of staff indices with staff j appearing quotas[j] times, spread evenly:
    j's k-th turn sits at (k + ½) / quotas[j] of the way through (ties in staff order)."""
    counts = np.asarray(quotas, dtype=np.int64)
    who = np.repeat(np.arange(len(quotas)), counts)
    if who.size == 0:
        return who
    turn = np.arange(who.size) - np.repeat(np.cumsum(counts) - counts, counts)
    position = (turn + 0.5) / np.repeat(np.maximum(counts, 1), counts)
    return who[np.lexsort((who, position))]


def _campaign_start(frame: pl.DataFrame, start: date | datetime | str | None) -> date:
    if start is not None:
        if isinstance(start, datetime):
            return start.date()
        if isinstance(start, date):
            return start
        try:
            return date.fromisoformat(str(start).strip()[:10])
        except ValueError as exc:
            raise WinbackConfigError(f"start={start!r} is not an ISO date") from exc
    if {"last_ts", "recency_days"} <= set(frame.columns) and frame.height:
        as_of = frame.select(
            (
                pl.col("last_ts").cast(pl.Datetime("us")).cast(pl.Int64)
                + (pl.col("recency_days") * 86_400e6).round().cast(pl.Int64)
            ).max()
        ).item()
        if as_of is not None:
            return _io.micros_to_datetime(int(as_of)).date()
    raise WinbackInputError(
        "cannot tell the campaign's start date: the table has no last_ts and recency_days "
        "(winback.silence output) — pass start='YYYY-MM-DD'"
    )


def _value_level(frame: pl.DataFrame, value_col: str | None) -> pl.Expr:
    if "value_tier" in frame.columns:
        tier = pl.col("value_tier").cast(pl.String)
        return tier.replace_strict(_TIER_LEVELS, default="low").cast(pl.Enum(VALUE_LEVELS))
    basis = value_col or next(
        (c for c in ("rfm_monetary", "total_amount") if c in frame.columns), None
    )
    if basis is None:
        return pl.lit(None, dtype=pl.Enum(VALUE_LEVELS))
    value = pl.col(basis).cast(pl.Float64)
    share = value.rank("max", descending=True) / value.count()
    return (
        pl.when(value.is_null())
        .then(None)
        .when(value < 0)
        .then(pl.lit("low"))
        .when(share <= _HIGH_SHARE)
        .then(pl.lit("high"))
        .when(share <= _MID_SHARE)
        .then(pl.lit("mid"))
        .otherwise(pl.lit("low"))
        .cast(pl.Enum(VALUE_LEVELS))
    )


def normalise_labels(frame: pl.DataFrame) -> pl.DataFrame:
    """Label columns read back from CSV as strings (``status``, ``rank_ratio_group``,
    ``silence_band``) cast to their Enums, so they order and compare as scored."""
    for name, dtype in (
        ("status", STATUS_DTYPE),
        ("rank_ratio_group", GROUP_DTYPE),
        ("silence_band", BAND_DTYPE),
    ):
        if name in frame.columns and frame.schema[name] != dtype:
            try:
                frame = frame.with_columns(pl.col(name).cast(pl.String).cast(dtype))
            except pl.exceptions.PolarsError as exc:
                labels = ", ".join(dtype.categories.to_list())
                raise WinbackInputError(
                    f"column {name!r} holds values other than {labels}; is this a winback "
                    "scored table?"
                ) from exc
    return frame


def _prepare(frame: pl.DataFrame, value_col: str | None) -> pl.DataFrame:
    """Adds what the rules and the list read when the table lacks it: RFM, quadrant,
    value_level (null columns when there is nothing to derive them from)."""
    frame = normalise_labels(frame)
    has_money = "total_amount" in frame.columns and (
        frame.height == 0 or frame.get_column("total_amount").null_count() < frame.height
    )
    if "rfm_segment" not in frame.columns:
        if has_money and frame.height and is_scored_table(frame.columns):
            frame = rfm(frame)
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("rfm_segment"))
    if "quadrant" not in frame.columns:
        # quadrant's one definition (M × occasions per year, docs/methods.md#quadrant), never
        # the predicted value: the list's quadrant is the one the CLI and the report show
        money = has_money or "rfm_monetary" in frame.columns
        rate = {"n_occasions", "tenure_days"} <= set(frame.columns)
        if frame.height and money and rate:
            frame = quadrant(frame)
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("quadrant"))
    if "value_level" not in frame.columns:
        frame = frame.with_columns(_value_level(frame, value_col).alias("value_level"))
    return frame


def _strategy_rules(strategy_map: Any, thresholds: Mapping[str, Any] | None) -> RuleSet | None:
    if strategy_map is None:
        return load_rules("strategy")
    if isinstance(strategy_map, Mapping):
        return None
    rules = load_rules(strategy_map, thresholds=thresholds)
    rules.classifier("strategy")  # raises when no classifier writes "strategy"
    return rules


def campaign(
    scored: Any,
    *,
    campaign_id: str,
    rule: str | Path | RuleSet = "default",
    strategy_map: str | Path | RuleSet | Mapping[str, str] | None = None,
    staff: Sequence[str] | None = None,
    capacity: int | Mapping[str, int] | None = None,
    cadence: Mapping[str, int | tuple[int, int]] | None = None,
    holdout: float = 0.1,
    start: date | datetime | str | None = None,
    thresholds: Mapping[str, Any] | None = None,
    value_col: str | None = None,
    priority: PriorityKind = PRIORITY,
    priority_weights: Mapping[str, float] | None = None,
    business_score_col: str | None = None,
    recommendations: pl.DataFrame | None = None,
    num_threads: int | None = None,
) -> pl.DataFrame:
    """Build the win-back target list (docs/methods.md#campaign), one row per targeted customer.

    Parameters
    ----------
    scored
        A scored table: :func:`winback.silence` output, optionally with :func:`winback.rfm`,
        :func:`winback.quadrant`, :func:`winback.value` columns (``value_tier``,
        ``expected_value``, ``clv``, ``p_alive``) and a ``cause`` column (``"company"`` /
        ``"customer"``). Missing RFM, quadrant and ``value_level`` columns are derived. One row
        per customer; no NaN or infinite scores or values (nulls are "unknown").
    campaign_id
        Names the campaign and seeds every assignment (see :func:`assignment_hash`).
    rule
        The selection: a rules file with a ``[campaign]`` table (preset name, path or
        :class:`~winback.RuleSet`). Its segment classifier labels each customer; customers with a
        null or excluded label are not targeted. ``"default"``: TrF group d or e, or S ≥ 1, and no
        negative predicted value; ``"salon"``, ``"auto_dealer"``: the shipped presets.
    strategy_map
        The strategy of each target: a rules file whose classifier writes ``strategy`` (default:
        the ``"strategy"`` preset — ``account_manager`` for high value, ``coupon`` for group e at
        mid value, ``points_or_discount`` for butterflies, ``no_action`` for low-value deep
        silence, else ``message``), or a dict from segment label to strategy (``"*"``: any other).
    staff
        Names to share the contacted customers among (``None``: the staff column stays null).
    capacity
        Most customers per staff member (one number, or a dict by name). The list is cut at the
        priority where the total capacity is used up — both arms at the same point, so they stay
        comparable — with a :class:`CapacityWarning` saying how many targets were left off.
    cadence
        Days from ``start`` to the first contact by segment label: ``{"H": 1, "C": (15, 30)}``;
        ``"*"`` for any other label. Overrides the rules file's cadence; default 1 day. A label
        the selection never writes is an error.
    holdout
        Share of targets kept uncontacted as the control arm, in [0, 1).
    start
        The campaign's start date (default: the scoring's ``as_of``, from ``last_ts`` +
        ``recency_days``).
    thresholds
        Threshold overrides for ``rule`` (and a rules-file ``strategy_map``).
    value_col
        Predicted-value column for the priority and ``value_level`` (default: ``clv``, else
        ``expected_value`` when present).
    priority
        The order of the list (docs/methods.md#priority): ``"group"`` (default: TrF group, S,
        predicted value, customer id); ``"lapse_value"``: ``p_lapse`` × value descending (the
        value the list is likely to lose; ``p_lapse`` from :func:`winback.lapse`); ``"blend"``:
        the weighted combination of ``priority_weights`` (docs/methods.md#priority-blend). The
        value is ``predicted_value`` when a value column exists, else ``total_amount``. With a
        priority other than ``"group"`` the list ends with a ``priority_score`` column.
    priority_weights
        Weights of the ``"blend"`` components ``p_lapse``, ``value`` and ``business`` (≥ 0;
        default ``PRIORITY_WEIGHTS``); normalised to sum 1. ``business`` counts only with
        ``business_score_col``.
    business_score_col
        A column of the scored table holding the business's own score (higher = contact
        sooner), blended as its percentile rank among the targets.
    recommendations
        :func:`winback.recommend` output (``customer_id``, ``recommended_products``; extra
        columns ignored): the list ends with a ``recommended_products`` column (a list of
        product ids, best first; null for a target without recommendations;
        docs/methods.md#recommendations).
    num_threads
        Threads for the hashing.

    Returns
    -------
    polars.DataFrame
        :data:`TARGET_COLUMNS`, sorted by ``priority`` (1 = first; docs/methods.md#priority: TrF
        group e first, then S descending, predicted value descending, customer id): ``segment``,
        ``strategy``, ``arm`` (``treatment``/``control``), ``contact`` (treatment and not
        ``no_action``: the customers to contact), ``staff`` and ``next_contact`` (null when not
        contacted), ``rank_ratio_group``, ``silence_score``, ``recency_days``, ``predicted_value``,
        ``value_level`` (high/mid/low), ``quadrant``, ``rfm_segment``, ``campaign_start``.
        Label columns are Enums (plain strings once written to CSV).

    Raises
    ------
    WinbackInputError
        Not a scored table; a customer twice; a NaN or infinite value in a column the list is
        built from (``silence_score``, ``recency_days``, ``clv``/``expected_value``/``value_col``,
        ``p_alive``, ``rfm_monetary``, ``total_amount``, ``tenure_days``), naming the customers.
    WinbackConfigError
        A bad argument, rules file or cadence label.

    Warns
    -----
    CapacityWarning
        When the staff capacity cuts the list: how many targets (and contacts) were left off;
        the counts are attributes of the warning.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from winback.datasets import load_cdnow
    >>> scored = winback.rfm(load_cdnow(), as_of="1998-06-30")
    >>> targets = winback.campaign(scored, campaign_id="cdnow-1998-07", staff=["ann", "bo"])
    >>> targets.height, targets.get_column("priority").to_list()[:3]
    (6495, [1, 2, 3])
    >>> targets.filter(pl.col("contact")).group_by("staff").len().sort("staff").rows()
    [('ann', 2923), ('bo', 2923)]
    """
    staff_names, caps = _check_arguments(campaign_id, holdout, staff, capacity)
    products = _check_recommendations(recommendations)
    if isinstance(scored, pl.LazyFrame):
        frame = scored.collect()
    elif isinstance(scored, pl.DataFrame):
        frame = scored
    else:
        converted = _io.to_polars(scored)
        frame = converted.collect() if isinstance(converted, pl.LazyFrame) else converted
    missing = [
        c for c in ("customer_id", "rank_ratio_group", "silence_score") if c not in frame.columns
    ]
    if missing:
        raise WinbackInputError(
            f"campaign needs a scored table; column {missing[0]!r} is missing. Score the "
            "transactions first: winback.silence(tx) or winback.rfm(tx)"
        )
    check_unique_customers(frame, "campaign")
    if value_col is None:
        value_col = next((c for c in ("clv", "expected_value") if c in frame.columns), None)
    elif value_col not in frame.columns:
        raise WinbackInputError(f"value_col {value_col!r} is not in the scored table")
    weights = _priority_weights(frame, priority, priority_weights, business_score_col)
    check_finite(
        frame,
        [*_NUMERIC_READS, *([value_col] if value_col else []), *_optional(business_score_col)],
        "campaign",
    )
    begin = _campaign_start(frame, start)
    selection = load_rules(rule, thresholds=thresholds)
    if selection.campaign is None:
        raise WinbackConfigError(
            f"{selection.source}: has no [campaign] table naming the segment classifier, so it "
            'cannot select targets; add [campaign] segment = "<classifier column>"'
        )
    spec = selection.campaign
    strategy_rules = _strategy_rules(strategy_map, None)
    labels = selection.classifier(spec.segment).labels
    cadence_table = dict(spec.cadence)
    if cadence is not None:
        given = parse_cadence(cadence)
        unknown = [label for label in given if label not in labels and label != "*"]
        if unknown:
            raise WinbackConfigError(
                f"cadence names segment {unknown[0]!r}, which {selection.source} never labels "
                f"(segments of {spec.segment!r}: {', '.join(labels)}; '*' for any other)"
            )
        cadence_table.update(given)
    frame = _prepare(frame, value_col)
    labelled = selection.apply(frame)
    excluded = [i for i, label in enumerate(labels) if label in spec.exclude]
    value_expr = pl.col(value_col).cast(pl.Float64) if value_col else pl.lit(None, dtype=pl.Float64)
    recency = (pl.col("recency_days") if "recency_days" in labelled.columns else pl.lit(None)).cast(
        pl.Float64
    )
    base = ["customer_id", "rank_ratio_group", "silence_score", "value_level", "quadrant"]
    reads = {
        c for item in (strategy_rules.classifiers if strategy_rules else ()) for c in item.inputs
    }
    extra = sorted(c for c in reads if c in labelled.columns and c not in base)
    code = pl.col(spec.segment).to_physical()
    targets = labelled.select(
        *base,
        *extra,
        pl.col("rfm_segment"),
        recency.alias("recency_days"),
        value_expr.alias("predicted_value"),
        *_priority_inputs(labelled, priority, value_col, business_score_col),
        pl.col(spec.segment).alias("__segment"),
        code.alias("__segment_code"),
    ).filter(pl.col("__segment_code").is_not_null() & ~pl.col("__segment_code").is_in(excluded))
    if strategy_rules is not None:
        targets = strategy_rules.apply(targets).rename({"strategy": "__strategy"})
        strategies = strategy_rules.classifier("strategy").labels
    else:
        targets, strategies = _map_strategies(targets, labels, spec.exclude, strategy_map)
    no_action = [i for i, name in enumerate(strategies) if name == _NO_ACTION]
    hashes = assignment_hash(
        targets.get_column("customer_id"), campaign_id, num_threads=num_threads
    )
    cut = int(holdout * _TWO_64)
    keep = [
        "customer_id",
        "__segment",
        "__segment_code",
        "__strategy",
        "rank_ratio_group",
        "silence_score",
        "value_level",
        "quadrant",
        "rfm_segment",
        "recency_days",
        "predicted_value",
    ]
    if priority != "group":
        keep += ["__p_lapse", "__value", "__business"]
    targets = targets.select(keep).with_columns(hashes.alias("__hash"))
    if priority == "group":
        targets = targets.select(pl.all().gather(_priority_order(targets)))
    else:
        targets = targets.with_columns(_priority_score(priority, weights).alias("priority_score"))
        targets = targets.select(pl.all().gather(_score_order(targets)))
    control = pl.col("__hash") < cut
    targets = targets.with_columns(
        pl.lit(pl.Series(ARM_LABELS, dtype=ARM_DTYPE)).gather(control.cast(pl.UInt32)).alias("arm"),
        (~control & ~pl.col("__strategy").to_physical().is_in(no_action)).alias("contact"),
    )
    if caps is not None:
        contacts = targets.get_column("contact").cum_sum()
        total = sum(caps)
        if contacts.len() and int(contacts[-1]) > total:
            last = int((contacts <= total).arg_min() or 0)  # first row past the capacity
            dropped, wanted = targets.height - last, int(contacts[-1]) - total
            warnings.warn(
                CapacityWarning(
                    f"the staff's capacity of {total:,} contacts is used up at priority {last:,}: "
                    f"{dropped:,} lower-priority targets ({wanted:,} of them to contact) are left "
                    "off the list; raise capacity= or add staff to reach them",
                    capacity=total,
                    targets_cut=dropped,
                    contacts_cut=wanted,
                ),
                stacklevel=2,
            )
            targets = targets.head(last)
    targets = targets.with_row_index("priority", offset=1).with_columns(
        pl.col("priority").cast(pl.Int64)
    )
    targets = _assign_staff(targets, staff_names, caps, len(labels))
    targets = _schedule(targets, cadence_table, labels, begin)
    listed = targets.select(
        pl.lit(campaign_id).alias("campaign_id"),
        "customer_id",
        "priority",
        pl.col("__segment").alias("segment"),
        pl.col("__strategy").alias("strategy"),
        "arm",
        "contact",
        "staff",
        "next_contact",
        "rank_ratio_group",
        pl.col("silence_score").cast(pl.Float64),
        "recency_days",
        "predicted_value",
        "value_level",
        "quadrant",
        "rfm_segment",
        pl.lit(begin, dtype=pl.Date).alias("campaign_start"),
        *(["priority_score"] if priority != "group" else []),
    )
    return listed if products is None else _with_recommendations(listed, products)


def _check_recommendations(recommendations: Any) -> pl.DataFrame | None:
    """``customer_id, recommended_products`` of a :func:`winback.recommend` table, checked
    (docs/methods.md#recommendations)."""
    if recommendations is None:
        return None
    if not isinstance(recommendations, pl.DataFrame):
        raise WinbackConfigError(
            "recommendations= must be a Polars DataFrame from winback.recommend, not "
            f"{type(recommendations).__name__}"
        )
    missing = [
        c for c in ("customer_id", "recommended_products") if c not in recommendations.columns
    ]
    if missing:
        raise WinbackInputError(
            f"recommendations has no column {missing[0]!r}; pass winback.recommend(tx) output"
        )
    products = recommendations.select("customer_id", "recommended_products")
    check_unique_customers(products, "recommendations")
    return products


def _with_recommendations(listed: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """The list with ``recommended_products`` last, joined on the customer id (row order
    kept)."""
    ids = listed.schema["customer_id"]
    if products.schema["customer_id"] != ids:
        try:
            products = products.with_columns(pl.col("customer_id").cast(ids, strict=True))
        except pl.exceptions.PolarsError as exc:
            raise WinbackInputError(
                f"recommendations has customer ids of type {products.schema['customer_id']}, "
                f"the scored table {ids}"
            ) from exc
    return listed.join(products, on="customer_id", how="left", maintain_order="left")


def _optional(name: str | None) -> list[str]:
    return [name] if name is not None else []


def _priority_weights(
    frame: pl.DataFrame,
    priority: str,
    weights: Mapping[str, float] | None,
    business_score_col: str | None,
) -> dict[str, float]:
    """The checked, normalised blend weights (docs/methods.md#priority-blend); refuses a
    priority whose inputs the table lacks."""
    if priority not in ("group", "lapse_value", "blend"):
        raise WinbackConfigError(f"priority={priority!r} must be 'group', 'lapse_value' or 'blend'")
    if business_score_col is not None and business_score_col not in frame.columns:
        raise WinbackInputError(
            f"business_score_col {business_score_col!r} is not in the scored table"
        )
    if business_score_col is not None and not frame.schema[business_score_col].is_numeric():
        raise WinbackInputError(
            f"business_score_col {business_score_col!r} must be numeric, not "
            f"{frame.schema[business_score_col]}"
        )
    if weights is not None and priority != "blend":
        raise WinbackConfigError("priority_weights= is read only with priority='blend'")
    given = dict(PRIORITY_WEIGHTS if weights is None else weights)
    unknown = [k for k in given if k not in PRIORITY_COMPONENTS]
    if unknown:
        raise WinbackConfigError(
            f"priority_weights names {unknown[0]!r}; the components are "
            f"{', '.join(PRIORITY_COMPONENTS)}"
        )
    for name, weight in given.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not (np.isfinite(weight) and weight >= 0)
        ):
            raise WinbackConfigError(f"priority weight of {name!r} is {weight!r}; use a number ≥ 0")
    if business_score_col is None:
        given.pop("business", None)
    elif weights is not None and given.get("business", 0) == 0:
        raise WinbackConfigError(
            "business_score_col is given but its priority weight is 0; give 'business' a weight"
        )
    total = sum(given.values())
    if priority == "blend" and total <= 0:
        raise WinbackConfigError("the priority weights sum to 0; give one component a weight")
    normalised = {k: float(v) / total for k, v in given.items() if v > 0} if total > 0 else {}
    needs_lapse = priority == "lapse_value" or (priority == "blend" and "p_lapse" in normalised)
    if needs_lapse and "p_lapse" not in frame.columns:
        raise WinbackInputError(
            f"priority={priority!r} reads p_lapse, which the scored table lacks; score it with "
            "winback.lapse(tx) (docs/methods.md#p-lapse)"
        )
    return normalised


def _priority_inputs(
    frame: pl.DataFrame, priority: str, value_col: str | None, business_score_col: str | None
) -> list[pl.Expr]:
    """The inputs of a non-default priority, carried through the selection as ``__p_lapse``,
    ``__value`` (the predicted value, else ``total_amount``) and ``__business``."""
    if priority == "group":
        return []
    value = value_col or ("total_amount" if "total_amount" in frame.columns else None)

    def column(name: str | None) -> pl.Expr:
        if name is None or name not in frame.columns:
            return pl.lit(None, dtype=pl.Float64)
        return pl.col(name).cast(pl.Float64)

    return [
        column("p_lapse").alias("__p_lapse"),
        column(value).alias("__value"),
        column(business_score_col).alias("__business"),
    ]


def _priority_score(priority: str, weights: Mapping[str, float]) -> pl.Expr:
    """``priority_score`` (docs/methods.md#priority-blend): p_lapse × value, or Σ wₖ·cₖ over
    the components in [0, 1] (p_lapse itself; value and business as percentile ranks among the
    targets, ties averaged). Null when an input it reads is null."""
    if priority == "lapse_value":
        return pl.col("__p_lapse") * pl.col("__value")

    def percentile(name: str) -> pl.Expr:
        column = pl.col(name)
        return (column.rank("average") - 0.5) / column.count()

    parts = {
        "p_lapse": pl.col("__p_lapse"),
        "value": percentile("__value"),
        "business": percentile("__business"),
    }
    score = pl.lit(0.0)
    for name, weight in weights.items():
        score = score + weight * parts[name]
    return score


def _score_order(targets: pl.DataFrame) -> pl.Series:
    """Row order of a scored priority: ``priority_score`` descending (nulls last), then the
    default order's keys (TrF group, S, predicted value), then customer id."""
    group = pl.col("rank_ratio_group").to_physical().cast(pl.Int16)
    last = float("inf")
    return targets.select(
        pl.arg_sort_by(
            (-pl.col("priority_score")).fill_null(last),
            (-group).fill_null(1),
            (-pl.col("silence_score")).fill_null(last),
            (-pl.col("predicted_value")).fill_null(last),
            pl.col("customer_id"),
        )
    ).to_series()


def _map_strategies(
    targets: pl.DataFrame,
    labels: tuple[str, ...],
    exclude: tuple[str, ...],
    strategy_map: Any,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """``__strategy`` from a dict segment → strategy (``"*"``: the rest), by segment code."""
    mapping = {str(k): str(v) for k, v in strategy_map.items()}
    wanted = [x for x in labels if x not in exclude]
    unmapped = [x for x in wanted if x not in mapping]
    if unmapped and "*" not in mapping:
        raise WinbackConfigError(
            f"strategy_map has no strategy for segment {unmapped[0]!r}; map every segment "
            f"({', '.join(wanted)}) or add a '*' entry for the rest"
        )
    default = mapping.pop("*", None)
    by_code = [mapping.get(label, default) for label in labels]
    strategies = tuple(dict.fromkeys(s for s in by_code if s is not None))
    table = pl.Series(by_code, dtype=pl.Enum(strategies))
    return targets.with_columns(
        pl.lit(table).gather(pl.col("__segment_code")).alias("__strategy")
    ), strategies


def _priority_order(targets: pl.DataFrame) -> pl.Series:
    """Row order of the priority (docs/methods.md#priority): TrF group descending (e first), S
    descending, predicted value descending (nulls last in each), then customer id. Sorted on plain
    numeric keys (the descending ones negated, nulls as +inf), which Polars sorts far faster than
    Enum keys."""
    group = pl.col("rank_ratio_group").to_physical().cast(pl.Int16)
    last = float("inf")
    return targets.select(
        pl.arg_sort_by(
            (-group).fill_null(1),
            (-pl.col("silence_score")).fill_null(last),
            (-pl.col("predicted_value")).fill_null(last),
            pl.col("customer_id"),
        )
    ).to_series()


def _assign_staff(
    targets: pl.DataFrame, staff: list[str] | None, caps: list[int] | None, segments: int
) -> pl.DataFrame:
    if staff is None:
        return targets.with_columns(pl.lit(None, dtype=pl.String).alias("staff"))  # no staff
    contacts = targets.select("priority", "contact", "__segment_code", "__hash", "customer_id")
    contacts = contacts.filter(pl.col("contact"))
    if segments <= 256:
        # one u64 key: the segment in the top 8 bits, the hash's top 56 bits below (exact ties,
        # vanishingly rare, fall back to the customer id) — a far faster sort than three keys
        key = pl.col("__segment_code").cast(pl.UInt64) * (1 << 56) + pl.col("__hash") // 256
        order = contacts.with_columns(key.alias("__deal_key")).sort("__deal_key", "customer_id")
    else:
        order = contacts.sort("__segment_code", "__hash", "customer_id")
    dealt = _deal(_quotas(order.height, len(staff), caps))
    who = np.full(targets.height, -1, dtype=np.int64)
    positions = order.get_column("priority").to_numpy() - 1
    who[positions[: dealt.size]] = dealt
    names = pl.Series("staff", staff, dtype=pl.Enum(staff))
    index = pl.Series("who", who).set(pl.Series(who < 0), None)
    return targets.with_columns(names.gather(index).alias("staff"))


def _schedule(
    targets: pl.DataFrame,
    cadence: Mapping[str, tuple[int, int]],
    labels: tuple[str, ...],
    begin: date,
) -> pl.DataFrame:
    fallback = cadence.get("*", (1, 1))
    spans = [cadence.get(label, fallback) for label in labels]
    low = pl.Series([a for a, _ in spans], dtype=pl.Int64)
    width = pl.Series([b - a + 1 for a, b in spans], dtype=pl.UInt64)
    code = pl.col("__segment_code")
    days = pl.lit(low).gather(code) + (
        (pl.col("__hash") & 0xFFFFFFFF) % pl.lit(width).gather(code)
    ).cast(pl.Int64)
    next_contact = pl.lit(begin, dtype=pl.Date) + pl.duration(days=days)
    return targets.with_columns(
        pl.when(pl.col("contact"))
        .then(next_contact.cast(pl.Date))
        .otherwise(None)
        .alias("next_contact")
    )
