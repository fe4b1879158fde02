"""``winback init`` and ``winback run`` (the daily loop, docs/loop.md), run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

from tests.loop.conftest import transactions


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_init_then_run_from_the_config_folder(tmp_path: Path) -> None:
    transactions().write_parquet(tmp_path / "sales.parquet")
    done = run("init", "winback.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[source]" in (tmp_path / "winback.toml").read_text(encoding="utf-8")
    again = run("init", "winback.toml", cwd=tmp_path)
    assert again.returncode == 2
    assert "--force" in again.stderr
    # run from another folder: paths are the config's
    first = run(
        "run", "--config", str(tmp_path / "winback.toml"), "--as-of", "2024-03-01", "--json"
    )
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["campaign_id"] == "winback-2024-03-01"
    assert summary["new_targets"] > 0
    assert (tmp_path / "winback-state.db").is_file()
    assert (tmp_path / "winback-out" / "targets-2024-03-01.csv").is_file()
    second = run("run", "-c", str(tmp_path / "winback.toml"), "--as-of", "2024-03-02")
    assert second.returncode == 0, second.stderr
    assert "contacts due" in second.stdout
    # a day in the past: refused, one line, exit 2
    past = run("run", "-c", str(tmp_path / "winback.toml"), "--as-of", "2024-03-01")
    assert past.returncode == 2
    assert past.stderr.strip().startswith("error:")
    assert "refused" in past.stderr
    assert len(past.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[source]\npaths = ["s.parquet"]\n[campaign]\nholdout = 2\n', "campaign.holdout"),
        ('[source]\npaths = ["s.parquet"]\n[staf]\n', "config key staf"),
        ("[source\n", "not valid TOML"),
    ],
)
def test_a_bad_config_is_one_line_with_exit_2(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "winback.toml").write_text(text, encoding="utf-8")
    done = run("run", "--config", str(tmp_path / "winback.toml"), "--as-of", "2024-03-01")
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_missing_config_says_winback_init(tmp_path: Path) -> None:
    done = run("run", cwd=tmp_path)
    assert done.returncode == 2
    assert "winback init" in done.stderr


def test_contacts_import_is_idempotent_and_names_bad_rows(tmp_path: Path) -> None:
    transactions().write_parquet(tmp_path / "sales.parquet")
    assert run("init", "winback.toml", cwd=tmp_path).returncode == 0
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "customer,date,staff,channel,outcome\n7,2024-03-02,ann,call,purchase\n", encoding="utf-8"
    )
    first = run("contacts", "import", str(crm), "--config", "winback.toml", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"rows": 1, "contacts": 1, "outcomes": 1, "known": 0}
    again = run("contacts", "import", str(crm), "--config", "winback.toml", "--json", cwd=tmp_path)
    assert json.loads(again.stdout) == {"rows": 1, "contacts": 0, "outcomes": 0, "known": 1}
    crm.write_text("customer,date\n7,2024-03-02\n8,02/03/2024\n", encoding="utf-8")
    bad = run("contacts", "import", str(crm), "--config", "winback.toml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "row 2" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_the_outbox_is_guarded_against_formulas(tmp_path: Path) -> None:
    transactions().write_parquet(tmp_path / "sales.parquet")
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "default.sms.j2").write_text('=HYPERLINK("x") {{ silence }}', encoding="utf-8")
    config = tmp_path / "winback.toml"
    config.write_text(
        'source.paths = ["sales.parquet"]\n[campaign]\nholdout = 0.2\n'
        '[messages]\ntemplates = "templates"\n',
        encoding="utf-8",
    )
    for day in ("2024-03-01", "2024-03-08"):
        done = run("run", "--config", str(config), "--as-of", day, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["messages"] > 0
    text = (tmp_path / "winback-out" / "outbox-2024-03-08.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text
    assert "\n=HYPERLINK" not in text
    assert ",=HYPERLINK" not in text
    (folder / "default.sms.j2").write_text("{{ silence }\n", encoding="utf-8")
    bad = run("run", "--config", str(config), "--as-of", "2024-03-09", cwd=tmp_path)
    assert bad.returncode == 2
    assert "'default.sms.j2', line 1" in bad.stderr
    assert not (tmp_path / "winback-out" / "outbox-2024-03-09.csv").exists()
