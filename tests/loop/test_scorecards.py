"""Staff scorecards (docs/methods.md#staff-scorecards) and the cause matrix in the daily loop
(docs/methods.md#cause-matrix): a small campaign worked out by hand, then the loop's
scorecards-D.csv on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.loop.conftest import Database, config, transactions
from winback.loop import Pipeline
from winback.loop.scorecards import SCORECARD_COLUMNS, purchase_days, scorecards
from winback.loop.simulate import simulate_responses

D = date


def test_a_campaign_worked_out_by_hand() -> None:
    targets = pl.DataFrame(
        [
            ("c", "a1", "treatment", True, "ann", "coupon"),
            ("c", "a2", "treatment", True, "ann", "coupon"),
            ("c", "b1", "treatment", True, "bo", "coupon"),
            ("c", "x1", "control", False, None, "coupon"),
            ("c", "x2", "control", False, None, "coupon"),
            ("c", "n1", "treatment", False, None, "no_action"),
            ("c", "n2", "control", False, None, "no_action"),
        ],
        schema=["campaign_id", "customer_id", "arm", "contact", "staff", "strategy"],
        orient="row",
    )
    campaigns = pl.DataFrame({"campaign_id": ["c"], "start_date": [D(2024, 3, 1)]})
    contacts = pl.DataFrame(
        [
            ("a1", D(2024, 3, 2), "c"),
            ("a2", D(2024, 3, 2), None),
            ("b1", D(2024, 3, 2), "c"),
            ("a1", D(2024, 2, 25), None),  # before the campaign
            ("b1", D(2024, 3, 3), "z"),  # another campaign's
        ],
        schema={"customer_id": pl.String, "contact_date": pl.Date, "campaign_id": pl.String},
        orient="row",
    )
    purchases = pl.DataFrame(
        [
            ("a1", D(2024, 3, 1), 50.0),  # the start day: before the window
            ("a1", D(2024, 3, 3), 10.0),
            ("a1", D(2024, 3, 5), 20.0),
            ("b1", D(2024, 3, 12), 99.0),  # after the window
            ("x1", D(2024, 3, 4), 8.0),
            ("n2", D(2024, 3, 4), 100.0),  # a let-go customer: not in the holdout
        ],
        schema=["customer_id", "day", "amount"],
        orient="row",
    )
    cards = scorecards(
        targets,
        campaigns,
        contacts,
        purchases,
        window_days=10,
        as_of=D(2024, 3, 20),
        reward_per_visit=5.0,
        reward_revenue_share=0.1,
    )
    assert cards.columns == list(SCORECARD_COLUMNS)
    ann, bo = cards.to_dicts()
    assert (ann["period_start"], ann["period_end"]) == (D(2024, 3, 2), D(2024, 3, 11))
    assert (ann["staff"], ann["targets"], ann["contacts"]) == ("ann", 2, 2)
    assert (ann["reactivated"], ann["reactivation_rate"], ann["reactivated_visits"]) == (1, 0.5, 2)
    assert ann["revenue"] == 30.0
    assert (ann["control_targets"], ann["control_rate"]) == (2, 0.5)
    assert ann["incremental_reactivations"] == 0.0  # 1 − 2 · 0.5
    assert ann["incremental_revenue"] == 22.0  # 30 − 2 · (8 / 2)
    assert ann["reward"] == pytest.approx(13.0)  # 5 · 2 visits + 0.1 · 30
    assert (bo["staff"], bo["targets"], bo["contacts"], bo["reactivated"]) == ("bo", 1, 1, 0)
    assert bo["incremental_reactivations"] == -0.5
    assert bo["incremental_revenue"] == -4.0
    assert bo["reward"] == 0.0
    # to date: on 2024-03-04 only a1's first visit has happened
    early = scorecards(
        targets, campaigns, contacts, purchases, window_days=10, as_of=D(2024, 3, 4)
    ).row(0, named=True)
    assert (early["period_end"], early["reactivated_visits"], early["revenue"]) == (
        D(2024, 3, 4),
        1,
        10.0,
    )
    # any row order: the same frame
    shuffled = scorecards(
        targets.reverse(),
        campaigns,
        contacts.reverse(),
        purchases.reverse(),
        window_days=10,
        as_of=D(2024, 3, 20),
        reward_per_visit=5.0,
        reward_revenue_share=0.1,
    )
    assert shuffled.equals(cards)


def test_purchase_days_are_one_row_per_customer_and_day() -> None:
    frame = pl.DataFrame(
        {
            "customer": [1, 1, 2],
            "ts": [0, 3_600_000_000, 86_400_000_000 * 2 + 5],
            "amount": [1.5, 2.0, 4.0],
        }
    )
    days = purchase_days(frame)
    assert days.rows() == [("1", D(1970, 1, 1), 3.5), ("2", D(1970, 1, 3), 4.0)]


def test_the_loops_scorecards_show_the_planted_uplift(tmp_path: Path, database: Database) -> None:
    start, window = D(2024, 3, 1), 30
    sales = tmp_path / "sales.parquet"
    cut = datetime.combine(start + timedelta(days=1), datetime.min.time())
    base = transactions(n=1200, seed=11).filter(pl.col("ts") < cut)
    base.write_parquet(sales)
    raw: dict[str, Any] = config(tmp_path, sales, database, holdout=0.5, length_days=window)
    raw["staff"] = {"names": ["ann", "bo", "cy"], "reward_per_visit": 20}
    pipeline = Pipeline(raw)
    pipeline.run(start)
    targets = pipeline.table("targets").with_columns(pl.col("customer_id").cast(pl.Int64))
    responses = simulate_responses(
        targets, start=start, window_days=window, base_rate=0.15, uplift=0.3, seed=5
    )
    pl.concat([base, responses.select(base.columns)]).write_parquet(sales)
    result = pipeline.run(start + timedelta(days=window))
    cards = result.scorecards
    assert cards is not None
    assert cards["staff"].to_list() == ["ann", "bo", "cy"]
    contacted = targets.filter(pl.col("contact"))
    assert cards["targets"].sum() == contacted.height
    assert (cards["reward"] == 20.0 * cards["reactivated_visits"]).all()
    # the planted uplift (0.3) shows in the staff's incremental reactivations
    incremental = cards["incremental_reactivations"].sum() / cards["targets"].sum()
    assert 0.15 < incremental < 0.45
    written = pl.read_csv(
        Path(pipeline.config.outputs) / "scorecards-2024-03-31.csv",
        schema_overrides={"period_start": pl.Date, "period_end": pl.Date},
    )
    assert written.columns == list(SCORECARD_COLUMNS)
    assert written["targets"].to_list() == cards["targets"].to_list()
    assert pipeline.scorecards(start + timedelta(days=window)).equals(cards)


def test_the_cause_matrix_in_the_loop(tmp_path: Path, sales_file: Path, database: Database) -> None:
    raw: dict[str, Any] = config(tmp_path, sales_file, database, holdout=0.0)
    ids = pl.read_parquet(sales_file)["customer_id"].unique().sort()
    causes = pl.DataFrame(
        {
            "customer_id": ids,
            "cause": [
                ("product_problem", "moved", "competitor", "")[i % 4] for i in range(len(ids))
            ],
        }
    )
    causes.write_csv(tmp_path / "causes.csv")
    raw["campaign"] |= {"strategy_map": "cause_matrix", "causes": str(tmp_path / "causes.csv")}
    pipeline = Pipeline(raw)
    pipeline.run(D(2024, 3, 1))
    targets = pipeline.table("targets").join(
        causes.with_columns(pl.col("customer_id").cast(pl.String)), on="customer_id"
    )
    assert targets.height > 0
    strategies = dict(targets.group_by("cause").agg(pl.col("strategy").unique()).iter_rows())
    assert set(strategies["product_problem"]) <= {"win_back_at_all_costs", "fix_and_apologise"}
    assert set(strategies["moved"]) <= {"win_back_selectively", "no_action"}
    assert set(strategies["competitor"]) <= {"win_back_selectively", "no_action"}
    assert set(strategies[""]) <= {"ask_why", "message"}  # an empty cause: unknown
    let_go = targets.filter(pl.col("strategy") == "no_action")
    assert let_go.height > 0
    assert not let_go["contact"].any()
