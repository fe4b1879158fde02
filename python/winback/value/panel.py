"""The value engine's data side: reading the input (:func:`read_value_input`), the customer ×
period panel built in the Rust core (docs/methods.md#periods) with its costs and expenses, the
spend-bin edges and the per-customer aggregates the models are fitted on."""

from __future__ import annotations

import ctypes
import functools
import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback import _io, _winback
from winback._options import OnInvalid
from winback.errors import WinbackConfigError, WinbackInputError
from winback.value.result import ValueWarning

__all__ = [
    "PanelHandle",
    "bin_expr",
    "customer_aggregates",
    "customer_panel",
    "expense_panel",
    "read_value_input",
    "refuse_overflow",
    "release_freed_memory",
    "spend_bin_edges",
    "value_panel",
]

#: How many customer ids a warning or an error names.
_NAMED = 5

FloatArray = NDArray[np.float64]


# -- input ----------------------------------------------------------------------------------------
def read_value_input(
    data: Any,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str,
    cost_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
) -> _io.PreparedTransactions:
    """The transactions with amounts and, when a cost column is given (or ``"cost"`` exists),
    their costs: read once at the input edge (docs/methods.md#input). A row with a bad amount or
    cost is invalid as a whole (raised, or set aside with its reason)."""
    if isinstance(data, _io.PreparedTransactions):
        if not data.has_amount:
            raise WinbackInputError(
                "the prepared transactions have no amounts; value needs them. Prepare them with "
                "an amount column (winback.prepare(..., amount_col='...'))."
            )
        return data
    frame = _io.to_polars(data)  # once: a reader or stream cannot be read again
    schema = _io.read_schema(frame)
    if amount_col not in schema:
        raise WinbackInputError(
            f"column {amount_col!r} (the amount) is not in the input; value needs amounts. "
            "Pass amount_col='...' to name it."
        )
    if cost_col == "cost" and "cost" not in schema:
        cost_col = None
    return _io.prepare(
        frame,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        cost_col=cost_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )


# -- panel ----------------------------------------------------------------------------------------
@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None off glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class PanelHandle:
    """The customer × period panel handed to the engine, which lets go of it once the chain has
    read it (:meth:`take`). The panel (≈ 480 MB at 1M customers × 24 months) is then freed
    unless the caller keeps its own reference (the headline forecasts read it again): nothing
    else holds it. The values computed from it are the same bits either way."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame: pl.DataFrame | None = frame

    @property
    def frame(self) -> pl.DataFrame:
        """The panel, still held by the handle."""
        if self._frame is None:
            raise RuntimeError("the panel was already taken")
        return self._frame

    def take(self) -> pl.DataFrame:
        """The panel; the handle holds it no longer (a second call is an error)."""
        frame = self.frame
        self._frame = None
        return frame


def release_freed_memory() -> None:
    """Hands the C heap's freed pages back to the OS. The Rust kernels' scratch lives in their
    worker threads' arenas, which glibc keeps resident once freed (the summary's ≈ 300 MB at 1M
    customers; the panel writes one vector per partition, no longer one per customer, so it
    leaves little). Under 0.2 s. No-op off glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def customer_panel(
    prepared: _io.PreparedTransactions,
    edges: list[int],
    as_of_us: int,
    resolution_us: int,
    name: str,
    value_col: str = "amount",
) -> tuple[pl.DataFrame, int]:
    """The Rust panel of ``prepared`` (one row per customer and period with an occasion):
    ``customer_id``, ``period``, ``occasions``, ``positive_occasions``, ``name`` (the period's
    total of ``value_col``: ``amount`` or ``cost``) and ``positive_revenue``; and the rows after
    ``as_of_us``."""
    # The core reads (customer, ts, amount) by position.
    frame = prepared.frame.select("customer", "ts", pl.col(value_col).alias("amount"))
    customers, rows, excluded = _winback.panel(
        frame,
        max_time_us=as_of_us,
        resolution_us=resolution_us,
        period_edges_us=edges,
    )
    ids = _io.customer_ids(pl.DataFrame(customers))
    source = {column.name: column for column in pl.DataFrame(rows).get_columns()}
    del customers, rows
    release_freed_memory()
    # Column by column, each core column let go of once converted: the panel's rows are never
    # held twice (≈ 250 MB less at 1M customers × 24 months).
    out: dict[str, pl.Series] = {}
    out["customer_id"] = ids.gather(source.pop("customer_index")).alias("customer_id")
    del ids
    for column in ("period", "occasions", "positive_occasions"):
        out[column] = source.pop(column).cast(pl.Int64)
    out[name] = source.pop("revenue").alias(name)
    out["positive_revenue"] = source.pop("positive_revenue")
    return pl.DataFrame(out), excluded


