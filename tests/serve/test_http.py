"""The HTTP service (docs/serving.md#http) as a real ``winback serve`` subprocess on a free local
port: the JSON round trip equals :meth:`Scorer.score`, the health and models endpoints answer, and
client errors are 4xx problem+json bodies naming the field and customer, never a 500."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from winback.datasets import cdnow_path, load_cdnow
from winback.scorer import SCORE_COLUMNS, Scorer

MAX_BODY = 200_000
MAX_CUSTOMERS = 50
MAX_PURCHASES = 40
AS_OF = "1998-06-30"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models written by ``winback fit`` on the bundled CDNOW data."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run(
        [sys.executable, "-m", "winback.cli", "-q", "fit", str(cdnow_path()), "-o", str(out)],
        check=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert sorted(p.name for p in out.glob("*.json")) == ["bgnbd.json", "gg.json"]
    return out


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "serve",
            "--models",
            str(model_dir),
            "--port",
            str(port),
            "--max-body-bytes",
            str(MAX_BODY),
            "--max-customers",
            str(MAX_CUSTOMERS),
            "--max-purchases",
            str(MAX_PURCHASES),
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _, _ = request(("127.0.0.1", port), "GET", "/readyz")
            if status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"winback serve did not start: {err[-2000:]}")
        time.sleep(0.2)
    try:
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        conn.close()


def post(address: tuple[str, int], payload: Any) -> tuple[int, str, Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, kind, raw = request(
        address, "POST", "/v1/score", body, {"Content-Type": "application/json"}
    )
    return status, kind, json.loads(raw)


def histories(ids: list[int]) -> tuple[pl.DataFrame, dict[str, Any]]:
    tx = load_cdnow().filter(pl.col("customer_id").is_in(ids)).select("customer_id", "ts", "amount")
    customers = [
        {
            "customer_id": int(cid),
            "purchases": [
                {"ts": ts.isoformat(), "amount": amount}
                for ts, amount in zip(group["ts"], group["amount"], strict=True)
            ],
        }
        for (cid,), group in tx.group_by("customer_id", maintain_order=True)
    ]
    return tx, {"as_of": AS_OF, "customers": customers}


def as_json(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def assert_problem(
    result: tuple[int, str, Any], status: int, field: str | None = None, customer: Any = None
) -> dict[str, Any]:
    code, kind, body = result
    assert code == status, body
    assert kind.startswith("application/problem+json")
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"]
    if field is not None:
        assert body["field"] == field, body
    if customer is not None:
        assert body["customer_id"] == customer, body
    return body


def test_round_trip_equals_the_scorer(server: tuple[str, int], model_dir: Path) -> None:
    ids = list(range(1, 41))
    tx, payload = histories(ids)
    status, kind, body = post(server, payload)
    assert status == 200, body
    assert kind.startswith("application/json")
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF)
    rows = body["customers"]
    assert len(rows) == expected.height == len(ids)
    for got, want in zip(rows, expected.to_dicts(), strict=True):
        assert list(got) == list(SCORE_COLUMNS)
        assert got == {k: as_json(v) for k, v in want.items()}


def test_without_amounts_and_with_string_ids(server: tuple[str, int], model_dir: Path) -> None:
    payload = {
        "as_of": AS_OF,
        "customers": [
            {"customer_id": "b", "purchases": [{"ts": "1997-03-01"}, {"ts": "1997-05-02"}]},
            {"customer_id": "a", "purchases": [{"ts": "1997-01-10"}]},
        ],
    }
    status, _, body = post(server, payload)
    assert status == 200, body
    tx = pl.DataFrame(
        {
            "customer_id": ["b", "b", "a"],
            "ts": [date(1997, 3, 1), date(1997, 5, 2), date(1997, 1, 10)],
        }
    )
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF, amount_col=None)
    assert body["customers"] == [
        {k: as_json(v) for k, v in row.items()} for row in expected.to_dicts()
    ]
    assert body["customers"][0]["expected_value"] is None  # null, never NaN


def test_empty_customer_list(server: tuple[str, int]) -> None:
    assert post(server, {"customers": []})[2] == {"customers": []}


def test_health_and_models(server: tuple[str, int], model_dir: Path) -> None:
    for path, answer in (("/healthz", "ok"), ("/readyz", "ready")):
        status, _, raw = request(server, "GET", path)
        assert status == 200
        assert json.loads(raw) == {"status": answer}
    status, _, raw = request(server, "GET", "/v1/models")
    assert status == 200
    models = json.loads(raw)
    assert models["purchase_model"]["name"] == "bgnbd"
    assert models["spend_model"]["model"] == "GammaGammaModel"
    assert set(models["purchase_model"]["params"]) == {"r", "alpha", "a", "b"}
    files = {f["file"]: f["sha256"] for f in models["files"]}
    assert files == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.glob("*.json")
    }
    assert models["limits"]["max_body_bytes"] == MAX_BODY


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"customers": [', b"not json", b'{"customers": NaN}', b"\xff\xfe", b""],
)
def test_malformed_json_is_400(server: tuple[str, int], body: bytes) -> None:
    assert_problem(post(server, body), 400)


@pytest.mark.parametrize(
    ("payload", "field", "customer"),
    [
        ([1, 2], None, None),
        ({"customers": {}}, "customers", None),
        ({}, "customers", None),
        ({"customers": [], "extra": 1}, "extra", None),
        ({"as_of": 20240630, "customers": []}, "as_of", None),
        ({"as_of": "yesterday", "customers": []}, "as_of", None),
        ({"customers": [{"customer_id": True, "purchases": [{"ts": "1997-01-01"}]}]}, None, None),
        (
            {"customers": [{"customer_id": 7, "purchases": [{"ts": 19970101}]}]},
            "customers[0].purchases[0].ts",
            7,
        ),
        (
            {"customers": [{"customer_id": 7, "purchases": [{"ts": "1997-01-01T00:00:00+02:00"}]}]},
            "customers[0].purchases[0].ts",
            7,
        ),
        (
            {
                "customers": [
                    {"customer_id": 1, "purchases": [{"ts": "1997-01-01", "amount": 5}]},
                    {"customer_id": 9, "purchases": [{"ts": "1997-01-01", "amount": "5"}]},
                ]
            },
            "customers[1].purchases[0].amount",
            9,
        ),
        (
            {"customers": [{"customer_id": 3, "purchases": [{"ts": "1997-01-01", "qty": 1}]}]},
            "customers[0].purchases[0].qty",
            3,
        ),
        ({"customers": [{"customer_id": 3, "purchases": []}]}, "customers[0].purchases", 3),
        (
            {
                "customers": [
                    {"customer_id": 3, "purchases": [{"ts": "1997-01-01"}]},
                    {"customer_id": "3", "purchases": [{"ts": "1997-01-01"}]},
                ]
            },
            "customers[1].customer_id",
            "3",
        ),
        (
            {
                "customers": [
                    {"customer_id": 3, "purchases": [{"ts": "1997-01-01"}]},
                    {"customer_id": 3, "purchases": [{"ts": "1997-02-01"}]},
                ]
            },
            "customers[1].customer_id",
            3,
        ),
        (
            {"customers": [{"customer_id": 2**70, "purchases": [{"ts": "1997-01-01"}]}]},
            "customers[0].customer_id",
            None,
        ),
        (
            {
                "as_of": "1996-01-01",
                "customers": [{"customer_id": 1, "purchases": [{"ts": "1997-01-01"}]}],
            },
            None,
            None,
        ),
    ],
)
def test_wrong_types_are_422(
    server: tuple[str, int], payload: Any, field: str | None, customer: Any
) -> None:
    assert_problem(post(server, payload), 422, field, customer)


def test_oversize_body_is_413(server: tuple[str, int]) -> None:
    body = b'{"customers": [' + b" " * MAX_BODY + b"]}"
    assert_problem(post(server, body), 413)


def test_oversize_body_without_length_is_413(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=60)
    try:
        chunks = (b" " * 10_000 for _ in range(MAX_BODY // 10_000 + 2))
        conn.request(
            "POST",
            "/v1/score",
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["status"] == 413
    finally:
        conn.close()


def test_too_many_customers_and_purchases_are_413(server: tuple[str, int]) -> None:
    one = [{"ts": "1997-01-01"}]
    many = {"customers": [{"customer_id": i, "purchases": one} for i in range(MAX_CUSTOMERS + 1)]}
    assert_problem(post(server, many), 413, "customers")
    long = {
        "customers": [{"customer_id": 5, "purchases": [{"ts": "1997-01-01"}] * (MAX_PURCHASES + 1)}]
    }
    assert_problem(post(server, long), 413, "customers[0].purchases", 5)


def test_other_routes_and_types_are_problems(server: tuple[str, int]) -> None:
    status, kind, raw = request(server, "GET", "/nope")
    assert status == 404
    assert kind.startswith("application/problem+json")
    status, kind, raw = request(server, "GET", "/v1/score")
    assert status == 405
    assert kind.startswith("application/problem+json")
    status, kind, raw = request(
        server, "POST", "/v1/score", b"customer_id,ts\n1,1997-01-01\n", {"Content-Type": "text/csv"}
    )
    assert status == 415
    assert json.loads(raw)["status"] == 415


def test_concurrent_requests_each_get_their_own_answer(
    server: tuple[str, int], model_dir: Path
) -> None:
    """Eight requests at once (scored in the server's thread pool): each answer is its own
    customers' scores, equal to the scorer's."""
    from concurrent.futures import ThreadPoolExecutor

    scorer = Scorer.from_dir(model_dir)
    batches = [list(range(100 + 10 * k, 110 + 10 * k)) for k in range(8)]
    requests = [histories(ids) for ids in batches]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: post(server, r[1]), requests))
    for (tx, _), (status, _, body) in zip(requests, answers, strict=True):
        assert status == 200, body
        expected = scorer.score(tx, as_of=AS_OF)
        assert body["customers"] == [
            {k: as_json(v) for k, v in row.items()} for row in expected.to_dicts()
        ]
