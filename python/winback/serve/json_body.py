"""JSON request bodies of ``POST /v1/score`` (docs/serving.md#http): :func:`parse_request`
checks a decoded body field by field into a transactions frame (a 413/422
:class:`~winback.serve.problems.ProblemError` naming the field and the customer otherwise) and
:func:`score_json` scores it into one JSON-safe object per customer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import polars as pl
from polars.exceptions import PanicException

from winback.errors import WinbackError
from winback.scorer import Scorer
from winback.serve.config import Limits
from winback.serve.modelset import json_safe
from winback.serve.problems import ProblemError, moment

__all__ = [
    "ONE_BY_ONE",
    "Parsed",
    "decode",
    "one_by_one",
    "parse_request",
    "score_json",
    "score_parsed",
]

_INT64: Final = 2**63
_EPOCH: Final = datetime(1970, 1, 1)
_MICROSECOND: Final = timedelta(microseconds=1)
_TOP_FIELDS: Final = frozenset({"as_of", "customers"})
_CUSTOMER_FIELDS: Final = frozenset({"customer_id", "purchases"})
_PURCHASE_FIELDS: Final = frozenset({"ts", "amount"})
#: Up to this many customers (with ``as_of`` given) are scored one by one
#: (:meth:`Scorer.score_one`): below it the frame path's fixed cost is the larger.
ONE_BY_ONE: Final = 16


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes) -> Any:
    """The decoded body; a 400 for anything but strict JSON (NaN and infinities refused)."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ProblemError(400, f"the body is not valid JSON: {exc}") from None


def _unknown(obj: Mapping[str, Any], allowed: frozenset[str], where: str, **who: Any) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        name = f"{where}.{extra[0]}" if where else extra[0]
        raise ProblemError(
            422,
            f"unknown field {name!r}; allowed: {', '.join(sorted(allowed))}",
            field=name,
            **who,
        )


def _integer_too_large(where: str, who: dict[str, Any]) -> ProblemError:
    return ProblemError(422, f"an amount of {where} is too large for a number", field=where, **who)


def _purchase_problem(
    purchases: list[Any], where: str, who: dict[str, Any], with_amount: bool | None
) -> ProblemError:
    """The precise refusal of a customer's purchases that the fast pass of
    :func:`parse_request` found irregular: field path, customer and what is wrong."""
    i = who["index"]
    times: list[datetime] = []
    amounts: list[float] = []
    for j, purchase in enumerate(purchases):
        at = f"{where}.purchases[{j}]"
        if not isinstance(purchase, dict):
            return ProblemError(
                422,
                f"{at} must be an object with 'ts' (and 'amount'), not {type(purchase).__name__}",
                field=at,
                **who,
            )
        _unknown(purchase, _PURCHASE_FIELDS, at, **who)
        if "ts" not in purchase:
            return ProblemError(422, f"{at}.ts is missing", field=f"{at}.ts", **who)
        times.append(moment(purchase["ts"], f"{at}.ts", i, who["customer_id"]))
        amount = purchase.get("amount")
        has = amount is not None
        if with_amount is None:
            with_amount = has
        elif has is not with_amount:
            return ProblemError(
                422,
                f"{at}.amount is {'given' if has else 'missing'} but "
                f"{'not ' if has else ''}on earlier purchases; send an amount with every "
                "purchase or with none",
                field=f"{at}.amount",
                **who,
            )
        if has:
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                return ProblemError(
                    422,
                    f"{at}.amount must be a number, not {type(amount).__name__}",
                    field=f"{at}.amount",
                    **who,
                )
            try:
                amounts.append(float(amount))
            except OverflowError:
                return _integer_too_large(at, who)
    return ProblemError(422, f"{where}.purchases are not valid", field=f"{where}.purchases", **who)


@dataclass
class Parsed:
    """A checked request: one row per purchase (``ids``, ``times``, ``amounts``), customer k's
    purchases at ``starts[k]:starts[k + 1]``, and ``as_of``."""

    ids: list[Any]
    id_type: type
    starts: list[int]
    times: list[datetime]
    amounts: list[float] | None
    as_of: str | None

    @property
    def customers(self) -> int:
        """How many customers."""
        return len(self.starts) - 1

    def frame(self) -> pl.DataFrame:
        """The transactions as :meth:`Scorer.score` takes them."""
        columns: dict[str, Any] = {
            "customer_id": pl.Series(
                "customer_id", self.ids, dtype=pl.Int64 if self.id_type is int else pl.String
            ),
            "ts": pl.Series("ts", self.times, dtype=pl.Datetime("us")),
        }
        if self.amounts is not None:
            columns["amount"] = pl.Series("amount", self.amounts, dtype=pl.Float64)
        return pl.DataFrame(columns)