def expense_panel(
    expenses: Any,
    *,
    customer_col: str,
    time_col: str,
    expense_col: str,
    tz: str | None,
    on_invalid: OnInvalid,
    edges: list[int],
    as_of_us: int,
) -> pl.DataFrame:
    """Expenses per customer and period (Polars): ``customer_id``, ``period``, ``expense`` and
    ``_rows`` (the expense rows behind it). A negative expense is refused (docs/methods.md#expense:
    a marketing expense is money spent, never a refund); rows set aside by
    ``on_invalid="drop"`` are counted in a :class:`ValueWarning`."""
    prepared = _io.prepare(
        expenses,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=expense_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    if not prepared.has_amount:
        raise WinbackInputError(f"column {expense_col!r} (the expense) is not in the expenses")
    negative = prepared.frame.filter(pl.col("amount") < 0)
    if negative.height:
        customers = negative.get_column("customer").unique(maintain_order=True)
        named = ", ".join(str(v) for v in customers.head(_NAMED).to_list())
        raise WinbackInputError(
            f"expenses: column {expense_col!r} has {negative.height} negative value(s) (customers "
            f"{named}{' …' if customers.len() > _NAMED else ''}); an expense is money spent on a "
            "customer and cannot be negative — remove the rows or net them against positive "
            "expenses of the same period (docs/methods.md#expense)"
        )
    if prepared.rows_rejected:
        warnings.warn(
            ValueWarning(
                f"expenses: {prepared.rows_rejected} invalid expense row(s) were set aside "
                '(on_invalid="drop"); the rest are used'
            ),
            stacklevel=4,
        )
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
        .agg(pl.col("amount").sort().cum_sum().last().alias("expense"), pl.len().alias("_rows"))
    )


def value_panel(
    prepared: _io.PreparedTransactions,
    expenses: Any | None,
    *,
    edges: list[int],
    as_of_us: int,
    resolution_us: int,
    margin: float | None,
    customer_col: str,
    time_col: str,
    expense_col: str,
    tz: str | None,
    on_invalid: OnInvalid,
) -> tuple[pl.DataFrame, int, int, int]:
    """The customer × period panel with ``revenue``, ``cost`` (from the cost column, else
    revenue × (1 − ``margin``), else 0), ``expense`` (0 without expenses) and ``_mean`` (revenue
    per occasion), sorted by ``customer_id`` then ``period``; the rows after ``as_of_us``; the
    expense rows of customers without transactions (left out, with a :class:`ValueWarning`
    naming how many rows and customers) and the number of those customers."""
    panel, excluded = customer_panel(prepared, edges, as_of_us, resolution_us, "revenue")
    cost_panel = (
        customer_panel(prepared, edges, as_of_us, resolution_us, "cost", "cost")[0]
        if prepared.has_cost
        else None
    )
    del prepared  # read last here: freed unless the caller keeps it (api.value does not)
    if cost_panel is not None:
        # Both panels come from the same rows, so they have the same (customer, period) rows in
        # the same order: the cost column is taken as it is (the join is kept for safety).
        keys = ["customer_id", "period"]
        if cost_panel.select(keys).equals(panel.select(keys)):
            panel = panel.with_columns(cost_panel.get_column("cost"))
        else:
            panel = panel.join(cost_panel.select(*keys, "cost"), on=keys, how="left")
        del cost_panel
    elif margin is not None:
        panel = panel.with_columns((pl.col("revenue") * (1.0 - margin)).alias("cost"))
    else:
        panel = panel.with_columns(pl.lit(0.0).alias("cost"))
    unmatched = unmatched_customers = 0
    if expenses is not None:
        exp = expense_panel(
            expenses,
            customer_col=customer_col,
            time_col=time_col,
            expense_col=expense_col,
            tz=tz,
            on_invalid=on_invalid,
            edges=edges,
            as_of_us=as_of_us,
        )
        customers = panel.select("customer_id").unique()
        known = exp.join(customers, on="customer_id", how="semi")
        unknown = exp.join(customers, on="customer_id", how="anti")
        unmatched = int(unknown.get_column("_rows").sum())
        if unmatched:
            ids = unknown.get_column("customer_id").unique().sort()
            unmatched_customers = ids.len()
            named = ", ".join(str(v) for v in ids.head(_NAMED).to_list())
            warnings.warn(
                ValueWarning(
                    f"expenses: {unmatched} expense row(s) of {unmatched_customers} customer(s) "
                    f"without transactions up to as_of ({named}"
                    f"{' …' if unmatched_customers > _NAMED else ''}) are left out "
                    "(docs/methods.md#expense)"
                ),
                stacklevel=3,
            )
        panel = panel.join(
            known.drop("_rows"), on=["customer_id", "period"], how="full", coalesce=True
        )
        panel = panel.with_columns(
            pl.col("occasions", "positive_occasions").fill_null(0),
            pl.col("revenue", "positive_revenue", "cost", "expense").fill_null(0.0),
        )
    else:
        panel = panel.with_columns(pl.lit(0.0).alias("expense"))
    refuse_overflow(panel, ("revenue", "positive_revenue", "cost", "expense"), "a period's")
    panel = panel.with_columns(
        pl.when(pl.col("occasions") > 0)
        .then(pl.col("revenue") / pl.col("occasions"))
        .otherwise(None)
        .alias("_mean")
    )
    return _by_customer_period(panel), excluded, unmatched, unmatched_customers


