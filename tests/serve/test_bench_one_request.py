"""benches/bench_one_request.py runs (tiny counts): both requests answered 200 in process, every
step timed, and the access logger left as it was."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("starlette")
pytest.importorskip("msgspec")
pytest.importorskip("prometheus_client")

from tests.benches import load_bench
from winback.serve.observe import ACCESS_LOGGER


def test_the_in_process_request_benchmark_runs_small() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    before = (access.handlers[:], access.level, access.propagate)
    result = load_bench("bench_one_request").run(requests=20, repeat=1)
    for name in ("hello_us", "one_us", "parse_body_us", "score_parsed_us", "score_one_us"):
        assert result[name] > 0, name
    assert result["extra_us"] == result["one_us"] - result["hello_us"]
    assert (access.handlers, access.level, access.propagate) == before
