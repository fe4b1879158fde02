"""``winback.serve.protocol.HeaderTimeoutH11`` against the uvicorn installed (docs/serving.md
#http-limits). uvicorn has no supported hook for a deadline on request headers, so the class
subclasses uvicorn's h11 protocol and relies on its internals: ``connection_made``,
``on_response_complete`` (called by each request's cycle when its answer is sent),
``connection_lost``, and the attributes ``loop``, ``transport`` and ``cycle`` (with
``response_complete``). These tests drive the protocol in-process through whole requests with a
fake transport, so an uvicorn upgrade that renames or reorders any of them fails here, loudly,
instead of silently turning the deadline off."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("uvicorn")

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from winback.serve import protocol
from winback.serve.protocol import HeaderTimeoutH11

DEADLINE_S = 0.05
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


class FakeTransport(asyncio.Transport):
    """What the protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.fixture(autouse=True)
def short_deadline() -> Iterator[None]:
    saved = list(protocol._timeout)
    protocol._timeout[:] = [DEADLINE_S]
    yield
    protocol._timeout[:] = saved


def test_the_uvicorn_internals_it_overrides_exist() -> None:
    """The methods and attributes HeaderTimeoutH11 uses, with the signatures it assumes."""
    assert list(inspect.signature(H11Protocol.connection_made).parameters) == [
        "self",
        "transport",
    ]
    assert list(inspect.signature(H11Protocol.on_response_complete).parameters) == ["self"]
    assert list(inspect.signature(H11Protocol.connection_lost).parameters) == ["self", "exc"]
    assert "on_response" in inspect.signature(RequestResponseCycle.__init__).parameters
    source = inspect.getsource(H11Protocol)
    # Each request's cycle reports its end through the protocol's on_response_complete.
    assert "on_response=self.on_response_complete" in source, (
        f"uvicorn {uvicorn.__version__} no longer reports the end of an answer through "
        "H11Protocol.on_response_complete: winback.serve.protocol needs updating"
    )


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _connect(gate: asyncio.Event | None = None) -> tuple[HeaderTimeoutH11, FakeTransport]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and gate is not None:
            await gate.wait()
        await _app(scope, receive, send)

    config = Config(app=app, http=HeaderTimeoutH11, lifespan="off", log_level="warning")
    config.load()
    proto = HeaderTimeoutH11(config=config, server_state=ServerState(), app_state={})
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


async def _settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


def test_a_connection_that_never_sends_headers_is_closed() -> None:
    async def scenario() -> None:
        proto, transport = _connect()
        proto.data_received(b"GET /healthz HTTP/1.1\r\nHost:")  # headers never complete
        await _settle(DEADLINE_S * 4)
        assert transport.closed
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_answered_requests_rearm_the_deadline_and_serving_ones_are_never_cut() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        proto, transport = _connect(gate)
        proto.data_received(GET)
        # The request is being served (the app waits) well past the header deadline: the
        # connection stays open.
        await _settle(DEADLINE_S * 4)
        assert proto.cycle is not None
        assert not proto.cycle.response_complete
        assert not transport.closed
        gate.set()
        await _settle(0.01)
        assert proto.cycle.response_complete
        assert transport.written.startswith(b"HTTP/1.1 200")
        # The answer re-armed the deadline for the next request's headers: an idle keep-alive
        # connection is closed by it (uvicorn's own keep-alive timeout is 5 s).
        await _settle(DEADLINE_S * 4)
        assert transport.closed
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_a_second_request_on_time_is_served() -> None:
    async def scenario() -> None:
        proto, transport = _connect()
        proto.data_received(GET)
        await _settle(0.01)
        proto.data_received(GET)
        await _settle(0.01)
        assert transport.written.count(b"HTTP/1.1 200") == 2
        assert not transport.closed
        proto.connection_lost(None)
        assert proto._header_timer is None

    asyncio.run(scenario())
