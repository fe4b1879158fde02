"""``winback.serve.protocol``'s header deadline on uvicorn's httptools protocol (what ``winback
serve`` runs) and on its h11 protocol (the fallback without httptools), against the uvicorn
installed (docs/serving.md#http-limits). uvicorn has no supported hook for a deadline on request
headers, so the classes subclass uvicorn's protocols and rely on their internals: ``connection_made``,
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
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.server import ServerState

from winback.serve import protocol
from winback.serve.protocol import HeaderTimeoutH11, HeaderTimeoutHttpTools, protocol_name

#: Each protocol of winback.serve.protocol with the uvicorn module it builds on.
PROTOCOLS = [
    pytest.param(HeaderTimeoutHttpTools, httptools_impl, id="httptools"),
    pytest.param(HeaderTimeoutH11, h11_impl, id="h11"),
]

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


def test_the_server_runs_the_httptools_protocol() -> None:
    assert protocol_name() == "winback.serve.protocol:HeaderTimeoutHttpTools"


@pytest.mark.parametrize(("kind", "module"), PROTOCOLS)
def test_the_uvicorn_internals_it_overrides_exist(kind: type, module: Any) -> None:
    """The methods and attributes the protocol uses, with the signatures it assumes."""
    base = kind.__mro__[2]
    assert base.__module__ == module.__name__
    assert list(inspect.signature(base.connection_made).parameters) == ["self", "transport"]
    assert list(inspect.signature(base.on_response_complete).parameters) == ["self"]
    assert list(inspect.signature(base.connection_lost).parameters) == ["self", "exc"]
    assert "on_response" in inspect.signature(module.RequestResponseCycle.__init__).parameters
    source = inspect.getsource(base)
    # Each request's cycle reports its end through the protocol's on_response_complete, and
    # the cycle is set when a request's headers are complete.
    assert "on_response=self.on_response_complete" in source, (
        f"uvicorn {uvicorn.__version__} no longer reports the end of an answer through "
        f"{base.__name__}.on_response_complete: winback.serve.protocol needs updating"
    )
    assert "self.cycle = RequestResponseCycle(" in source


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _connect(kind: Any, gate: asyncio.Event | None = None) -> tuple[Any, FakeTransport]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and gate is not None:
            await gate.wait()
        await _app(scope, receive, send)

    config = Config(app=app, http=kind, lifespan="off", log_level="warning")
    config.load()
    proto = kind(config=config, server_state=ServerState(), app_state={})
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


async def _settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.parametrize(("kind", "module"), PROTOCOLS)
def test_a_connection_that_never_sends_headers_is_closed(kind: type, module: Any) -> None:
    async def scenario() -> None:
        proto, transport = _connect(kind)
        proto.data_received(b"GET /healthz HTTP/1.1\r\nHost:")  # headers never complete
        await _settle(DEADLINE_S * 4)
        assert transport.closed
        proto.connection_lost(None)

    asyncio.run(scenario())


@pytest.mark.parametrize(("kind", "module"), PROTOCOLS)
def test_answered_requests_rearm_the_deadline_and_serving_ones_are_never_cut(
    kind: type, module: Any
) -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        proto, transport = _connect(kind, gate)
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


@pytest.mark.parametrize(("kind", "module"), PROTOCOLS)
def test_a_second_request_on_time_is_served(kind: type, module: Any) -> None:
    async def scenario() -> None:
        proto, transport = _connect(kind)
        proto.data_received(GET)
        await _settle(0.01)
        proto.data_received(GET)
        await _settle(0.01)
        assert transport.written.count(b"HTTP/1.1 200") == 2
        assert not transport.closed
        proto.connection_lost(None)
        assert proto._header_timer is None

    asyncio.run(scenario())


def test_httptools_headers_beyond_the_limit_are_400_and_closed() -> None:
    """h11 refuses request headers beyond 16 KiB; httptools would buffer them without end, so
    HeaderTimeoutHttpTools counts them (to within one read)."""

    async def scenario() -> None:
        proto, transport = _connect(HeaderTimeoutHttpTools)
        proto.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        pad = b"X-Pad: " + b"a" * 1000 + b"\r\n"
        for _ in range(20):  # 20 kB of headers, 1 kB at a time
            if transport.closed:
                break
            proto.data_received(pad)
        assert transport.closed
        assert transport.written.startswith(b"HTTP/1.1 400")
        proto.connection_lost(None)
        # One read of 20 kB (the limit passed inside a single data_received call) likewise.
        proto, transport = _connect(HeaderTimeoutHttpTools)
        proto.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad * 20 + b"\r\n")
        assert transport.closed
        assert transport.written.startswith(b"HTTP/1.1 400")
        proto.connection_lost(None)

    asyncio.run(scenario())


def test_httptools_small_headers_with_a_large_body_in_one_read_are_served() -> None:
    """The count stops when the headers are complete: a body in the same read (here 100 kB,
    then two pipelined requests) does not count."""

    async def scenario() -> None:
        proto, transport = _connect(HeaderTimeoutHttpTools)
        body = b"x" * 100_000
        post = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        proto.data_received(post + body + GET + GET)
        await _settle(0.01)  # (well within the header deadline re-armed by the last answer)
        assert transport.written.count(b"HTTP/1.1 200") == 3
        assert not transport.closed
        proto.connection_lost(None)

    asyncio.run(scenario())


class CountingTransport(FakeTransport):
    """A fake transport that also keeps each write (each would be one ``send``)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        super().write(data)


