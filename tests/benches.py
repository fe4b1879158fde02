"""Load a module of ``benches/`` (the seeded generators, back-tests and load generators) in tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHES = Path(__file__).resolve().parents[1] / "benches"


def load_bench(name: str) -> ModuleType:
    """Import ``benches/<name>.py`` once, as module ``name``.

    ``benches/`` goes on ``sys.path`` because the benches import each other (``gen_data`` …), and
    the module is registered in ``sys.modules`` before it runs because dataclasses look their
    module up there.
    """
    if name in sys.modules:
        return sys.modules[name]
    if str(BENCHES) not in sys.path:
        sys.path.insert(0, str(BENCHES))
    spec = importlib.util.spec_from_file_location(name, BENCHES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"benches/{name}.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
