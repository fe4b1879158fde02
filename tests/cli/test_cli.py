"""The command line, run as a user would: a subprocess with exit codes and files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import winback
from winback.datasets import load_cdnow


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "sales.parquet"
    load_cdnow().write_parquet(path)
    return path


def test_score_writes_what_the_api_returns(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    result = run("score", str(sales), "--as-of", "1998-06-30", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "TrF groups" in result.stdout
    expected = winback.silence(sales, as_of="1998-06-30")
    assert pl.read_parquet(out).equals(expected)


def test_score_json_summary(sales: Path, tmp_path: Path) -> None:
    result = run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == 69_659
    assert summary["customers"] == 23_570
    assert sum(summary["groups"].values()) == 23_570 - 12_054  # scored customers only


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,ts\n1,2024-01-01\n,2024-01-02\n")
    result = run("score", str(bad), "-o", str(tmp_path / "x.parquet"))
    assert result.returncode == 2
    assert "null customer id" in result.stderr
    assert "Traceback" not in result.stderr
    dropped = run(
        "score",
        str(bad),
        "-o",
        str(tmp_path / "x.parquet"),
        "--on-invalid",
        "drop",
        "--rejects",
        str(tmp_path / "rejects.csv"),
    )
    assert dropped.returncode == 0, dropped.stderr
    assert pl.read_csv(tmp_path / "rejects.csv").get_column("reason").to_list() == [
        "null customer id"
    ]


def test_missing_file_and_bad_option(tmp_path: Path) -> None:
    missing = run("score", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "x.parquet"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    bad_option = run(
        "score", str(tmp_path / "nope.parquet"), "-o", "x.parquet", "--resolution", "soon"
    )
    assert bad_option.returncode == 2
    assert "resolution" in bad_option.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--debug", "score", str(tmp_path / "nope.parquet"), "-o", "x.parquet")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_migrate_writes_states_and_transitions(sales: Path, tmp_path: Path) -> None:
    result = run(
        "migrate", str(sales), "--as-of", "1997-12-31", "--as-of", "1998-06-30", "-o", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    states = pl.read_parquet(tmp_path / "states.parquet")
    assert states.height == 23_570
    transitions = pl.read_csv(tmp_path / "transitions.csv")
    assert transitions.get_column("customers").sum() == 23_570


def test_demo_runs_on_the_bundled_data(tmp_path: Path) -> None:
    result = run("demo", "-o", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    for name in ("scores.parquet", "scores.csv", "summary.json", "migration_states.parquet"):
        assert (tmp_path / "demo" / name).exists()
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["customers"] == 23_570
    assert "deep_silent" in result.stdout
    # No customer is left out: the 12,054 one-purchase customers are ranked against the
    # population (docs/methods.md#cold-start), in the file and on the terminal.
    scores = pl.read_parquet(tmp_path / "demo" / "scores.parquet")
    single = scores.filter(pl.col("status") == "single_purchase")
    assert single.height == 12_054
    assert single.get_column("population_trf_group").null_count() == 0
    assert single.get_column("p_next_within").is_between(0.0, 1.0).all()
    assert "Too few purchases" in result.stdout


def test_help_lists_commands_with_examples() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("score", "migrate", "demo"):
        assert command in result.stdout
    assert "winback score sales.parquet" in run("score", "--help").stdout


def test_fit_saves_models_equal_to_the_api(sales: Path, tmp_path: Path) -> None:
    from winback.models import BetaGeoModel, GammaGammaModel, load

    out = tmp_path / "models"
    result = run(
        "fit",
        str(sales),
        "-m",
        "bgnbd",
        "-m",
        "gg",
        "--calibration-end",
        "1997-09-30",
        "-o",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["models"]) == {"bgnbd", "gg"}
    table = winback.summary(sales, calibration_end="1997-09-30")
    expected_bg = BetaGeoModel().fit(table)
    expected_gg = GammaGammaModel().fit(table)
    assert load(out / "bgnbd.json").params_ == expected_bg.params_
    assert load(out / "gg.json").params_ == expected_gg.params_
    assert report["models"]["bgnbd"]["customers"] == 23_570


def test_fit_rejects_an_unknown_model(sales: Path, tmp_path: Path) -> None:
    result = run("fit", str(sales), "-m", "bgnbd", "-m", "weibull", "-o", str(tmp_path))
    assert result.returncode == 2
    assert "--model 'weibull' is not one of bgnbd" in result.stderr


def test_fit_failure_exits_3(tmp_path: Path) -> None:
    # Every customer bought once: BG/NBD cannot tell the purchase rate from dropout.
    sales = tmp_path / "once.csv"
    pl.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "ts": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "amount": [5.0, 6.0, 7.0],
        }
    ).write_csv(sales)
    result = run("fit", str(sales), "-m", "bgnbd", "-o", str(tmp_path / "m"))
    assert result.returncode == 3, result.stderr
    assert "no customer made a repeat purchase" in result.stderr
