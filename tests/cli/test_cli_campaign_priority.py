"""``winback campaign --priority`` (docs/methods.md#priority-blend): p_lapse learned from the
transactions' history, or read from a scored table, and the blend weights from the flags."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import winback
from winback.datasets import load_cdnow

from .test_cli_campaign import run


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tx = load_cdnow().filter(pl.col("customer_id") <= 2000)
    table = winback.rfm(tx, as_of="1998-06-30").join(
        winback.lapse(tx, as_of="1998-06-30", model="logistic").select("customer_id", "p_lapse"),
        on="customer_id",
    )
    path = tmp_path_factory.mktemp("prio") / "scored.parquet"
    table.with_columns(expert=pl.col("customer_id") % 7).write_parquet(path)
    return path


def test_campaign_blend_from_a_scored_table_matches_the_api(scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    result = run(
        "campaign", str(scored), "--campaign-id", "c", "-o", str(out), "--priority", "blend",
        "--priority-weight", "p_lapse=1", "--priority-weight", "business=3",
        "--business-score-col", "expert",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = winback.campaign(
        pl.read_parquet(scored),
        campaign_id="c",
        priority="blend",
        priority_weights={"p_lapse": 1, "business": 3},
        business_score_col="expert",
    )
    written = pl.read_parquet(out)
    assert written.get_column("customer_id").to_list() == expected["customer_id"].to_list()
    assert written.get_column("priority_score").to_list() == pytest.approx(
        expected["priority_score"].to_list()
    )


def test_campaign_refuses_a_bad_priority(scored: Path, tmp_path: Path) -> None:
    result = run(
        "campaign", str(scored), "--campaign-id", "c", "-o", str(tmp_path / "t.csv"),
        "--priority", "loudest",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--priority 'loudest'" in result.stderr


@pytest.mark.slow  # two p_lapse fits (~10 s idle; a minute on a loaded 2-core machine)
def test_campaign_lapse_value_learns_p_lapse_from_transactions(tmp_path: Path) -> None:
    tx = load_cdnow().filter(pl.col("customer_id") <= 1000)
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    out = tmp_path / "t.parquet"
    result = run(
        "campaign", str(sales), "--campaign-id", "c", "-o", str(out), "--as-of", "1998-06-30",
        "--priority", "lapse_value",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = winback.rfm(tx, as_of="1998-06-30").join(
        winback.lapse(tx, as_of="1998-06-30").select("customer_id", "p_lapse"), on="customer_id"
    )
    expected = winback.campaign(table, campaign_id="c", priority="lapse_value")
    written = pl.read_parquet(out)
    assert written.get_column("customer_id").to_list() == expected["customer_id"].to_list()
    assert written.get_column("priority_score").to_list() == expected["priority_score"].to_list()
