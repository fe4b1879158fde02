"""The HTTP service's app (docs/serving.md#http): :func:`create_app` builds a Starlette app
around one :class:`~winback.scorer.Scorer`; :func:`run` serves it with uvicorn.

Routes: ``POST /v1/score`` (JSON histories in, one JSON object per customer out, the
scorer's columns), ``GET /v1/models`` (model names, parameters, file checksums), ``GET /healthz``
and ``GET /readyz``. Every client error is a 4xx with an RFC 9457 ``application/problem+json``
body naming the field (a JSON path such as ``customers[3].purchases[0].ts``) and the customer;
a request is answered whole or refused, never partly.

Starlette and uvicorn are imported inside the functions that need them (the optional extra
``winback[serve]``), so importing :mod:`winback.serve` stays light.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from winback.errors import WinbackConfigError, WinbackError
from winback.scorer import Scorer

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["ENV_CONFIG", "Limits", "ServeConfig", "app_from_env", "create_app", "run"]

#: The environment variable through which :func:`run` hands the configuration to each uvicorn
#: worker process (:func:`app_from_env`).
ENV_CONFIG: Final = "WINBACK_SERVE_CONFIG"
PROBLEM_TYPE: Final = "application/problem+json"
#: Problem ``type`` URIs (relative, resolved against the service: RFC 9457 §3.1.1).
_TYPES: Final = {
    400: "/problems/malformed-json",
    404: "/problems/not-found",
    405: "/problems/method-not-allowed",
    413: "/problems/too-large",
    415: "/problems/unsupported-media-type",
    422: "/problems/invalid-request",
    500: "/problems/server-error",
}
_TITLES: Final = {
    400: "Malformed JSON",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Server error",
}
_INT64: Final = 2**63
_TOP_FIELDS: Final = frozenset({"as_of", "customers"})
_CUSTOMER_FIELDS: Final = frozenset({"customer_id", "purchases"})
_PURCHASE_FIELDS: Final = frozenset({"ts", "amount"})


@dataclass(frozen=True)
class Limits:
    """What one request may hold (docs/serving.md#http-limits).

    Attributes
    ----------
    max_body_bytes : request body size; larger is 413.
    max_customers : customers per request; more is 413.
    max_purchases : purchases per customer; more is 413.
    """

    max_body_bytes: int = 8 * 1024 * 1024
    max_customers: int = 10_000
    max_purchases: int = 100_000

    def __post_init__(self) -> None:
        """Each limit must be a whole number ≥ 1 (``WinbackConfigError`` naming it)."""
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WinbackConfigError(f"serve limit {name}={value!r} must be a whole number ≥ 1")


@dataclass(frozen=True)
class ServeConfig:
    """What a server process builds its app from: the model directory, the scorer's rules and
    value settings (as for :meth:`Scorer.from_dir`) and the :class:`Limits`."""

    models: str
    rules: str = "strategy"
    value: Mapping[str, Any] | None = None
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        """The configuration as JSON (what :func:`run` puts in :data:`ENV_CONFIG`)."""
        return json.dumps({**asdict(self), "limits": asdict(self.limits)})

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """The configuration :meth:`to_json` wrote."""
        raw = json.loads(text)
        return cls(
            models=raw["models"],
            rules=raw["rules"],
            value=raw["value"],
            limits=Limits(**raw["limits"]),
        )

    def scorer(self) -> Scorer:
        """The scorer, every file validated (errors name the file and field)."""
        return Scorer.from_dir(self.models, rules=self.rules, value=self.value)


class ProblemError(Exception):
    """A refused request: its status and the RFC 9457 members (``field``, ``customer_id``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        customer_id: Any = None,
        index: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.customer_id = customer_id
        self.index = index

    def body(self, instance: str) -> dict[str, Any]:
        """The problem+json body."""
        out: dict[str, Any] = {
            "type": _TYPES.get(self.status, "about:blank"),
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.field is not None:
            out["field"] = self.field
        if self.index is not None:
            out["customer_index"] = self.index
            out["customer_id"] = self.customer_id
        return out


def _checksums(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = path.read_bytes()
        out.append(
            {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    return out


def json_safe(value: Any) -> Any:
    """A value ready for strict JSON: dates and datetimes as ISO text, NaN and infinities as
    null (the scorer refuses them; this is the last guard), containers converted inside."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _moment(value: Any, where: str, index: int | None = None, customer: Any = None) -> datetime:
    """An ISO date or naive datetime (local wall-clock time, as :func:`winback.prepare` reads)."""
    if not isinstance(value, str):
        raise ProblemError(
            422,
            f"{where} must be an ISO date or datetime string, not {type(value).__name__}",
            field=where,
            index=index,
            customer_id=customer,
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ProblemError(
            422,
            f"{where}={value[:64]!r} is not an ISO date or datetime (e.g. 2024-06-30 or "
            "2024-06-30T14:05:00)",
            field=where,
            index=index,
            customer_id=customer,
        ) from None
    if moment.tzinfo is not None:
        raise ProblemError(
            422,
            f"{where}={value[:64]!r} has a time zone offset; send local wall-clock times "
            "without an offset (docs/serving.md#http)",
            field=where,
            index=index,
            customer_id=customer,
        )
    return moment


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
        _moment(as_of, "as_of")
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
            times.append(_moment(purchase["ts"], f"{at}.ts", i, who["customer_id"]))
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


def score_payload(scorer: Scorer, payload: Any, limits: Limits) -> list[dict[str, Any]]:
    """Score a decoded request body: one JSON-safe object per customer (sorted by
    ``customer_id``, as :meth:`Scorer.score`); the scorer's typed errors become a 422."""
    frame, as_of, with_amount = parse_request(payload, limits)
    if frame.height == 0:
        return []
    try:
        scores = scorer.score(frame, as_of=as_of, amount_col="amount" if with_amount else None)
    except WinbackError as exc:
        raise ProblemError(422, str(exc), field="as_of" if "as_of" in str(exc) else None) from None
    return [json_safe(row) for row in scores.to_dicts()]


def _problem_response(problem: ProblemError, request: Request) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(
        problem.body(request.url.path), status_code=problem.status, media_type=PROBLEM_TYPE
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (the declared length first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(
            413, f"the body is {declared} bytes; the limit is {limit} (--max-body-bytes)"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(
                413, f"the body passes the limit of {limit} bytes (--max-body-bytes)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def create_app(
    scorer: Scorer,
    *,
    limits: Limits | None = None,
    model_dir: str | Path | None = None,
) -> Starlette:
    """The Starlette app serving ``scorer`` (docs/serving.md#http).

    Parameters
    ----------
    scorer
        The scorer every request uses (immutable, shared by all threads).
    limits
        Body size, customers and purchases per request (default :class:`Limits`).
    model_dir
        The directory the models came from: ``GET /v1/models`` lists its files' checksums.
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limits = Limits() if limits is None else limits
    models = json_safe(
        {
            **scorer.describe(),
            "files": [] if model_dir is None else _checksums(Path(model_dir)),
            "limits": asdict(limits),
        }
    )

    async def score(request: Request) -> Response:
        try:
            kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
            if kind not in ("application/json", ""):
                raise ProblemError(415, f"content type {kind!r}: send application/json")
            body = await _read_body(request, limits.max_body_bytes)
            try:
                payload = json.loads(body, parse_constant=_reject_constant)
            except (ValueError, RecursionError) as exc:
                raise ProblemError(400, f"the body is not valid JSON: {exc}") from None
            rows = await run_in_threadpool(score_payload, scorer, payload, limits)
        except ProblemError as problem:
            return _problem_response(problem, request)
        return JSONResponse({"customers": rows})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # The scorer is built and validated before the app exists: a serving process is ready.
        return JSONResponse({"status": "ready"})

    async def list_models(request: Request) -> Response:
        return JSONResponse(models)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        problem = ProblemError(exc.status_code, str(exc.detail))
        response = _problem_response(problem, request)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        problem = ProblemError(500, "the server failed on this request; it is logged")
        return _problem_response(problem, request)

    return Starlette(
        routes=[
            Route("/v1/score", score, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )


def app_from_env() -> Starlette:
    """The app a uvicorn worker builds (``factory=True``) from :data:`ENV_CONFIG`."""
    text = os.environ.get(ENV_CONFIG)
    if not text:
        raise WinbackConfigError(f"{ENV_CONFIG} is not set; start the service with winback serve")
    config = ServeConfig.from_json(text)
    return create_app(config.scorer(), limits=config.limits, model_dir=config.models)


def run(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve ``config`` with uvicorn (blocks until stopped). The models are loaded and
    validated here first, so a bad directory fails before any port is bound."""
    try:
        import uvicorn
    except ImportError:
        raise WinbackConfigError(
            "winback serve needs the serve extra: pip install 'winback[serve]'"
        ) from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WinbackConfigError(f"workers={workers!r} must be a whole number ≥ 1")
    scorer = config.scorer()
    if workers == 1:
        app = create_app(scorer, limits=config.limits, model_dir=config.models)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    os.environ[ENV_CONFIG] = config.to_json()
    uvicorn.run(
        "winback.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
