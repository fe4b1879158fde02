"""Contacts and outcomes from the CRM's CSV (docs/loop.md#contacts-and-outcomes-from-the-crm):
checked rows, typed errors naming them, nothing added on an error, idempotent imports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.loop.conftest import Database, config
from winback.errors import WinbackConfigError, WinbackInputError
from winback.loop import Pipeline

CRM = (
    "Customer,Date,Staff,Channel,Outcome,Amount,note\n"
    "0012,2024-03-02,ann,call,purchase,35.5,=HYPERLINK()\n"
    "7,2024-03-02,bo,sms,,,\n"
    "7,2024-03-04,bo,call,no_answer,,\n"
)


@pytest.fixture
def pipeline(tmp_path: Path, sales_file: Path, database: Database) -> Pipeline:
    return Pipeline(config(tmp_path, sales_file, database))


def write(tmp_path: Path, text: str, name: str = "crm.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_import_adds_contacts_and_outcomes_once(pipeline: Pipeline, tmp_path: Path) -> None:
    path = write(tmp_path, CRM)
    first = pipeline.import_contacts(path)
    assert (first.rows, first.contacts, first.outcomes, first.known) == (3, 3, 2, 0)
    contacts = pipeline.table("contacts")
    assert contacts["customer_id"].to_list() == ["0012", "7", "7"]  # ids as written
    assert contacts["contact_date"].to_list() == [
        date(2024, 3, 2),
        date(2024, 3, 2),
        date(2024, 3, 4),
    ]
    outcomes = pipeline.table("outcomes")
    assert outcomes["kind"].to_list() == ["purchase", "no_answer"]
    assert outcomes["amount"].to_list() == [35.5, None]
    again = pipeline.import_contacts(path)
    assert (again.contacts, again.outcomes, again.known) == (0, 0, 3)
    assert pipeline.table("contacts").equals(contacts)
    assert pipeline.table("outcomes").equals(outcomes)


def test_an_outcome_is_given_the_campaign_of_its_target(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.run("2024-03-01")
    target = pipeline.table("targets").row(0, named=True)
    path = write(
        tmp_path,
        f"customer,date,outcome\n{target['customer_id']},2024-03-05,purchase\n"
        "no-such-customer,2024-03-05,purchase\n",
    )
    pipeline.import_contacts(path)
    assert pipeline.table("outcomes")["campaign_id"].to_list() == [target["campaign_id"], None]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("customer,staff\n1,ann\n", "no 'date' or 'contact_date' column"),
        ("customer,date\n1,2024-03-01\n2,01/03/2024\n3,2024-3-1x\n", r"2 rows 2, 3 .*YYYY-MM-DD"),
        ("customer,date\n1,2024-03-01\n,2024-03-01\n", "row 2 have no customer"),
        ("customer,date,amount\n1,2024-03-01,12\n2,2024-03-01,ten\n", "row 2 .*amount"),
        ("customer,customer_id,date\n1,1,2024-03-01\n", "both"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_added(
    pipeline: Pipeline, tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(WinbackInputError, match=match):
        pipeline.import_contacts(write(tmp_path, text))
    assert pipeline.table("contacts").height == 0


def test_a_missing_file_is_a_config_error(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(WinbackConfigError, match="does not exist"):
        pipeline.import_contacts(tmp_path / "missing.csv")


def test_imported_contacts_drive_the_follow_ups(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.run("2024-03-01")
    contact = pipeline.table("targets").filter(pl.col("contact")).row(0, named=True)
    pipeline.import_contacts(
        write(tmp_path, f"customer,date,staff\n{contact['customer_id']},2024-03-02,ann\n")
    )
    pipeline.run("2024-03-03")
    row = pipeline.table("targets").filter(
        (pl.col("customer_id") == contact["customer_id"])
        & (pl.col("campaign_id") == contact["campaign_id"])
    )
    assert row["contacts_made"].to_list() == [1]
