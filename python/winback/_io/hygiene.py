"""Input hygiene: column resolution and types, the validity rules, rejects and their reasons.

:func:`plan_read` checks the input's columns and types and plans their conversion to the core's
columns (``customer``, ``ts``, ``amount``); each hygiene rule is one boolean column whose reason
is reported per rejected row or, under ``on_invalid="raise"``, in the error
(docs/methods.md#input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from winback._io.sources import first_line
from winback._options import AMOUNT_COL
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = [
    "ReadPlan",
    "check_on_invalid",
    "empty_rejects",
    "invalid_rows_error",
    "merge_orders",
    "plan_read",
    "reject_reason",
    "unreadable_columns_error",
]

_MAX_LISTED_ROWS = 5


def _check_columns(schema: pl.Schema, wanted: dict[str, str | None]) -> None:
    for role, name in wanted.items():
        if name is not None and name not in schema:
            available = ", ".join(repr(c) for c in schema.names()[:20])
            raise WinbackInputError(
                f"column {name!r} (the {role}) is not in the input; available columns: "
                f"{available}. Pass {role}_col='...' to name it."
            )


def _customer_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64)
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return pl.col(name).cast(pl.String)
    raise WinbackInputError(
        f"column {name!r} (the customer id) has type {dtype}; use integer or string ids"
    )


def _time_expr(name: str, dtype: pl.DataType, tz: str | None) -> tuple[pl.Expr, str | None]:
    """Expression giving local wall-clock datetimes (µs), and the time zone used."""
    col = pl.col(name)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")), None
    if isinstance(dtype, pl.Datetime):
        zone = tz or dtype.time_zone
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone(zone or "UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("us")), zone
    if dtype == pl.String:
        return col.str.to_datetime(strict=False, time_unit="us"), tz
    raise WinbackInputError(
        f"column {name!r} (the purchase time) has type {dtype}; use a date or datetime column "
        "(or ISO-8601 strings). Integers are ambiguous: convert them, e.g. "
        "pl.from_epoch(col, time_unit='s')."
    )


def _describe_rows(indices: list[int], total: int) -> str:
    shown = ", ".join(str(i) for i in indices[:_MAX_LISTED_ROWS])
    more = ", …" if total > _MAX_LISTED_ROWS else ""
    return f"rows {shown}{more}"


@dataclass(frozen=True)
class ReadPlan:
    """How to turn input columns into the core's columns and the hygiene flags
    (docs/methods.md#hygiene).

    ``used`` are the input columns read; ``exprs`` give ``customer``, ``ts`` (local wall-clock
    datetimes, µs), optionally ``amount`` and ``order``; ``checks`` give one boolean column per
    hygiene rule, named like ``__null_customer``, explained by ``reasons`` (column, what).
    """

    used: list[str]
    exprs: list[pl.Expr]
    checks: list[pl.Expr]
    reasons: dict[str, tuple[str, str]]
    time_zone: str | None
    has_amount: bool
    has_cost: bool = False


def plan_read(
    schema: pl.Schema,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    cost_col: str | None = None,
) -> ReadPlan:
    """Checks the input's columns and types and plans the conversion (see :class:`ReadPlan`)."""
    if amount_col == AMOUNT_COL and AMOUNT_COL not in schema:
        amount_col = None
    if cost_col is not None and amount_col is None:
        # The core reads (customer, ts, amount) by position: a cost needs its amount beside it.
        raise WinbackInputError(
            f"column {cost_col!r} (the cost) was given without an amount column; name the "
            "amount too (amount_col='...')"
        )
    _check_columns(
        schema,
        {
            "customer": customer_col,
            "time": time_col,
            "amount": amount_col,
            "cost": cost_col,
            "order": order_col,
        },
    )
    time_expr, zone = _time_expr(time_col, schema[time_col], tz)
    exprs = [
        _customer_expr(customer_col, schema[customer_col]).alias("customer"),
        time_expr.alias("ts"),
    ]
    checks = [
        pl.col(customer_col).is_null().alias("__null_customer"),
        pl.col(time_col).is_null().alias("__null_ts"),
    ]
    if schema[time_col] == pl.String:
        checks.append((pl.col(time_col).is_not_null() & time_expr.is_null()).alias("__bad_ts"))
    reasons = {
        "__null_customer": (customer_col, "null customer id"),
        "__null_ts": (time_col, "null timestamp"),
        "__bad_ts": (time_col, "unparseable timestamp"),
    }
    for role, name in (("amount", amount_col), ("cost", cost_col)):
        if name is None:
            continue
        if not schema[name].is_numeric():
            raise WinbackInputError(
                f"column {name!r} (the {role}) has type {schema[name]}; use a numeric column"
            )
        value = pl.col(name).cast(pl.Float64)
        exprs.append(value.alias(role))
        checks.append(value.is_null().alias(f"__null_{role}"))
        checks.append((value.is_not_null() & ~value.is_finite()).alias(f"__bad_{role}"))
        reasons[f"__null_{role}"] = (name, f"null {role}")
        reasons[f"__bad_{role}"] = (name, f"NaN or infinite {role}")
    if order_col is not None:
        exprs.append(pl.col(order_col).alias("order"))
    originals = [
        c for c in dict.fromkeys([customer_col, time_col, amount_col, cost_col]) if c is not None
    ]
    return ReadPlan(
        used=[*originals, *([order_col] if order_col else [])],
        exprs=exprs,
        checks=checks,
        reasons=reasons,
        time_zone=zone,
        has_amount=amount_col is not None,
        has_cost=cost_col is not None,
    )


def invalid_rows_error(
    plan: ReadPlan, counts: dict[str, int], first_rows: dict[str, list[int]]
) -> WinbackInputError:
    """The ``on_invalid="raise"`` error: per broken rule its column, row count and first row
    indices (0-based positions in the whole input)."""
    problems = []
    for flag, count in counts.items():
        if count:
            column, what = plan.reasons[flag]
            problems.append(
                f"column {column!r}: {count} rows with {what} "
                f"({_describe_rows(first_rows[flag], count)})"
            )
    return WinbackInputError(
        "invalid input rows — "
        + "; ".join(problems)
        + ". Fix the data, or pass on_invalid='drop' to drop them and get them back "
        "with their reasons in the run's info (return_info=True)."
    )


def reject_reason(plan: ReadPlan, flags: Sequence[str]) -> pl.Expr:
    """The ``reason`` of a rejected row: the first broken rule, in the order of ``flags``."""
    reason: Any = pl.when(pl.col(flags[0])).then(pl.lit(plan.reasons[flags[0]][1]))
    for flag in flags[1:]:
        reason = reason.when(pl.col(flag)).then(pl.lit(plan.reasons[flag][1]))
    expr: pl.Expr = reason.otherwise(None).alias("reason")
    return expr


def check_on_invalid(on_invalid: str) -> None:
    """``on_invalid`` must be ``"raise"`` or ``"drop"``."""
    if on_invalid not in ("raise", "drop"):
        raise WinbackConfigError(f"on_invalid={on_invalid!r} must be 'raise' or 'drop'")


def unreadable_columns_error(used: list[str], exc: BaseException) -> WinbackInputError:
    """The error for input columns that could not be read or converted."""
    return WinbackInputError(
        f"could not read columns {used} of the input: {first_line(exc)}. Check the file "
        "and the column types (ids: int64 integers or strings; times: dates or datetimes)."
    )


def merge_orders(clean: pl.DataFrame) -> pl.DataFrame:
    """Rows with the same (customer, order) as one purchase dated at its first row, amounts (and
    costs) summed; drops the ``order`` column."""
    aggs = [pl.col("ts").min()]
    aggs += [pl.col(name).sum() for name in ("amount", "cost") if name in clean.columns]
    return clean.group_by("customer", "order", maintain_order=True).agg(aggs).drop("order")


def empty_rejects(collected: pl.DataFrame) -> pl.DataFrame:
    """A rejects table with no rows: the input's columns, ``row_index`` and ``reason``."""
    return (
        collected.clear()
        .with_row_index("row_index")
        .with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    )
