"""The Done-when loop of docs/loop.md#a-two-week-loop, in process, on SQLite and PostgreSQL:
fourteen daily runs with the staff's contacts imported from the CRM's CSV and simulated answers
with a planted uplift; the run after the window evaluates the campaign and recovers it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl

from tests.loop.conftest import Database
from winback.loop import Pipeline
from winback.loop.simulate import init_demo, simulate_day

START, UPLIFT = date(2024, 3, 1), 0.25


def test_two_weeks_recover_the_planted_uplift(tmp_path: Path, database: Database) -> None:
    config = init_demo(tmp_path, start=START, customers=500, database=database(tmp_path))
    pipeline = Pipeline(config)
    for i in range(14):
        day = START + timedelta(days=i)
        pipeline.run(day)
        crm, _ = simulate_day(tmp_path, day, uplift=UPLIFT)
        pipeline.import_contacts(crm)
    result = pipeline.run(START + timedelta(days=14))
    overall = result.evaluations.filter(pl.col("segment") == "all").row(0, named=True)
    assert overall["campaign_id"] == "demo-2024-03-01"
    assert overall["uplift_low"] <= UPLIFT <= overall["uplift_high"]
    assert overall["uplift_low"] > 0
    runs = pipeline.table("runs")
    assert runs.height == 15
    contacts = pipeline.table("contacts")
    assert contacts.height > 0
    # every contact made was a due contact of a treatment target, recorded once
    keys = contacts.select("customer_id", "contact_date")
    assert keys.is_unique().all()
    targets = pipeline.table("targets")
    arms = contacts.join(targets, on=["customer_id", "campaign_id"])["arm"]
    assert set(arms) == {"treatment"}
    cards = result.scorecards
    assert cards is not None
    assert cards["staff"].to_list() == ["ann", "bo", "cy"]
    assert (cards["incremental_reactivations"] > 0).all()
