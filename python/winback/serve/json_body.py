"""JSON request bodies of ``POST /v1/score`` (docs/serving.md#http): :func:`parse_request`
checks a decoded body field by field into a transactions frame (a 413/422
:class:`~winback.serve.problems.ProblemError` naming the field and the customer otherwise) and
:func:`score_json` scores it into one JSON-safe object per customer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import polars as pl

from winback.errors import WinbackError
from winback.scorer import Scorer
from winback.serve.config import Limits
from winback.serve.modelset import json_safe
from winback.serve.problems import ProblemError, moment

__all__ = ["decode", "parse_request", "score_json"]

_INT64: Final = 2**63
_TOP_FIELDS: Final = frozenset({"as_of", "customers"})
_CUSTOMER_FIELDS: Final = frozenset({"customer_id", "purchases"})
_PURCHASE_FIELDS: Final = frozenset({"ts", "amount"})


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


def parse_request(payload: Any, limits: Limits) -> tuple[pl.DataFrame, str | None, bool]:
    """The transactions frame, ``as_of`` and whether amounts were sent, from a decoded JSON
    body; a :class:`ProblemError` (413/422) naming the field and customer otherwise."""
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
    amounts: list[float | None] = []
    seen: set[Any] = set()
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
        for j, purchase in enumerate(purchases):
            at = f"{where}.purchases[{j}]"
            if not isinstance(purchase, dict):
                raise ProblemError(
                    422,
                    f"{at} must be an object with 'ts' (and 'amount'), not "
                    f"{type(purchase).__name__}",
                    field=at,
                    **who,
                )
            _unknown(purchase, _PURCHASE_FIELDS, at, **who)
            if "ts" not in purchase:
                raise ProblemError(422, f"{at}.ts is missing", field=f"{at}.ts", **who)
            times.append(moment(purchase["ts"], f"{at}.ts", i, who["customer_id"]))
            amount = purchase.get("amount")
            has = amount is not None
            if with_amount is None:
                with_amount = has
            elif has is not with_amount:
                raise ProblemError(
                    422,
                    f"{at}.amount is {'given' if has else 'missing'} but "
                    f"{'not ' if has else ''}on earlier purchases; send an amount with every "
                    "purchase or with none",
                    field=f"{at}.amount",
                    **who,
                )
            if has:
                if isinstance(amount, bool) or not isinstance(amount, int | float):
                    raise ProblemError(
                        422,
                        f"{at}.amount must be a number, not {type(amount).__name__}",
                        field=f"{at}.amount",
                        **who,
                    )
                amounts.append(float(amount))
            ids.append(cid)
    id_dtype = pl.Int64 if id_type is int else pl.String
    columns: dict[str, Any] = {
        "customer_id": pl.Series("customer_id", ids, dtype=id_dtype),
        "ts": pl.Series("ts", times, dtype=pl.Datetime("us")),
    }
    if with_amount:
        columns["amount"] = pl.Series("amount", amounts, dtype=pl.Float64)
    return pl.DataFrame(columns), as_of, bool(with_amount)


def score_json(scorer: Scorer, body: bytes, limits: Limits) -> tuple[bytes, int]:
    """Decode, check and score a JSON request body: the answer ``{"customers": [...]}`` (one
    JSON-safe object per customer, sorted by ``customer_id`` as :meth:`Scorer.score`) as
    UTF-8 bytes, and the number of customers. The scorer's typed errors become a 422. Blocking
    (decoding and encoding a large body takes a while): run it off the event loop."""
    frame, as_of, with_amount = parse_request(decode(body), limits)
    rows: list[dict[str, Any]] = []
    if frame.height:
        try:
            scores = scorer.score(frame, as_of=as_of, amount_col="amount" if with_amount else None)
        except WinbackError as exc:
            field = "as_of" if "as_of" in str(exc) else None
            raise ProblemError(422, str(exc), field=field) from None
        rows = [json_safe(row) for row in scores.to_dicts()]
    answer = json.dumps(
        {"customers": rows}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    return answer.encode(), len(rows)
