"""The snapshot rule on the command line (issue 19, items 5 and 6; docs/methods.md#as-of).

Each bad case runs the CLI as a subprocess: exit code 2, one line naming the dates or rows and
the ``--as-of`` flag (CLI advice, not Python keywords), no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from winback.datasets import load_cdnow


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ),
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "as_of=" not in lines[0], lines[0]  # the Python keyword is not CLI advice
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("as_of_cli")
    tx = load_cdnow().select("customer_id", "ts", "amount")
    tx.write_parquet(root / "cdnow.parquet")
    typo = pl.DataFrame(
        {"customer_id": [4242], "ts": [date(2204, 1, 1)], "amount": [12.0]}, schema=tx.schema
    )
    pl.concat([tx, typo]).write_parquet(root / "typo.parquet")
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["score", "cdnow.parquet", "-o", "s.csv"],
        ["value", "cdnow.parquet", "-o", "v.csv"],
        ["migrate", "cdnow.parquet", "--as-of", "1998-01-01", "-o", "moves/", "--mkdir"],
    ],
    ids=["score", "value", "migrate"],
)
def test_as_of_before_the_data_exits_2(command: list[str], folder: Path) -> None:
    # Reproducer: `winback score cdnow --as-of 1990-01-01` exited 0 with empty tables.
    args = [*command[:2], "--as-of", "1990-01-01", *command[2:]]
    refused(run(*args, cwd=folder), "--as-of 1990-01-01", "1997-01-01", "1998-06-30")


@pytest.mark.parametrize(
    "command",
    [
        ["score", "typo.parquet", "-o", "s.csv"],
        ["score", "typo.parquet", "-o", "s.csv", "--memory-limit", "2MB"],
        ["value", "typo.parquet", "-o", "v.csv"],
        ["fit", "typo.parquet", "-m", "bgnbd", "-o", "models/", "--mkdir"],
    ],
    ids=["score", "score_out_of_core", "value", "fit"],
)
def test_a_typo_row_far_in_the_future_exits_2(command: list[str], folder: Path) -> None:
    refused(run(*command, cwd=folder), "1 purchase(s)", "customer 4242 on 2204-01-01", "--as-of")


def test_an_explicit_as_of_scores_despite_the_typo_row(folder: Path) -> None:
    result = run(
        "score", "typo.parquet", "--as-of", "1998-06-30", "-o", "s.csv", "--json", cwd=folder
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_after_as_of"] == 1, summary


def test_default_and_explicit_last_date_write_the_same_value_table(folder: Path) -> None:
    for name, extra in (("default.parquet", []), ("explicit.parquet", ["--as-of", "1998-06-30"])):
        result = run("value", "cdnow.parquet", *extra, "-o", name, cwd=folder)
        assert result.returncode == 0, result.stderr
    assert pl.read_parquet(folder / "default.parquet").equals(
        pl.read_parquet(folder / "explicit.parquet")
    )


def test_an_explicit_amount_column_missing_exits_2(folder: Path) -> None:
    for command in (["score"], ["value"], ["segment"]):
        out = "o.csv" if command[0] != "segment" else "seg.csv"
        result = run(*command, "cdnow.parquet", "--amount-col", "spend", "-o", out, cwd=folder)
        line = refused(result, "'spend'", "--amount-col")
        assert "amount_col=" not in line
