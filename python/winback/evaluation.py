"""Campaign evaluation (docs/methods.md#evaluation): whether the win-back worked,
measured against the holdout."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from winback import _io
from winback._options import AMOUNT_COL, CUSTOMER_COL, ON_INVALID, TIME_COL, OnInvalid
from winback.errors import WinbackConfigError, WinbackInputError
from winback.migrate import MIGRATION_STATES, migration
from winback.rfm import check_number

__all__ = ["ARM_COLUMNS", "UPLIFT_COLUMNS", "Evaluation", "evaluate", "newcombe", "welch", "wilson"]

#: Columns of :attr:`Evaluation.arms`.
ARM_COLUMNS = (
    "segment",
    "arm",
    "customers",
    "reactivated",
    "reactivation_rate",
    "reactivation_rate_low",
    "reactivation_rate_high",
    "revenue",
    "revenue_per_customer",
    "revenue_sd",
)
#: Columns of :attr:`Evaluation.uplift`.
UPLIFT_COLUMNS = (
    "segment",
    "customers_treatment",
    "customers_control",
    "rate_treatment",
    "rate_control",
    "rate_uplift",
    "rate_uplift_low",
    "rate_uplift_high",
    "revenue_per_customer_treatment",
    "revenue_per_customer_control",
    "revenue_uplift",
    "revenue_uplift_low",
    "revenue_uplift_high",
    "incremental_reactivations",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "cost",
    "cost_per_reactivated",
    "cost_per_incremental_reactivation",
    "net_incremental_revenue",
)
ALL = "all"


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``(nan, nan)`` when ``n == 0``."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(
    x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Difference p1 − p2 of two proportions with Newcombe's hybrid score interval (method 10:
    from the two Wilson intervals). ``(nan, nan, nan)`` when an arm is empty."""
    if n1 <= 0 or n2 <= 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, confidence)
    l2, u2 = wilson(x2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, low, high)


def welch(
    mean1: float,
    var1: float,
    n1: int,
    mean2: float,
    var2: float,
    n2: int,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Difference of two means with Welch's t interval (Welch–Satterthwaite degrees of
    freedom). ``(nan, nan, nan)`` unless both arms have at least two customers."""
    if n1 < 2 or n2 < 2:
        return (math.nan, math.nan, math.nan)
    from scipy.stats import t

    d = mean1 - mean2
    a, b = var1 / n1, var2 / n2
    se = math.sqrt(a + b)
    if se == 0.0:
        return (d, d, d)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    q = float(t.ppf(0.5 + confidence / 2.0, df))
    return (d, d - q * se, d + q * se)


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    arms : per segment (``"all"`` first) and arm: :data:`ARM_COLUMNS` — customers, reactivated
        (≥ 1 purchase in the window), the rate with its Wilson interval, revenue in the window,
        revenue per customer and its standard deviation.
    uplift : per segment: :data:`UPLIFT_COLUMNS` — treatment − control for the reactivation rate
        (Newcombe interval) and revenue per customer (Welch interval), the incremental
        reactivations and revenue (uplift × treated customers, with the interval), the
        campaign's cost, cost per reactivated treated customer and per incremental reactivation,
        and incremental revenue net of cost.
    migration : per arm, the moves between the groups at the campaign start and at the window's
        end (docs/methods.md#migration): ``arm, from_state, to_state, customers, share`` (row shares
        within arm and from-state); None when the transactions hold no history before the start.
    window_start, window_end : the evaluation window (purchases after the end of
        ``window_start`` up to the end of ``window_end``).
    observed_until : the latest purchase in the transactions.
    window_complete : whether the transactions reach the window's last day.
    """

    arms: pl.DataFrame
    uplift: pl.DataFrame
    migration: pl.DataFrame | None
    window_start: date
    window_end: date
    observed_until: datetime | None
    window_complete: bool


