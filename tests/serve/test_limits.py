"""Slow and greedy clients against a real ``winback serve`` (docs/serving.md#http-limits): a
client trickling its body gets a 408 when the request's time is up and holds nobody else up
meanwhile; requests beyond ``--max-concurrency`` get an immediate 503 with ``Retry-After`` while
the probes still answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from tests.serve.helpers import Server, assert_problem, histories, post, request, serving

TIMEOUT_S = 2
CONCURRENCY = 2


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("limits-log") / "stderr.log"
    args = ["--timeout", str(TIMEOUT_S), "--max-concurrency", str(CONCURRENCY)]
    with serving(model_dir, log, *args) as running:
        yield running


def _stalled(
    server: Server, declared: int = 5000, sent: bytes = b'{"customers": ['
) -> socket.socket:
    """A request whose body never fully arrives."""
    sock = socket.create_connection(server.address, timeout=30)
    sock.sendall(
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + sent
    )
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest


def test_trickling_client_gets_408_and_blocks_nobody(server: Server) -> None:
    sock = socket.create_connection(server.address, timeout=30)
    body = json.dumps(histories([1, 2])[1]).encode()
    sock.sendall(
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    stop = threading.Event()
    sent = []

    def trickle() -> None:
        for byte in body:
            if stop.is_set():
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            sent.append(byte)
            time.sleep(0.05)

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        # While it trickles, others are served.
        _, payload = histories([3, 4])
        for _ in range(3):
            assert post(server.address, payload)[0] == 200
        assert request(server.address, "GET", "/healthz")[0] == 200
        status, headers, raw = _answer(sock)
    finally:
        stop.set()
        thread.join()
        sock.close()
    assert len(sent) < len(body)  # answered before the body was complete
    assert_problem((status, headers["content-type"], raw), 408)
    assert headers.get("connection") == "close"


def test_stalled_bodies_beyond_the_limit_get_503_with_retry_after(server: Server) -> None:
    stalled = [_stalled(server) for _ in range(CONCURRENCY)]
    try:
        time.sleep(0.3)  # both are being served (waiting for their bodies)
        _, payload = histories([1])
        conn_status, kind, raw = request(
            server.address,
            "POST",
            "/v1/score",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
        body = assert_problem((conn_status, kind, raw), 503)
        assert "max-concurrency" in body["detail"]
        # The probes and the metrics are never refused.
        assert request(server.address, "GET", "/healthz")[0] == 200
        assert request(server.address, "GET", "/readyz")[0] == 200
        metrics = request(server.address, "GET", "/metrics")[2].decode()
        assert 'winback_http_rejects_total{reason="overloaded"} 1.0' in metrics
        answers = [_answer(sock) for sock in stalled]
    finally:
        for sock in stalled:
            sock.close()
    assert [a[0] for a in answers] == [408] * CONCURRENCY
    # Slots free again.
    assert post(server.address, payload)[0] == 200


def test_retry_after_header_on_overload(server: Server) -> None:
    stalled = [_stalled(server) for _ in range(CONCURRENCY)]
    try:
        time.sleep(0.3)
        extra = _stalled(server, declared=10, sent=b'{"customer')
        status, headers, _ = _answer(extra)
        extra.close()
    finally:
        for sock in stalled:
            sock.close()
    assert status == 503
    assert headers["retry-after"] == "1"


@pytest.mark.parametrize("sent", [b"", b"POST /v1/score HTTP/1.1\r\nHost: x\r\n"])
def test_headers_that_never_complete_are_cut_off(server: Server, sent: bytes) -> None:
    """A connection that sends nothing, or headers that never end, is closed once the request
    time is up (uvicorn alone would keep it open); others are served meanwhile."""
    sock = socket.create_connection(server.address, timeout=30)
    try:
        sock.sendall(sent)
        _, payload = histories([5])
        assert post(server.address, payload)[0] == 200
        # Closed by the server (the client's own 30 s timeout would raise instead).
        assert sock.recv(100) == b""
    finally:
        sock.close()


def test_the_server_parses_http_with_httptools(server: Server) -> None:
    """The limits above hold on the protocol the server runs: uvicorn's httptools one (C
    parser) with winback's header deadline, not the h11 fallback."""
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "httptools/parser/parser." in maps  # the C parser's library is loaded


def test_headers_beyond_16_kib_are_400(server: Server) -> None:
    """As h11 did: a request whose headers pass 16 KiB is refused and its connection closed
    (httptools alone would buffer any amount); headers under it are served."""
    pad = "a" * 1000
    small = {f"X-Pad-{i}": pad for i in range(8)}
    assert request(server.address, "GET", "/healthz", headers=small)[0] == 200
    sock = socket.create_connection(server.address, timeout=30)
    answer = b""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for i in range(1000):  # up to 1 MB, refused long before
                sock.sendall(f"X-Pad-{i}: {pad}\r\n".encode())
        except OSError:
            pass  # the server closed the connection while we were still sending
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # closed with our unread headers in its buffer: the answer came first
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
