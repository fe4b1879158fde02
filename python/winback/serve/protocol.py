"""uvicorn's HTTP/1.1 protocol (h11) with a deadline on request headers
(docs/serving.md#http-limits).

uvicorn times out an idle keep-alive connection, but not one that opens and never completes its
request line and headers (a "slowloris" client): the app, and so the request timeout, only sees a
request once its headers are complete. :class:`HeaderTimeoutH11` closes a connection whose next
request's headers are not complete within the request timeout of the connection opening or of
the previous answer. A connection whose request is being served is never closed by it.

Imported only by :func:`winback.serve.run` (uvicorn is an optional dependency); uvicorn loads it
by name in each worker (``http="winback.serve.protocol:HeaderTimeoutH11"``), and each worker
reads the timeout from the configuration :func:`~winback.serve.run` hands it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from winback._options import SERVE_TIMEOUT_S

__all__ = ["HeaderTimeoutH11", "header_timeout_s"]

_timeout: list[float] = []


def header_timeout_s() -> float:
    """The request timeout of this process's configuration (read once)."""
    if not _timeout:
        from winback.serve.app import ENV_CONFIG
        from winback.serve.config import ServeConfig

        text = os.environ.get(ENV_CONFIG)
        _timeout.append(ServeConfig.from_json(text).limits.timeout_s if text else SERVE_TIMEOUT_S)
    return _timeout[0]


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in
    time (see the module docstring)."""

    _header_timer: asyncio.TimerHandle | None = None
    _header_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        """Start the clock for the next request's headers."""
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_cycle = self.cycle
        self._header_timer = self.loop.call_later(header_timeout_s(), self._header_deadline)

    def _header_deadline(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        waiting = cycle is self._header_cycle and (cycle is None or cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()
