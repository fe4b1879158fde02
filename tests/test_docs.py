"""README examples and docstring examples run as tests: the README's Python blocks and its
``winback`` command lines, in a temporary directory outside the repository, on the bundled data
(what a user of a fresh clone or an installed wheel has)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial.md"


def shell_commands(text: str) -> list[list[str]]:
    """The ``winback …`` and ``python -c …`` lines of a document's bash blocks, as argument lists
    for this interpreter (``make`` and ``source`` lines set up a clone: the tests run inside it)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            args = shlex.split(line, comments=True)
            if args[:1] == ["winback"]:
                commands.append([sys.executable, "-m", "winback.cli", *args[1:]])
            elif args[:2] == ["python", "-c"]:
                commands.append([sys.executable, *args[1:]])
    return commands


def run_outside_the_repo(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a documented command in ``cwd`` with the package importable but no repository files
    reachable by a relative path (``cwd`` is a temporary directory)."""
    assert not cwd.resolve().is_relative_to(ROOT)
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)


def _package_modules() -> list[str]:
    """Every module of the installed package (the one doctest run collects them all)."""
    import winback

    found = [info.name for info in pkgutil.walk_packages(winback.__path__, "winback.")]
    return sorted(name for name in found if not name.endswith("__main__"))


#: Modules whose examples are the user's first contact: they must keep having some.
MUST_HAVE_EXAMPLES = {"winback.silence", "winback.migrate", "winback.summary", "winback.rfm"}


@pytest.mark.parametrize("name", _package_modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, report=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0


def test_every_module_is_collected() -> None:
    names = _package_modules()
    assert {"winback.silence", "winback._io.prepared", "winback.value.api"} <= set(names)
    assert len(names) > 40


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python examples"
    assert not tmp_path.resolve().is_relative_to(ROOT)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    head = text[: text.find("## ", text.find("make test"))]
    assert "make demo" in head
    assert "make test" in head


def test_readme_commands_run_on_the_bundled_data(tmp_path: Path) -> None:
    """Issue 19: the README's command lines read files users do not have (sales.parquet). They
    now start by writing the bundled data, and every line runs as written."""
    commands = shell_commands(README.read_text())
    assert len(commands) >= 8, commands
    assert commands[0][1] == "-c"  # the bundled data, written as a file, first
    for command in commands:
        result = run_outside_the_repo(command, tmp_path)
        assert result.returncode == 0, f"{shlex.join(command[1:])}\n{result.stderr}"
    for made in ("scores.parquet", "migration", "models/bgnbd.json", "segments.csv"):
        assert (tmp_path / made).exists(), made
    for made in ("targets.csv", "evaluation/uplift.csv", "report.html", "winback-demo"):
        assert (tmp_path / made).exists(), made


def test_docs_read_no_workspace_files() -> None:
    """Issue 19: the tutorial read ../shared/data/, which only the developers' workspace has."""
    for doc in (README, TUTORIAL):
        assert "shared/data" not in doc.read_text(), doc
