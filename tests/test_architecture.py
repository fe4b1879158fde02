"""The package's layout rules (docs/architecture.md), checked on the source.

Every ``import`` in ``python/winback`` (module level or inside a function) is read with ``ast``:
- the rooms form layers and a room imports only its own layer or lower ones;
- there is no import cycle between modules;
- no room reaches into another room's private modules or names;
- Numba is imported only under ``_kernels/``; the heavy optional libraries only in their rooms.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "winback"

#: Rooms from the bottom up; a room may import rooms of its own layer or below.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "_options", "_version", "_winback", "_parallel"}),
    frozenset({"_kernels"}),
    frozenset({"_io", "datasets"}),
    frozenset({"silence", "models", "coldstart", "recommend"}),
    frozenset({"summary", "rfm", "segments", "events"}),
    frozenset({"migrate", "value"}),
    frozenset({"campaign", "evaluation", "scorer", "backtest", "lapse", "preload"}),
    frozenset({"report", "_engines", "loop", "serve"}),
    frozenset({"spark", "dask", "mlflow"}),
    frozenset({"cli"}),
)
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
#: Third-party modules allowed only in the named rooms (anywhere in them, at any level).
CONFINED = {
    "numba": {"_kernels"},
    "altair": {"report"},
    "vl_convert": {"report"},
    "pyspark": {"spark"},
    "dask": {"dask"},
    "mlflow": {"mlflow"},
    "typer": {"cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package; the compiled extension by its stub."""
    found = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    found["winback._winback"] = PACKAGE / "_winback.pyi"
    return found


def room(module: str) -> str:
    """``winback.models.beta_geo`` → ``models``; the package itself is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(module: str, path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno


def internal_edges() -> dict[str, set[str]]:
    """Module → the winback modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, names, _ in imports(name, path):
            if not target.startswith("winback"):
                continue
            for imported in names or [""]:
                sub = f"{target}.{imported}" if imported else target
                edges[name].add(sub if sub in known else target)
    return edges


def test_every_room_is_placed_in_a_layer() -> None:
    rooms = {room(name) for name in modules()} - {"__init__"}
    assert rooms <= set(LAYER_OF), f"rooms missing from LAYERS: {sorted(rooms - set(LAYER_OF))}"


def test_no_room_imports_a_higher_room() -> None:
    upward = []
    for name, targets in internal_edges().items():
        source = room(name)
        if source == "__init__":
            continue
        for target in targets:
            destination = room(target)
            if destination == "__init__":
                upward.append(f"{name} imports the top-level package")
            elif LAYER_OF.get(destination, -1) > LAYER_OF.get(source, -1):
                upward.append(f"{name} ({source}) imports {target} ({destination})")
    assert not upward, "\n".join(sorted(upward))


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of the import graph found by a depth-first walk (each as a closed path)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target == node:
                continue
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [])
    return cycles


def test_no_import_cycles() -> None:
    # A package's __init__ importing its submodules is how it exposes them; a submodule that
    # imports its package back closes a cycle and is reported.
    cycles = find_cycles(internal_edges())
    assert not cycles, "\n".join(" → ".join(cycle) for cycle in cycles)


def test_no_private_names_across_rooms() -> None:
    leaks = []
    for name, path in modules().items():
        source = room(name)
        if source == "__init__":  # the package's public surface re-exports from every room
            continue
        for target, names, line in imports(name, path):
            if not target.startswith("winback.") and target != "winback":
                continue
            destination = room(target) if target != "winback" else "__init__"
            if destination == source:
                continue
            inner = target.split(".")[2:]  # below the room's own name
            private = [part for part in inner if part.startswith("_")]
            private += [
                n
                for n in names
                if n.startswith("_") and not n.startswith("__") and f"{target}.{n}" not in modules()
            ]
            if target == "winback":  # `from winback import _io`: rooms, not names
                private = [n for n in names if n.startswith("_") and room(f"winback.{n}") == n]
                private = [n for n in private if n not in LAYER_OF]
            if private:
                leaks.append(f"{path.relative_to(PACKAGE)}:{line} takes {private} from {target}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize(("library", "rooms"), sorted(CONFINED.items()))
def test_heavy_libraries_stay_in_their_rooms(library: str, rooms: set[str]) -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for name, path in modules().items()
        if room(name) not in rooms
        for target, _, line in imports(name, path)
        if target == library or target.startswith(f"{library}.")
    ]
    assert not found, f"{library} imported outside {sorted(rooms)}: {found}"


def test_the_checks_can_fail() -> None:
    """The cycle finder sees a planted cycle and the layers are in the documented order."""
    planted = {"winback.a": {"winback.b"}, "winback.b": {"winback.c"}, "winback.c": {"winback.a"}}
    assert find_cycles(planted) == [["winback.a", "winback.b", "winback.c", "winback.a"]]
    assert find_cycles({"winback.a": {"winback.b"}, "winback.b": set()}) == []
    assert LAYER_OF["cli"] > LAYER_OF["silence"] > LAYER_OF["_io"] > LAYER_OF["_kernels"]
