"""Input hygiene: column resolution and types, the validity rules, rejects and their reasons.

:func:`plan_read` checks the input's columns and types and plans their conversion to the core's
columns (``customer``, ``ts``, ``amount``); each hygiene rule is one boolean column whose reason
is reported per rejected row or, under ``on_invalid="raise"``, in the error
(docs/methods.md#input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from winback._io.sources import first_line
from winback._io.times import (
    ISO_TIME_HINT,
    check_time_format,
    check_time_zone,
    describe_foreign_times,
    foreign_date_expr,
    format_time_expr,
    iso_time_expr,
)
from winback._options import AMOUNT_COL, ID_TYPE, TIME_FORMAT, IdType
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = [
    "REFUSAL_SAMPLE",
    "ReadPlan",
    "RefusalTally",
    "check_id_type",
    "check_on_invalid",
    "empty_rejects",
    "invalid_rows_error",
    "merge_orders",
    "plan_read",
    "refusal_error",
    "refuse_overflowing_amounts",
    "reject_reason",
    "unreadable_columns_error",
]

_MAX_LISTED_ROWS = 5
#: Flagged values a refusal looks at (in input order) to say which layouts fit.
REFUSAL_SAMPLE = 100


def _check_columns(schema: pl.Schema, wanted: dict[str, str | None]) -> None:
    for role, name in wanted.items():
        if name is not None and name not in schema:
            available = ", ".join(repr(c) for c in schema.names()[:20])
            raise WinbackInputError(
                f"column {name!r} (the {role}) is not in the input; available columns: "
                f"{available}. Pass {role}_col='...' to name it."
            )


_INT64_MAX = 2**63 - 1


def _customer_expr(
    name: str, dtype: pl.DataType, id_type: IdType
) -> tuple[pl.Expr, pl.Expr | None, pl.Expr | None]:
    """The ids as Int64 or String (docs/methods.md#input), a row check for ids that do not
    parse (``id_type="int"`` on text), and a refusal for unsigned ids beyond Int64."""
    col = pl.col(name)
    text = dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical)
    if dtype.is_integer():
        too_big = (col > _INT64_MAX) if dtype == pl.UInt64 else None
        if id_type == "str":
            return col.cast(pl.String), None, None
        return col.cast(pl.Int64, strict=False), None, too_big
    if text:
        if id_type == "int":
            parsed = col.cast(pl.String).str.strip_chars().str.to_integer(strict=False)
            return parsed.cast(pl.Int64, strict=False), col.is_not_null() & parsed.is_null(), None
        return col.cast(pl.String), None, None
    raise WinbackInputError(
        f"column {name!r} (the customer id) has type {dtype}; use integer or string ids"
    )


def _time_expr(
    name: str, dtype: pl.DataType, tz: str | None, time_format: str | None
) -> tuple[pl.Expr, str | None]:
    """Expression giving local wall-clock datetimes (µs), and the time zone used."""
    col = pl.col(name)
    if time_format is not None and dtype != pl.String:
        raise WinbackConfigError(
            f"time_format={time_format!r} reads text times, but column {name!r} (the purchase "
            f"time) has type {dtype}; leave time_format out"
        )
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")), None
    if isinstance(dtype, pl.Datetime):
        zone = tz or dtype.time_zone
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone(zone or "UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("us")), zone
    if dtype == pl.String:
        if time_format is not None:
            return format_time_expr(col, time_format, tz), tz
        return iso_time_expr(col, tz), tz
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
    hygiene rule, named like ``__null_customer``, explained by ``reasons`` (column, what) and,
    in the error, by ``hints``. ``refusals`` flag values that make the whole column unreadable
    as it is (dates in another layout, unsigned ids beyond Int64): any flagged row refuses the
    input whatever ``on_invalid`` says (:func:`refusal_error`), before the row rules.
    """

    used: list[str]
    exprs: list[pl.Expr]
    checks: list[pl.Expr]
    reasons: dict[str, tuple[str, str]]
    time_zone: str | None
    has_amount: bool
    has_cost: bool = False
    refusals: list[pl.Expr] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None

    @property
    def flags(self) -> list[str]:
        """The names of the row checks, in order."""
        return [str(check.meta.output_name()) for check in self.checks]

    @property
    def refusal_flags(self) -> list[str]:
        """The names of the refusals, in order."""
        return [str(refusal.meta.output_name()) for refusal in self.refusals]


def plan_read(
    schema: pl.Schema,
    *,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    cost_col: str | None = None,
    time_format: str | None = TIME_FORMAT,
    id_type: IdType = ID_TYPE,
) -> ReadPlan:
    """Checks the input's columns and types and plans the conversion (see :class:`ReadPlan`).

    Text times follow one rule, row by row (docs/methods.md#time-zones): ISO 8601, or exactly
    ``time_format``; dates in another layout are refused, never guessed. Ids follow ``id_type``
    (docs/methods.md#input).
    """
    check_id_type(id_type)
    check_time_format(time_format)
    check_time_zone(tz)
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
    time_expr, zone = _time_expr(time_col, schema[time_col], tz, time_format)
    customer_expr, bad_customer, big_customer = _customer_expr(
        customer_col, schema[customer_col], id_type
    )
    exprs = [customer_expr.alias("customer"), time_expr.alias("ts")]
    checks = [pl.col(customer_col).is_null().alias("__null_customer")]
    refusals = []
    if bad_customer is not None:
        checks.append(bad_customer.alias("__bad_customer"))
    checks.append(pl.col(time_col).is_null().alias("__null_ts"))
    hints = {}
    if schema[time_col] == pl.String:
        checks.append((pl.col(time_col).is_not_null() & time_expr.is_null()).alias("__bad_ts"))
        if time_format is None:
            refusals.append(
                foreign_date_expr(pl.col(time_col)).fill_null(False).alias("__refuse_foreign_ts")
            )
            hints["__bad_ts"] = (
                f"expected {ISO_TIME_HINT}; pass time_format= (CLI: --time-format) for another "
                "layout"
            )
        else:
            hints["__bad_ts"] = f"not in time_format={time_format!r}"
    if big_customer is not None:
        refusals.append(big_customer.fill_null(False).alias("__refuse_big_customer"))
    reasons = {
        "__null_customer": (customer_col, "null customer id"),
        "__bad_customer": (customer_col, "customer id that is not an integer (id_type='int')"),
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
        refusals=refusals,
        hints=hints,
        time_format=time_format,
    )


def invalid_rows_error(
    plan: ReadPlan,
    counts: dict[str, int],
    first_rows: dict[str, list[int]],
    examples: dict[str, Any] | None = None,
) -> WinbackInputError:
    """The ``on_invalid="raise"`` error: per broken rule its column, row count and first row
    indices (0-based positions in the whole input), and for the rules with a hint the value of
    the first bad row (``examples``) and what was expected."""
    problems = []
    for flag, count in counts.items():
        if count:
            column, what = plan.reasons[flag]
            problem = (
                f"column {column!r}: {count} rows with {what} "
                f"({_describe_rows(first_rows[flag], count)})"
            )
            if flag in plan.hints:
                example = (examples or {}).get(flag)
                shown = "" if example is None else f"e.g. {example!r}, "
                problem += f" [{shown}{plan.hints[flag]}]"
            problems.append(problem)
    return WinbackInputError(
        "invalid input rows — "
        + "; ".join(problems)
        + ". Fix the data, or pass on_invalid='drop' to drop them and get them back "
        "with their reasons in the run's info (return_info=True)."
    )


def _refused_column(plan: ReadPlan, flag: str) -> str:
    return plan.reasons["__null_ts" if flag == "__refuse_foreign_ts" else "__null_customer"][0]


def refusal_error(plan: ReadPlan, flag: str, row: int | None, values: list[Any]) -> Exception:
    """The error refusing a column (see :class:`ReadPlan`): ``values`` are the flagged values in
    input order (at most :data:`REFUSAL_SAMPLE`), the first at ``row`` (whole-input position)."""
    column = _refused_column(plan, flag)
    if flag == "__refuse_foreign_ts":
        return WinbackInputError(describe_foreign_times(column, row, [str(v) for v in values]))
    where = f" (row {row})" if row is not None else ""
    return WinbackInputError(
        f"column {column!r} (the customer id) holds unsigned ids above {_INT64_MAX}, e.g. "
        f"{values[0]}{where}, which do not fit Int64. Pass id_type='str' (CLI: --id-type str) "
        "to read the ids as text."
    )


@dataclass
class RefusalTally:
    """The refusals seen so far over an input read in order (one frame, or batches): per
    refusal its first row (whole-input position) and first :data:`REFUSAL_SAMPLE` values, so
    that the error is the same however the input is split."""

    plan: ReadPlan
    first_row: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, raw: pl.DataFrame, prepared: pl.DataFrame, offset: int) -> None:
        """Tallies the refusals flagged in ``prepared`` (rows of ``raw`` from ``offset``)."""
        for flag in self.plan.refusal_flags:
            seen = self.values.setdefault(flag, [])
            if len(seen) >= REFUSAL_SAMPLE or not prepared.get_column(flag).any():
                continue
            rows = (
                prepared.select(pl.arg_where(pl.col(flag)))
                .to_series()
                .head(REFUSAL_SAMPLE - len(seen))
            )
            if flag not in self.first_row:
                self.first_row[flag] = offset + int(rows[0])
            seen.extend(raw.get_column(_refused_column(self.plan, flag)).gather(rows).to_list())

    @property
    def any(self) -> bool:
        """Whether any row was refused."""
        return any(self.values.values())

    @property
    def settled(self) -> bool:
        """Whether reading more rows can no longer change the error: the first refusal (in
        plan order) has all the values it looks at."""
        flags = self.plan.refusal_flags
        return bool(flags) and len(self.values.get(flags[0], [])) >= REFUSAL_SAMPLE

    def error(self) -> Exception | None:
        """The error of the first refusal (in plan order) with a flagged row, else None."""
        for flag in self.plan.refusal_flags:
            if self.values.get(flag):
                return refusal_error(self.plan, flag, self.first_row[flag], self.values[flag])
        return None


