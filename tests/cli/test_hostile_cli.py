"""The command line over the hostile-input catalogue (issue 19, "Tests").

Every input of ``scripts/input_catalogue.py`` (``CASES``) is written to a temporary directory
and every command of ``COMMANDS`` (score, fit, value, campaign, report) runs on it: a bad input
exits 2 with exactly one line on stderr naming the column, file or rows, and no traceback; a
good-but-odd input exits 0. To keep the subprocess count modest (each start costs about a
second), one subprocess per input runs all the commands through the CLI's entry point
(``winback.cli._app.main``, as ``winback`` does), each with its own captured stderr; anything
written to the process's own stderr (a Rust panic message, say) fails the case too. A sample
is also run as separate ``python -m winback.cli`` processes, to show the two agree.

``docs/input-catalogue.md`` is rendered from the same catalogue; a test checks that the
committed file is current (``python scripts/input_catalogue.py`` rewrites it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _catalogue() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "input_catalogue", ROOT / "scripts" / "input_catalogue.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["input_catalogue"] = module
    spec.loader.exec_module(module)
    return module


catalogue = _catalogue()

#: Runs the CLI's entry point once per argument list (JSON in argv[1]); prints, as JSON, each
#: run's exit code and what it wrote to stderr.
_DRIVER = """
import contextlib, io, json, sys, traceback
from winback.cli._app import main
runs = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["winback", *argv]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = -1
    runs.append({"code": code, "stderr": err.getvalue()})
print(json.dumps(runs))
"""


def _argv(case: Any, command: str, source: Path, out: Path) -> list[str]:
    args = [a.replace("{out}", str(out)) for a in catalogue.COMMANDS[command]]
    return [command, str(source), *args, *case.args]


def _env() -> dict[str, str]:
    return {**os.environ, "RUST_BACKTRACE": "0", "COLUMNS": "200"}


def _failure(case: Any, command: str, code: int, stderr: str) -> str | None:
    """Why a run does not meet the catalogue (None when it does)."""
    where = f"{case.name} × {command}: exit {code}, stderr {stderr!r}"
    expected_code, needle = case.expected(command)
    if "Traceback" in stderr:
        return f"traceback: {where}"
    if code != expected_code:
        return f"expected exit {expected_code}: {where}"
    if expected_code == 0:
        return None
    lines = stderr.strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"expected one error line: {where}"
    if needle not in lines[0]:
        return f"expected {needle!r} in the line: {where}"
    return None


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (input, command) of the catalogue, run in one subprocess: exit code and stderr."""
    root = tmp_path_factory.mktemp("catalogue")
    keys, argvs = [], []
    for index, case in enumerate(catalogue.CASES):
        where = root / f"case-{index:02d}"
        where.mkdir()
        source = case.write(where)
        for command in catalogue.COMMANDS:
            if not case.runs(command):
                continue
            out = where / f"out-{command}"
            out.mkdir()
            keys.append((case.name, command))
            argvs.append(_argv(case, command, source, out))
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(argvs)],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Anything on the process's own stderr (a Rust panic message) escaped the one-line rule.
    assert result.stderr == "", f"the process itself wrote {result.stderr!r}"
    return dict(zip(keys, json.loads(result.stdout.strip().splitlines()[-1]), strict=True))


@pytest.mark.parametrize("case", catalogue.CASES, ids=[c.name for c in catalogue.CASES])
def test_every_command_on_the_catalogue(
    case: Any, runs: dict[tuple[str, str], dict[str, Any]]
) -> None:
    failures, known = [], []
    for command in catalogue.COMMANDS:
        if not case.runs(command):
            continue
        run = runs[(case.name, command)]
        failure = _failure(case, command, run["code"], run["stderr"])
        if command in case.xfail:
            assert failure is not None, f"{case.name} × {command} now works: drop its xfail"
            known.append(f"{command}: {case.xfail[command]}")
        elif failure is not None:
            failures.append(failure)
    assert not failures, "\n".join(failures)
    if known:
        pytest.xfail("; ".join(known))


@pytest.mark.parametrize(
    "name",
    [
        "header-only CSV",
        "ambiguous dates 01/02/2024",
        "decimal256 amounts (Parquet)",
        "ids with leading zeros",
    ],
)
def test_the_real_command_agrees(name: str, tmp_path: Path) -> None:
    case = next(c for c in catalogue.CASES if c.name == name)
    source = case.write(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "winback.cli", *_argv(case, "score", source, out)],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert _failure(case, "score", result.returncode, result.stderr) is None


def test_the_catalogue_page_is_current() -> None:
    assert catalogue.DOC.read_text() == catalogue.render(), (
        "docs/input-catalogue.md is stale: run python scripts/input_catalogue.py"
    )


def test_the_catalogue_covers_every_category() -> None:
    categories = {case.category for case in catalogue.CASES}
    assert {"files", "columns", "types", "rows", "good but odd"} <= categories
    names = [case.name for case in catalogue.CASES]
    assert len(names) == len(set(names))
