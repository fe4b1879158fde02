"""A one-shot command runs with a larger young-generation threshold, freezes its objects at exit
and lets OpenBLAS's idle threads sleep at once (``winback.cli._app.one_shot_process``: less CPU
spent outside the work); ``serve`` keeps the defaults. Run in fresh processes: the settings are
process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = """
import gc, json, os, sys
from winback.cli._app import main
default = gc.get_threshold()
sys.argv = ["winback", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
blas = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
print(json.dumps({"default": default, "now": gc.get_threshold(), "blas": blas}))
"""


def _thresholds(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True, env=env
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("command", ["report", "score", "value"])
def test_a_one_shot_command_collects_the_young_generation_less_often(command: str) -> None:
    from winback.cli._app import ONE_SHOT_BLAS_TIMEOUT, ONE_SHOT_GC_YOUNG

    seen = _thresholds(command, "--help")
    assert seen["now"][0] == ONE_SHOT_GC_YOUNG
    assert seen["now"][1:] == seen["default"][1:]
    assert seen["blas"] == ONE_SHOT_BLAS_TIMEOUT


def test_serve_keeps_pythons_thresholds() -> None:
    seen = _thresholds("serve", "--help")
    assert seen["now"] == seen["default"]
    assert seen["blas"] is None


def test_the_report_is_whole_after_the_frozen_exit(tmp_path: Path) -> None:
    # The page is written and closed before the process freezes its objects and ends.
    out = tmp_path / "r.html"
    data = Path(__file__).resolve().parents[2] / "python/winback/datasets/cdnow.parquet"
    cli = Path(sys.executable).with_name("winback")
    subprocess.run(
        [str(cli), "report", str(data), "-o", str(out), "--model", "bgnbd", "-q"],
        check=True,
        capture_output=True,
    )
    page = out.read_text(encoding="utf-8")
    assert page.rstrip().endswith("</html>")
    assert '"$schema"' in page