def parse_request(payload: Any, limits: Limits) -> Parsed:
    """The purchases and ``as_of`` of a decoded JSON body, checked; a :class:`ProblemError`
    (413/422) naming the field and customer otherwise."""
    if not isinstance(payload, dict):
        raise ProblemError(422, f"the body must be a JSON object, not {type(payload).__name__}")
    _unknown(payload, _TOP_FIELDS, "")
    as_of = payload.get("as_of")
    if as_of is not None:
        moment(as_of, "as_of")
    if "customers" not in payload:
        raise ProblemError(422, "the field 'customers' is missing", field="customers")
    customers = payload["customers"]
    if not isinstance(customers, list):
        raise ProblemError(
            422,
            f"customers must be a list, not {type(customers).__name__}",
            field="customers",
        )
    if len(customers) > limits.max_customers:
        raise ProblemError(
            413,
            f"{len(customers)} customers in one request; the limit is {limits.max_customers} "
            "(split the request, or raise --max-customers)",
            field="customers",
        )
    ids: list[Any] = []
    times: list[datetime] = []
    amounts: list[float] = []
    seen: set[Any] = set()
    starts: list[int] = [0]
    fromiso = datetime.fromisoformat
    id_type: type | None = None
    with_amount: bool | None = None
    for i, customer in enumerate(customers):
        where = f"customers[{i}]"
        if not isinstance(customer, dict):
            raise ProblemError(
                422,
                f"{where} must be an object, not {type(customer).__name__}",
                field=where,
                index=i,
            )
        cid = customer.get("customer_id")
        named = cid if isinstance(cid, str | int) else None
        who: dict[str, Any] = {"index": i, "customer_id": named}
        _unknown(customer, _CUSTOMER_FIELDS, where, **who)
        if isinstance(cid, bool) or not isinstance(cid, str | int):
            raise ProblemError(
                422,
                f"{where}.customer_id must be a string or an integer, not "
                f"{type(cid).__name__ if cid is not None else 'missing'}",
                field=f"{where}.customer_id",
                **who,
            )
        if isinstance(cid, int) and not -_INT64 <= cid < _INT64:
            raise ProblemError(
                422,
                f"{where}.customer_id={cid} does not fit a 64-bit integer; send it as a string",
                field=f"{where}.customer_id",
                **who,
            )
        if id_type is None:
            id_type = type(cid)
        elif type(cid) is not id_type:
            raise ProblemError(
                422,
                f"{where}.customer_id is a {type(cid).__name__} but earlier ids are "
                f"{id_type.__name__}s; send every id as the same type",
                field=f"{where}.customer_id",
                **who,
            )
        if cid in seen:
            raise ProblemError(
                422,
                f"{where}.customer_id={cid!r} appears twice; send each customer once with all "
                "her purchases",
                field=f"{where}.customer_id",
                **who,
            )
        seen.add(cid)
        purchases = customer.get("purchases")
        if not isinstance(purchases, list) or not purchases:
            raise ProblemError(
                422,
                f"{where}.purchases must be a non-empty list of purchases (a customer is scored "
                "from at least one)",
                field=f"{where}.purchases",
                **who,
            )
        if len(purchases) > limits.max_purchases:
            raise ProblemError(
                413,
                f"{where} has {len(purchases)} purchases; the limit is {limits.max_purchases} "
                "per customer (raise --max-purchases)",
                field=f"{where}.purchases",
                **who,
            )
        # The fast pass: no per-purchase field path is built unless something is wrong.
        for purchase in purchases:
            if type(purchase) is not dict or not purchase.keys() <= _PURCHASE_FIELDS:
                raise _purchase_problem(purchases, where, who, with_amount)
            ts = purchase.get("ts")
            if type(ts) is not str:
                raise _purchase_problem(purchases, where, who, with_amount)
            try:
                at = fromiso(ts)
            except ValueError:
                raise _purchase_problem(purchases, where, who, with_amount) from None
            if at.tzinfo is not None:
                raise _purchase_problem(purchases, where, who, with_amount)
            times.append(at)
            amount = purchase.get("amount")
            if with_amount is None:
                with_amount = amount is not None
            if with_amount:
                if type(amount) is not float and type(amount) is not int:
                    raise _purchase_problem(purchases, where, who, with_amount)
                try:
                    amounts.append(float(amount))
                except OverflowError:  # an integer beyond any float
                    raise _integer_too_large(where, who) from None
            elif amount is not None:
                raise _purchase_problem(purchases, where, who, with_amount)
        ids.extend([cid] * len(purchases))
        starts.append(len(times))
    return Parsed(
        ids=ids,
        id_type=int if id_type is int else str,
        starts=starts,
        times=times,
        amounts=amounts if with_amount else None,
        as_of=as_of,
    )


