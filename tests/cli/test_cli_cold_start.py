"""``winback score --cold-start`` (docs/methods.md#cold-start): the population columns in the
written file, the same as the library's, in memory and by parts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import winback
from winback.coldstart import COLD_START_COLUMNS

from .test_cli import run

SAMPLE = Path("/work/shared/data/CDNOW_sample.txt")


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from winback.datasets import read_cdnow_text

    path = tmp_path_factory.mktemp("cold") / "sales.parquet"
    read_cdnow_text(SAMPLE).write_parquet(path)
    return path


@pytest.mark.parametrize("by_parts", [False, True])
def test_score_cold_start_writes_the_population_columns(
    sales: Path, tmp_path: Path, by_parts: bool
) -> None:
    out = tmp_path / "scores.parquet"
    extra = ["--memory-limit", "200MB"] if by_parts else []
    result = run(
        "score", str(sales), "--as-of", "1998-06-30", "-o", str(out), "--cold-start", *extra
    )
    assert result.returncode == 0, result.stderr
    written = pl.read_parquet(out)
    expected = winback.silence(sales, as_of="1998-06-30", cold_start=True)
    assert written.equals(expected)
    assert written.columns[-len(COLD_START_COLUMNS) :] == list(COLD_START_COLUMNS)
    single = written.filter(pl.col("status") == "single_purchase")
    assert single.height > 0
    assert single.get_column("population_trf").null_count() == 0
    # The terminal shows them too, by population group, with their count.
    assert "Too few purchases" in result.stdout
    assert f"{single.height:,}" in result.stdout


def test_score_cold_start_refuses_a_bad_horizon(sales: Path, tmp_path: Path) -> None:
    result = run(
        "score",
        str(sales),
        "-o",
        str(tmp_path / "s.parquet"),
        "--cold-start",
        "--cold-start-horizon-days",
        "0",
    )
    assert result.returncode != 0
    assert "--cold-start-horizon-days" in result.stderr
