"""A ``winback serve --workers 2`` subprocess (docs/serving.md#http-monitor, #http-reload,
#http-limits): ``/metrics`` adds up both workers whichever answers, an admin reload reaches both
workers, and a request whose scoring outlives ``--timeout`` gets a 503 while the service keeps
answering."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from tests.serve.helpers import ARROW, Server, assert_problem, histories, post, request, serving

TOKEN = "workers-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT_S = 1.0
#: Customers of the slow request: one purchase each, so each costs the scorer its per-customer
#: work; far more than any machine scores in TIMEOUT_S (1M took 0.9 s on an idle core here, so
#: 1M was too few: 4M, about 3.5 s).
SLOW_CUSTOMERS = 4_000_000


@pytest.fixture(scope="module")
def models(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("worker-models")
    for path in model_dir.glob("*.json"):
        shutil.copy(path, out / path.name)
    return out


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("workers-log") / "stderr.log"
    args = [
        "--workers",
        "2",
        "--timeout",
        str(TIMEOUT_S),
        "--max-customers",
        str(2 * SLOW_CUSTOMERS),
        "--max-body-bytes",
        str(64 * 1024 * 1024),
    ]
    with serving(models, log, *args, env={"WINBACK_ADMIN_TOKEN": TOKEN}) as running:
        # /readyz answered once the first worker is up; wait for the second too.
        deadline = time.monotonic() + 60
        while sum("Application startup complete" in line for line in running.log_lines()) < 2:
            assert time.monotonic() < deadline, running.log.read_text()[-2000:]
            time.sleep(0.1)
        yield running


def samples(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, raw = request(server.address, "GET", "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def json_lines(server: Server) -> list[dict[str, Any]]:
    """The JSON lines of the server's stderr (uvicorn writes plain lines there too)."""
    return [json.loads(line) for line in server.log_lines() if line.startswith("{")]


def events(server: Server, name: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(server) if line.get("event") == name]


def scored_ok(found: dict[Any, float]) -> float:
    return value(
        found, "winback_http_requests_total", route="/v1/score", method="POST", status="200"
    )


def test_metrics_add_up_every_worker(server: Server) -> None:
    _, payload = histories([1, 2, 3])
    before = samples(server)
    sent = 0
    # Eight clients at once on fresh connections: both workers accept some of them (in rounds
    # of 48, at most five: a worker fast enough may take a whole round on a busy machine).
    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: post(server.address, payload)[0], range(48)))
        assert statuses == [200] * 48
        sent += 48
        served_by = {
            line["pid"]
            for line in json_lines(server)
            if line.get("path") == "/v1/score" and line.get("status") == 200
        }
        if len(served_by) == 2:
            break
    assert len(served_by) == 2, "the requests did not reach both workers"
    # A worker records a request just after sending its answer: wait until the last are in.
    deadline = time.monotonic() + 10

    def duration_count(found: dict[Any, float]) -> float:
        name = "winback_http_request_duration_seconds_count"
        return value(found, name, route="/v1/score")

    while duration_count(samples(server)) - duration_count(before) != sent:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Whichever worker answers the scrape, it counts the requests of both.
    for _ in range(6):
        after = samples(server)
        assert scored_ok(after) - scored_ok(before) == sent
        assert (
            value(after, "winback_customers_scored_total")
            - value(before, "winback_customers_scored_total")
            == 3 * sent
        )
        assert (
            value(after, "winback_http_request_duration_seconds_count", route="/v1/score")
            - value(before, "winback_http_request_duration_seconds_count", route="/v1/score")
            == sent
        )
        assert value(after, "winback_http_requests_in_flight") == 0
        assert value(after, "winback_model_generation") == 1


def test_admin_reload_reaches_every_worker(server: Server, models: Path) -> None:
    _, payload = histories([7, 8])
    old = post(server.address, payload)[2]["customers"]
    path = models / "bgnbd.json"
    data = json.loads(path.read_text())
    data["params"]["r"] *= 1.1
    path.write_text(json.dumps(data))
    status, _, raw = request(server.address, "POST", "/v1/admin/reload", b"", AUTH)
    assert status == 200, raw
    answered = json.loads(raw)["reload"]
    assert answered["ok"] is True
    assert answered["generation"] == 2
    # The other worker sees the reload board and reloads: the lowest generation among the live
    # workers reaches 2, and both workers logged an accepted reload.
    deadline = time.monotonic() + 30
    while value(samples(server), "winback_model_generation") != 2:
        assert time.monotonic() < deadline, "a worker did not reload"
        time.sleep(0.1)
    found = samples(server)
    assert value(found, "winback_model_reloads_total", outcome="ok") == 2
    assert value(found, "winback_model_reloads_total", outcome="failed") == 0
    reloads = events(server, "reload")
    assert len(reloads) == 2
    assert {line["trigger"] for line in reloads} == {"admin", "another worker"}
    # Every answer now comes from the new models, whichever worker gives it.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(server.address, payload), range(24)))
    assert all(status == 200 for status, _, _ in answers)
    new = [body["customers"] for _, _, body in answers]
    assert all(customers == new[0] for customers in new)
    assert new[0] != old
    assert all(
        int(json.loads(request(server.address, "GET", "/readyz")[2])["generation"]) == 2
        for _ in range(8)
    )


def slow_body() -> bytes:
    """SLOW_CUSTOMERS customers with one purchase each (12 bytes a customer: int64 id, date),
    as an Arrow stream: 12 MB that arrive in a fraction of the timeout, many seconds of
    scoring on any machine."""
    frame = pl.DataFrame(
        {
            "customer_id": pl.int_range(SLOW_CUSTOMERS, eager=True),
            "ts": pl.repeat(date(1997, 3, 1), SLOW_CUSTOMERS, eager=True),
        }
    )
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def test_scoring_beyond_the_timeout_is_503_and_blocks_nobody(server: Server) -> None:
    body = slow_body()
    assert len(body) < 60_000_000  # inside --max-body-bytes
    before = samples(server)
    result = request(
        server.address, "POST", "/v1/score?as_of=1998-06-30", body, {"Content-Type": ARROW}
    )
    problem = assert_problem(result, 503)
    assert "--timeout" in problem["detail"]
    # The service keeps answering meanwhile (the abandoned scoring holds one thread, not a
    # worker's event loop).
    _, payload = histories([1])
    assert post(server.address, payload)[0] == 200
    assert request(server.address, "GET", "/healthz")[0] == 200
    after = samples(server)
    assert (
        value(after, "winback_http_rejects_total", reason="timeout")
        - value(before, "winback_http_rejects_total", reason="timeout")
        == 1
    )