def _by_customer_period(panel: pl.DataFrame) -> pl.DataFrame:
    """``panel`` sorted by ``customer_id`` then ``period`` (unique pairs: one order). The Rust
    panel comes in that order already; a join may not keep it. Checking is one pass, where a
    sort of the whole panel is a copy of every column."""
    ids = panel.get_column("customer_id")
    if ids.is_sorted():
        group = panel.select(pl.col("customer_id").rle_id()).to_series().to_numpy()
        period = panel.get_column("period").to_numpy()
        same = group[1:] == group[:-1]
        if not np.any(same & (period[1:] <= period[:-1])):
            return panel
    return panel.sort("customer_id", "period")


def refuse_overflow(frame: pl.DataFrame, columns: Sequence[str], scope: str) -> None:
    """Refuses sums of finite amounts that overflowed the float range (±inf, or NaN from
    inf − inf), naming the customers: a value computed from them would be inf or NaN."""
    present = [c for c in columns if c in frame.columns]
    bad = frame.filter(pl.any_horizontal([~pl.col(c).is_finite() for c in present]))
    if bad.height == 0:
        return
    customers = bad.get_column("customer_id").unique(maintain_order=True)
    named = ", ".join(str(v) for v in customers.head(_NAMED).to_list())
    which = [c.lstrip("_") for c in present if not bad.get_column(c).is_finite().all()]
    raise WinbackInputError(
        f"value: {scope} total of {', '.join(which)} overflows the float range (±1.8e308) for "
        f"{customers.len()} customer(s) ({named}{' …' if customers.len() > _NAMED else ''}); "
        "amounts, costs or expenses this large cannot be valued — check their units"
    )


# -- bins and per-customer aggregates -------------------------------------------------------------
def quantile_edges(values: FloatArray, n_bins: int) -> FloatArray:
    """Interior quantile edges (distinct, sorted) of ``values``."""
    if values.size == 0:
        return np.zeros(0)
    qs = np.quantile(values, np.arange(1, n_bins) / n_bins)
    return np.unique(qs)


