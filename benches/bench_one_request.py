"""In-process CPU cost of the HTTP service's one-customer request (docs/serving.md#http),
against its hello-world request, without a socket, a server or a load generator.

The Starlette app of ``winback serve`` (:func:`winback.serve.create_app`, the same middleware,
access log and metrics; the log written to a null device) is called as an ASGI app on one event
loop: ``POST /v1/score`` with ``bench_serve.py``'s one-customer body (50 purchases, ``as_of``
given) and ``GET /healthz``. For each, ``--requests`` requests (default 5,000) after a warm-up,
``--repeat`` times (default 5); the figure is the best repeat's thread CPU time per request
(``time.thread_time_ns``: what a request costs without the wait for a core). The steps of the
one-customer path are timed alone the same way: reading and checking the body
(``parse_body``), scoring and encoding it (``score_parsed``), ``Scorer.score_one`` by itself, and
the one-customer lane the server takes (``score_small``: the three in one pass).

The ratio that matters for issue 15's target (one-customer throughput ≥ ½ hello-world's at 64
connections) is the *extra* cost of a one-customer request over hello-world's: the server's
socket and HTTP work, which this leaves out, is common to both.

Usage::

    python benches/bench_one_request.py [--requests 5000] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import VALUE, fit_models, one_customer

import winback


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")]
    if method == "POST":
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def _caller(app: Any, method: str, path: str, body: bytes) -> Callable[[], Any]:
    """A coroutine function making one request of ``app`` and checking it was answered 200."""
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def request() -> None:
        status = []

        async def send(reply: dict[str, Any]) -> None:
            if reply["type"] == "http.response.start":
                status.append(reply["status"])

        await app(_scope(method, path, body), receive, send)
        if status != [200]:
            raise SystemExit(f"{method} {path} answered {status}")

    return request


def _cpu_per_call(call: Callable[[], Any], n: int, repeat: int) -> float:
    """Best over ``repeat`` of the mean thread CPU µs of ``n`` calls of ``call``."""
    best = float("inf")
    clock = time.thread_time_ns
    for _ in range(repeat):
        start = clock()
        for _ in range(n):
            call()
        best = min(best, (clock() - start) / n / 1000.0)
    return best


def run(requests: int = 5_000, repeat: int = 5) -> dict[str, Any]:
    from winback.serve.observe import ACCESS_LOGGER

    access = logging.getLogger(ACCESS_LOGGER)
    kept = (access.handlers[:], access.level, access.propagate)
    with open(os.devnull, "w") as null:
        # The access lines go to the null device (formatted and written as in a server).
        access.handlers[:] = [logging.StreamHandler(null)]
        access.setLevel(logging.INFO)
        access.propagate = False
        try:
            return _measure(requests, repeat)
        finally:
            access.handlers[:], level, access.propagate = kept
            access.setLevel(level)


def _measure(requests: int, repeat: int) -> dict[str, Any]:
    from winback.serve import create_app
    from winback.serve.config import ServeConfig
    from winback.serve.json_body import parse_body, score_parsed, score_small

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fit_models(folder)
        config = ServeConfig(models=str(folder / "models"), value=VALUE)
        app = create_app(config)
        scorer = config.scorer()
    body = one_customer()
    limits = config.limits
    parsed = parse_body(body, limits)
    times, amounts = parsed.times, parsed.amounts
    loop = asyncio.new_event_loop()
    try:
        one = _caller(app, "POST", "/v1/score", body)
        hello = _caller(app, "GET", "/healthz", b"")
        steps: dict[str, Callable[[], Any]] = {
            "hello_us": lambda: loop.run_until_complete(hello()),
            "one_us": lambda: loop.run_until_complete(one()),
            "parse_body_us": lambda: parse_body(body, limits),
            "score_parsed_us": lambda: score_parsed(scorer, parsed),
            "score_small_us": lambda: score_small(scorer, body, limits),
            "score_one_us": lambda: scorer.score_one(times, amounts, as_of=parsed.as_of),
            "empty_loop_us": lambda: loop.run_until_complete(asyncio.sleep(0)),
        }
        for call in steps.values():
            for _ in range(300):
                call()
        result: dict[str, Any] = {
            name: _cpu_per_call(call, requests, repeat) for name, call in steps.items()
        }
    finally:
        loop.close()
    result["extra_us"] = result["one_us"] - result["hello_us"]
    result["load_average"] = os.getloadavg()
    result["platform"] = platform.platform()
    result["python"] = platform.python_version()
    result["winback"] = winback.__version__
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    before = os.getloadavg()
    result = run(args.requests, args.repeat)
    print(f"load average before {before[0]:.2f}, after {result['load_average'][0]:.2f}")
    print("thread CPU per call, µs (best of repeats):")
    for name in (
        "hello_us",
        "one_us",
        "extra_us",
        "parse_body_us",
        "score_parsed_us",
        "score_small_us",
        "score_one_us",
        "empty_loop_us",
    ):
        print(f"  {name[:-3]:<14} {result[name]:8.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
