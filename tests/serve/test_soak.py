"""A short soak of the HTTP service (docs/serving.md#http-size): 16 keep-alive connections
scoring one customer each request without pause, for ``WINBACK_SOAK_SECONDS`` (default 10 s,
at most 20 s in CI; longer locally), driven by the load generator of benches/bench_serve.py.
Zero errors, every request counted by the server, RSS growth bounded."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from tests.benches import load_bench
from tests.serve.helpers import AS_OF, histories, request, serving

#: RSS may grow this much over the soak (caches and allocator arenas settle in the warm-up).
RSS_GROWTH_KIB = 64 * 1024


def scored(address: tuple[str, int]) -> float:
    raw = request(address, "GET", "/metrics")[2].decode()
    prefix = 'winback_http_requests_total{method="POST",route="/v1/score",status="200"} '
    return sum(float(line[len(prefix) :]) for line in raw.splitlines() if line.startswith(prefix))


def test_soak_16_connections(model_dir: Path, tmp_path: Path) -> None:
    seconds = float(os.environ.get("WINBACK_SOAK_SECONDS", "10"))
    bench = load_bench("bench_serve")
    _, payload = histories([1017])
    payload["as_of"] = AS_OF
    message = bench.http_request("POST", "/v1/score", json.dumps(payload).encode())
    with serving(model_dir, tmp_path / "log") as server:
        host, port = server.address
        warm = asyncio.run(bench.load(host, port, message, 16, min(2.0, seconds)))
        assert warm.errors == 0
        before_rss = server.rss_kib()
        before = scored(server.address)
        result = asyncio.run(bench.load(host, port, message, 16, seconds))
        after_rss = server.rss_kib()
        counted = scored(server.address) - before
    assert result.errors == 0
    assert len(result.latencies) > 0
    assert counted == len(result.latencies)
    assert after_rss - before_rss < RSS_GROWTH_KIB, (before_rss, after_rss)
