"""Shared fixtures and hypothesis profiles (pick one with HYPOTHESIS_PROFILE=fast|ci|slow|long)."""

from __future__ import annotations

import inspect
import os
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from winback.datasets import read_cdnow_text

settings.register_profile("fast", max_examples=30, deadline=None, derandomize=True)
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("slow", max_examples=2000, deadline=None, derandomize=True)
# A long local run (e.g. of tests/io/test_hostile.py): not derandomized, so each run explores anew.
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Modules whose tests need a JVM / cluster engine: marked ``spark`` so `make test-fast` skips them.
_ENGINE_MODULES = {"test_spark.py", "test_dask.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the engine tests ``spark`` and the tests that drive Chromium ``browser``."""
    for item in items:
        path = Path(str(item.fspath))
        if path.name in _ENGINE_MODULES:
            item.add_marker(pytest.mark.spark)
        function = getattr(item, "function", None)
        if function is None:
            continue
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        if "rendered" in getattr(item, "fixturenames", ()) or "render(" in source:
            item.add_marker(pytest.mark.browser)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EPOCH = datetime(1970, 1, 1)
START = datetime(2023, 1, 1)


def micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@st.composite
def transaction_logs(
    draw: st.DrawFn, max_rows: int = 60, string_ids: bool | None = None
) -> pl.DataFrame:
    """Small logs full of awkward cases: ties, same-day rows, one-purchase customers, refunds."""
    as_strings = draw(st.booleans()) if string_ids is None else string_ids
    n = draw(st.integers(0, max_rows))
    customers = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    # Few distinct days so gaps tie often; seconds within the day so same-day rows merge.
    days = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    seconds = draw(st.lists(st.integers(0, 86_399), min_size=n, max_size=n))
    amounts = draw(
        st.lists(st.floats(-50, 500, allow_nan=False, allow_infinity=False), min_size=n, max_size=n)
    )
    ids = [f"c{c:02d}" if as_strings else c * 1_000_003 - 7 for c in customers]
    ts = [START + timedelta(days=d, seconds=s) for d, s in zip(days, seconds, strict=True)]
    return pl.DataFrame(
        {"customer_id": ids, "ts": ts, "amount": amounts},
        schema={
            "customer_id": pl.String if as_strings else pl.Int64,
            "ts": pl.Datetime("us"),
            "amount": pl.Float64,
        },
    )


@pytest.fixture(scope="session")
def cdnow_master() -> pl.DataFrame:
    """The real CDNOW transactions from ../shared/data (see its README)."""
    path = SHARED_DATA / "CDNOW_master.txt"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return read_cdnow_text(path)
