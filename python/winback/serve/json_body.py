"""JSON request bodies of ``POST /v1/score`` (docs/serving.md#http): :func:`parse_body` turns a
body into a checked :class:`Parsed` request (a 400/413/422
:class:`~winback.serve.problems.ProblemError` naming the field and the customer otherwise) and
:func:`score_json` scores it into one JSON-safe object per customer.

Two passes give the same :class:`Parsed`, and only the second ever refuses a request:

- the fast pass (:func:`fast_parse`): msgspec decodes the body straight into typed structs
  (unknown fields, wrong types and strict JSON checked in C), the purchase times are read in
  one call of the compiled ISO reader from the common ISO shapes, and the counts, ids and
  amounts are checked on whole lists. Anything it does not accept as certainly valid (an
  error, a rarer time format) it hands on, so it never refuses anything itself;
- the precise pass (:func:`parse_request` after :func:`decode`): the standard library's JSON
  decoder and a check field by field that names the field path and the customer of the first
  problem.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from itertools import accumulate
from typing import Any, Final

import numpy as np
import polars as pl
from polars.exceptions import PanicException

from winback import _winback
from winback.errors import WinbackError
from winback.scorer import Scorer
from winback.serve.config import Limits
from winback.serve.problems import ProblemError, moment

__all__ = [
    "ONE_BY_ONE",
    "Parsed",
    "decode",
    "fast_parse",
    "one_by_one",
    "parse_body",
    "parse_request",
    "score_json",
    "score_parsed",
    "score_small",
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
    """A checked request: customer k's id is ``ids[k]`` and her purchases are rows
    ``starts[k]:starts[k + 1]`` of ``times`` (µs, ``datetime64[us]``) and ``amounts``
    (``float64``, or None when the request gives no amounts); and ``as_of``."""

    ids: list[Any]
    id_type: type
    starts: np.ndarray
    times: np.ndarray
    amounts: np.ndarray | None
    as_of: str | None

    @property
    def customers(self) -> int:
        """How many customers."""
        return len(self.ids)

    def frame(self) -> pl.DataFrame:
        """The transactions as :meth:`Scorer.score` takes them (one row per purchase)."""
        counts = np.diff(self.starts)
        if self.id_type is int:
            cid = pl.Series("customer_id", np.repeat(np.array(self.ids, dtype=np.int64), counts))
        else:
            rows = np.repeat(np.arange(len(self.ids)), counts)
            cid = pl.Series("customer_id", self.ids, dtype=pl.String).gather(rows)
        columns: dict[str, Any] = {"customer_id": cid, "ts": pl.Series("ts", self.times)}
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
    # (checked field by field: the precise pass of the module docstring)
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
        ids.append(cid)
        starts.append(len(times))
    # µs since the epoch in Python ints: numpy's conversion of datetime objects is slower.
    micros = [(t - _EPOCH) // _MICROSECOND for t in times]
    return Parsed(
        ids=ids,
        id_type=int if id_type is int else str,
        starts=np.array(starts, dtype=np.int64),
        times=np.array(micros, dtype=np.int64).view("datetime64[us]"),
        amounts=np.array(amounts, dtype=np.float64) if with_amount else None,
        as_of=as_of,
    )


@cache
def _decoder() -> Any:
    """msgspec's decoder of the request shape (built once; msgspec is imported only here, as
    part of the optional extra ``winback[serve]``)."""
    import msgspec

    # defstruct, not class statements: the annotations must be types, not the strings that
    # ``from __future__ import annotations`` makes of them. gc=False: a bulk body decodes into
    # tens of thousands of structs, and tracking them set off full collections that put the
    # p99 of reading a 1,000-customer body at 33–40 ms against a 5.5 ms median (7.6 ms
    # untracked). Safe: a decoded struct holds strings, numbers and lists of structs, never
    # itself, so it can be in no reference cycle.
    purchase = msgspec.defstruct(
        "Purchase",
        [("ts", str), ("amount", float | None, None)],
        forbid_unknown_fields=True,
        gc=False,
    )
    customer = msgspec.defstruct(
        "Customer",
        [("customer_id", int | str), ("purchases", list[purchase])],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
        gc=False,
    )
    body = msgspec.defstruct(
        "Body",
        [("customers", list[customer]), ("as_of", str | None, None)],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(body), (msgspec.DecodeError, msgspec.ValidationError)


def _times_columnwise(ts: list[str]) -> np.ndarray | None:
    """The times of ISO strings as ``datetime64[us]``, equal to :meth:`datetime.fromisoformat`'s,
    read in one call of the compiled reader (``_winback.iso_times_us``: ``YYYY-MM-DD``,
    ``YYYY-MM-DDTHH:MM:SS``, ``YYYY-MM-DDTHH:MM:SS.ffffff``, "T" or a space between date and
    time, years 1–9999, impossible dates and times refused); None when any string is of another
    shape or impossible (the caller then reads them one by one). ≈ 1 µs for 50 strings."""
    raw = _winback.iso_times_us(ts)
    if raw is None:
        return None
    return np.frombuffer(raw, dtype="<i8").view("datetime64[us]")


def _times_one_by_one(ts: list[str]) -> np.ndarray | None:
    """The times of ISO strings by :meth:`datetime.fromisoformat`; None when one is not a
    naive ISO date or datetime."""
    fromiso = datetime.fromisoformat
    micros = []
    try:
        for text in ts:
            at = fromiso(text)
            if at.tzinfo is not None:
                return None
            micros.append((at - _EPOCH) // _MICROSECOND)
    except ValueError:
        return None
    return np.array(micros, dtype=np.int64).view("datetime64[us]")


def fast_parse(body: bytes, limits: Limits) -> Parsed | None:
    """The fast pass of the module docstring: the checked request, or None when the body is
    not certainly valid (the precise pass then decides). Refuses nothing itself except an
    ``as_of`` that is a string but no naive ISO date or datetime (the 422 of the precise
    pass, which checks ``as_of`` before the customers)."""
    decoder, errors = _decoder()
    try:
        request = decoder.decode(body)
    except errors:
        return None
    return _fast_checked(request, limits)


def _fast_checked(request: Any, limits: Limits) -> Parsed | None:
    """:func:`fast_parse` after msgspec's decoding."""
    customers = request.customers
    if len(customers) > limits.max_customers:
        return None
    as_of = request.as_of
    if as_of is not None:
        moment(as_of, "as_of")
    ids = [c.customer_id for c in customers]
    kinds = set(map(type, ids))
    if len(kinds) > 1 or len(set(ids)) != len(ids):
        return None
    if kinds == {int} and not -_INT64 <= min(ids) <= max(ids) < _INT64:
        return None
    counts = [len(c.purchases) for c in customers]
    if counts and (min(counts) == 0 or max(counts) > limits.max_purchases):
        return None
    purchases = (
        customers[0].purchases
        if len(customers) == 1
        else [p for c in customers for p in c.purchases]
    )
    ts = [p.ts for p in purchases]
    amounts = [p.amount for p in purchases]
    missing = amounts.count(None)
    values: np.ndarray | None = None
    if missing == 0 and amounts:
        # Finite: msgspec refuses a number beyond a float ("Number out of range"), JSON has no
        # NaN or infinity.
        values = np.array(amounts, dtype=np.float64)
    elif missing != len(amounts):
        return None
    times = _times_columnwise(ts)
    if times is None:
        times = _times_one_by_one(ts)
        if times is None:
            return None
    starts = np.fromiter(accumulate(counts, initial=0), dtype=np.int64, count=len(counts) + 1)
    return Parsed(
        ids=ids,
        id_type=str if kinds == {str} else int,
        starts=starts,
        times=times,
        amounts=values,
        as_of=as_of,
    )


