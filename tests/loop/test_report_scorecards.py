"""The report's staff-scorecards section (docs/methods.md#staff-scorecards): a campaign worked out
by hand shown with its per-period totals and the holdout's expected reactivations, and
``winback report --loop winback.toml`` reading the scorecards from the loop's state database."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import winback
from tests.loop.conftest import config, transactions
from winback.errors import WinbackConfigError
from winback.loop import Pipeline
from winback.loop.scorecards import scorecards

D = date


def hand_cards() -> pl.DataFrame:
    """Campaign ``c`` from 2024-03-01, 10-day window: ann has a1 (bought on 3-3 for 10 and 3-5
    for 20) and a2 (nothing); bo has b1 (nothing in the window); the holdout x1 bought (8), x2
    did not: control rate 1/2, control revenue 4 per customer."""
    targets = pl.DataFrame(
        [
            ("c", "a1", "treatment", True, "ann", "call"),
            ("c", "a2", "treatment", True, "ann", "call"),
            ("c", "b1", "treatment", True, "bo", "call"),
            ("c", "x1", "control", False, None, "call"),
            ("c", "x2", "control", False, None, "call"),
        ],
        schema=["campaign_id", "customer_id", "arm", "contact", "staff", "strategy"],
        orient="row",
    )
    campaigns = pl.DataFrame({"campaign_id": ["c"], "start_date": [D(2024, 3, 1)]})
    contacts = pl.DataFrame(
        [("a1", D(2024, 3, 2), "c"), ("a2", D(2024, 3, 2), "c"), ("b1", D(2024, 3, 2), "c")],
        schema={"customer_id": pl.String, "contact_date": pl.Date, "campaign_id": pl.String},
        orient="row",
    )
    purchases = pl.DataFrame(
        [
            ("a1", D(2024, 3, 3), 10.0),
            ("a1", D(2024, 3, 5), 20.0),
            ("b1", D(2024, 3, 12), 99.0),
            ("x1", D(2024, 3, 4), 8.0),
        ],
        schema=["customer_id", "day", "amount"],
        orient="row",
    )
    return scorecards(
        targets,
        campaigns,
        contacts,
        purchases,
        window_days=10,
        as_of=D(2024, 3, 20),
        reward_per_visit=5.0,
        reward_revenue_share=0.1,
    )


def section_table(page: str) -> list[dict[str, str]]:
    """The rows of the scorecards section's table, as shown (text per column)."""
    section = re.search(r'<section id="sec-scorecards".*?</section>', page, re.S)
    assert section is not None, "no scorecards section"
    heads = re.findall(r"<th>(.*?)</th>", section.group(0))
    rows = re.findall(r"<tr>((?:<td>.*?</td>)+)</tr>", section.group(0))
    return [
        dict(
            zip(heads, [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)], strict=True)
        )
        for row in rows
    ]


