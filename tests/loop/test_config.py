"""The loop config is validated up front: every mistake names its key (docs/loop.md#the-config-file)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from winback.errors import WinbackConfigError
from winback.loop import EXAMPLE_CONFIG, Pipeline, load_config, parse_config

BASE: dict[str, Any] = {"source": {"paths": ["sales.parquet"]}}


def with_(section: str, **keys: Any) -> dict[str, Any]:
    return {**BASE, section: keys}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "source.paths"),
        ({"source": {"paths": []}}, "source.paths"),
        ({**BASE, "sources": {}}, "sources"),
        (with_("value", enable=True), "value.enable"),
        (with_("value", enabled="yes"), "value.enabled"),
        (with_("value", margin=1.5), "value.margin"),
        (with_("scoring", trf_cuts=[0.4, 0.3, 0.8, 0.9]), "scoring.trf_cuts"),
        (with_("scoring", min_occasions=1), "scoring.min_occasions"),
        (with_("source", paths=["a"], on_invalid="ignore"), "source.on_invalid"),
        (with_("campaign", holdout=1.0), "campaign.holdout"),
        (with_("campaign", holdout=True), "campaign.holdout"),
        (with_("campaign", cool_down_days=-1), "campaign.cool_down_days"),
        (with_("campaign", length_days=0), "campaign.length_days"),
        (with_("campaign", max_contacts=0), "campaign.max_contacts"),
        (with_("campaign", rules="nope"), "campaign.rules"),
        (with_("campaign", thresholds={"nope": 1}), "campaign.rules"),
        (with_("campaign", cadence={"group_x": 3}), "campaign.cadence.group_x"),
        (with_("campaign", cadence={"group_e": -3}), "campaign.cadence"),
        (with_("campaign", strategy_map={"group_q": "call"}), "campaign.strategy_map.group_q"),
        (with_("campaign", strategy_map="nope"), "campaign.strategy_map"),
        (with_("staff", names=["ann", "ann"]), "staff.names"),
        (with_("staff", capacity=3), "staff.capacity"),
        (with_("staff", names=["ann"], capacity={"bo": 3}), "staff.capacity.bo"),
        (with_("staff", names=["ann"], capacity={"ann": -1}), "staff.capacity.ann"),
        (with_("database", url=""), "database.url"),
    ],
)
def test_a_bad_config_names_its_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(WinbackConfigError, match=re.escape(f"config key {key}") + r"[: ]"):
        parse_config(raw)


def test_a_bad_database_url_names_the_key(tmp_path: Path) -> None:
    pipeline = Pipeline({**BASE, "database": {"url": "nodb://x"}})
    with pytest.raises(WinbackConfigError, match=r"database\.url"):
        pipeline.run("2024-03-01")


def test_relative_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "winback.toml"
    path.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    config = load_config(path)
    assert config.sources == (str(tmp_path / "sales.parquet"),)
    assert config.outputs == str(tmp_path / "winback-out")
    assert config.database_url == f"sqlite:///{tmp_path / 'winback-state.db'}"
    assert config.holdout == 0.1
    assert config.cool_down_days == 30
    assert config.rules == "default"


@pytest.mark.parametrize(
    ("text", "match"),
    [("[source\npaths = 1", "not valid TOML"), (None, "does not exist")],
)
def test_an_unreadable_config_is_one_error(tmp_path: Path, text: str | None, match: str) -> None:
    path = tmp_path / "winback.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(WinbackConfigError, match=match):
        load_config(path)


def test_a_strategy_table_and_capacities_are_kept() -> None:
    config = parse_config(
        {
            **BASE,
            "campaign": {
                "strategy_map": {"group_e": "call", "*": "mail"},
                "cadence": {"group_e": [1, 3]},
            },
            "staff": {"names": ["ann", "bo"], "capacity": {"ann": 5, "bo": 3}},
        }
    )
    assert config.strategy_map == {"group_e": "call", "*": "mail"}
    assert config.cadence == {"group_e": (1, 3)}
    assert config.staff == ("ann", "bo")
    assert config.capacity == {"ann": 5, "bo": 3}


def test_without_sqlalchemy_a_run_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sqlalchemy" else real(name, *a),
    )
    with pytest.raises(WinbackConfigError, match=r"pip install 'winback\[loop\]'"):
        Pipeline(BASE).run("2024-03-01")


def test_import_winback_does_not_load_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, winback; winback.Pipeline; print('sqlalchemy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_source_names_the_key(tmp_path: Path) -> None:
    pipeline = Pipeline(
        {"source": {"paths": [str(tmp_path / "nope.parquet")]}, "outputs": {"dir": str(tmp_path)}}
    )
    with pytest.raises(WinbackConfigError, match=r"config key source\.paths: .*nope\.parquet"):
        pipeline.score(date(2024, 3, 1))
