"""`winback report --events`: the engagement section from an events file (docs/methods.md#events)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl


def test_report_with_an_events_file(tmp_path: Path) -> None:
    days = [date(2024, 1, d) for d in (1, 8, 15, 22)]
    tx = pl.DataFrame({"customer_id": [1] * 4 + [2] * 4, "ts": days * 2})
    ev = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": [date(2024, 1, 2), date(2024, 1, 29), date(2024, 1, 3), date(2024, 1, 4)],
            "event": ["visit", "view", "visit", "cart"],
        }
    )
    tx.write_parquet(tmp_path / "tx.parquet")
    ev.write_csv(tmp_path / "events.csv")
    out = tmp_path / "r.html"
    args = ["report", str(tmp_path / "tx.parquet"), "-o", str(out), "--no-models", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "winback.cli", *args, "--events", str(tmp_path / "events.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "funnels" in summary["sections"], summary["skipped"]
    # the CSV's ids are read as integers, like the Parquet transactions' ids: both customers
    # are matched (none is "no_events" / "no_purchases")
    page = out.read_text()
    assert 'id="sec-funnels"' in page
    # both customers have one visit/view day by as_of (the end of Jan 22): unscored, matched
    assert "<tr><td>unscored</td><td>2</td>" in page
    assert "<tr><td>no_purchases</td><td>0</td>" in page
    plain = subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(plain.stdout)["skipped"]["funnels"] == "no events table given (events=...)"
