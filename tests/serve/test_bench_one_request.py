"""benches/bench_one_request.py runs (tiny counts): both requests answered 200 in process, every
step timed, and the access logger left as it was."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("msgspec")
pytest.importorskip("prometheus_client")

from winback.serve.observe import ACCESS_LOGGER

BENCHES = Path(__file__).resolve().parents[2] / "benches"


def test_the_in_process_request_benchmark_runs_small() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    before = (access.handlers[:], access.level, access.propagate)
    sys.path.insert(0, str(BENCHES))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_one_request", BENCHES / "bench_one_request.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.run(requests=20, repeat=1)
    finally:
        sys.path.remove(str(BENCHES))
    for name in ("hello_us", "one_us", "parse_body_us", "score_parsed_us", "score_one_us"):
        assert result[name] > 0, name
    assert result["extra_us"] == result["one_us"] - result["hello_us"]
    assert (access.handlers, access.level, access.propagate) == before
