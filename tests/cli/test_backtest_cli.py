"""``winback backtest`` (docs/methods.md#backtest): the command prints the summary table (readable
at 80 columns), writes what :func:`winback.backtest` returns and exits 2 on origins that do not
fit the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

import winback
from winback.datasets import load_cdnow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "80"},
    )


def sales(tmp_path: Path) -> Path:
    path = tmp_path / "sales.parquet"
    tx = load_cdnow().select("customer_id", "ts", "amount")
    tx.filter(pl.col("customer_id") <= 2000).write_parquet(path)
    return path


def test_backtest_command_table_and_output(tmp_path: Path) -> None:
    data, out = sales(tmp_path), tmp_path / "backtest.csv"
    args = ["--origins", "1998-01-31,1998-02-28", "--horizons", "1M,2M"]
    methods = ["--methods", "nbd_gg,bgnbd_gg,markov,naive_mean3,zero"]
    result = run("backtest", str(data), *args, *methods, "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("next 1M") for line in lines)
    assert any("bgnbd_gg" in line for line in lines)
    assert "markov (2M): the Markov chain's figure is for the next month only" in result.stdout
    expected = winback.backtest(
        data,
        origins=["1998-01-31", "1998-02-28"],
        horizons=["1M", "2M"],
        methods=["nbd_gg", "bgnbd_gg", "markov", "naive_mean3", "zero"],
        details=False,
    ).frame
    written = pl.read_csv(out, try_parse_dates=True)
    assert_frame_equal(
        written, expected, check_dtypes=False, check_exact=False, rel_tol=1e-12, abs_tol=0.0
    )


def test_backtest_command_json(tmp_path: Path) -> None:
    result = run(
        "backtest", str(sales(tmp_path)), "--origins", "2", "--horizons", "1M",
        "--methods", "naive_last,zero", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["origins"] == ["1998-04-30", "1998-05-31"]
    assert [row["method"] for row in payload["summary"]] == ["naive_last", "zero"]
    assert payload["summary"][1]["pooled_total_error"] == -1.0


def test_backtest_command_origin_outside_the_data_exits_2(tmp_path: Path) -> None:
    data = sales(tmp_path)
    result = run("backtest", str(data), "--origins", "1998-06-30", "--horizons", "1M")
    assert result.returncode == 2
    assert "after the end of the data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run("backtest", str(data), "--origins", "1998-06-15")
    assert result.returncode == 2
    assert "not a month end" in result.stderr
    result = run("backtest", str(data), "--horizons", "1W")
    assert result.returncode == 2
    assert "not a horizon" in result.stderr