def _read_targets(targets: Any, by: str | None) -> pl.DataFrame:
    if isinstance(targets, pl.LazyFrame):
        frame = targets.collect()
    elif isinstance(targets, pl.DataFrame):
        frame = targets
    else:
        converted = _io.to_polars(targets)
        frame = converted.collect() if isinstance(converted, pl.LazyFrame) else converted
    needed = ["customer_id", "arm", *([by] if by else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise WinbackInputError(
            f"the target list has no column {missing[0]!r}; pass winback.campaign's output "
            "(columns customer_id, arm, segment, …)"
        )
    arms = set(frame.get_column("arm").cast(pl.String).unique().drop_nulls().to_list())
    unknown = arms - {"treatment", "control"}
    if unknown:
        raise WinbackInputError(
            f"the target list's arm column holds {sorted(unknown)[0]!r}; arms are 'treatment' "
            "and 'control'"
        )
    if frame.get_column("customer_id").n_unique() != frame.height:
        raise WinbackInputError("the target list holds a customer twice")
    return frame


def _start(frame: pl.DataFrame, start: date | datetime | str | None) -> date:
    if start is not None:
        if isinstance(start, datetime):
            given = start.date()
        elif isinstance(start, date):
            given = start
        else:
            try:
                given = date.fromisoformat(str(start).strip()[:10])
            except ValueError as exc:
                raise WinbackConfigError(f"start={start!r} is not an ISO date") from exc
        if "campaign_start" in frame.columns:
            listed = _listed_start(frame)
            if given < listed:
                raise WinbackConfigError(
                    f"start {given} is before the campaign's start {listed} (the target list's "
                    "campaign_start): purchases made before anyone was contacted would count as "
                    f"reactivations. Pass start={listed} or later, or leave start out"
                )
        return given
    if "campaign_start" not in frame.columns:
        raise WinbackInputError(
            "the target list has no campaign_start column; pass start='YYYY-MM-DD'"
        )
    return _listed_start(frame)


def _listed_start(frame: pl.DataFrame) -> date:
    """The target list's one ``campaign_start``."""
    starts = frame.get_column("campaign_start").drop_nulls().unique()
    if starts.len() != 1:
        raise WinbackInputError(
            f"the target list has {starts.len()} campaign_start dates; evaluate one campaign at "
            "a time or pass start="
        )
    value = starts[0]
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date() if isinstance(value, datetime) else value


def _costs(frame: pl.DataFrame, cost_per_contact: float | Mapping[str, float] | None) -> pl.Expr:
    if cost_per_contact is None:
        return pl.lit(None, dtype=pl.Float64)
    contacted = (
        pl.col("contact").fill_null(False)
        if "contact" in frame.columns
        else pl.col("arm") == "treatment"
    )
    if isinstance(cost_per_contact, Mapping):
        if "strategy" not in frame.columns:
            raise WinbackInputError(
                "cost_per_contact by strategy needs a strategy column in the target list"
            )
        costs = {
            str(k): check_number(v, f"cost_per_contact[{k!r}]", minimum=0.0)
            for k, v in cost_per_contact.items()
        }
        strategies = (
            frame.filter(contacted).get_column("strategy").cast(pl.String).unique().drop_nulls()
        )
        unpriced = sorted(s for s in strategies.to_list() if s not in costs)
        if unpriced and "*" not in costs:
            raise WinbackConfigError(
                f"cost_per_contact has no cost for strategy {unpriced[0]!r}; price every "
                "strategy or add a '*' entry"
            )
        default = costs.pop("*", 0.0)
        unit = (
            pl.col("strategy")
            .cast(pl.String)
            .replace_strict(costs, default=default, return_dtype=pl.Float64)
        )
    else:
        unit = pl.lit(check_number(cost_per_contact, "cost_per_contact", minimum=0.0))
    return pl.when(contacted).then(unit).otherwise(0.0)


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def evaluate(
    targets: Any,
    transactions: Any,
    *,
    window_days: int = 30,
    start: date | datetime | str | None = None,
    by: str | None = "segment",
    cost_per_contact: float | Mapping[str, float] | None = None,
    confidence: float = 0.95,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    on_invalid: OnInvalid = ON_INVALID,
    migration_states: bool = True,
) -> Evaluation:
    """Measure a campaign against its holdout (docs/methods.md#evaluation), per arm and per segment.

    A target is *reactivated* when they purchase at least once after the campaign's start date
    and within ``window_days`` days of it; their revenue is the sum of those purchases.

    Parameters
    ----------
    targets
        :func:`winback.campaign`'s target list (``customer_id``, ``arm``, ``segment``,
        ``campaign_start``, and ``contact``/``strategy`` for costs).
    transactions
        The purchase log covering at least the window (anything :func:`winback.silence` reads).
        When it also holds history (purchases dated before the start day), every target must
        appear in it up to the start, and the groups' migration is computed.
    window_days
        Length of the evaluation window after the start, in days.
    start
        The campaign's start date (default: the list's ``campaign_start``; never before it).
    by
        Target-list column to break the results down by (``None``: only the ``"all"`` rows).
    cost_per_contact
        Cost of contacting one customer (a finite number ≥ 0, or a dict of them by strategy,
        ``"*"`` for the rest); charged for the contacted treated customers.
    confidence
        Level of every interval (0.95), in (0, 1).
    customer_col, time_col, amount_col, on_invalid
        As for :func:`winback.silence`.
    migration_states
        Whether to compute the group migration (needs the history).

    Returns
    -------
    Evaluation
        ``arms``, ``uplift`` and ``migration`` tables (see :class:`Evaluation`). A window the data
        reaches only in part is measured as far as it goes (``window_complete`` is false).

    Raises
    ------
    WinbackInputError
        The transactions end on or before the start day (nothing of the window is observed yet);
        targets missing from the transactions; a bad target list.
    WinbackConfigError
        ``start`` before the list's ``campaign_start``; a window, cost or confidence that is not a
        finite number in its range.
    """
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise WinbackConfigError(f"window_days={window_days!r} must be a whole number ≥ 1")
    if not 0 < check_number(confidence, "confidence") < 1:
        raise WinbackConfigError(f"confidence={confidence!r} must be in (0, 1)")
    frame = _read_targets(targets, by)
    begin = _start(frame, start)
    try:
        end = begin + timedelta(days=window_days)
    except OverflowError as exc:
        raise WinbackConfigError(
            f"window_days={window_days:,} runs past the last date Python can hold (9999-12-31)"
        ) from exc
    prepared = _io.prepare(
        transactions,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
    )
    tx = prepared.frame
    ids = frame.get_column("customer_id")
    tx_dtype = tx.schema["customer"]
    if ids.dtype.is_integer() and tx_dtype == pl.Int64:
        ids = ids.cast(pl.Int64)
    elif ids.dtype != tx_dtype:
        raise WinbackInputError(
            f"the target list's customer ids are {ids.dtype} but the transactions' "
            f"{customer_col!r} are {tx_dtype}; convert one so they match"
        )
    frame = frame.with_columns(ids.alias("customer_id"))
    start_us = _io.as_of_to_micros(begin, prepared.time_zone)
    end_us = _io.as_of_to_micros(end, prepared.time_zone)
    day_begins = start_us + 1 - _io.MICROS_PER_DAY
    last = tx.get_column("ts").max() if tx.height else None
    if last is None or int(last) <= start_us:  # type: ignore[arg-type]
        ended = (
            "hold no purchases"
            if last is None
            else f"end on {_io.micros_to_datetime(int(last)).date()}"  # type: ignore[arg-type]
        )
        raise WinbackInputError(
            f"the transactions {ended}, before the window {begin + timedelta(days=1)} … {end} "
            "starts: there is nothing to measure yet. Evaluate after the window has data (or "
            "check start= and the transactions' file)"
        )
    has_history = tx.height > 0 and bool(tx.select((pl.col("ts") < day_begins).any()).item())
    present = tx.select(pl.col("customer").unique().alias("customer_id"))
    if has_history:
        before = tx.filter(pl.col("ts") <= start_us).select(
            pl.col("customer").unique().alias("customer_id")
        )
        missing = frame.join(before, on="customer_id", how="anti")
        if missing.height:
            shown = ", ".join(str(v) for v in missing.get_column("customer_id").head(5).to_list())
            raise WinbackInputError(
                f"{missing.height:,} of the {frame.height:,} targets are missing from the "
                f"transactions before the campaign start {begin} (first: {shown}); the "
                "transactions must come from the same data as the target list (check "
                "customer_col), or hold only the purchases after the start"
            )
    elif frame.height and frame.join(present, on="customer_id", how="semi").height == 0:
        raise WinbackInputError(
            f"none of the {frame.height:,} targets appears in the transactions; check that they "
            "come from the same data and customer_col names the same ids"
        )
    window_rows = tx.filter((pl.col("ts") > start_us) & (pl.col("ts") <= end_us))
    # Float sums add one by one in ascending order within each group (sort + cum_sum: a plain
    # sort().sum() may be rewritten to sum()), so the bits do not depend on row order.
    revenue = (
        pl.col("amount").sort().cum_sum().last()
        if prepared.has_amount
        else pl.lit(None, dtype=pl.Float64)
    )
    outcome = (
        window_rows.group_by("customer")
        .agg(pl.len().alias("__purchases"), revenue.alias("__revenue"))
        .rename({"customer": "customer_id"})
    )
    joined = frame.join(outcome, on="customer_id", how="left").with_columns(
        (pl.col("__purchases").fill_null(0) > 0).alias("__reactivated"),
        (pl.col("__revenue").fill_null(0.0) if prepared.has_amount else pl.col("__revenue"))
        .cast(pl.Float64)
        .alias("__revenue"),
        _costs(frame, cost_per_contact).alias("__cost"),
        pl.col("arm").cast(pl.String),
    )
    arms, uplift = _tables(joined, by, confidence)
    moves = None
    if migration_states and has_history:
        moves = _migration_by_arm(prepared, frame, begin, end)
    observed = _io.micros_to_datetime(int(last))  # type: ignore[arg-type]
    complete = observed.date() >= end
    return Evaluation(
        arms=arms,
        uplift=uplift,
        migration=moves,
        window_start=begin,
        window_end=end,
        observed_until=observed,
        window_complete=complete,
    )


def _tables(
    joined: pl.DataFrame, by: str | None, confidence: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    aggs = [
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("__reactivated").sum().cast(pl.Int64).alias("reactivated"),
        pl.col("__revenue").sort().cum_sum().last().fill_null(0.0).alias("revenue"),
        pl.col("__revenue").sort().mean().alias("revenue_per_customer"),
        pl.col("__revenue").sort().var().alias("__var"),
        pl.col("__cost").sort().cum_sum().last().fill_null(0.0).alias("__cost"),
    ]
    overall = joined.group_by("arm").agg(aggs).with_columns(pl.lit(ALL).alias("segment"))
    parts = [overall]
    if by is not None:
        parts.append(joined.group_by(pl.col(by).cast(pl.String).alias("segment"), "arm").agg(aggs))
    stats = pl.concat(parts, how="diagonal_relaxed")
    segments = [ALL]
    if by is not None:
        segments += sorted(
            s for s in stats.get_column("segment").unique().to_list() if s is not None and s != ALL
        )
        if stats.get_column("segment").null_count():
            segments.append(None)  # type: ignore[arg-type]
    arm_rows: list[dict[str, Any]] = []
    uplift_rows: list[dict[str, Any]] = []
    lookup = {(r["segment"], r["arm"]): r for r in stats.iter_rows(named=True)}
    for segment in segments:
        t = _Arm.of(lookup.get((segment, "treatment")))
        c = _Arm.of(lookup.get((segment, "control")))
        for arm, cell in (("treatment", t), ("control", c)):
            if cell.n:
                arm_rows.append(cell.row(segment, arm, confidence))
        uplift_rows.append(_uplift_row(segment, t, c, confidence))
    arm_schema: dict[str, pl.DataType] = {c: pl.Float64() for c in ARM_COLUMNS}
    arm_schema.update(
        {
            "segment": pl.String(),
            "arm": pl.String(),
            "customers": pl.Int64(),
            "reactivated": pl.Int64(),
        }
    )
    uplift_schema: dict[str, pl.DataType] = {c: pl.Float64() for c in UPLIFT_COLUMNS}
    uplift_schema.update(
        {"segment": pl.String(), "customers_treatment": pl.Int64(), "customers_control": pl.Int64()}
    )
    arms = (
        pl.DataFrame(arm_rows, schema=arm_schema, orient="row")
        if arm_rows
        else pl.DataFrame(schema=arm_schema)
    )
    return arms, pl.DataFrame(uplift_rows, schema=uplift_schema)


@dataclass(frozen=True)
class _Arm:
    """One arm of one segment: customers, reactivated, revenue mean/variance/total, cost."""

    n: int
    x: int
    revenue: float | None
    mean: float | None
    var: float | None
    cost: float | None

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> _Arm:
        if row is None:
            return cls(0, 0, None, None, None, None)
        return cls(
            int(row["customers"]),
            int(row["reactivated"]),
            row["revenue"],
            row["revenue_per_customer"],
            row["__var"],
            row["__cost"],
        )

    @property
    def rate(self) -> float | None:
        return self.x / self.n if self.n else None

    def row(self, segment: str | None, arm: str, confidence: float) -> dict[str, Any]:
        low, high = wilson(self.x, self.n, confidence)
        return {
            "segment": segment,
            "arm": arm,
            "customers": self.n,
            "reactivated": self.x,
            "reactivation_rate": self.rate,
            "reactivation_rate_low": _nan_to_none(low),
            "reactivation_rate_high": _nan_to_none(high),
            "revenue": self.revenue,
            "revenue_per_customer": self.mean,
            "revenue_sd": None if self.var is None else math.sqrt(self.var),
        }


def _uplift_row(segment: str | None, t: _Arm, c: _Arm, confidence: float) -> dict[str, Any]:
    d, d_low, d_high = newcombe(t.x, t.n, c.x, c.n, confidence)
    if t.mean is not None and c.mean is not None:
        r, r_low, r_high = welch(t.mean, t.var or 0.0, t.n, c.mean, c.var or 0.0, c.n, confidence)
    else:
        r = r_low = r_high = math.nan
    inc_react = _nan_to_none(d * t.n)
    inc_rev = [_nan_to_none(v * t.n) for v in (r, r_low, r_high)]
    net = None if t.cost is None or inc_rev[0] is None else inc_rev[0] - t.cost
    return {
        "segment": segment,
        "customers_treatment": t.n,
        "customers_control": c.n,
        "rate_treatment": t.rate,
        "rate_control": c.rate,
        "rate_uplift": _nan_to_none(d),
        "rate_uplift_low": _nan_to_none(d_low),
        "rate_uplift_high": _nan_to_none(d_high),
        "revenue_per_customer_treatment": t.mean,
        "revenue_per_customer_control": c.mean,
        "revenue_uplift": _nan_to_none(r),
        "revenue_uplift_low": _nan_to_none(r_low),
        "revenue_uplift_high": _nan_to_none(r_high),
        "incremental_reactivations": inc_react,
        "incremental_revenue": inc_rev[0],
        "incremental_revenue_low": inc_rev[1],
        "incremental_revenue_high": inc_rev[2],
        "cost": t.cost,
        "cost_per_reactivated": _ratio(t.cost, t.x),
        "cost_per_incremental_reactivation": _ratio(t.cost, inc_react),
        "net_incremental_revenue": net,
    }


def _migration_by_arm(
    prepared: _io.PreparedTransactions, frame: pl.DataFrame, begin: date, end: date
) -> pl.DataFrame:
    moves = migration(prepared, as_of=[begin, end])
    first, second = moves.labels
    states = moves.states.join(
        frame.select("customer_id", pl.col("arm").cast(pl.String)), on="customer_id", how="inner"
    )
    dtype = pl.Enum(MIGRATION_STATES)
    return (
        states.group_by("arm", pl.col(first).alias("from_state"), pl.col(second).alias("to_state"))
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .with_columns(
            (pl.col("customers") / pl.col("customers").sum().over("arm", "from_state")).alias(
                "share"
            ),
            pl.col("from_state").cast(dtype),
            pl.col("to_state").cast(dtype),
        )
        .sort(pl.col("arm").cast(pl.Enum(["treatment", "control"])), "from_state", "to_state")
    )