def _connect_counting(app: Any) -> tuple[Any, CountingTransport]:
    config = Config(app=app, http=HeaderTimeoutHttpTools, lifespan="off", log_level="warning")
    config.load()
    proto = HeaderTimeoutHttpTools(config=config, server_state=ServerState(), app_state={})
    transport = CountingTransport()
    proto.connection_made(transport)
    return proto, transport


def test_httptools_answer_leaves_in_one_write_head_and_streams_too() -> None:
    """OneSend: an answer's status line, headers and body are one write (uvicorn's cycle
    makes two); a HEAD answer (no body write) and the head of a streamed answer still leave
    within the loop's pass; "100 Continue" is not held; the bytes are uvicorn's, in order."""

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await asyncio.sleep(0.02)  # the head must not wait for the first chunk this long
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await send({"type": "http.response.body", "body": b"b"})
            return
        if scope["method"] == "POST":
            message = await receive()
            assert message["body"] == b"xy"
        await _app(scope, receive, send)

    async def scenario() -> None:
        proto, transport = _connect_counting(streamed)
        proto.data_received(GET)
        await _settle(0.01)
        assert len(transport.writes) == 1
        assert transport.writes[0].startswith(b"HTTP/1.1 200")
        assert transport.writes[0].endswith(b"\r\n\r\n2\r\nok\r\n0\r\n\r\n")  # chunked
        # HEAD: uvicorn writes no body; the head leaves on the next pass of the loop.
        proto.data_received(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await _settle(0.01)
        assert len(transport.writes) == 2
        assert transport.writes[1].startswith(b"HTTP/1.1 200")
        # Expect: 100-continue: the interim answer is written at once, then the answer whole.
        proto.data_received(
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        await _settle(0.01)
        assert transport.writes[2] == b"HTTP/1.1 100 Continue\r\n\r\n"
        proto.data_received(b"xy")
        await _settle(0.01)
        assert len(transport.writes) == 4
        assert transport.writes[3].startswith(b"HTTP/1.1 200")
        assert transport.writes[3].endswith(b"ok\r\n0\r\n\r\n")
        # Streamed: the head leaves before the first chunk arrives.
        proto.data_received(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        await _settle(0.005)
        assert transport.writes[4].startswith(b"HTTP/1.1 200")
        await _settle(0.05)
        assert b"".join(transport.writes[5:]) == b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
        assert not transport.closed
        proto.connection_lost(None)

    asyncio.run(scenario())
