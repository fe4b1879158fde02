"""Refused requests as RFC 9457 problem details (docs/serving.md#http-limits): the
:class:`ProblemError` every check raises, its ``application/problem+json`` body, and the reason
label the metrics count rejects by."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

__all__ = ["PROBLEM_TYPE", "ProblemError", "moment"]

PROBLEM_TYPE: Final = "application/problem+json"
#: Per status: the problem ``type`` URI (relative, resolved against the service: RFC 9457
#: §3.1.1), its title and the default reject reason of the metrics.
_KINDS: Final = {
    400: ("/problems/malformed-body", "Malformed body", "malformed"),
    401: ("/problems/unauthorized", "Unauthorized", "unauthorized"),
    404: ("/problems/not-found", "Not found", "not_found"),
    405: ("/problems/method-not-allowed", "Method not allowed", "method_not_allowed"),
    408: ("/problems/request-timeout", "Request timeout", "body_timeout"),
    413: ("/problems/too-large", "Request too large", "too_large"),
    415: ("/problems/unsupported-media-type", "Unsupported media type", "media_type"),
    422: ("/problems/invalid-request", "Invalid request", "invalid"),
    499: ("/problems/client-closed", "Client closed the connection", "client_closed"),
    500: ("/problems/server-error", "Server error", "server_error"),
    503: ("/problems/unavailable", "Service unavailable", "unavailable"),
}


class ProblemError(Exception):
    """A refused request: its status, the RFC 9457 members (``field``, ``customer_id``), the
    reason label the metrics count it under and extra response headers."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        customer_id: Any = None,
        index: int | None = None,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.customer_id = customer_id
        self.index = index
        kind = _KINDS.get(status)
        self.reason = reason or (kind[2] if kind else f"status_{status}")
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, instance: str) -> dict[str, Any]:
        """The problem+json body."""
        kind = _KINDS.get(self.status)
        out: dict[str, Any] = {
            "type": kind[0] if kind else "about:blank",
            "title": kind[1] if kind else "Error",
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.field is not None:
            out["field"] = self.field
        if self.index is not None:
            out["customer_index"] = self.index
        if self.index is not None or self.customer_id is not None:
            out["customer_id"] = self.customer_id
        out.update(self.extra)
        return out

    def encode(self, instance: str) -> bytes:
        """The body as UTF-8 JSON bytes."""
        return json.dumps(self.body(instance), ensure_ascii=False).encode()


def moment(value: Any, where: str, index: int | None = None, customer: Any = None) -> datetime:
    """An ISO date or naive datetime (local wall-clock time, as :func:`winback.prepare` reads);
    a 422 naming ``where`` and the customer otherwise."""
    if not isinstance(value, str):
        raise ProblemError(
            422,
            f"{where} must be an ISO date or datetime string, not {type(value).__name__}",
            field=where,
            index=index,
            customer_id=customer,
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ProblemError(
            422,
            f"{where}={value[:64]!r} is not an ISO date or datetime (e.g. 2024-06-30 or "
            "2024-06-30T14:05:00)",
            field=where,
            index=index,
            customer_id=customer,
        ) from None
    if parsed.tzinfo is not None:
        raise ProblemError(
            422,
            f"{where}={value[:64]!r} has a time zone offset; send local wall-clock times "
            "without an offset (docs/serving.md#http)",
            field=where,
            index=index,
            customer_id=customer,
        )
    return parsed
