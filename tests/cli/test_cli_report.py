"""`winback report`, the demo's report, and the polish every command shares: help with examples,
--quiet, --json, one-line errors and exit codes. Run as a user would: a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import winback
from tests.cli.test_cli import run
from winback.cli import app
from winback.datasets import load_cdnow

COMMANDS = sorted(
    command.name or command.callback.__name__  # type: ignore[union-attr]
    for command in app.registered_commands
)


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A slice of CDNOW (the first 2,000 customers) keeps each subprocess report quick.
    path = tmp_path_factory.mktemp("cli-report") / "sales.parquet"
    load_cdnow().filter(pl.col("customer_id") <= 2000).write_parquet(path)
    return path


def test_report_writes_a_self_contained_page(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    # A missing parent directory is created only when asked (--mkdir).
    args = ("report", str(sales), "-o", str(out), "--as-of", "1998-06-30", "--no-models")
    assert run(*args).returncode == 2
    result = run(*args, "--mkdir")
    assert result.returncode == 0, result.stderr
    assert out.exists()
    assert f"Report written to {out.resolve()}" in result.stdout
    assert "calibration not shown: no models requested" in result.stdout
    page = out.read_text()
    customers = winback.silence(sales).height
    assert f'tr data-key="customers"><td>customers</td><td>{customers:,}</td>' in page
    assert "<script src" not in page


def test_report_json_summary(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = run(
        "report", str(sales), "-o", str(out), "--json", "-m", "bgnbd", "--top-n", "5", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    _, info = winback.silence(sales, return_info=True)
    assert summary["rows_read"] == info.rows_read
    assert summary["customers"] == info.customers == 2_000
    assert summary["report"] == str(out.resolve())
    assert "calibration" in summary["sections"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.parquet"], "does not exist"),
        (["SALES", "-o", "report.txt"], "must be an .html file"),
        (["SALES", "-m", "weibull"], "--model 'weibull' is not one of bgnbd, mbgnbd, pareto"),
        (["SALES", "--as-of", "soon"], "--as-of soon"),
        (["SALES", "--top-n", "0"], "--top-n 0 must be a positive integer"),
        (["SALES", "--on-invalid", "ignore"], "--on-invalid 'ignore' must be 'raise' or 'drop'"),
        (["SALES", "--top-n", "many"], "Invalid value for '--top-n'"),
    ],
)
def test_report_bad_input_exits_2_with_one_line(
    sales: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(sales) if a == "SALES" else a for a in args]
    result = run("report", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_demo_ends_with_the_report(tmp_path: Path) -> None:
    result = run("demo", "-o", str(tmp_path / "demo"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    report = Path(summary["report"])
    assert report == (tmp_path / "demo" / "report.html").resolve()
    page = report.read_text()
    assert "winback report: CDNOW, 1997–1998" in page
    assert "1997-12-31" in page  # the migration's earlier snapshot
    assert "1997-09-30" in page  # the models' calibration end


def test_every_command_has_help_with_an_example() -> None:
    top = run("--help")
    assert top.returncode == 0
    assert "Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be" in top.stdout
    runner = CliRunner()
    for name in COMMANDS:  # in-process: one interpreter start per command would cost seconds
        assert name in top.stdout
        result = runner.invoke(app, [name, "--help"], prog_name="winback", env={"COLUMNS": "200"})
        assert result.exit_code == 0, name
        assert "Example" in result.output, name
        assert f"winback {name}" in result.output, name


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["score"], "Missing argument 'input'"),
        (["score", "x.parquet", "-o", "x.parquet", "--bogus"], "No such option: --bogus"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert message in lines[0]
        assert "--help" in lines[0]
    no_args = run()
    assert "Usage: winback" in no_args.stdout + no_args.stderr


def test_quiet_prints_nothing_and_can_follow_the_command(sales: Path, tmp_path: Path) -> None:
    for args in (
        ["--quiet", "score", str(sales), "-o", str(tmp_path / "s.parquet")],
        ["score", str(sales), "-o", str(tmp_path / "s.parquet"), "-q"],
        ["migrate", str(sales), "--as-of", "1997-12-31", "--as-of", "1998-06-30", "-o",
         str(tmp_path / "m"), "--quiet"],
        ["report", str(sales), "-o", str(tmp_path / "r.html"), "--no-models", "-q"],
    ):  # fmt: skip
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "", args
        assert result.stderr == "", args


def test_fit_failure_in_the_report_is_not_an_error(tmp_path: Path) -> None:
    sales = tmp_path / "once.csv"
    sales.write_text("customer_id,ts\n1,2024-01-01\n2,2024-02-01\n1,2024-06-01\n")
    result = run("report", str(sales), "-o", str(tmp_path / "r.html"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "no model could be fitted" in summary["skipped"]["calibration"]
