"""The daily loop's semantics on SQLite (docs/loop.md#a-daily-run): new entrants, stable arms
and staff, the cool-down, follow-ups by cadence, the day's files, idempotent re-runs, refused
past days and all-or-nothing runs."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import winback.loop.pipeline as pipeline_module
from tests.loop.conftest import Database, config
from winback.campaign import assignment_hash
from winback.errors import WinbackConfigError, WinbackInputError
from winback.loop import Pipeline

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(4)]
STATE = ("runs", "snapshots", "campaigns", "targets", "contacts", "outcomes", "evaluations")


def state(pipeline: Pipeline) -> dict[str, pl.DataFrame]:
    return {name: pipeline.table(name) for name in STATE}


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def pipeline(tmp_path: Path, sales_file: Path, database: Database) -> Pipeline:
    return Pipeline(config(tmp_path, sales_file, database))


def test_entrants_are_new_to_the_selection(pipeline: Pipeline) -> None:
    first = pipeline.run(DAYS[0])
    assert first.entrants
    assert len(first.entrants) == first.selected
    second = pipeline.run(DAYS[1])
    snaps = pipeline.table("snapshots")
    selected = {
        d: set(snaps.filter((pl.col("run_date") == d) & pl.col("selected"))["customer_id"])
        for d in DAYS[:2]
    }
    assert set(second.entrants) == selected[DAYS[1]] - selected[DAYS[0]]
    assert second.entrants  # the data has customers falling silent every day
    assert second.new_targets == len(second.entrants)  # none was a target before or cooling
    entrants_file = pl.read_csv(
        Path(pipeline.config.outputs) / "entrants-2024-03-02.csv",
        schema_overrides={"customer_id": pl.String},
    )
    assert entrants_file["customer_id"].to_list() == sorted(second.entrants)


def test_arm_and_staff_are_kept_for_the_campaign(pipeline: Pipeline) -> None:
    pipeline.run(DAYS[0])
    day1 = pipeline.table("targets")
    for day in DAYS[1:]:
        pipeline.run(day)
    later = pipeline.table("targets")
    kept = day1.select("customer_id", "arm", "staff").join(
        later.select("customer_id", "arm", "staff"), on="customer_id", suffix="_later"
    )
    assert kept.height == day1.height
    assert (kept["arm"] == kept["arm_later"]).all()
    assert kept.filter(pl.col("staff").ne_missing(pl.col("staff_later"))).height == 0
    # the arm is the stable hash of (campaign, customer): control iff h < holdout · 2⁶⁴
    campaign_id = later["campaign_id"][0]
    hashes = assignment_hash(later["customer_id"].cast(pl.Int64), campaign_id)
    control = hashes < int(0.2 * 2**64)
    assert (
        later["arm"] == pl.Series(["treatment", "control"]).gather(control.cast(pl.UInt32))
    ).all()
    assert set(later["campaign_id"]) == {"wb-2024-03-01"}


def test_contacted_customers_cool_down(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database, length_days=2))
    pipeline.run(DAYS[0])
    targets = pipeline.table("targets")
    contacted = targets.filter(pl.col("contact"))["customer_id"].to_list()[:5]
    pipeline.record_contacts(
        pl.DataFrame({"customer_id": contacted, "contact_date": [DAYS[1]] * 5})
    )
    pipeline.run(DAYS[1])
    # day 3 starts a new campaign: customers contacted on day 2 (within 14 days) are not targeted
    result = pipeline.run(DAYS[2])
    assert result.campaign_id == "wb-2024-03-03"
    new = pipeline.table("targets").filter(pl.col("campaign_id") == "wb-2024-03-03")
    still_selected = set(
        pipeline.table("snapshots").filter((pl.col("run_date") == DAYS[2]) & pl.col("selected"))[
            "customer_id"
        ]
    )
    cooling = set(contacted) & still_selected
    assert cooling
    assert result.cooled_down == len(cooling)
    assert not cooling & set(new["customer_id"])
    assert new.height == result.selected - len(cooling)
    # the old campaign's targets have ended: no more follow-ups
    old = pipeline.table("targets").filter(pl.col("campaign_id") == "wb-2024-03-01")
    assert set(old["status"]) == {"ended"}
    assert old["next_contact"].null_count() == old.height


def test_follow_ups_by_cadence(tmp_path: Path, sales_file: Path, database: Database) -> None:
    cadence = {"group_e": 1, "group_d": 2, "silent": 2}
    pipeline = Pipeline(config(tmp_path, sales_file, database, cadence=cadence, max_contacts=2))
    pipeline.run(DAYS[0])
    targets = pipeline.table("targets").filter(pl.col("contact"))
    expected = targets.with_columns(
        (pl.lit(DAYS[0]) + pl.duration(days=pl.col("segment").replace_strict(cadence))).alias(
            "first"
        )
    )
    assert (expected["next_contact"] == expected["first"].cast(pl.Date)).all()
    day2 = pipeline.run(DAYS[1])
    due_ids = set(expected.filter(pl.col("first").cast(pl.Date) <= DAYS[1])["customer_id"])
    assert set(day2.due["customer_id"]) == due_ids
    assert due_ids
    # contact half of them on day 2: their next contact is one cadence after that
    done = sorted(due_ids)[: len(due_ids) // 2]
    pipeline.record_contacts(
        pl.DataFrame({"customer_id": done, "contact_date": [DAYS[1]] * len(done)})
    )
    day3 = pipeline.run(DAYS[2])
    rows = pipeline.table("targets").filter(pl.col("customer_id").is_in(done))
    assert (rows["contacts_made"] == 1).all()
    assert (
        rows["next_contact"]
        == rows.select(
            pl.lit(DAYS[1]) + pl.duration(days=pl.col("segment").replace_strict(cadence))
        )
        .to_series()
        .cast(pl.Date)
    ).all()
    # the ones not contacted are carried as overdue
    carried = day3.due.filter(~pl.col("customer_id").is_in(done))
    assert set(carried["customer_id"]) >= due_ids - set(done)
    assert (carried.filter(pl.col("customer_id").is_in(list(due_ids)))["overdue_days"] >= 1).all()
    # a second contact reaches max_contacts: done, nothing more due
    pipeline.record_contacts(
        pl.DataFrame({"customer_id": done, "contact_date": [DAYS[2]] * len(done)})
    )
    day4 = pipeline.run(DAYS[3])
    finished = pipeline.table("targets").filter(pl.col("customer_id").is_in(done))
    assert set(finished["status"]) <= {"done", "exited"}
    assert finished["next_contact"].null_count() == len(done)
    assert not set(day4.due["customer_id"]) & set(done)
    # only treatment contacts are ever due: the control arm is never contacted
    arms = pipeline.table("targets").join(day4.due.select("customer_id"), on="customer_id")
    assert set(arms["arm"]) == {"treatment"}


def test_the_days_files(pipeline: Pipeline) -> None:
    pipeline.run(DAYS[0])
    result = pipeline.run(DAYS[1])
    out = Path(pipeline.config.outputs)
    assert [p.name for p in result.files] == [
        "targets-2024-03-02.csv",
        "due-2024-03-02.csv",
        "entrants-2024-03-02.csv",
        "scorecards-2024-03-02.csv",
    ]
    targets = pl.read_csv(
        out / "targets-2024-03-02.csv", schema_overrides={"customer_id": pl.String}
    )
    assert targets.columns == list(pipeline_module.TARGET_FILE_COLUMNS)
    assert set(targets["status"]) == {"active"}
    assert targets["new_target"].sum() == result.new_targets
    due = pl.read_csv(out / "due-2024-03-02.csv", schema_overrides={"customer_id": pl.String})
    assert due.columns == list(pipeline_module.DUE_FILE_COLUMNS)
    assert due.height == result.due.height > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_rerun_is_idempotent(tmp_path: Path, sales_file: Path, database: Database) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database))
    for day in DAYS[:3]:
        pipeline.run(day)
    before, written = state(pipeline), files(Path(pipeline.config.outputs))
    again = pipeline.run(DAYS[2])
    assert again.rerun
    after = state(pipeline)
    for name in STATE:
        assert after[name].equals(before[name]), name
    assert files(Path(pipeline.config.outputs)) == written
    # and the state equals a fresh database's run on the same days
    other = tmp_path / "other"
    other.mkdir()
    fresh = Pipeline(config(other, sales_file, database))
    for day in DAYS[:3]:
        fresh.run(day)
    fresh_state = state(fresh)
    for name in ("snapshots", "campaigns", "targets"):
        assert fresh_state[name].equals(after[name]), name


def test_a_day_before_the_latest_run_is_refused(pipeline: Pipeline) -> None:
    pipeline.run(DAYS[2])
    before = state(pipeline)
    with pytest.raises(WinbackConfigError, match=r"2024-03-01 is refused.*2024-03-03"):
        pipeline.run(DAYS[0])
    after = state(pipeline)
    assert all(after[n].equals(before[n]) for n in STATE)


@pytest.mark.parametrize(
    "point", ["migrated", "campaign", "targets", "snapshots", "evaluations", "files", "commit"]
)
def test_a_failing_run_leaves_the_state_as_before(
    tmp_path: Path,
    sales_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
    database: Database,
) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database))
    pipeline.run(DAYS[0])
    before, written = state(pipeline), files(Path(pipeline.config.outputs))

    def fail(name: str) -> None:
        if name == point:
            raise RuntimeError(f"injected at {name}")

    monkeypatch.setattr(pipeline_module, "checkpoint", fail)
    with pytest.raises(RuntimeError, match="injected"):
        pipeline.run(DAYS[1])
    after = state(pipeline)
    assert all(after[n].equals(before[n]) for n in STATE)
    assert files(Path(pipeline.config.outputs)) == written  # no day-2 files, no temporaries
    monkeypatch.undo()
    assert pipeline.run(DAYS[1]).run_date == DAYS[1]  # the next run completes


def test_a_failing_first_run_leaves_no_schema(
    tmp_path: Path, sales_file: Path, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database))

    def fail(name: str) -> None:
        if name == "snapshots":
            raise RuntimeError("injected")

    monkeypatch.setattr(pipeline_module, "checkpoint", fail)
    with pytest.raises(RuntimeError):
        pipeline.run(DAYS[0])
    assert pipeline.table("runs").height == 0
    assert pipeline.table("schema_version").height == 0  # not even the schema was kept


def test_capacity_limits_each_staff_members_open_targets(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw: dict[str, Any] = config(tmp_path, sales_file, database)
    raw["staff"] = {"names": ["ann", "bo"], "capacity": {"ann": 10, "bo": 6}}
    pipeline = Pipeline(raw)
    first = pipeline.run(DAYS[0])
    assert first.capacity_cut > 0
    targets = pipeline.table("targets")
    load = dict(targets.filter(pl.col("contact")).group_by("staff").len().rows())
    assert load == {"ann": 10, "bo": 6}
    # the cut is at one priority: the control arm is not longer than the treatment's share
    assert targets.height < first.selected
    # day 2: the staff are full, so no new contact targets; nobody leaves for want of room
    second = pipeline.run(DAYS[1])
    after = pipeline.table("targets")
    open_ = after.filter(pl.col("contact") & (pl.col("status") == "active"))
    assert all(n <= {"ann": 10, "bo": 6}[s] for s, n in open_.group_by("staff").len().rows())
    assert after.filter(pl.col("contact")).height == 16
    assert second.capacity_cut > 0
    still = set(
        pipeline.table("snapshots").filter((pl.col("run_date") == DAYS[1]) & pl.col("selected"))[
            "customer_id"
        ]
    )
    exited = set(after.filter(pl.col("status") == "exited")["customer_id"])
    assert not exited & still  # exits are customers who left the selection, never capacity


@pytest.mark.parametrize(
    ("contacts", "match"),
    [
        (pl.DataFrame({"customer_id": [1]}), "no 'contact_date' column"),
        (
            pl.DataFrame({"customer_id": [1, None], "contact_date": ["2024-03-01", "2024-03-01"]}),
            "rows 2",
        ),
        (
            pl.DataFrame({"customer_id": [1, 2], "contact_date": ["2024-03-01", "01/03/2024"]}),
            "rows 2",
        ),
        (pl.DataFrame({"customer_id": [1], "contact_date": [3.5]}), "contact_date has type"),
    ],
)
def test_bad_contacts_are_refused_and_nothing_is_added(
    pipeline: Pipeline, contacts: pl.DataFrame, match: str
) -> None:
    with pytest.raises(WinbackInputError, match=match):
        pipeline.record_contacts(contacts)
    assert pipeline.table("contacts").height == 0


def test_contacts_from_the_crms_csv(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(
        "customer_id,contact_date,staff,channel,note\n7,2024-03-01,ann,call,=HYPERLINK()\n"
        "0012,2024-03-02,bo,sms,\n",
        encoding="utf-8",
    )
    assert pipeline.record_contacts(path) == 2
    contacts = pipeline.table("contacts")
    assert contacts["customer_id"].to_list() == ["7", "0012"]  # ids as written
    assert contacts["contact_date"].to_list() == [date(2024, 3, 1), date(2024, 3, 2)]
    assert contacts["channel"].to_list() == ["call", "sms"]
    with pytest.raises(WinbackConfigError, match="does not exist"):
        pipeline.record_contacts(tmp_path / "missing.csv")


# the generated spend has no customer-level heterogeneity: Gamma–Gamma falls back (a warning)
@pytest.mark.filterwarnings("ignore::winback.value.result.ValueWarning")
def test_value_columns_reach_the_snapshots(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw: dict[str, Any] = config(tmp_path, sales_file, database)
    raw["value"] = {"enabled": True, "margin": 0.3}
    pipeline = Pipeline(raw)
    pipeline.run(DAYS[0])
    snaps = pipeline.table("snapshots")
    assert snaps["value"].null_count() < snaps.height
    assert set(snaps["value_tier"].drop_nulls()) <= {
        "platinum",
        "gold",
        "silver",
        "bronze",
        "negative",
    }
    assert snaps["value_tier"].null_count() < snaps.height


def test_two_weeks_of_daily_runs_keep_their_invariants(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    """Fourteen daily runs; each day the staff make every due contact (recorded the same day)."""
    raw: dict[str, Any] = config(tmp_path, sales_file, database, length_days=10, max_contacts=3)
    raw["staff"] = {"names": ["ann", "bo", "cy"], "capacity": 40}
    pipeline = Pipeline(raw)
    first_seen: dict[tuple[str, str], tuple[str, str | None]] = {}
    for i in range(14):
        day = date(2024, 3, 1) + timedelta(days=i)
        result = pipeline.run(day)
        due = result.due
        if due.height:
            pipeline.record_contacts(
                due.select("customer_id", "campaign_id", "staff").with_columns(
                    pl.lit(day).alias("contact_date")
                )
            )
        targets = pipeline.table("targets")
        assert targets.select("campaign_id", "customer_id").is_unique().all()
        for row in targets.iter_rows(named=True):
            key = (row["campaign_id"], row["customer_id"])
            first_seen.setdefault(key, (row["arm"], row["staff"]))
            assert first_seen[key] == (row["arm"], row["staff"]), key
        assert targets["contacts_made"].max() <= 3
        assert set(due["customer_id"]) <= set(
            targets.filter(pl.col("arm") == "treatment")["customer_id"]
        )
        open_ = targets.filter(pl.col("contact") & (pl.col("status") == "active"))
        assert all(n <= 40 for _, n in open_.group_by("staff").len().rows())
    runs = pipeline.table("runs")
    assert runs.height == 14
    assert sorted(runs["campaign_id"].unique()) == ["wb-2024-03-01", "wb-2024-03-11"]
    # nobody contacted in the first campaign's last 14 days was targeted by the second one
    contacts = pipeline.table("contacts")
    second = pipeline.table("targets").filter(pl.col("campaign_id") == "wb-2024-03-11")
    recent = contacts.filter(pl.col("contact_date") > date(2024, 2, 26))
    early = recent.filter(pl.col("contact_date") < date(2024, 3, 11))
    entered = second.join(early, on="customer_id").filter(
        (pl.col("entered_on") - pl.col("contact_date")).dt.total_days() < 14
    )
    assert entered.height == 0
