"""winback: find customers going silent, say how silent they are, and win them back.

The public API (docs/methods.md): :func:`silence` scores every customer's silence
(docs/methods.md#silence) and :func:`migration` follows customers between snapshots
(docs/methods.md#migration).
"""

from __future__ import annotations

from winback import events  # engagement events (docs/methods.md#events)
from winback._io.prepared import PreparedTransactions, prepare
from winback._version import __version__
from winback.backtest import BacktestResult, backtest
from winback.campaign import campaign
from winback.errors import (
    WinbackConfigError,
    WinbackError,
    WinbackFitError,
    WinbackInputError,
    WinbackWarning,
)
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
