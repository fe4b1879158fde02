"""Shared fixtures of the value tests: the CDNOW sample's transactions (read from ../shared/data,
never copied) and the cut-off the headline-forecast tests value it at."""

from __future__ import annotations

import polars as pl
import pytest

from tests.conftest import SHARED_DATA
from winback.datasets import read_cdnow_text

CDNOW_SAMPLE = SHARED_DATA / "CDNOW_sample.txt"
#: The as-of date of the headline-forecast tests: 12 complete months of the sample behind it.
SAMPLE_AS_OF = "1997-12-31"


@pytest.fixture(scope="session")
def sample() -> pl.DataFrame:
    """The CDNOW sample (2,357 customers) as ``customer_id``, ``ts``, ``amount``."""
    if not CDNOW_SAMPLE.exists():
        pytest.skip(f"{CDNOW_SAMPLE} not found")
    return read_cdnow_text(CDNOW_SAMPLE).select("customer_id", "ts", "amount")
