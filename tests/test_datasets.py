"""The bundled CDNOW sample is the real data, converted faithfully."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from tests.conftest import SHARED_DATA
from winback.datasets import load_cdnow, read_cdnow_text


def test_bundled_sample_equals_a_fresh_conversion(cdnow_master: pl.DataFrame) -> None:
    assert_frame_equal(load_cdnow(), cdnow_master)


def test_bundled_sample_shape() -> None:
    frame = load_cdnow()
    assert frame.height == 69_659
    assert frame.get_column("customer_id").n_unique() == 23_570
    assert frame.get_column("ts").min().isoformat() == "1997-01-01"  # type: ignore[union-attr]
    assert frame.get_column("ts").max().isoformat() == "1998-06-30"  # type: ignore[union-attr]


def test_sample_file_reader_uses_master_ids() -> None:
    path = SHARED_DATA / "CDNOW_sample.txt"
    if not path.exists():
        import pytest

        pytest.skip("real data not present")
    sample = read_cdnow_text(path)
    assert sample.height == 6_919
    assert sample.get_column("customer_id").n_unique() == 2_357