def spend_bin_edges(
    panel: pl.DataFrame, n_complete: int, spend_bins: Sequence[float] | None
) -> list[float]:
    """Interior spend-bin edges of the chain (docs/methods.md#markov): ``spend_bins``, else the
    quintile edges of the mean amounts of active complete periods."""
    # The one column, then its rows: an eager filter of the panel copies every column.
    complete_means = (
        panel.select("_mean", "occasions", "period")
        .filter((pl.col("occasions") > 0) & (pl.col("period") < n_complete))
        .get_column("_mean")
        .to_numpy()
    )
    spend_edges = (
        [float(e) for e in spend_bins]
        if spend_bins is not None
        else [float(e) for e in quantile_edges(complete_means, 5)]
    )
    if not all(np.isfinite(spend_edges)):
        raise WinbackConfigError(f"spend_bins={spend_edges!r} must be finite numbers")
    if any(b <= a for a, b in itertools.pairwise(spend_edges)):
        raise WinbackConfigError(f"spend_bins={spend_edges!r} must be strictly increasing")
    return spend_edges


def bin_expr(column: str, edges: Sequence[float]) -> pl.Expr:
    """Bin index of a value: the number of interior edges at or below it ([b_{j−1}, b_j))."""
    expr = pl.lit(0, dtype=pl.Int64)
    for edge in edges:
        expr = expr + (pl.col(column) >= edge).cast(pl.Int64)
    return expr


def customer_aggregates(
    panel: pl.DataFrame,
    n_complete: int,
    frequency_buckets: Sequence[int],
    spend_edges: Sequence[float],
) -> pl.DataFrame:
    """Per customer, in ``customer_id`` order: birth, modelling statistics, last active period
    and its buckets, totals and the margin regression terms.

    ``panel`` must be sorted by ``customer_id`` then ``period`` (its rows are unique per pair, so
    that order does not depend on the input's): the money totals are sums in that order, and
    everything comes from one pass of :func:`winback._kernels.value.customer_totals`.
    """
    from winback._kernels import value as kernels  # numba loads on first use, not on import

    group = panel.select(pl.col("customer_id").rle_id()).to_series().to_numpy()
    n_rows = panel.height
    change = np.flatnonzero(np.diff(group)) + 1 if n_rows else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], change, [n_rows]] if n_rows else [[0]]).astype(np.int64)
    ids = panel.get_column("customer_id").gather(pl.Series(starts[:-1], dtype=pl.Int64))
    if not ids.is_sorted():
        raise AssertionError("the value panel must be sorted by customer_id and period")
    has_mean = "_mean" in panel.columns

    def floats(name: str) -> FloatArray:
        return np.ascontiguousarray(
            panel.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
        )

    def ints(name: str) -> NDArray[np.int64]:
        return np.ascontiguousarray(panel.get_column(name).cast(pl.Int64).to_numpy())

    whole, real, sums = kernels.customer_totals(
        starts,
        ints("period"),
        ints("occasions"),
        ints("positive_occasions"),
        floats("revenue"),
        floats("positive_revenue"),
        floats("cost"),
        floats("expense"),
        floats("_mean") if has_mean else np.zeros(n_rows),
        np.asarray(list(frequency_buckets[1:]), dtype=np.int64),
        np.asarray(list(spend_edges) if has_mean else [], dtype=np.float64),
        n_complete,
    )

    def index(column: int) -> pl.Series:  # −1: none (a null, as the group-by's empty filter)
        values = pl.Series(whole[column])
        return values.set(values < 0, None)

    def maybe(column: int) -> pl.Series:
        return pl.Series(real[column]).fill_nan(None)

    out = pl.DataFrame(
        {
            "customer_id": ids,
            "birth": index(0),
            "period_frequency": whole[1],
            "spend_frequency": whole[2],
            "last_active": index(3),
            "f_bin": index(4),
            "m_bin": index(5) if has_mean else index(5).cast(pl.Int32),
            "last_occasions": index(6),
            "expense_floor": maybe(0),
            "_mn": pl.Series(whole[7]).cast(pl.UInt32),
            "_sk": real[1],
            "_skk": real[2],
            "last_margin": maybe(3),
            "last_margin_period": index(8),
            "_spend_sum": sums[0],
            "revenue_to_date": sums[1],
            "cost_to_date": sums[2],
            "expense_to_date": sums[3],
            "_sm": sums[4],
            "_skm": sums[5],
        }
    )
    refuse_overflow(
        out, ("_spend_sum", "revenue_to_date", "cost_to_date", "expense_to_date"), "a customer's"
    )
    return out
