"""``winback value`` (docs/methods.md#outputs): the CLI writes what :func:`winback.value`
returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

import winback
from winback.datasets import load_cdnow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args], capture_output=True, text=True, check=False
    )


def test_value_command_writes_the_api_frame(tmp_path: Path) -> None:
    tx = load_cdnow().select("customer_id", "ts", "amount").head(8000)
    sales, spend = tmp_path / "sales.parquet", tmp_path / "spend.parquet"
    tx.write_parquet(sales)
    tx.head(2000).select(
        "customer_id", "ts", (pl.col("amount") * 0.1).alias("expense")
    ).write_parquet(spend)
    out = tmp_path / "value.parquet"
    result = run(
        "value", str(sales), "--expenses", str(spend), "--period", "month", "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    expected = winback.value(sales, expenses=spend, period="month").frame
    assert summary["customers"] == expected.height
    written = pl.read_parquet(out)
    assert_frame_equal(written, expected.with_columns(pl.col("p_frequency").arr.to_list()))


def test_value_command_bad_period_exits_2(tmp_path: Path) -> None:
    sales = tmp_path / "sales.parquet"
    load_cdnow().head(100).write_parquet(sales)
    result = run("value", str(sales), "--period", "fortnight", "-o", str(tmp_path / "v.parquet"))
    assert result.returncode == 2
    assert "period" in result.stderr
