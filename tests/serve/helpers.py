"""Helpers of the HTTP service tests: start ``winback serve`` as a subprocess on a free port,
talk to it with the standard library's HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from winback.datasets import load_cdnow

AS_OF = "1998-06-30"
ARROW = "application/vnd.apache.arrow.stream"
SERVE = (sys.executable, "-m", "winback.cli", "serve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    address: tuple[str, int]
    proc: subprocess.Popen[bytes]
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@contextmanager
def serving(
    model_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``winback serve --models model_dir *args`` on a free port, until the block ends; its
    stderr (the JSON access log) goes to ``log``."""
    port = free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*SERVE, "--models", str(model_dir), "--port", str(port), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    server = Server(("127.0.0.1", port), proc, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            if request(server.address, "GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"winback serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    """CDNOW customers' transactions as a frame and as a JSON request body."""
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


def as_json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: as_json(v) for k, v in row.items()} for row in frame.to_dicts()]


def assert_problem(
    result: tuple[int, str, Any], status: int, field: str | None = None, customer: Any = None
) -> dict[str, Any]:
    code, kind, body = result
    if isinstance(body, bytes):
        body = json.loads(body)
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
