"""Fixtures of the HTTP service tests: models written by ``winback fit`` once per session, and
real ``winback serve`` subprocesses on free local ports (tests/serve/helpers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from winback.datasets import cdnow_path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models written by ``winback fit`` on the bundled CDNOW data."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run(
        [sys.executable, "-m", "winback.cli", "-q", "fit", str(cdnow_path()), "-o", str(out)],
        check=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert sorted(p.name for p in out.glob("*.json")) == ["bgnbd.json", "gg.json"]
    return out
