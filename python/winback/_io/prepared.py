"""The input edge: transactions read, checked and converted once (docs/methods.md#input).

:func:`prepare` turns any supported input into a :class:`PreparedTransactions` object — the core's
columns, the rows read and the rejects — and every public function that takes transactions
accepts a :class:`PreparedTransactions` in place of raw data without reading it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from winback._io.hygiene import (
    RefusalTally,
    check_id_type,
    check_on_invalid,
    empty_rejects,
    invalid_rows_error,
    merge_orders,
    plan_read,
    reject_reason,
    unreadable_columns_error,
)
from winback._io.sources import open_transactions, read_schema
from winback._io.times import PurchaseDates, check_time_format, snapshot_end_at
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ID_TYPE,
    ON_INVALID,
    TIME_COL,
    TIME_FORMAT,
    IdType,
    OnInvalid,
)
from winback.errors import WinbackConfigError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "PreparedTransactions",
    "check_num_threads",
    "customer_ids",
    "customer_runs",
    "distinct_customers",
    "prepare",
    "purchase_dates",
    "remembered",
    "snapshot_end",
]


@dataclass(frozen=True)
class PreparedTransactions:
    """Transactions read, checked and converted once, ready for every winback function.

    Made by :func:`winback.prepare`; ``winback.silence``, ``summary``, ``value``, ``rfm``,
    ``migration``, ``evaluate`` and ``report`` accept it in place of raw data and do not read the
    input again (their column, time-zone and ``on_invalid`` arguments are then ignored: they were
    applied here). See docs/methods.md#input.

    Attributes
    ----------
    frame : polars.DataFrame
        ``customer`` (Int64, or String for string ids), ``ts`` (Int64 local wall-clock µs since
        1970-01-01), and ``amount`` / ``cost`` (Float64) when read.
    rows_read : int
        Rows in the input.
    rejects : polars.DataFrame
        Rows set aside by ``on_invalid="drop"``: the input's columns, ``row_index`` (0-based in
        the whole input) and ``reason``.
    has_amount, has_cost : bool
        Whether ``frame`` holds ``amount`` / ``cost``.
    time_zone : str or None
        The zone whose calendar the local times follow (None for naive input).
    """

    frame: pl.DataFrame
    rows_read: int
    rejects: pl.DataFrame = field(repr=False)
    has_amount: bool
    time_zone: str | None
    has_cost: bool = False
    #: Results derived from ``frame`` and kept for the next caller (:func:`remembered`): not
    #: part of the value, never copied by ``dataclasses.replace``.
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def rows_rejected(self) -> int:
        """Rows set aside by ``on_invalid="drop"``."""
        return self.rejects.height

    def __repr__(self) -> str:
        return (
            f"PreparedTransactions(rows={self.frame.height}, rows_read={self.rows_read}, "
            f"rows_rejected={self.rows_rejected}, has_amount={self.has_amount}, "
            f"has_cost={self.has_cost}, time_zone={self.time_zone!r})"
        )

    def without_amounts(self) -> PreparedTransactions:
        """The same transactions with only ``customer`` and ``ts`` (for purchase counting)."""
        return replace(
            self, frame=self.frame.select("customer", "ts"), has_amount=False, has_cost=False
        )


def prepare(
    data: Any,
    *,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    cost_col: str | None = None,
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> PreparedTransactions:
    """Read and check transactions once: the input edge of every winback function.

    Parameters
    ----------
    data
        A Polars/pandas DataFrame, PyArrow table or record-batch reader, DuckDB relation,
        anything with ``__arrow_c_stream__``, a path/glob/directory of Parquet, CSV or Arrow IPC
        files — or a :class:`PreparedTransactions`, returned as it is.
    customer_col, time_col
        The customer id (integers or strings) and purchase time (dates, datetimes or text)
        columns. Tz-aware times are read on their local calendar; text times are ISO 8601 (or
        ``time_format``), an offset making them instants (docs/methods.md#time-zones).
    amount_col
        The purchase amount. When it is the default ``"amount"`` and absent, the transactions
        have no amounts (enough for silence scoring); naming a missing column is an error.
    cost_col
        An optional cost column (for ``winback.value``'s margins), checked like the amount.
    order_col
        Rows with the same (customer, order) are one purchase dated at its first row, their
        amounts and costs summed.
    tz
        Read tz-aware times on this zone's calendar instead of their own.
    on_invalid
        ``"raise"``: invalid rows (null ids or times, unparseable times, null/NaN/infinite
        amounts or costs) raise :class:`~winback.WinbackInputError` naming the column, count and
        first rows; ``"drop"``: they are set aside in ``rejects`` with a ``reason``.
    time_format
        The strftime/chrono format of text times (``"%d/%m/%Y"``, ``"%m/%d/%Y %H:%M"``); rows
        that do not match it are invalid. Default: ISO 8601 only; dates in another layout
        (``01/02/2024``) are refused with their possible readings, never guessed.
    id_type
        ``"auto"`` (default): ids of CSV files are text (``00123`` and ``123`` are two
        customers), typed sources keep their type; ``"int"``: Int64, ids that are not integers
        are invalid rows; ``"str"``: text. Unsigned 64-bit ids beyond Int64 are refused unless
        ``"str"`` (docs/methods.md#input).

    Returns
    -------
    PreparedTransactions
        See docs/methods.md#input.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = winback.prepare(pl.DataFrame({"customer_id": [1, 1, None],
    ...     "ts": [date(2024, 1, 1), date(2024, 1, 5), date(2024, 1, 6)]}), on_invalid="drop")
    >>> tx.rows_read, tx.rows_rejected, tx.frame.height
    (3, 1, 2)
    >>> winback.silence(tx).get_column("n_occasions").to_list()
    [2]
    """
    check_on_invalid(on_invalid)
    check_id_type(id_type)
    check_time_format(time_format)
    if isinstance(data, PreparedTransactions):
        return data
    named = [c for c in (customer_col, time_col, amount_col, cost_col, order_col) if c]
    frame = open_transactions(
        data,
        customer_col=customer_col,
        time_col=time_col,
        columns=named,
        numeric=[c for c in (amount_col, cost_col) if c],
    )
    schema = read_schema(frame)
    plan = plan_read(
        schema,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        cost_col=cost_col,
        order_col=order_col,
        tz=tz,
        time_format=time_format,
        id_type=id_type,
    )
    used = plan.used
    try:
        if isinstance(frame, pl.LazyFrame):
            collected = frame.select(used).collect(engine="streaming")
        else:
            collected = frame.select(used)
        prepared = collected.select(*plan.exprs, *plan.checks, *plan.refusals)
    except pl.exceptions.PolarsError as exc:
        raise unreadable_columns_error(used, exc) from exc
    if plan.refusals:
        refusals = RefusalTally(plan)
        refusals.add(collected, prepared, 0)
        refused = refusals.error()
        if refused is not None:
            raise refused
        prepared = prepared.drop(plan.refusal_flags)
    flags = plan.flags
    bad_any = pl.any_horizontal(flags)
    bad_counts = prepared.select(pl.col(flags).sum()).row(0, named=True)
    if sum(bad_counts.values()) == 0:
        rejects = empty_rejects(collected)
        clean = prepared.drop(flags)
    else:
        indexed = prepared.with_row_index("row_index")
        if on_invalid == "raise":
            first_rows = {
                flag: indexed.filter(pl.col(flag)).get_column("row_index").head(5).to_list()
                for flag, count in bad_counts.items()
                if count
            }
            examples = {
                flag: collected.get_column(plan.reasons[flag][0])[rows[0]]
                for flag, rows in first_rows.items()
                if flag in plan.hints
            }
            raise invalid_rows_error(plan, bad_counts, first_rows, examples)
        bad_mask = prepared.select(bad_any.alias("bad")).get_column("bad")
        rejects = (
            collected.with_row_index("row_index")
            .with_columns(prepared.select(reject_reason(plan, flags)).to_series())
            .filter(bad_mask)
        )
        clean = prepared.filter(~bad_mask).drop(flags)
    if order_col is not None:
        clean = merge_orders(clean)
    clean = clean.with_columns(pl.col("ts").cast(pl.Int64))
    return PreparedTransactions(
        frame=clean.rechunk(),
        rows_read=collected.height,
        rejects=rejects,
        has_amount=plan.has_amount,
        time_zone=plan.time_zone,
        has_cost=plan.has_cost,
    )


def remembered(
    prepared: PreparedTransactions,
    kind: str,
    key: Any,
    compute: Callable[[], Any],
    *,
    keep: int = 2,
) -> Any:
    """``compute()``, kept on ``prepared`` under (``kind``, ``key``) and returned again when asked
    for the same again: the rows are immutable, so a result derived from them only is the same
    on every call. Only the ``keep`` most recently used results of a kind are kept (memory stays
    bounded when a caller walks many snapshots). Callers must not mutate what they get back
    (Polars frames are only replaced, never changed in place, in winback)."""
    entries: dict[Any, Any] = prepared.memo.setdefault(kind, {})
    if key in entries:
        entries[key] = entries.pop(key)  # most recently used last
        return entries[key]
    result = compute()
    entries[key] = result
    while len(entries) > keep:
        del entries[next(iter(entries))]
    return result


#: Ids spread over more than this many times the rows are grouped by a sort, not counted.
_COUNTING_SPREAD = 4


def customer_runs(prepared: PreparedTransactions) -> tuple[pl.Series, np.ndarray, pl.DataFrame]:
    """The rows of ``prepared.frame`` grouped by customer, kept on ``prepared`` for the next
    caller: the customers' ids in increasing order, ``starts`` (one offset per customer and a last
    one, ``frame.height``) and the frame's ``ts`` (and ``amount``) columns reordered so that
    customer g's rows are rows ``starts[g]`` … ``starts[g + 1] − 1``, in no particular order.

    Integer ids spread over at most a few times the rows are grouped by a counting sort (two
    linear passes); other ids by a sort of the ids. Reordered once, the columns are then read in
    sequence by every per-customer pass (cold-start occasions, RFM's window).
    """
    import numpy as np

    def compute() -> tuple[pl.Series, np.ndarray, pl.DataFrame]:
        frame = prepared.frame
        ids = frame.get_column("customer")
        n = ids.len()
        order: np.ndarray | None = None
        if n and ids.dtype.is_integer():
            low, high = int(ids.min()), int(ids.max())  # type: ignore[arg-type]
            span = high - low + 1
            if span <= _COUNTING_SPREAD * n + 1024:
                from winback._kernels.occasions import counting_order

                keys = (ids.to_numpy() - low).astype(np.int64, copy=False)
                order, all_starts = counting_order(keys, span)
                present = np.flatnonzero(np.diff(all_starts))
                starts = np.append(all_starts[present], n).astype(np.int64)
        if order is None:
            order = ids.arg_sort().to_numpy().astype(np.int64)
            ordered = ids.gather(order)
            change = ordered.ne_missing(ordered.shift(1)).fill_null(True).to_numpy()
            starts = np.append(np.flatnonzero(change), n).astype(np.int64)
        columns = [c for c in ("ts", "amount") if c in frame.columns]
        grouped = pl.DataFrame(
            [pl.Series(c, frame.get_column(c).to_numpy()[order]) for c in columns]
        )
        return ids.gather(order[starts[:-1]]), starts, grouped

    runs: tuple[pl.Series, np.ndarray, pl.DataFrame] = remembered(
        prepared, "customer_runs", None, compute, keep=1
    )
    return runs


def distinct_customers(prepared: PreparedTransactions) -> pl.Series:
    """The distinct customer ids of ``prepared``, in increasing order: those of
    :func:`customer_runs` when another pass has grouped the rows already, else a sort of the
    distinct ids (grouping the rows for this alone would cost more)."""
    runs = prepared.memo.get("customer_runs", {}).get(None)
    if runs is not None:
        ids: pl.Series = runs[0]
        return ids
    return prepared.frame.get_column("customer").unique().sort()


def snapshot_end(prepared: PreparedTransactions, as_of: date | datetime | str | None) -> int:
    """The snapshot cut-off in local wall-clock µs by the one rule of docs/methods.md#as-of
    (:func:`~winback._io.times.snapshot_end_at`): ``as_of`` (a date is the end of that day; one
    before all the data is refused), by default the end of the latest purchase's day (refused
    when far-future rows would set it); 0 for empty input without ``as_of``."""
    return snapshot_end_at(as_of, prepared.time_zone, purchase_dates(prepared))


def purchase_dates(prepared: PreparedTransactions) -> PurchaseDates:
    """The purchase times of ``prepared`` as the snapshot rule needs them."""
    return PurchaseDates.of(prepared.frame)


def check_num_threads(num_threads: int | None) -> None:
    """``num_threads`` must be None (the default pool) or at least 1."""
    if num_threads is not None and num_threads < 1:
        raise WinbackConfigError(f"num_threads={num_threads} must be at least 1")


def customer_ids(kernel_output: pl.DataFrame) -> pl.Series:
    """The ``customer_id`` column of a kernel's output: Int64, or String for string ids."""
    customers = kernel_output.get_column("customer_id")
    return customers if customers.dtype == pl.Int64 else customers.cast(pl.String)
