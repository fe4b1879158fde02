"""docs/tutorial.md runs: its commands and Python blocks, in order, in an empty directory outside
the repository on the bundled data (what a fresh clone or an installed wheel has), and the
figures it shows are the ones they print."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"

# A figure: 1,447 · 24.2% · 0.251624 · -95,368.44 (years and ids are figures too: all must appear).
FIGURE = re.compile(r"-?\d[\d,]*(?:\.\d+)?%?")


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", TUTORIAL.read_text(), flags=re.DOTALL)


def _figures(text: str) -> set[str]:
    return {f for f in FIGURE.findall(text) if len(f.strip("-%")) >= 2}


def test_tutorial_runs_and_shows_real_figures(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(ROOT)
    env = {**os.environ, "COLUMNS": "120"}
    printed = ""  # what the previous command or Python block printed
    for kind, body in _blocks():
        if kind == "python":
            code = body
            out = io.StringIO()
            cwd = Path.cwd()
            os.chdir(tmp_path)
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(code, str(TUTORIAL), "exec"), {})
            finally:
                os.chdir(cwd)
            printed = out.getvalue()
        elif kind == "bash":
            printed = ""
            for line in body.splitlines():
                if not line.startswith("winback "):
                    continue  # make build / source: the test already runs inside the venv
                args = shlex.split(line)[1:]
                result = subprocess.run(
                    [sys.executable, "-m", "winback.cli", *args],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                assert result.returncode == 0, f"{line}\n{result.stderr}"
                printed += result.stdout
        elif kind == "text":
            missing = _figures(body) - _figures(printed)
            assert not missing, f"figures in the tutorial that were not printed: {missing}"
    assert (tmp_path / "cdnow.parquet").exists()
    assert (tmp_path / "report.html").exists()
    assert (tmp_path / "campaign_targets.csv").exists()