def _frame_json(scores: pl.DataFrame) -> bytes:
    """Rows as JSON objects, by Polars (the values Python's ``json`` would write; times as
    ``datetime.isoformat`` writes them)."""
    iso = pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.6f").str.replace(r"\.000000$", "")
    return scores.with_columns(iso).write_json().encode()


def _score_each(scorer: Scorer, parsed: Parsed) -> bytes:
    """Score customer by customer with :meth:`Scorer.score_one` (equal to :meth:`Scorer.score`'s
    rows bit for bit, without its per-call frame work): rows sorted by ``customer_id``."""
    rows = []
    starts = parsed.starts
    for k in range(parsed.customers):
        a, b = starts[k], starts[k + 1]
        cid = parsed.ids[a]
        # µs since the epoch in Python ints: numpy's conversion of datetime objects is slower.
        micros = [(t - _EPOCH) // _MICROSECOND for t in parsed.times[a:b]]
        times = np.array(micros, dtype=np.int64).view("datetime64[us]")
        amounts = None if parsed.amounts is None else np.array(parsed.amounts[a:b])
        one = scorer.score_one(times, amounts, as_of=parsed.as_of, customer_id=cid)
        rows.append({"customer_id": cid, **json_safe(one.as_dict())})
    rows.sort(key=lambda row: row["customer_id"])
    return json.dumps(rows, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def score_json(scorer: Scorer, body: bytes, limits: Limits) -> tuple[bytes, int]:
    """Decode, check and score a JSON request body: the answer ``{"customers": [...]}`` (one
    object per customer with :meth:`Scorer.score`'s columns, sorted by ``customer_id``) as UTF-8
    bytes, and the number of customers. The scorer's typed errors become a 422. Blocking
    (decoding and encoding a large body takes a while): run it off the event loop.

    With ``as_of`` given and at most :data:`ONE_BY_ONE` customers, each is scored by
    :meth:`Scorer.score_one`; otherwise all at once by :meth:`Scorer.score` (the same values,
    bit for bit: docs/methods.md#scorer)."""
    return score_parsed(scorer, parse_request(decode(body), limits))


def one_by_one(parsed: Parsed) -> bool:
    """Whether :func:`score_parsed` scores customer by customer (``as_of`` given, at most
    :data:`ONE_BY_ONE` customers): a small fixed cost, no frame work."""
    return parsed.as_of is not None and parsed.customers <= ONE_BY_ONE


def score_parsed(scorer: Scorer, parsed: Parsed) -> tuple[bytes, int]:
    """:func:`score_json` after the decoding and checks."""
    try:
        if parsed.customers == 0:
            rows = b"[]"
        elif one_by_one(parsed):
            rows = _score_each(scorer, parsed)
        else:
            amount_col = None if parsed.amounts is None else "amount"
            scores = scorer.score(parsed.frame(), as_of=parsed.as_of, amount_col=amount_col)
            rows = _frame_json(scores)
    except WinbackError as exc:
        field = "as_of" if "as_of" in str(exc) else None
        raise ProblemError(422, str(exc), field=field) from None
    except PanicException as exc:  # a value Polars cannot hold: a refusal, never a 500
        raise ProblemError(422, f"the request holds a value winback cannot read ({exc})") from None
    return b'{"customers":' + rows + b"}", parsed.customers
