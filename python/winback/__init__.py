"""winback: find customers going silent, say how silent they are, and win them back.

The public API (docs/methods.md): :func:`silence` scores every customer's silence
(docs/methods.md#silence) and :func:`migration` follows customers between snapshots
(docs/methods.md#migration).

Importing the package is cheap: each public name is imported from its room on first use
(PEP 562), so ``import winback`` and the command line load NumPy, SciPy, Numba and the models
only when a call needs them (``tests/test_lazy_import.py`` checks it).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

from winback._version import __version__
from winback.errors import (
    WinbackConfigError,
    WinbackError,
    WinbackFitError,
    WinbackInputError,
    WinbackWarning,
)

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and readers
    from winback import events  # engagement events (docs/methods.md#events)
    from winback._io.prepared import PreparedTransactions, prepare
    from winback.backtest import BacktestResult, backtest
    from winback.campaign import campaign
    from winback.evaluation import Evaluation, evaluate
    from winback.events import PreparedEvents, prepare_events
    from winback.lapse import LapseModel, lapse, lapse_snapshots
    from winback.loop import Pipeline  # SQLAlchemy loads when a run starts
    from winback.migrate import Migration, migration
    from winback.preload import preload
    from winback.recommend import recommend
    from winback.report import Report, report  # Altair and vl-convert load on first use
    from winback.rfm import quadrant, rfm
    from winback.scorer import Scorer
    from winback.segments import RuleSet, classify, load_rules
    from winback.silence import SilenceInfo, silence
    from winback.summary import SummaryInfo, compress_summary, summary
    from winback.value import ValueResult, value

#: Public name → the module that defines it (imported on first access of the name).
_LAZY: dict[str, str] = {
    "PreparedTransactions": "winback._io.prepared",
    "prepare": "winback._io.prepared",
    "BacktestResult": "winback.backtest",
    "backtest": "winback.backtest",
    "campaign": "winback.campaign",
    "Evaluation": "winback.evaluation",
    "evaluate": "winback.evaluation",
    "PreparedEvents": "winback.events",
    "prepare_events": "winback.events",
    "LapseModel": "winback.lapse",
    "lapse": "winback.lapse",
    "lapse_snapshots": "winback.lapse",
    "Pipeline": "winback.loop",
    "Migration": "winback.migrate",
    "migration": "winback.migrate",
    "preload": "winback.preload",
    "recommend": "winback.recommend",
    "Report": "winback.report",
    "report": "winback.report",
    "quadrant": "winback.rfm",
    "rfm": "winback.rfm",
    "Scorer": "winback.scorer",
    "RuleSet": "winback.segments",
    "classify": "winback.segments",
    "load_rules": "winback.segments",
    "SilenceInfo": "winback.silence",
    "silence": "winback.silence",
    "SummaryInfo": "winback.summary",
    "compress_summary": "winback.summary",
    "summary": "winback.summary",
    "ValueResult": "winback.value",
    "value": "winback.value",
}


class _Package(types.ModuleType):
    """The package's module type: the public functions keep their names when their room loads.

    Importing a submodule sets it as an attribute of its package; where a function is named
    like its room (``winback.value``, ``winback.report``, ``winback.silence`` …) that would
    replace the function by the module. The function stays: the module is not stored, and the
    name resolves through :func:`__getattr__`.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY:
            return
        super().__setattr__(name, value)


def _load(name: str) -> Any:
    """Imports a public name from its room and keeps it in the package (PEP 562)."""
    if name in _LAZY:
        found: Any = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
        # A room or subpackage (``winback.events``, ``winback.models`` …), as the eager imports
        # used to leave them on the package.
        found = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all
    __getattr__ = _load


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


sys.modules[__name__].__class__ = _Package

__all__ = [
    "BacktestResult",
    "Evaluation",
    "LapseModel",
    "Migration",
    "Pipeline",
    "PreparedEvents",
    "PreparedTransactions",
    "Report",
    "RuleSet",
    "Scorer",
    "SilenceInfo",
    "SummaryInfo",
    "ValueResult",
    "WinbackConfigError",
    "WinbackError",
    "WinbackFitError",
    "WinbackInputError",
    "WinbackWarning",
    "__version__",
    "backtest",
    "campaign",
    "classify",
    "compress_summary",
    "evaluate",
    "events",
    "lapse",
    "lapse_snapshots",
    "load_rules",
    "migration",
    "preload",
    "prepare",
    "prepare_events",
    "quadrant",
    "recommend",
    "report",
    "rfm",
    "silence",
    "summary",
    "value",
]
