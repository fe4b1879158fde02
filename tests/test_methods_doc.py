"""docs/methods.md, the project's own method reference: every citation of it resolves, and no
shipped text cites the design input (SPEC) that users of the package cannot read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "docs" / "methods.md"
#: Where shipped or published text lives.
SCANNED = ("python", "rust", "docs")
TOP_FILES = ("README.md",)
SKIP_DIRS = {".venv", "target", "__pycache__", ".mypy_cache", ".ruff_cache"}
SUFFIXES = {".py", ".pyi", ".rs", ".md", ".toml", ".txt", ".html", ".css", ".js"}

#: A citation: ``methods.md#anchor`` optionally followed by ``, #more`` anchors.
CITATION = re.compile(r"methods\.md#([A-Za-z0-9_-]+)((?:,\s*#[A-Za-z0-9_-]+)*)")
MORE = re.compile(r"#([A-Za-z0-9_-]+)")
SPEC_CITATION = re.compile(r"spec §|spec\.md", re.IGNORECASE)


def _text_files() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if SKIP_DIRS & set(path.relative_to(ROOT).parts):
                continue
            if path.is_file() and path.suffix in SUFFIXES:
                files.append(path)
    return files


def _anchors(text: str) -> set[str]:
    """Explicit ``<a id="…"></a>`` anchors and GitHub heading slugs of a Markdown text."""
    found = set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def _citations() -> list[tuple[str, int, str]]:
    out = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in CITATION.finditer(line):
                rel = path.relative_to(ROOT).as_posix()
                out.append((rel, number, match.group(1)))
                out.extend((rel, number, more) for more in MORE.findall(match.group(2)))
    return out


def test_methods_doc_exists() -> None:
    assert METHODS.is_file()
    assert {"input", "silence", "summary", "value", "determinism"} <= _anchors(
        METHODS.read_text(encoding="utf-8")
    )


def test_every_cited_anchor_exists() -> None:
    anchors = _anchors(METHODS.read_text(encoding="utf-8"))
    citations = _citations()
    assert citations, "nothing cites docs/methods.md"
    missing = [
        f"{path}:{line}: #{anchor}" for path, line, anchor in citations if anchor not in anchors
    ]
    assert not missing, "citations of anchors docs/methods.md does not have:\n" + "\n".join(missing)


def test_no_spec_citations_in_shipped_text() -> None:
    found = []
    for path in _text_files():
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if SPEC_CITATION.search(line):
                found.append(f"{path.relative_to(ROOT).as_posix()}:{number}: {line.strip()}")
    assert not found, "cite docs/methods.md#anchor instead of SPEC:\n" + "\n".join(found)


def test_table_of_contents_anchors_exist() -> None:
    text = METHODS.read_text(encoding="utf-8")
    anchors = _anchors(text)
    body = text.split("\n## ", 2)
    assert len(body) == 3, "methods.md needs a contents section after its title"
    contents = body[1]
    listed = re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", contents)
    assert len(listed) >= 20
    missing = [anchor for anchor in listed if anchor not in anchors]
    assert not missing, f"contents lists anchors that do not exist: {missing}"
    explicit = set(re.findall(r'<a\s+id="([^"]+)"', text))
    unlisted = sorted(explicit - set(listed))
    assert not unlisted, f"anchors missing from the contents: {unlisted}"


@pytest.mark.parametrize("anchor", ["input", "determinism", "silence", "summary", "value"])
def test_anchors_the_code_already_cites(anchor: str) -> None:
    assert f'<a id="{anchor}"></a>' in METHODS.read_text(encoding="utf-8")