def parse_body(body: bytes, limits: Limits) -> Parsed:
    """A JSON body, checked: the fast pass, and the precise pass when the fast one does not
    accept it (the module docstring); a :class:`ProblemError` (400/413/422) naming the field
    and the customer of the first problem."""
    parsed = fast_parse(body, limits)
    if parsed is None:
        parsed = parse_request(decode(body), limits)
    return parsed


def score_small(scorer: Scorer, body: bytes, limits: Limits) -> tuple[bytes, int] | Parsed:
    """A small JSON body (docs/serving.md#http): one customer with ``as_of`` is checked, scored
    and encoded in one pass (:func:`score_json`'s answer, the same bytes); any other body comes
    back as :func:`parse_body`'s checked request (a :class:`ProblemError` for a bad one).

    The one-customer lane reads what :func:`fast_parse` reads and accepts exactly what it
    accepts, but keeps the times and amounts in plain buffers and scores them with
    :meth:`Scorer._score_checked`: no ``Parsed``, no numpy array, no re-checking of what the
    decoding proved (JSON numbers are finite, the ISO reader gives no missing time). Anything
    it does not take (an error, a rarer time format, several customers) goes the general way."""
    decoder, errors = _decoder()
    try:
        request = decoder.decode(body)
    except errors:
        return parse_request(decode(body), limits)
    answer = _one_customer(scorer, request, limits)
    if answer is not None:
        return answer
    parsed = _fast_checked(request, limits)
    return parse_request(decode(body), limits) if parsed is None else parsed


