"""The command line on bad input (issue 19): CSV formula guard, outputs checked before the work,
typed one-line errors, CLI advice, the reading flags on every command, help and tables.

Every bad case runs the CLI as a subprocess: exit code 2, one line on stderr, no traceback."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from winback._io.prepared import prepare
from winback.cli._app import cli_advice
from winback.cli._common import guard_csv
from winback.datasets import load_cdnow


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 2, one line on stderr naming ``needles``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def sales(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("integrity") / "sales.parquet"
    load_cdnow().head(2_000).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """String ids a spreadsheet would run as formulas, and a staff-like name column."""
    ids = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "plain"]
    rows = [f'"{i}",2024-01-0{day},{amount}' for i in ids for day, amount in ((1, 5), (3, 7))]
    path = tmp_path_factory.mktemp("hostile") / "hostile.csv"
    path.write_text("customer_id,ts,amount\n" + "\n".join(rows) + "\n")
    return path


# 1. CSV formula injection (item 9) -------------------------------------------------------------


def test_csv_outputs_are_guarded_by_default(hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    result = run("score", str(hostile), "-o", str(out))
    assert result.returncode == 0, result.stderr
    ids = pl.read_csv(out, schema_overrides={"customer_id": pl.String})["customer_id"].to_list()
    assert sorted(ids) == sorted(["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "'\tx", "plain"])


def test_csv_guard_can_be_turned_off_and_parquet_is_untouched(
    hostile: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "raw.csv"
    assert run("score", str(hostile), "-o", str(raw), "--no-csv-guard").returncode == 0
    ids = pl.read_csv(raw, schema_overrides={"customer_id": pl.String})["customer_id"]
    assert "=1+1" in ids.to_list()
    parquet = tmp_path / "scores.parquet"
    assert run("score", str(hostile), "-o", str(parquet)).returncode == 0
    assert "=1+1" in pl.read_parquet(parquet)["customer_id"].to_list()


def test_csv_guard_out_of_core_equals_in_memory(hostile: Path, tmp_path: Path) -> None:
    in_memory = tmp_path / "memory.csv"
    by_parts = tmp_path / "parts.csv"
    assert run("score", str(hostile), "-o", str(in_memory)).returncode == 0
    result = run("score", str(hostile), "-o", str(by_parts), "--memory-limit", "1MB")
    assert result.returncode == 0, result.stderr
    assert by_parts.read_bytes() == in_memory.read_bytes()
    assert "'=1+1" in by_parts.read_text()


def test_staff_names_are_guarded(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "targets.csv"
    args = ("--campaign-id", "x", "--as-of", "1997-12-31", "--staff", "=cmd|' /C calc'!A0")
    result = run("campaign", str(sales), *args, "-o", str(out))
    assert result.returncode == 0, result.stderr
    staff = pl.read_csv(out)["staff"].drop_nulls().unique().to_list()
    assert staff == ["'=cmd|' /C calc'!A0"]


def test_csv_guard_leaves_numbers_alone() -> None:
    frame = pl.DataFrame(
        {"name": ["-bo", "ann", None], "value": [-5, 3, 1], "x": [-1.5, 2.0, None]}
    ).with_columns(pl.col("name").cast(pl.Categorical).alias("label"))
    guarded = guard_csv(frame)
    assert guarded["name"].to_list() == ["'-bo", "ann", None]
    assert guarded["label"].to_list() == ["'-bo", "ann", None]
    assert guarded["value"].to_list() == [-5, 3, 1]
    assert guarded["x"].to_list() == [-1.5, 2.0, None]


def test_csv_guard_is_documented() -> None:
    result = run("--help")
    assert "--no-csv-guard" in result.stdout
    methods = (Path(__file__).parents[2] / "docs" / "methods.md").read_text()
    assert "--no-csv-guard" in methods.split('<a id="outputs"></a>')[1].split("<a id=")[0]


# 2. Outputs checked before the work ------------------------------------------------------------


def test_output_equal_to_input_is_refused(sales: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sales.parquet"
    copy.write_bytes(sales.read_bytes())
    refused(run("score", str(copy), "-o", str(copy)), "is an input")
    assert copy.read_bytes() == sales.read_bytes()


def test_missing_parent_needs_mkdir(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "scores.parquet"
    refused(run("score", str(sales), "-o", str(out)), "does not exist", "--mkdir")
    assert not out.parent.exists()
    result = run("score", str(sales), "-o", str(out), "--mkdir")
    assert result.returncode == 0, result.stderr
    assert out.exists()


def test_output_directory_parent_needs_mkdir(sales: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "migration"
    refused(
        run(
            "migrate", str(sales), "--as-of", "1997-06-30", "--as-of", "1997-12-31", "-o", str(out)
        ),
        "--mkdir",
    )


def test_unwritable_outputs_are_found_before_the_work(sales: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(run("score", str(sales), "-o", str(tmp_path / "folder.txt")), ".parquet or .csv")
    # A file where a file is expected is a directory.
    (folder / "x.parquet").mkdir()
    refused(run("score", str(sales), "-o", str(folder / "x.parquet")), "is a directory")
    # A file where a directory is expected.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    refused(run("fit", str(sales), "-o", str(plain)), "is a file")
    refused(run("score", str(sales), "-o", str(plain / "x.parquet")), "is not a directory")
    # A directory that cannot be written (a read-only file system, root or not).
    refused(run("score", str(sales), "-o", "/proc/winback-scores.parquet"), "cannot write")
    # Checked before the work: the main output is not written when --rejects cannot be.
    out = tmp_path / "scores.parquet"
    refused(
        run("score", str(sales), "-o", str(out), "--rejects", str(tmp_path / "no" / "r.csv")),
        "--rejects",
    )
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_refused(sales: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(run("score", str(sales), "-o", str(locked / "s.parquet")), "cannot write")
    finally:
        locked.chmod(0o700)


# 3. Typed one-line errors instead of raw ones --------------------------------------------------


def test_huge_durations_are_one_line_errors(sales: Path, tmp_path: Path) -> None:
    huge = "99999999999999999999"
    refused(run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--resolution", f"{huge}d"))
    refused(
        run("value", str(sales), "-o", str(tmp_path / "v.csv"), "--period", f"{huge}d"),
        "--period",
    )
    refused(run("fit", str(sales), "-o", str(tmp_path / "m"), "--period", f"{huge}d"), "--period")
    targets = tmp_path / "t.csv"
    targets.write_text("customer_id,arm\n1,treatment\n")
    refused(
        run("evaluate", str(targets), str(sales), "-o", str(tmp_path / "e"), "--window-days", huge),
        "--window-days",
    )


def test_bad_rules_files_are_one_line_errors(sales: Path, tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[x]\n")
    refused(
        run("segment", str(sales), "-o", str(tmp_path / "s.csv"), "--rules", str(binary)), "UTF-8"
    )
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "\n")
    refused(
        run("segment", str(sales), "-o", str(tmp_path / "s.csv"), "--rules", str(deep)), "nested"
    )
    refused(
        run(
            "campaign",
            str(sales),
            "--campaign-id",
            "x",
            "-o",
            str(tmp_path / "t.csv"),
            "--rules",
            str(deep),
        ),
        "nested",
    )


def test_unknown_time_zone_is_a_one_line_error(sales: Path, tmp_path: Path) -> None:
    refused(
        run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--tz", "Mars/Olympus"),
        "--tz 'Mars/Olympus'",
    )


_RAISER = """
import sys
import typer
from winback.cli import app, main

