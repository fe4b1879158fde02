"""``winback.serve.observe.Observe`` in process: every request counted exactly under its labels
(the labelled metric children it keeps are prometheus_client's own), and one complete JSON access
line per request through the logger's handlers, honouring the logger's level."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from winback.serve.observe import ACCESS_LOGGER, Metrics, Observe

ROUTES = frozenset({"/a"})
FIELDS = {"time", "method", "path", "status", "duration_ms", "bytes_out", "client", "pid"}


async def _app(scope: Any, receive: Any, send: Any) -> None:
    status = 200 if scope["path"] == "/a" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"12345"})


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "client": ("127.0.0.1", 5)}


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _serve(observe: Observe, requests: list[tuple[str, str]]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    async def run() -> None:
        for method, path in requests:
            await observe(_scope(method, path), receive, send)

    asyncio.run(run())


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_counts_are_exact_and_lines_complete() -> None:
    metrics = Metrics()
    observe = Observe(_app, metrics=metrics, routes=ROUTES, max_concurrency=8, timeout_s=5.0)
    logger = logging.getLogger(ACCESS_LOGGER)
    keep = _Keep()
    logger.addHandler(keep)
    try:
        requests = [("GET", "/a")] * 3 + [("FOO", "/a")] * 2 + [("GET", "/x"), ("GET", "/a")]
        _serve(observe, requests)
        assert (
            _sample(metrics, "winback_http_requests_total", route="/a", method="GET", status="200")
            == 4
        )
        assert (
            _sample(
                metrics, "winback_http_requests_total", route="/a", method="other", status="200"
            )
            == 2
        )
        assert (
            _sample(
                metrics, "winback_http_requests_total", route="other", method="GET", status="404"
            )
            == 1
        )
        assert _sample(metrics, "winback_http_request_duration_seconds_count", route="/a") == 6
        assert _sample(metrics, "winback_http_request_duration_seconds_count", route="other") == 1
        assert _sample(metrics, "winback_http_rejects_total", reason="status_404") == 1
        lines = [json.loads(record.getMessage()) for record in keep.records]
        assert [(line["method"], line["path"], line["status"]) for line in lines] == [
            (m, p, 404 if p == "/x" else 200) for m, p in requests
        ]
        assert all(set(line) >= FIELDS and line["bytes_out"] == 5 for line in lines)
        assert all(r.levelno == logging.INFO and r.name == ACCESS_LOGGER for r in keep.records)
        # The logger's level still decides: above INFO, no line.
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            _serve(observe, [("GET", "/a")])
        finally:
            logger.setLevel(level)
        assert len(keep.records) == len(requests)
        assert (
            _sample(metrics, "winback_http_requests_total", route="/a", method="GET", status="200")
            == 5
        )
    finally:
        logger.removeHandler(keep)
