"""One quadrant definition (docs/methods.md#quadrant): M × occasions per year by default, whatever
other columns the table holds, so the command line's campaign, the report and the Python API as
the tutorial calls it give every customer the same quadrant (issue 19, "What the user sees")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import winback
from winback.datasets import load_cdnow
from winback.errors import WinbackInputError

AS_OF = "1998-06-30"


def _quadrants(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("customer_id", pl.col("quadrant").cast(pl.String)).sort("customer_id")


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="module")
def value_frame(tx: pl.DataFrame) -> pl.DataFrame:
    return winback.value(tx, as_of=AS_OF, margin=0.3).frame


def test_value_columns_do_not_change_the_default_quadrant(
    tx: pl.DataFrame, value_frame: pl.DataFrame
) -> None:
    scored = winback.rfm(tx, as_of=AS_OF)
    plain = winback.quadrant(scored)
    joined = scored.join(
        value_frame.select("customer_id", "expected_value", "clv", "p_alive", "value_tier"),
        on="customer_id",
        how="left",
    )
    with_value = winback.quadrant(joined)
    assert with_value.get_column("quadrant").equals(plain.get_column("quadrant"))
    assert with_value.get_column("quadrant_contribution").equals(
        scored.get_column("rfm_monetary").cast(pl.Float64).alias("quadrant_contribution")
    )
    # the predicted-value quadrant exists, but only when named
    named = winback.quadrant(joined, contribution="clv", loyalty="p_alive")
    assert not named.get_column("quadrant").equals(plain.get_column("quadrant"))


def test_the_default_needs_its_columns_and_says_how_to_name_others(
    value_frame: pl.DataFrame,
) -> None:
    with pytest.raises(WinbackInputError, match=r"contribution='clv', loyalty='p_alive'"):
        winback.quadrant(value_frame)
    out = winback.quadrant(
        value_frame.filter(pl.col("clv").is_not_null()), contribution="clv", loyalty="p_alive"
    )
    assert out.get_column("quadrant").null_count() == 0
    table = pl.DataFrame({"customer_id": [1, 2], "rfm_monetary": [1.0, 2.0], "p_alive": [0.1, 0.2]})
    with pytest.raises(WinbackInputError, match=r"lacks n_occasions or tenure_days"):
        winback.quadrant(table)


def test_cli_campaign_report_and_tutorial_agree_on_every_quadrant(
    tx: pl.DataFrame, value_frame: pl.DataFrame, tmp_path: Path
) -> None:
    from winback.report._context import ReportContext, ReportParameters
    from winback.report._sections import CAMPAIGN_ID, campaign_input

    # the command line, as the tutorial's step 8 runs it (no predicted value)
    sales = tmp_path / "cdnow.parquet"
    tx.write_parquet(sales)
    out = tmp_path / "targets.csv"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "campaign",
            str(sales),
            "--as-of",
            AS_OF,
            "--campaign-id",
            "summer98",
            "--staff",
            "ann",
            "--staff",
            "bo",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    from_cli = _quadrants(pl.read_csv(out, schema_overrides={"customer_id": pl.Int64}))

    # the Python API as the tutorial calls it: RFM with the value engine's columns joined
    values = value_frame.select("customer_id", "expected_value", "clv", "value_tier")
    scored = winback.rfm(tx, as_of=AS_OF).join(values, on="customer_id", how="left")
    targets = winback.campaign(scored, campaign_id="summer98", staff=["ann", "bo", "chen"])
    from_python = _quadrants(targets)
    segmented = _quadrants(winback.quadrant(winback.rfm(tx, as_of=AS_OF)))

    # the report's data: its activation list (RFM + value columns incl. p_alive) and its
    # quadrant section (winback.quadrant on the RFM scores)
    scores, info = winback.silence(tx, as_of=AS_OF, return_info=True)
    params = ReportParameters(
        as_of=AS_OF,
        previous_as_of=None,
        calibration_end=None,
        models=(),
        top_n=25,
        min_occasions=2,
        resolution="1d",
        trf_cuts=(0.4, 0.6, 0.8, 0.95),
        s_cuts=(1.0, 2.0),
        customer_col="customer_id",
        time_col="ts",
        amount_col="amount",
        on_invalid="raise",
        num_threads=None,
    )
    ctx = ReportContext(tx, params, scores, info)
    report_input = campaign_input(ctx)
    assert "p_alive" in report_input.columns
    assert "clv" in report_input.columns
    from_report = _quadrants(
        winback.campaign(report_input, campaign_id=CAMPAIGN_ID, start=ctx.as_of)
    )
    report_section = _quadrants(winback.quadrant(ctx.rfm))

    assert from_cli.height > 6000
    for other in (from_python, from_report):
        joined = from_cli.join(other, on="customer_id", how="inner", suffix="_other")
        assert joined.height > 6000
        assert joined.filter(pl.col("quadrant") != pl.col("quadrant_other")).height == 0
    assert segmented.equals(report_section)
    joined = from_cli.join(segmented, on="customer_id", how="inner", suffix="_other")
    assert joined.height == from_cli.height
    assert joined.filter(pl.col("quadrant") != pl.col("quadrant_other")).height == 0