@app.command("boom")
def boom() -> None:
    kind = {kind!r}
    if kind == "arrow":
        import pyarrow as pa
        raise pa.lib.ArrowInvalid("Could not convert 'a' with type str: tried to convert to int64")
    if kind == "polars":
        import polars as pl
        raise pl.exceptions.ComputeError("unable to parse time zone: 'Mars/Olympus'\\n\\nhint: x")
    if kind == "interrupt":
        raise KeyboardInterrupt
    raise RuntimeError("a bug")

sys.argv = ["winback", "boom"]
main()
"""


@pytest.mark.parametrize(
    ("kind", "code", "needle"),
    [
        ("arrow", 2, "tried to convert to int64"),
        ("polars", 2, "Mars/Olympus"),
        ("interrupt", 130, "aborted"),
        ("other", 1, "a bug"),
    ],
)
def test_escaped_library_errors_are_one_line(kind: str, code: int, needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _RAISER.format(kind=kind)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert needle in result.stderr


# 4. CLI advice, not Python keyword advice ------------------------------------------------------


def test_on_invalid_advice_is_a_flag(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,ts\n1,2024-01-01\n,2024-01-02\n")
    result = run("score", str(bad), "-o", str(tmp_path / "x.parquet"))
    refused(result, "--on-invalid drop")
    assert "on_invalid=" not in result.stderr


def test_amount_col_advice_is_a_flag(tmp_path: Path) -> None:
    data = tmp_path / "no_amount.csv"
    data.write_text("customer_id,ts\n1,2024-01-01\n1,2024-02-01\n")
    result = run("value", str(data), "-o", str(tmp_path / "v.csv"))
    refused(result, "--amount-col")
    assert "amount_col=" not in result.stderr


def test_argument_echoes_are_flags(sales: Path, tmp_path: Path) -> None:
    result = run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--resolution", "soon")
    refused(result, "--resolution soon")
    result = run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--min-occasions", "0")
    refused(result, "--min-occasions 0")


@pytest.mark.parametrize(
    ("message", "command", "expected"),
    [
        ("or pass on_invalid='drop' to drop them", "score", "or pass --on-invalid drop to drop"),
        ('or pass on_invalid="drop"', "report", "or pass --on-invalid drop"),
        ("Pass amount_col='...' to name it.", "value", "Pass --amount-col ... to name it."),
        ("min_occasions=0 must be at least 1", "score", "--min-occasions 0 must be"),
        ("resolution='a b' is not a duration", "score", "--resolution 'a b' is not"),
        ("Pass spill_dir= (CLI: --spill-dir) on a disk", "score", "Pass --spill-dir on a disk"),
        ("num_threads=0 must be at least 1", "score", "--threads 0 must be"),
        (
            "Prepare them (winback.prepare(..., amount_col='...')).",
            "value",
            "Prepare them (--amount-col ...).",
        ),
        ("unit='X' is not a time unit", "fit", "--unit X is not"),
        ("holdout=1.5 must be in [0, 1)", "campaign", "--holdout 1.5 must be"),
        # Keywords the command has no flag for stay as they are.
        ("Try initial_params= or rescale", "fit", "Try initial_params= or rescale"),
        ("holdout_end=x is after", "fit", "holdout_end=x is after"),
    ],
)
def test_keyword_hints_become_the_commands_flags(message: str, command: str, expected: str) -> None:
    assert expected in cli_advice(message, command)


# 5. The reading flags on every command that reads transactions --------------------------------

READING_FLAGS = (
    "--on-invalid",
    "--customer-col",
    "--time-col",
    "--amount-col",
    "--time-format",
    "--id-type",
    "--tz",
)


@pytest.mark.parametrize(
    "command", ["score", "migrate", "fit", "value", "segment", "campaign", "evaluate", "report"]
)
def test_every_reading_command_has_the_reading_flags(command: str) -> None:
    result = run(command, "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for flag in READING_FLAGS:
        assert flag in result.stdout, (command, flag)


def test_on_invalid_drop_on_commands_that_lacked_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer_id,ts,amount\n1,2024-01-01,5\n1,2024-02-01,6\n2,2024-01-03,4\n"
        "2,2024-03-01,3\n,2024-01-02,1\n"
    )
    out = tmp_path / "m"
    args = ("--as-of", "2024-02-15", "--as-of", "2024-03-31", "-o", str(out))
    refused(run("migrate", str(bad), *args), "--on-invalid drop")
    result = run("migrate", str(bad), *args, "--on-invalid", "drop")
    assert result.returncode == 0, result.stderr
    result = run("segment", str(bad), "-o", str(tmp_path / "s.csv"), "--on-invalid", "drop")
    assert result.returncode == 0, result.stderr


def test_bad_id_type_is_a_one_line_error(sales: Path, tmp_path: Path) -> None:
    refused(
        run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--id-type", "float"),
        "--id-type 'float'",
    )


_HAS_READING_KEYWORDS = "time_format" in inspect.signature(prepare).parameters


@pytest.mark.skipif(
    not _HAS_READING_KEYWORDS, reason="winback.prepare() has no time_format=/id_type= yet"
)
def test_time_format_and_id_type_reach_the_library(tmp_path: Path) -> None:
    us = tmp_path / "us.csv"
    us.write_text("customer_id,ts,amount\n007,01/02/2024,1\n007,03/04/2024,1\n7,01/05/2024,2\n")
    out = tmp_path / "s.parquet"
    result = run("score", str(us), "-o", str(out), "--time-format", "%m/%d/%Y", "--id-type", "str")
    assert result.returncode == 0, result.stderr
    scores = pl.read_parquet(out)
    assert sorted(scores["customer_id"].to_list()) == ["007", "7"]
    assert scores.filter(pl.col("customer_id") == "007")["n_occasions"].item() == 2


@pytest.mark.skipif(_HAS_READING_KEYWORDS, reason="winback.prepare() takes time_format=")
def test_time_format_without_library_support_is_one_line(sales: Path, tmp_path: Path) -> None:
    refused(
        run("score", str(sales), "-o", str(tmp_path / "s.csv"), "--time-format", "%Y-%m-%d"),
        "--time-format",
    )


# 6. Help and tables ----------------------------------------------------------------------------


def test_boolean_flags_show_no_type() -> None:
    for command in ("score", "report", "campaign"):
        result = run(command, "--help", env={"COLUMNS": "200"})
        assert "--json" in result.stdout
        assert "<bool>" not in result.stdout, command


def test_campaign_takes_rules_and_the_old_rule(sales: Path, tmp_path: Path) -> None:
    help_text = run("campaign", "--help", env={"COLUMNS": "200"}).stdout
    assert "--rules" in help_text
    assert "--rule " not in help_text
    new = tmp_path / "new.csv"
    old = tmp_path / "old.csv"
    common = ("--campaign-id", "x", "--as-of", "1997-12-31")
    assert run("campaign", str(sales), *common, "--rules", "salon", "-o", str(new)).returncode == 0
    assert run("campaign", str(sales), *common, "--rule", "salon", "-o", str(old)).returncode == 0
    assert new.read_bytes() == old.read_bytes()


def test_campaign_json_has_no_none_staff(sales: Path, tmp_path: Path) -> None:
    common = ("--campaign-id", "x", "--as-of", "1997-12-31", "--json")
    result = run("campaign", str(sales), *common, "-o", str(tmp_path / "t.csv"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["staff"] is None
    result = run("campaign", str(sales), *common, "--staff", "ann", "-o", str(tmp_path / "t2.csv"))
    staff = json.loads(result.stdout)["staff"]
    assert "None" not in staff
    assert set(staff) == {"ann"}


def test_evaluate_table_fits_80_columns(sales: Path, tmp_path: Path) -> None:
    targets = tmp_path / "t.csv"
    built = run(
        "campaign", str(sales), "--campaign-id", "x", "--as-of", "1997-06-30", "-o", str(targets)
    )
    assert built.returncode == 0, built.stderr
    result = run(
        "evaluate", str(targets), str(sales), "-o", str(tmp_path / "e"), env={"COLUMNS": "80"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    assert "uplift [95% CI]" in result.stdout


def test_value_tiers_say_sums_and_period(sales: Path, tmp_path: Path) -> None:
    result = run("value", str(sales), "-o", str(tmp_path / "v.parquet"), env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "sums" in result.stdout
    assert "next month (sum)" in result.stdout
