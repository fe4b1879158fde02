"""README examples and docstring examples run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


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
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    head = text[: text.find("## ", text.find("make test"))]
    assert "make demo" in head
    assert "make test" in head