#: The compiled ISO reader's bytes are little-endian int64: read as native ones where that is so.
_LITTLE: Final = sys.byteorder == "little"


def _one_customer(scorer: Scorer, request: Any, limits: Limits) -> tuple[bytes, int] | None:
    """:func:`score_small`'s one-customer lane on msgspec's decoded request; None when the
    request is not one customer with ``as_of``, not certainly valid, or refused by the scorer
    (the general way then answers it, with its error)."""
    customers = request.customers
    as_of = request.as_of
    if len(customers) != 1 or as_of is None or limits.max_customers < 1 or not _LITTLE:
        return None
    moment(as_of, "as_of")  # the 422 of the precise pass (as fast_parse)
    customer = customers[0]
    cid = customer.customer_id
    if type(cid) is int and not -_INT64 <= cid < _INT64:
        return None
    purchases = customer.purchases
    if not purchases or len(purchases) > limits.max_purchases:
        return None
    amounts = [p.amount for p in purchases]
    missing = amounts.count(None)
    if missing == 0:
        # Finite: msgspec refuses a number beyond a float, JSON has no NaN or infinity.
        values: array[float] | None = array("d", amounts)
    elif missing == len(amounts):
        values = None
    else:
        return None
    raw = _winback.iso_times_us([p.ts for p in purchases])
    if raw is None:
        return None
    try:
        row = scorer._score_checked(memoryview(raw).cast("q"), values, as_of)
    except WinbackError:
        return None
    if row is None:
        return None
    return _encoder().encode({"customers": [{"customer_id": cid, **row}]}), 1


def _frame_json(scores: pl.DataFrame) -> bytes:
    """Rows as JSON objects, by Polars (the values Python's ``json`` would write; times as
    ``datetime.isoformat`` writes them)."""
    iso = pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.6f").str.replace(r"\.000000$", "")
    return scores.with_columns(iso).write_json().encode()


def _score_each(scorer: Scorer, parsed: Parsed) -> bytes:
    """Score customer by customer with :meth:`Scorer.score_one` (equal to :meth:`Scorer.score`'s
    rows bit for bit, without its per-call frame work): rows sorted by ``customer_id``, encoded
    by msgspec (dates and datetimes as ``isoformat`` writes them, NaN and infinities as null:
    :func:`~winback.serve.modelset.json_safe`'s rules, at a fraction of ``json.dumps``' cost)."""
    rows = []
    if len(parsed.ids) == 1:  # the whole arrays are hers: no slicing
        cid = parsed.ids[0]
        one = scorer.score_one(parsed.times, parsed.amounts, as_of=parsed.as_of, customer_id=cid)
        return _encoder().encode([{"customer_id": cid, **one.as_dict()}])  # type: ignore[no-any-return]
    bounds = parsed.starts.tolist()
    for k, cid in enumerate(parsed.ids):
        a, b = bounds[k], bounds[k + 1]
        amounts = None if parsed.amounts is None else parsed.amounts[a:b]
        one = scorer.score_one(parsed.times[a:b], amounts, as_of=parsed.as_of, customer_id=cid)
        rows.append({"customer_id": cid, **one.as_dict()})
    rows.sort(key=lambda row: row["customer_id"])
    return _encoder().encode(rows)  # type: ignore[no-any-return]


@cache
def _encoder() -> Any:
    """msgspec's JSON encoder (imported here: part of the optional extra)."""
    import msgspec

    return msgspec.json.Encoder()


def score_json(scorer: Scorer, body: bytes, limits: Limits) -> tuple[bytes, int]:
    """Decode, check and score a JSON request body: the answer ``{"customers": [...]}`` (one
    object per customer with :meth:`Scorer.score`'s columns, sorted by ``customer_id``) as UTF-8
    bytes, and the number of customers. The scorer's typed errors become a 422. Blocking
    (decoding and encoding a large body takes a while): run it off the event loop.

    With ``as_of`` given and at most :data:`ONE_BY_ONE` customers, each is scored by
    :meth:`Scorer.score_one`; otherwise all at once by :meth:`Scorer.score` (the same values,
    bit for bit: docs/methods.md#scorer)."""
    return score_parsed(scorer, parse_body(body, limits))


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
