"""The segment, campaign, evaluate and migrate commands, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import winback
from winback.campaign import TARGET_COLUMNS, CapacityWarning
from winback.datasets import load_cdnow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_campaign") / "sales.parquet"
    load_cdnow().write_parquet(path)
    return path


def test_segment_writes_what_the_api_returns(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "segments.parquet"
    result = run(
        "segment",
        str(sales),
        "--as-of",
        "1998-06-30",
        "--rules",
        "salon",
        "--threshold",
        "active_days=45",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "RFM segments" in result.stdout
    assert "visit_recency" in result.stdout
    expected = winback.classify(
        winback.quadrant(winback.rfm(sales, as_of="1998-06-30")),
        "salon",
        thresholds={"active_days": 45},
    )
    assert_frame_equal(pl.read_parquet(out), expected)


def test_campaign_then_evaluate(sales: Path, tmp_path: Path) -> None:
    targets = tmp_path / "targets.csv"
    result = run(
        "campaign",
        str(sales),
        "--as-of",
        "1997-12-31",
        "--campaign-id",
        "cdnow-98",
        "--staff",
        "ann:1000",
        "--staff",
        "bo:1000",
        "--holdout",
        "0.2",
        "--cadence",
        "group_e=2-5",
        "-o",
        str(targets),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["staff"] == {"ann": 1000, "bo": 1000}
    written = pl.read_csv(targets, try_parse_dates=True)
    assert tuple(written.columns) == TARGET_COLUMNS
    assert written.height == summary["targets"]
    days = written.drop_nulls("next_contact").filter(pl.col("segment") == "group_e")
    offsets = (days.get_column("next_contact") - days.get_column("campaign_start")).dt.total_days()
    assert offsets.min() >= 2
    assert offsets.max() <= 5
    with pytest.warns(CapacityWarning):  # the capacity cuts the list (docs/methods.md#holdout)
        api = winback.campaign(
            winback.rfm(sales, as_of="1997-12-31"),
            campaign_id="cdnow-98",
            staff=["ann", "bo"],
            capacity={"ann": 1000, "bo": 1000},
            holdout=0.2,
            cadence={"group_e": (2, 5)},
        )
    assert written.get_column("customer_id").to_list() == api.get_column("customer_id").to_list()
    assert written.get_column("staff").to_list() == api.get_column("staff").to_list()

    evaluation = tmp_path / "evaluation"
    result = run(
        "evaluate",
        str(targets),
        str(sales),
        "--window-days",
        "60",
        "--cost",
        "message=0.2",
        "--cost",
        "*=3",
        "-o",
        str(evaluation),
    )
    assert result.returncode == 0, result.stderr
    assert "uplift" in result.stdout
    uplift = pl.read_csv(evaluation / "uplift.csv")
    assert uplift.get_column("segment").to_list()[0] == "all"
    assert (evaluation / "arms.csv").exists()
    assert (evaluation / "migration.csv").exists()


def test_migrate_writes_feature_differences(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "migration"
    result = run(
        "migrate", str(sales), "--as-of", "1997-09-30", "--as-of", "1998-03-31", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    table = pl.read_csv(out / "feature_differences.csv")
    assert {"feature", "smd", "n_moved", "from_as_of"} <= set(table.columns)
    assert "standardised mean differences" in result.stdout


def test_bad_arguments_exit_2_with_one_line(sales: Path, tmp_path: Path) -> None:
    result = run(
        "campaign",
        str(sales),
        "--campaign-id",
        "x",
        "--holdout",
        "1.5",
        "-o",
        str(tmp_path / "t.csv"),
    )
    assert result.returncode == 2
    assert "--holdout 1.5 must be in [0, 1)" in result.stderr  # CLI advice, not Python
    assert "Traceback" not in result.stderr
    rules = tmp_path / "mine.toml"
    rules.write_text(
        '[[classifier]]\ncolumn = "c"\ninputs = ["visits"]\n'
        'rules = [\n  { label = "x", when = { visits = { gt = 3 } } },\n]\n'
    )
    result = run("segment", str(sales), "--rules", str(rules), "-o", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    assert "rule 'x' (line 5): unknown column 'visits'" in result.stderr


def test_campaign_from_a_segments_csv_equals_campaign_from_transactions(
    sales: Path, tmp_path: Path
) -> None:
    segments = tmp_path / "segments.csv"
    result = run("segment", str(sales), "--as-of", "1998-06-30", "-o", str(segments), "-q")
    assert result.returncode == 0, result.stderr
    from_csv, from_tx = tmp_path / "a.csv", tmp_path / "b.csv"
    common = ["--campaign-id", "x", "--rule", "auto_dealer", "--staff", "a", "--staff", "b", "-q"]
    assert run("campaign", str(segments), *common, "-o", str(from_csv)).returncode == 0
    result = run("campaign", str(sales), "--as-of", "1998-06-30", *common, "-o", str(from_tx))
    assert result.returncode == 0, result.stderr
    assert from_csv.read_text() == from_tx.read_text()
