"""The Done-when of the daily loop, from the README's own commands: the shell block marked
``<!-- loop-commands … -->`` in README.md (the two-week loop of docs/loop.md#a-two-week-loop) is
extracted and run as it stands by bash — 29 subprocesses of ``winback`` and the simulator — on
SQLite and on the session's PostgreSQL server, and the evaluation it writes recovers the planted
uplift.

Tolerance: the planted uplift (0.25, the simulator's default) must lie in the evaluation's 95 %
interval, the interval must exclude zero, and the point estimate must be within 0.06 of 0.25
(about 2.5 standard errors for ~700 customers per arm at rates 0.15 / 0.40).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.loop.conftest import TEST_DATABASE

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- loop-commands"
PLANTED, TOLERANCE = 0.25, 0.06


def marked_block(path: Path) -> str:
    """The fenced ``sh`` block right after the ``loop-commands`` marker, dedented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(MARKER))
    fence = lines[start + 1]
    assert fence.strip() == "```sh", f"{path.name}: the marker must stand right above ```sh"
    indent = len(fence) - len(fence.lstrip())
    body = []
    for line in lines[start + 2 :]:
        if line.strip() == "```":
            return "\n".join(body) + "\n"
        body.append(line[indent:])
    raise AssertionError(f"{path.name}: the loop-commands block is not closed")


def commands(script: str) -> list[str]:
    """The block's commands without comments and spacing (what the shell runs)."""
    bare = (re.sub(r"\s*#.*$", "", line).strip() for line in script.splitlines())
    return [" ".join(line.split()) for line in bare if line]


def test_the_walk_through_shows_the_readme_commands() -> None:
    readme = commands(marked_block(ROOT / "README.md"))
    assert readme[0].startswith("python -m winback.loop.simulate init loop-demo")
    assert sum(line.startswith("winback run") for line in readme) == 2
    assert commands(marked_block(ROOT / "docs" / "loop.md")) == readme


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_readme_loop_recovers_the_planted_uplift(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    script = marked_block(ROOT / "README.md")
    if backend == "postgresql":
        # as the README says: --database postgresql://… on init (a fresh schema of the test server)
        server = request.getfixturevalue("pg_server")
        server.admin(f"CREATE SCHEMA readme_{os.getpid()}", TEST_DATABASE)
        url = server.url(TEST_DATABASE) + f"&options=-csearch_path%3Dreadme_{os.getpid()}"
        init = "python -m winback.loop.simulate init loop-demo"
        assert script.count(init) == 1
        script = script.replace(init, f"{init} --database '{url}'")
    bin_dir = str(Path(sys.executable).parent)  # `winback` and `python` of this environment
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    evaluation = pl.read_csv(tmp_path / "loop-demo" / "out" / "evaluations-2024-03-15.csv")
    overall = evaluation.filter(pl.col("segment") == "all").row(0, named=True)
    assert overall["campaign_id"] == "demo-2024-03-01"
    assert overall["uplift_low"] <= PLANTED <= overall["uplift_high"]
    assert overall["uplift_low"] > 0
    assert abs(overall["uplift"] - PLANTED) <= TOLERANCE
    cards = pl.read_csv(tmp_path / "loop-demo" / "out" / "scorecards-2024-03-15.csv")
    assert cards["staff"].to_list() == ["ann", "bo", "cy"]
