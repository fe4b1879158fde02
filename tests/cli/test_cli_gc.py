"""A one-shot command runs with a larger young-generation threshold and freezes its objects at
exit (``winback.cli._app.one_shot_gc``, faster start-up and exit); ``serve`` keeps Python's
defaults. Run in fresh processes: the policy is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import gc, json, sys
from winback.cli._app import main
default = gc.get_threshold()
sys.argv = ["winback", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps({"default": default, "now": gc.get_threshold()}))
"""


def _thresholds(*args: str) -> dict[str, list[int]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("command", ["report", "score", "value"])
def test_a_one_shot_command_collects_the_young_generation_less_often(command: str) -> None:
    from winback.cli._app import ONE_SHOT_GC_YOUNG

    seen = _thresholds(command, "--help")
    assert seen["now"][0] == ONE_SHOT_GC_YOUNG
    assert seen["now"][1:] == seen["default"][1:]


def test_serve_keeps_pythons_thresholds() -> None:
    seen = _thresholds("serve", "--help")
    assert seen["now"] == seen["default"]


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
