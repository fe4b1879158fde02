"""Next-period value, cost and expense, the Markov chain and CLV (SPEC §6, §7).

:func:`value` builds the customer × period panel in the Rust core (SPEC §5 "Periods"), fits the
period NBD and the Gamma–Gamma spend model on it, forecasts every customer's next period
(count, spend, amount, margin, cost, marketing expense, value), and runs the recency Markov
chain of SPEC §7 for multi-period CLV. It returns a :class:`ValueResult`: the per-customer frame
plus the fitted models and the chain.

Conventions (documented choices where SPEC leaves room):

- The *next period* is the first period after the last complete one (the period holding
  ``as_of`` when ``as_of`` is inside it). Occasions in the incomplete period are left out of
  modelling (SPEC §5) but count in ``value_to_date``.
- A customer is modelled when their birth period is complete; customers whose first purchase is
  in the incomplete period appear once with ``status="not_modelled"`` and a ``reason``.
- The *segment* of SPEC §6's fall-backs (margin slope, expense Rate and Floor) is the value tier
  by ``expected_amount`` (``segment`` column): it cannot be the final tier, which depends on the
  margin and the expense being computed.
- Spend models use positive-amount occasions of the modelling periods (after the birth period,
  complete), as ``spend_basis="repeat"`` does in SPEC §5.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback import _io, _winback
from winback.errors import WinbackConfigError, WinbackInputError
from winback.silence import AsOf
from winback.summary import check_period, period_edges, summary

if TYPE_CHECKING:
    from scipy import sparse

    from winback.models import BetaGeoModel, GammaGammaModel, NBDModel

__all__ = ["DEFAULT_TIERS", "VALUE_COLUMNS", "MarkovChain", "ValueInfo", "ValueResult", "value"]

FloatArray = NDArray[np.float64]

#: Value tiers (SPEC §6): the top 5 % platinum, next 15 % gold, next 30 % silver, rest bronze.
DEFAULT_TIERS: dict[str, float] = {"platinum": 0.05, "gold": 0.15, "silver": 0.30}
NEGATIVE_TIER = "negative"
REST_TIER = "bronze"

#: Columns of :attr:`ValueResult.frame`, in order.
VALUE_COLUMNS = (
    "customer_id",
    "status",
    "reason",
    "n_periods",
    "period_frequency",
    "expected_frequency",
    "p_active_next",
    "p_alive",
    "frequency_mode",
    "p_frequency_mode",
    "p_frequency",
    "expected_mean_amount",
    "spend_bin_mode",
    "p_spend_bin_mode",
    "frequency_upside",
    "spend_upside",
    "seed_upside_amount",
    "expected_amount",
    "segment",
    "next_margin",
    "margin_basis",
    "expected_cost",
    "expected_expense",
    "expense_basis",
    "expected_value",
    "value_to_date",
    "negative_value",
    "markov_state",
    "p_active_next_markov",
    "clv",
    "clv_infinite",
    "value_tier",
)


@dataclass(frozen=True)
class MarkovChain:
    """The recency chain of SPEC §7.

    Attributes
    ----------
    states : one row per state: ``state`` (index), ``label`` ("r|f|m"), ``recency`` (0 … R,
        R meaning ``R+``), ``frequency_bucket``, ``spend_bin``, ``customers`` (currently in it),
        ``transitions`` (observed N_s), ``reward`` R(s), ``value`` V_H(s) and
        ``value_infinite`` V(s).
    transition_matrix : P as a ``scipy.sparse.csr_array`` (rows sum to 1; only reachable
        transitions are stored).
    counts : N(s → s') as a sparse array.
    prior : π₀ as a sparse array.
    kappa : the Dirichlet weight used.
    horizon, discount_rate : of the values.
    """

    states: pl.DataFrame
    transition_matrix: sparse.csr_array
    counts: sparse.csr_array
    prior: sparse.csr_array
    kappa: float
    horizon: int
    discount_rate: float

    @property
    def labels(self) -> list[str]:
        """State labels in matrix order."""
        return list(self.states.get_column("label"))

    def transitions(self) -> pl.DataFrame:
        """P in long form: ``from``, ``to`` (labels), ``probability``, ``count``."""
        coo = self.transition_matrix.tocoo()
        labels = np.asarray(self.labels, dtype=object)
        counts = self.counts.tocsr()
        return pl.DataFrame(
            {
                "from": labels[coo.row].tolist(),
                "to": labels[coo.col].tolist(),
                "probability": coo.data,
                "count": np.asarray(counts[coo.row, coo.col]).ravel(),
            }
        )


@dataclass(frozen=True)
class ValueInfo:
    """What a value run used: the cut-off, periods, data sources and rows."""

    as_of: datetime | None
    period: str
    n_complete_periods: int
    next_period_start: datetime | None
    rows_read: int
    rows_rejected: int
    rows_after_as_of: int
    has_cost: bool
    has_expenses: bool
    spend_bin_edges: tuple[float, ...]
    expense_rows_unmatched: int
    rejects: pl.DataFrame = field(repr=False)
    #: Why the BG/NBD behind ``p_alive`` could not be fitted (then ``p_alive`` is null).
    bg_nbd_error: str | None = None


@dataclass(frozen=True)
class ValueResult:
    """The output of :func:`value`: ``frame`` (one row per customer), the fitted ``nbd`` and
    ``gamma_gamma`` models (None when nothing could be modelled), the Markov ``chain``, the
    run's ``info`` and the ``bg_nbd`` model behind ``p_alive`` (None when it could not be
    fitted; ``info.bg_nbd_error`` says why)."""

    frame: pl.DataFrame
    nbd: NBDModel | None
    gamma_gamma: GammaGammaModel | None
    chain: MarkovChain | None
    info: ValueInfo
    bg_nbd: BetaGeoModel | None = None

    @property
    def transition_matrix(self) -> sparse.csr_array | None:
        """P of the chain (sparse; states in ``chain.states`` order)."""
        return None if self.chain is None else self.chain.transition_matrix

    @property
    def state_values(self) -> pl.DataFrame | None:
        """V per state (horizon and infinite) with the state labels."""
        if self.chain is None:
            return None
        return self.chain.states.select("label", "reward", "value", "value_infinite")


# -- inputs ---------------------------------------------------------------------------------------
def _check_args(
    horizon: int,
    discount_rate: float,
    kappa: float | str,
    max_recency: int,
    frequency_buckets: Sequence[int],
    tiers: Mapping[str, float],
    margin: float | None,
) -> None:
    if not isinstance(horizon, int) or horizon < 1:
        raise WinbackConfigError(f"horizon={horizon!r} must be a whole number of periods ≥ 1")
    if not (math.isfinite(discount_rate) and discount_rate > -1.0):
        raise WinbackConfigError(f"discount_rate={discount_rate!r} must be a number > -1")
    if isinstance(kappa, str):
        if kappa != "evidence":
            raise WinbackConfigError(f"kappa={kappa!r} must be 'evidence' or a number > 0")
    elif not (math.isfinite(kappa) and kappa > 0):
        raise WinbackConfigError(f"kappa={kappa!r} must be 'evidence' or a number > 0")
    if not isinstance(max_recency, int) or max_recency < 1:
        raise WinbackConfigError(f"max_recency={max_recency!r} must be a whole number ≥ 1")
    buckets = list(frequency_buckets)
    if not buckets or buckets[0] != 1 or any(b <= a for a, b in itertools.pairwise(buckets)):
        raise WinbackConfigError(
            f"frequency_buckets={buckets!r} must be increasing lower bounds starting at 1, "
            "e.g. [1, 2, 3, 5]"
        )
    shares = list(tiers.values())
    if any(not (0 < s < 1) for s in shares) or sum(shares) >= 1:
        raise WinbackConfigError(
            f"tiers={dict(tiers)!r}: shares must be in (0, 1) and sum to less than 1 (the rest "
            f"is {REST_TIER!r})"
        )
    if margin is not None and not (0.0 <= margin <= 1.0):
        raise WinbackConfigError(f"margin={margin!r} must be between 0 and 1")


def _read(
    data: Any,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str,
    cost_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: Literal["raise", "drop"],
) -> tuple[_io.Prepared, _io.Prepared | None]:
    """The transactions with amounts and, when a cost column is given (or ``"cost"`` exists),
    the same rows with their costs."""
    frame = _io.to_polars(data)
    schema = frame.collect_schema()
    if amount_col not in schema:
        raise WinbackInputError(
            f"column {amount_col!r} (the amount) is not in the input; value needs amounts. "
            "Pass amount_col='...' to name it."
        )
    if cost_col == "cost" and "cost" not in schema:
        cost_col = None
    if cost_col is not None and cost_col not in schema:
        raise WinbackInputError(f"column {cost_col!r} (the cost) is not in the input")
    if cost_col is not None and on_invalid == "drop":
        # Both passes must see the same rows: drop rows with a bad cost here.
        cost = pl.col(cost_col).cast(pl.Float64)
        frame = frame.filter(cost.is_not_null() & cost.is_finite())
    common = {
        "customer_col": customer_col,
        "time_col": time_col,
        "order_col": order_col,
        "tz": tz,
        "on_invalid": on_invalid,
    }
    prepared = _io.read_transactions(frame, amount_col=amount_col, **common)  # type: ignore[arg-type]
    if cost_col is None:
        return prepared, None
    if on_invalid == "drop":
        amount = pl.col(amount_col).cast(pl.Float64)
        frame = frame.filter(amount.is_not_null() & amount.is_finite())
    costs = _io.read_transactions(frame, amount_col=cost_col, **common)  # type: ignore[arg-type]
    return prepared, costs


def _panel(
    prepared: _io.Prepared, edges: list[int], as_of_us: int, resolution_us: int, name: str
) -> tuple[pl.DataFrame, int]:
    customers, rows, excluded = _winback.panel(
        prepared.frame,
        max_time_us=as_of_us,
        resolution_us=resolution_us,
        period_edges_us=edges,
    )
    ids = _io.customer_ids(pl.DataFrame(customers))
    rows_frame = pl.DataFrame(rows)
    out = rows_frame.select(
        ids.gather(rows_frame.get_column("customer_index")).alias("customer_id"),
        pl.col("period").cast(pl.Int64),
        pl.col("occasions").cast(pl.Int64),
        pl.col("positive_occasions").cast(pl.Int64),
        pl.col("revenue").alias(name),
        pl.col("positive_revenue"),
    )
    return out, excluded


def _expense_panel(
    expenses: Any,
    *,
    customer_col: str,
    time_col: str,
    expense_col: str,
    tz: str | None,
    on_invalid: Literal["raise", "drop"],
    edges: list[int],
    as_of_us: int,
) -> pl.DataFrame:
    """Expenses per customer and period (Polars): ``customer_id``, ``period``, ``expense``."""
    prepared = _io.read_transactions(
        expenses,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=expense_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    if not prepared.has_amount:
        raise WinbackInputError(f"column {expense_col!r} (the expense) is not in the expenses")
    edge_series = pl.Series(edges, dtype=pl.Int64)
    frame = prepared.frame.filter(pl.col("ts") <= as_of_us)
    return (
        frame.with_columns(
            (edge_series.search_sorted(frame.get_column("ts"), side="right") - 1)
            .clip(lower_bound=0)
            .cast(pl.Int64)
            .alias("period")
        )
        .group_by(pl.col("customer").alias("customer_id"), "period")
        # added one by one in ascending order within each group (sort + cum_sum: a plain
        # sort().sum() may be rewritten to sum()), so the bits do not depend on row order
        .agg(pl.col("amount").sort().cum_sum().last().alias("expense"))
    )


# -- per-customer aggregates -----------------------------------------------------------------------
def _quantile_edges(values: FloatArray, n_bins: int) -> FloatArray:
    """Interior quantile edges (distinct, sorted) of ``values``."""
    if values.size == 0:
        return np.zeros(0)
    qs = np.quantile(values, np.arange(1, n_bins) / n_bins)
    return np.unique(qs)


def _bin_expr(column: str, edges: Sequence[float]) -> pl.Expr:
    """Bin index of a value: the number of interior edges at or below it ([b_{j−1}, b_j))."""
    expr = pl.lit(0, dtype=pl.Int64)
    for edge in edges:
        expr = expr + (pl.col(column) >= edge).cast(pl.Int64)
    return expr


def _ordered_sums(
    group: NDArray[np.int64], n_groups: int, weights: pl.DataFrame
) -> dict[str, FloatArray]:
    """Per group, each column of ``weights`` summed by numpy in row order (one sequential
    ``bincount`` pass): the bits depend on the rows' order only, never on threads or Polars'
    aggregation strategy."""
    return {
        name: np.asarray(
            np.bincount(group, weights=weights.get_column(name).to_numpy(), minlength=n_groups),
            dtype=np.float64,
        )
        for name in weights.columns
    }


def _customers(
    panel: pl.DataFrame,
    n_complete: int,
    frequency_buckets: Sequence[int],
    spend_edges: Sequence[float],
) -> pl.DataFrame:
    """Per customer, in ``customer_id`` order: birth, modelling statistics, last active period
    and its buckets, totals and the margin regression terms.

    ``panel`` must be sorted by ``customer_id`` then ``period`` (its rows are unique per pair, so
    that order does not depend on the input's): the money totals are numpy sums in that order.
    """
    active = pl.col("occasions") > 0
    complete = pl.col("period") < n_complete
    panel = panel.with_columns(
        (
            pl.col("period")
            > pl.col("period").filter(active).min().over("customer_id").fill_null(n_complete)
        ).alias("_after_birth"),
        _bin_expr("occasions", list(frequency_buckets[1:])).alias("f_bin"),
        _bin_expr("_mean", spend_edges).alias("m_bin")
        if "_mean" in panel.columns
        else pl.lit(0).alias("m_bin"),
    )
    model = active & complete & pl.col("_after_birth")
    margin_ok = active & complete & (pl.col("revenue") > 0)
    m_k = (pl.col("revenue") - pl.col("cost")) / pl.col("revenue")
    k = pl.col("period").cast(pl.Float64)
    last_active = pl.col("period").filter(active & complete).max()
    out = (
        panel.group_by("customer_id")
        .agg(
            pl.col("period").filter(active).min().alias("birth"),
            pl.col("occasions").filter(model).sum().alias("period_frequency"),
            pl.col("positive_occasions").filter(model).sum().alias("spend_frequency"),
            last_active.alias("last_active"),
            pl.col("f_bin").filter(active & complete).last().alias("f_bin"),
            pl.col("m_bin").filter(active & complete).last().alias("m_bin"),
            pl.col("occasions").filter(active & complete).last().alias("last_occasions"),
            pl.col("expense").filter(pl.col("expense") > 0).min().alias("expense_floor"),
            # margin regression over active complete periods with positive revenue (counts and
            # sums of whole period indices: exact in any order)
            margin_ok.sum().alias("_mn"),
            k.filter(margin_ok).sum().alias("_sk"),
            (k * k).filter(margin_ok).sum().alias("_skk"),
            m_k.filter(margin_ok).last().alias("last_margin"),
            pl.col("period").filter(margin_ok).max().alias("last_margin_period"),
        )
        .sort("customer_id")
    )
    group = panel.select(pl.col("customer_id").rle_id()).to_series().to_numpy().astype(np.int64)
    n_groups = int(group[-1]) + 1 if group.size else 0
    if n_groups != out.height:
        raise AssertionError("the value panel must be sorted by customer_id and period")
    weights = panel.select(
        pl.when(model).then(pl.col("positive_revenue")).otherwise(0.0).alias("_spend_sum"),
        pl.col("revenue").fill_null(0.0).alias("revenue_to_date"),
        pl.col("cost").fill_null(0.0).alias("cost_to_date"),
        pl.col("expense").fill_null(0.0).alias("expense_to_date"),
        pl.when(margin_ok).then(m_k).otherwise(0.0).alias("_sm"),
        pl.when(margin_ok).then(k * m_k).otherwise(0.0).alias("_skm"),
    ).cast(pl.Float64)
    sums = _ordered_sums(group, n_groups, weights)
    return out.with_columns(pl.Series(name, values) for name, values in sums.items())


def value(
    data: Any,
    *,
    as_of: AsOf | None = None,
    period: str = "month",
    expenses: Any | None = None,
    margin: float | None = None,
    horizon: int = 12,
    discount_rate: float = 0.01,
    kappa: float | Literal["evidence"] = "evidence",
    max_recency: int = 12,
    frequency_buckets: Sequence[int] = (1, 2, 3, 5),
    spend_bins: Sequence[float] | None = None,
    tiers: Mapping[str, float] | None = None,
    tier_by: Literal["expected_value", "clv"] = "expected_value",
    resolution: str | timedelta = "1d",
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str = "amount",
    cost_col: str | None = "cost",
    expense_col: str = "expense",
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: Literal["raise", "drop"] = "raise",
) -> ValueResult:
    """Next-period forecasts, margin, cost, expense, value, Markov CLV and tiers (SPEC §6, §7).

    Parameters
    ----------
    data
        Transactions with an amount (and optionally a ``cost``) column; any input
        :func:`winback.silence` accepts.
    as_of
        End of the snapshot (default: the latest purchase). Later rows are excluded.
    period
        ``"month"`` (calendar, default), ``"week"``, ``"quarter"`` or ``"Nd"``.
    expenses
        Optional table of relationship-marketing spend: ``customer_id``, ``ts``, ``expense``
        (names as ``customer_col``/``time_col``/``expense_col``). Without it, expense is 0 and
        ``expense_basis`` says ``"no_expense_data"``.
    margin
        Global margin in [0, 1] when there is no cost column; with one, the fall-back for
        customers without a period of positive revenue. Without cost and margin, cost is 0
        (``margin_basis="no_cost_data"``).
    horizon, discount_rate
        H periods and the per-period rate d of the chain's value (δ = 1/(1+d)).
    kappa
        Dirichlet weight of the model-implied rows: ``"evidence"`` (maximise the
        Dirichlet-multinomial evidence) or a number > 0.
    max_recency, frequency_buckets, spend_bins
        The chain's states (SPEC §7): recency 0 … R−1 and ``R+``; frequency bucket lower
        bounds; interior spend-bin edges (default: quintile edges of the period means).
    tiers, tier_by
        Value tiers (SPEC §6) by ``expected_value`` (default) or ``clv``.
    resolution, customer_col, time_col, amount_col, cost_col, expense_col, order_col, tz,
    on_invalid
        As for :func:`winback.summary`.

    Returns
    -------
    ValueResult
        ``frame`` has one row per customer (:data:`VALUE_COLUMNS`), sorted by ``customer_id``.

    Notes
    -----
    Two probabilities of activity sit side by side (SPEC §6):

    - ``p_active_next`` = P(X' ≥ 1) = 1 − P(X' = 0): the probability of at least one occasion
      in the next period under the period NBD (SPEC §5), which has no dropout — every customer
      keeps buying at their posterior rate;
    - ``p_alive`` = the BG/NBD posterior probability that the customer has not dropped out by
      the end of the last complete period (Fader, Hardie & Lee 2005), fitted on the customers'
      (x repeat occasions, t_x, T) in days (:func:`winback.summary`, ``unit="D"``, up to the
      end of the last complete period). It is a state, not a purchase: a customer can be alive
      and still buy nothing next period. It does not enter ``expected_amount``; null (with
      ``info.bg_nbd_error``) when the BG/NBD cannot be fitted.

    Examples
    --------
    >>> import winback
    >>> from winback.datasets import load_cdnow
    >>> result = winback.value(load_cdnow(), as_of="1998-06-30")
    >>> result.frame.height
    23570
    """
    tiers = dict(DEFAULT_TIERS if tiers is None else tiers)
    _check_args(horizon, discount_rate, kappa, max_recency, frequency_buckets, tiers, margin)
    if tier_by not in ("expected_value", "clv"):
        raise WinbackConfigError(f"tier_by={tier_by!r} must be 'expected_value' or 'clv'")
    check_period(period)
    resolution_us = _io.parse_resolution(resolution)
    prepared, costs = _read(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        cost_col=cost_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    as_of_us = _io.snapshot_end(prepared, as_of)
    first = prepared.frame.select(pl.col("ts").filter(pl.col("ts") <= as_of_us).min()).item()
    start_us = as_of_us if first is None else int(first) - int(first) % resolution_us
    edges = period_edges(period, start_us, as_of_us + 1) or [start_us]
    n_complete = len(edges) - 1
    panel, excluded = _panel(prepared, edges, as_of_us, resolution_us, "revenue")
    if costs is not None:
        cost_panel, _ = _panel(costs, edges, as_of_us, resolution_us, "cost")
        panel = panel.join(
            cost_panel.select("customer_id", "period", "cost"),
            on=["customer_id", "period"],
            how="left",
        )
    elif margin is not None:
        panel = panel.with_columns((pl.col("revenue") * (1.0 - margin)).alias("cost"))
    else:
        panel = panel.with_columns(pl.lit(0.0).alias("cost"))
    unmatched = 0
    if expenses is not None:
        exp = _expense_panel(
            expenses,
            customer_col=customer_col,
            time_col=time_col,
            expense_col=expense_col,
            tz=tz,
            on_invalid=on_invalid,
            edges=edges,
            as_of_us=as_of_us,
        )
        known = exp.join(panel.select("customer_id").unique(), on="customer_id", how="semi")
        unmatched = exp.height - known.height
        panel = panel.join(known, on=["customer_id", "period"], how="full", coalesce=True)
        panel = panel.with_columns(
            pl.col("occasions", "positive_occasions").fill_null(0),
            pl.col("revenue", "positive_revenue", "cost", "expense").fill_null(0.0),
        )
    else:
        panel = panel.with_columns(pl.lit(0.0).alias("expense"))
    panel = panel.with_columns(
        pl.when(pl.col("occasions") > 0)
        .then(pl.col("revenue") / pl.col("occasions"))
        .otherwise(None)
        .alias("_mean")
    ).sort("customer_id", "period")
    complete_means = (
        panel.filter((pl.col("occasions") > 0) & (pl.col("period") < n_complete))
        .get_column("_mean")
        .to_numpy()
    )
    spend_edges = (
        [float(e) for e in spend_bins]
        if spend_bins is not None
        else [float(e) for e in _quantile_edges(complete_means, 5)]
    )
    if any(b <= a for a, b in itertools.pairwise(spend_edges)):
        raise WinbackConfigError(f"spend_bins={spend_edges!r} must be strictly increasing")
    customers = _customers(panel, n_complete, frequency_buckets, spend_edges).sort("customer_id")
    info = ValueInfo(
        as_of=_io.micros_to_datetime(as_of_us) if first is not None or as_of else None,
        period=period,
        n_complete_periods=n_complete,
        next_period_start=_io.micros_to_datetime(edges[-1]) if first is not None else None,
        rows_read=prepared.rows_read,
        rows_rejected=prepared.rows_rejected,
        rows_after_as_of=excluded,
        has_cost=costs is not None,
        has_expenses=expenses is not None,
        spend_bin_edges=tuple(spend_edges),
        expense_rows_unmatched=unmatched,
        rejects=prepared.rejects,
    )
    alive_summary = None
    if first is not None and n_complete > 0:
        # (x, t_x, T) in days up to the end of the last complete period, for P(alive).
        alive_summary = summary(
            prepared.frame.with_columns(pl.col("ts").cast(pl.Datetime("us"))),
            as_of=_io.micros_to_datetime(edges[-1] - 1),
            unit="D",
            resolution=resolution,
            customer_col="customer",
            amount_col=None,
        ).select("customer_id", "frequency", "recency", "T")
    from winback._value_engine import forecast  # numba and the models load here

    return forecast(
        alive_summary=alive_summary,
        panel=panel,
        customers=customers,
        info=info,
        n_complete=n_complete,
        margin=margin,
        horizon=horizon,
        discount_rate=discount_rate,
        kappa=kappa,
        max_recency=max_recency,
        frequency_buckets=list(frequency_buckets),
        tiers=tiers,
        tier_by=tier_by,
        customer_dtype=pl.String if prepared.frame.schema["customer"] == pl.String else pl.Int64,
    )