def reject_reason(plan: ReadPlan, flags: Sequence[str]) -> pl.Expr:
    """The ``reason`` of a rejected row: the first broken rule, in the order of ``flags``."""
    reason: Any = pl.when(pl.col(flags[0])).then(pl.lit(plan.reasons[flags[0]][1]))
    for flag in flags[1:]:
        reason = reason.when(pl.col(flag)).then(pl.lit(plan.reasons[flag][1]))
    expr: pl.Expr = reason.otherwise(None).alias("reason")
    return expr


def check_id_type(id_type: str) -> None:
    """``id_type`` must be ``"auto"``, ``"int"`` or ``"str"``."""
    if id_type not in ("auto", "int", "str"):
        raise WinbackConfigError(f"id_type={id_type!r} must be 'auto', 'int' or 'str'")


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


def refuse_overflowing_amounts(
    frame: pl.DataFrame, columns: Sequence[str], customer_col: str = "customer_id"
) -> None:
    """Refuse finite amounts that sum past the largest float64 (±1.8e308) within a customer.

    Such a customer's totals and means come out ±inf (or NaN), so the input is refused naming
    the customers (docs/methods.md#hygiene) rather than passing a non-finite number on.
    ``columns`` are the per-customer money columns to check (nulls are fine)."""
    present = [c for c in columns if c in frame.columns]
    if not present or frame.height == 0:
        return
    bad = pl.any_horizontal([pl.col(c).is_infinite() | pl.col(c).is_nan() for c in present])
    overflow = frame.filter(bad.fill_null(False))
    if overflow.height:
        shown = ", ".join(repr(c) for c in overflow.get_column(customer_col).head(5).to_list())
        more = ", …" if overflow.height > 5 else ""
        raise WinbackInputError(
            f"the amounts of {overflow.height} customer(s) ({shown}{more}) add up beyond the "
            "largest float (±1.8e308), so their totals would be infinite; check the amount "
            "column's scale (a unit or parsing error?)"
        )