def chart_values(page: str) -> list[dict[str, Any]]:
    specs = json.loads(re.search(r'id="wb-specs">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    spec = specs["chart-scorecards-1"]
    datasets = spec.get("datasets", {})
    return [row for rows in datasets.values() for row in rows]


def test_the_section_shows_the_hand_computed_campaign(tmp_path: Path) -> None:
    page = winback.report(transactions(n=40, seed=2), models=(), scorecards=hand_cards())
    assert "scorecards" in page.sections
    rows = section_table(page.html)
    assert [r["staff"] for r in rows] == ["ann", "bo", "all staff"]
    ann, bo, total = rows
    # ann: 2 targets, both called; a1 came back (2 visits, 30); holdout rate 1/2
    assert (ann["targets"], ann["contacts"], ann["reactivated"]) == ("2", "2", "1")
    assert (ann["reactivation_rate"], ann["control_rate"]) == ("0.5", "0.5")
    assert ann["incremental_reactivations"] == "0"  # 1 − 2 · 0.5
    assert (ann["revenue"], ann["incremental_revenue"]) == ("30", "22")  # 30 − 2 · 4
    assert ann["reward"] == "13"  # 5 · 2 visits + 0.1 · 30
    # bo: b1 bought after the window
    assert (bo["reactivated"], bo["incremental_reactivations"]) == ("0", "-0.5")
    assert (bo["incremental_revenue"], bo["reward"]) == ("-4", "0")
    # the period's total: 3 targets, 1 back, 1/3; incremental −0.5 and 30 − 3 · 4 = 18
    assert (total["targets"], total["contacts"], total["reactivated"]) == ("3", "3", "1")
    assert total["reactivation_rate"] == "0.333"
    assert (total["incremental_reactivations"], total["incremental_revenue"]) == ("-0.5", "18")
    assert (total["revenue"], total["reward"]) == ("30", "13")
    assert {r["period_start"] for r in rows} == {"2024-03-02"}
    assert {r["period_end"] for r in rows} == {"2024-03-11"}
    # the chart: each member's reactivations against targets × the holdout's rate
    bars = {(v["staff"], v["measure"]): v["customers"] for v in chart_values(page.html)}
    assert bars == {
        ("ann", "reactivated"): 1.0,
        ("ann", "expected without contact"): 1.0,
        ("bo", "reactivated"): 0.0,
        ("bo", "expected without contact"): 0.5,
    }


def test_the_section_is_left_out_with_the_reason() -> None:
    tx = transactions(n=40, seed=2)
    page = winback.report(tx, models=())
    assert "winback report --loop" in page.skipped["scorecards"]
    with pytest.raises(WinbackConfigError, match="lacks the column"):
        winback.report(tx, models=(), scorecards=hand_cards().drop("reward"))
    with pytest.raises(WinbackConfigError, match="must be a Polars DataFrame"):
        winback.report(tx, models=(), scorecards=hand_cards().to_pandas())


def test_report_loop_reads_the_state(tmp_path: Path, sales_file: Path) -> None:
    raw: dict[str, Any] = config(tmp_path, sales_file, holdout=0.5)
    raw["staff"]["reward_per_visit"] = 10
    toml = tmp_path / "winback.toml"
    toml.write_text(
        "\n".join(
            [
                f"[{t}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in keys.items())
                for t, keys in raw.items()
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    pipeline = Pipeline(toml)
    from winback.cli.report import _loop_scorecards

    with pytest.raises(WinbackConfigError, match="holds no run yet"):
        _loop_scorecards(toml, None)
    pipeline.run(D(2024, 3, 1))
    pipeline.run(D(2024, 3, 20))
    expected = pipeline.scorecards(D(2024, 3, 20))
    out = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "winback.cli",
            "report",
            str(sales_file),
            "--no-models",
            "--loop",
            str(toml),
            "-o",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "scorecards" in json.loads(done.stdout.strip().splitlines()[-1])["sections"]
    rows = section_table(out.read_text(encoding="utf-8"))
    staff = [r for r in rows if r["staff"] != "all staff"]
    assert [(r["campaign_id"], r["staff"]) for r in staff] == list(
        expected.select("campaign_id", "staff").iter_rows()
    )
    assert [int(r["targets"].replace(",", "")) for r in staff] == expected["targets"].to_list()
    assert [float(r["reward"].replace(",", "")) for r in staff] == expected["reward"].to_list()


def two_periods() -> pl.DataFrame:
    """The hand campaign and a second period of it (a later campaign), for the faceted chart."""
    first = hand_cards()
    second = first.with_columns(
        pl.lit("c2").alias("campaign_id"),
        pl.lit(D(2024, 3, 16)).alias("period_start"),
        pl.lit(D(2024, 3, 25)).alias("period_end"),
    )
    return pl.concat([first, second])


def test_the_charts_are_valid_vega_lite() -> None:
    from types import SimpleNamespace

    from winback.report._sections.scorecards import scorecard_section

    for cards in (hand_cards(), two_periods()):
        body = scorecard_section(SimpleNamespace(params=SimpleNamespace(scorecards=cards)))  # type: ignore[arg-type]
        ((chart, _),) = body.charts
        spec = chart.to_dict(validate=True)  # against the Vega-Lite schema
        assert ("facet" in spec) == (cards["campaign_id"].n_unique() > 1)
        (table,) = body.tables
        assert (
            table.frame["staff"].to_list()
            == ["ann", "bo", "all staff"] * cards["campaign_id"].n_unique()
        )


def test_the_section_is_drawn_in_a_browser(tmp_path: Path) -> None:
    from tests.chromium import render

    page = winback.report(
        transactions(n=40, seed=2),
        models=(),
        scorecards=two_periods(),
        output=tmp_path / "report.html",
    )
    assert page.path is not None
    drawn = render(page.path)
    assert drawn.console_errors == []
    assert drawn.exceptions == []
    chart = next(c for c in drawn.charts if c["id"] == "chart-scorecards-1")
    assert chart["rendered"] == "true"
    assert chart["marks"] > 0
    assert chart["width"] > 50
    assert chart["height"] > 50
