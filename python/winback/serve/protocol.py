"""uvicorn's HTTP/1.1 protocols with a deadline on request headers (docs/serving.md#http-limits).

uvicorn times out an idle keep-alive connection, but not one that opens and never completes its
request line and headers (a "slowloris" client): the app, and so the request timeout, only sees a
request once its headers are complete. :class:`HeaderTimeoutHttpTools` (uvicorn's protocol on
the C parser httptools, the one :func:`winback.serve.run` serves with) and
:class:`HeaderTimeoutH11` (uvicorn's pure-Python h11 protocol, used only where httptools is not
installed) close a connection whose next request's headers are not complete within the request
timeout of the connection opening or of the previous answer. A connection whose request is being
served is never closed by it.

Both protocols keep the same internals this relies on: ``connection_made``,
``on_response_complete`` (called by each request's cycle when its answer is sent),
``connection_lost``, and the attributes ``loop``, ``transport`` and ``cycle`` (set when a
request's headers are complete, with ``response_complete``); tests/serve/test_protocol.py
checks them against the uvicorn installed.

Imported only by :func:`winback.serve.run` (uvicorn is an optional dependency); uvicorn loads it
by name in each worker (``http="winback.serve.protocol:HeaderTimeoutHttpTools"``), and each
worker reads the timeout from the configuration :func:`~winback.serve.run` hands it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from winback._options import SERVE_TIMEOUT_S

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: run() falls back to h11
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = [
    "HeaderTimeoutH11",
    "HeaderTimeoutHttpTools",
    "OneSend",
    "header_timeout_s",
    "protocol_name",
]

_timeout: list[float] = []


def header_timeout_s() -> float:
    """The request timeout of this process's configuration (read once)."""
    if not _timeout:
        from winback.serve.config import ENV_CONFIG, ServeConfig

        text = os.environ.get(ENV_CONFIG)
        _timeout.append(ServeConfig.from_json(text).limits.timeout_s if text else SERVE_TIMEOUT_S)
    return _timeout[0]


def protocol_name() -> str:
    """The protocol :func:`winback.serve.run` hands uvicorn: the httptools one when httptools
    is installed (its C parser costs a fraction of h11's per request: benches/README.md), the
    h11 one otherwise."""
    name = "HeaderTimeoutHttpTools" if HttpToolsProtocol is not None else "HeaderTimeoutH11"
    return f"{__name__}:{name}"


class _HeaderDeadline:
    """The header deadline, mixed into an uvicorn HTTP/1.1 protocol (see the module
    docstring)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    _header_timer: asyncio.TimerHandle | None = None
    _header_cycle: Any = None

    def connection_made(self, transport: Any) -> None:
        """Start the clock for the first request's headers."""
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        """Start the clock for the next request's headers."""
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

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


class HeaderTimeoutH11(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in
    time (see the module docstring)."""


class OneSend:
    """A request cycle's view of its connection's transport in which the status line and headers
    of the answer wait for its first body write and leave with it in one ``send``: uvicorn's
    httptools cycle writes them as two, so every answer cost two system calls and, on a
    waiting client, two wake-ups (benches/README.md, "this session (serve15)"). The wait never
    outlasts the loop's pass: a head that no body write follows in the same pass (a HEAD
    answer, a streamed one) is written on the next. "100 Continue" is not held. Everything
    else is the transport's.
    """

    __slots__ = ("_head", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        """Write ``data``, holding the answer's head back for its body (see the class)."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(b"".join((head, data)))
            return
        if not self._started and not data.startswith(b"HTTP/1.1 100 "):
            self._started = True
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Write a held head now."""
        head = self._head
        if head is not None:
            self._head = None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        """Write a held head, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        """The transport's own attribute (``is_closing``, ``get_extra_info``, …)."""
        return getattr(self._transport, name)


#: Bytes a request line and headers may take when uvicorn's configuration does not say
#: (uvicorn's own default for h11, ``h11_max_incomplete_event_size``).
_HEADER_BYTES = 16 * 1024

if HttpToolsProtocol is not None:

    class HeaderTimeoutHttpTools(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol, closing connections whose request headers do not
        arrive in time (see the module docstring), and refusing with 400 a request whose
        request line and headers pass ``h11_max_incomplete_event_size`` of uvicorn's
        configuration (16 KiB by default): h11 refuses them so, httptools would buffer them
        without end. Counted per ``data_received`` call, so the bound holds to within one read
        (asyncio reads at most 256 KiB at a time)."""

        _header_room: int | None = None
        _headers_done = 0

        def _header_limit(self) -> int:
            limit = getattr(self.config, "h11_max_incomplete_event_size", None)
            return int(limit) if limit else _HEADER_BYTES

        def connection_made(self, transport: Any) -> None:
            """Count the first request's header bytes."""
            self._header_room = self._header_limit()
            super().connection_made(transport)

        def on_message_begin(self) -> None:
            """Count a new request's header bytes."""
            super().on_message_begin()
            self._header_room = self._header_limit()

        def on_headers_complete(self) -> None:
            """Stop counting: the body's size is the app's limit; the new request's cycle
            writes through :class:`OneSend`."""
            self._header_room = None
            self._headers_done += 1
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle.transport is self.transport:
                cycle.transport = OneSend(self.transport, self.loop)

        def data_received(self, data: bytes) -> None:
            """Feed the parser, refusing headers beyond the limit (see the class docstring)."""
            room = self._header_room
            if room is None or len(data) <= room:
                if room is not None:
                    self._header_room = room - len(data)
                super().data_received(data)
                return
            self._header_room = 0
            done = self._headers_done
            super().data_received(data[:room])  # may complete the headers
            if self._headers_done == done:
                if not self.transport.is_closing():
                    self.send_400_response("Request headers too large.")
                return
            super().data_received(data[room:])
