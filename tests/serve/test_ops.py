"""Operating the HTTP service (docs/serving.md#http-monitor, #http-reload) on a real
``winback serve`` subprocess: Prometheus metrics and JSON access logs count exactly what was
sent, models reload without a failed request (SIGHUP and the admin endpoint), a corrupted model
file keeps the old models serving and is reported, 10^6 purchases of one customer are refused
naming her, a client that goes away mid-request or mid-answer harms nobody."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from tests.serve.helpers import (
    AS_OF,
    Server,
    as_json_rows,
    assert_problem,
    histories,
    post,
    request,
    serving,
)
from winback.scorer import Scorer

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def models(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the models that the tests rewrite."""
    out = tmp_path_factory.mktemp("served-models")
    for path in model_dir.glob("*.json"):
        shutil.copy(path, out / path.name)
    return out


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("ops-log") / "stderr.log"
    args = ["--max-body-bytes", "40000000", "--max-concurrency", "8", "--timeout", "20"]
    with serving(models, log, *args, env={"WINBACK_ADMIN_TOKEN": TOKEN}) as running:
        yield running


def metrics(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, kind, raw = request(server.address, "GET", "/metrics")
    assert status == 200
    assert kind.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_and_access_log_count_what_was_sent(server: Server) -> None:
    before = metrics(server)
    lines_before = len(server.log_lines())
    _, payload = histories([1, 2, 3])
    for _ in range(3):
        assert post(server.address, payload)[0] == 200
    for _ in range(2):
        assert post(server.address, b"{")[0] == 400
    status, _, _ = request(server.address, "POST", "/v1/score", b"x", {"Content-Type": "text/csv"})
    assert status == 415
    assert request(server.address, "GET", "/nope")[0] == 404
    after = metrics(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    score = {"route": "/v1/score", "method": "POST"}
    assert delta("winback_http_requests_total", status="200", **score) == 3
    assert delta("winback_http_requests_total", status="400", **score) == 2
    assert delta("winback_http_requests_total", status="415", **score) == 1
    assert delta("winback_http_requests_total", route="other", method="GET", status="404") == 1
    assert delta("winback_http_rejects_total", reason="malformed") == 2
    assert delta("winback_http_rejects_total", reason="media_type") == 1
    assert delta("winback_http_rejects_total", reason="not_found") == 1
    assert delta("winback_http_request_duration_seconds_count", route="/v1/score") == 6
    assert delta("winback_customers_scored_total") == 9
    assert value(after, "winback_model_generation") >= 1
    assert value(after, "process_resident_memory_bytes") > 0
    # One JSON line per request (the /metrics scrape before the traffic is logged too).
    lines = [json.loads(line) for line in server.log_lines()[lines_before:]]
    access = [line for line in lines if "status" in line and line.get("path") != "/metrics"]
    assert [(line["path"], line["status"]) for line in access] == [
        *[("/v1/score", 200)] * 3,
        *[("/v1/score", 400)] * 2,
        ("/v1/score", 415),
        ("/nope", 404),
    ]
    assert all(line["customers"] == 3 for line in access[:3])
    assert access[3]["reason"] == "malformed"
    assert all(line["duration_ms"] >= 0 and line["method"] for line in access)


def test_admin_reload_needs_the_token(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        result = request(server.address, "POST", "/v1/admin/reload", b"", headers)
        body = assert_problem(result, 401)
        assert TOKEN not in json.dumps(body)


def _rewrite_purchase_model(folder: Path, factor: float) -> None:
    path = folder / "bgnbd.json"
    data = json.loads(path.read_text())
    params = data["params"]
    params["r"] = params["r"] * factor
    path.write_text(json.dumps(data))


def _generation(server: Server) -> int:
    return int(json.loads(request(server.address, "GET", "/readyz")[2])["generation"])


def test_reload_during_load_fails_no_request(server: Server, models: Path) -> None:
    """Two clients score without pause while the models are rewritten and reloaded three
    times (admin endpoint and SIGHUP): every answer is 200 and equals one of the model sets'."""
    tx, payload = histories(list(range(200, 210)))
    versions = [Scorer.from_dir(models).score(tx, as_of=AS_OF)]
    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            status, _, body = post(server.address, payload)
            answers.append((status, body))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        start = _generation(server)
        for k, trigger in enumerate(["admin", "sighup", "admin"], start=1):
            time.sleep(0.3)
            _rewrite_purchase_model(models, 1.05)
            versions.append(Scorer.from_dir(models).score(tx, as_of=AS_OF))
            if trigger == "admin":
                status, _, raw = request(server.address, "POST", "/v1/admin/reload", b"", AUTH)
                assert status == 200, raw
                assert json.loads(raw)["reload"]["ok"] is True
            else:
                server.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 30
                while _generation(server) != start + k and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert _generation(server) == start + k
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(answers) > 10
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    expected = [as_json_rows(frame) for frame in versions]
    assert all(body["customers"] in expected for _, body in answers)
    # The last set is serving; its checksums are shown.
    assert post(server.address, payload)[2]["customers"] == expected[-1]
    shown = json.loads(request(server.address, "GET", "/v1/models")[2])
    sums = {f["file"]: f["sha256"] for f in shown["files"]}
    assert sums["bgnbd.json"] == hashlib.sha256((models / "bgnbd.json").read_bytes()).hexdigest()
    assert shown["last_reload"]["ok"] is True


@pytest.mark.parametrize("damage", ["garbage", "missing field", "negative parameter"])
def test_corrupted_model_on_reload_keeps_the_old_set(
    server: Server, models: Path, damage: str
) -> None:
    _, payload = histories([1, 2, 3, 4])
    serving_now = post(server.address, payload)[2]["customers"]
    generation = _generation(server)
    sums = json.loads(request(server.address, "GET", "/v1/models")[2])["files"]
    path = models / "gg.json"
    good = path.read_text()
    data = json.loads(good)
    if damage == "garbage":
        path.write_text(good[: len(good) // 2])
    elif damage == "missing field":
        del data["params"]
        path.write_text(json.dumps(data))
    else:
        data["params"][next(iter(data["params"]))] = -1.0
        path.write_text(json.dumps(data))
    lines_before = len(server.log_lines())
    try:
        status, kind, raw = request(server.address, "POST", "/v1/admin/reload", b"", AUTH)
        body = assert_problem((status, kind, raw), 422)
        assert "gg" in body["detail"]
        assert body["reload"]["ok"] is False
        assert body["reload"]["generation"] == generation
        # The old set serves on, unchanged, and /v1/models says what went wrong.
        assert _generation(server) == generation
        assert post(server.address, payload)[2]["customers"] == serving_now
        shown = json.loads(request(server.address, "GET", "/v1/models")[2])
        assert shown["files"] == sums
        assert shown["last_reload"]["ok"] is False
        assert "gg" in shown["last_reload"]["error"]
        events = [json.loads(line) for line in server.log_lines()[lines_before:]]
        reloads = [e for e in events if e.get("event") == "reload"]
        assert len(reloads) == 1
        assert reloads[0]["ok"] is False
        assert "gg" in reloads[0]["error"]
        rejects = value(metrics(server), "winback_model_reloads_total", outcome="failed")
        assert rejects >= 1
    finally:
        path.write_text(good)


def test_a_million_purchases_of_one_customer_are_413_naming_her(server: Server) -> None:
    purchases = ",".join(['{"ts":"1997-01-01"}'] * 1_000_000)
    body = (
        '{"customers":[{"customer_id":1,"purchases":[{"ts":"1997-01-01"}]},'
        '{"customer_id":77,"purchases":[' + purchases + "]}]}"
    ).encode()
    assert_problem(post(server.address, body), 413, "customers[1].purchases", 77)
    frame = pl.DataFrame(
        {"customer_id": [77] * 1_000_000, "ts": pl.Series([0] * 1_000_000).cast(pl.Date)}
    )
    from io import BytesIO

    out = BytesIO()
    frame.write_ipc_stream(out)
    result = request(
        server.address,
        "POST",
        "/v1/score?as_of=1998-01-01",
        out.getvalue(),
        {"Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert_problem(result, 413, "ts", 77)


def _raw(server: Server, data: bytes) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=30)
    sock.sendall(data)
    return sock


def test_client_gone_mid_request_or_mid_answer_harms_nobody(server: Server) -> None:
    tx, payload = histories(list(range(1, 1201)))
    body = json.dumps(payload).encode()
    head = (
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    before = metrics(server)
    # Gone while sending the body.
    _raw(server, head + body[:1000]).close()
    # Gone after the first bytes of a large answer.
    sock = _raw(server, head + body)
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    sock.close()
    # Gone before any answer.
    _raw(server, head + body).close()
    time.sleep(1.0)
    expected = as_json_rows(Scorer.from_dir(server_models(server)).score(tx, as_of=AS_OF))
    status, _, answer = post(server.address, payload)
    assert status == 200
    assert answer["customers"] == expected
    after = metrics(server)
    gone = value(after, "winback_http_rejects_total", reason="client_closed") - value(
        before, "winback_http_rejects_total", reason="client_closed"
    )
    assert gone >= 1
    assert (
        value(after, "winback_http_requests_total", route="/v1/score", method="POST", status="500")
        == 0
    )


def server_models(server: Server) -> Path:
    args = server.proc.args
    assert isinstance(args, list | tuple)
    return Path(args[list(args).index("--models") + 1])


def test_preload_warms_the_process_before_it_reports_ready(model_dir: Path, tmp_path: Path) -> None:
    """``--preload`` runs winback.preload in the server process before it binds: by the time
    /readyz answers, the event log holds the preload line, and answers are unchanged."""
    log = tmp_path / "stderr.log"
    with serving(model_dir, log, "--preload") as running:
        events = [json.loads(line) for line in running.log_lines() if '"preload"' in line]
        assert len(events) == 1
        assert events[0]["event"] == "preload"
        assert events[0]["pid"] == running.proc.pid
        assert events[0]["seconds"] > 0
        tx, payload = histories([1, 2, 3])
        status, _, body = post(running.address, payload)
        assert status == 200, body
        expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF)
        assert body["customers"] == as_json_rows(expected)
