"""winback: find customers going silent, say how silent they are, and win them back.

The public API (SPEC.md): :func:`silence` scores every customer's silence (SPEC §2) and
:func:`migration` follows customers between snapshots (SPEC §3).
"""

from __future__ import annotations

from winback.errors import WinbackConfigError, WinbackError, WinbackFitError, WinbackInputError
from winback.migrate import Migration, migration
from winback.report import Report, report  # Altair and vl-convert load on first use
from winback.silence import SilenceInfo, silence
from winback.summary import SummaryInfo, compress_summary, summary
from winback.value import ValueResult, value

__version__ = "0.1.0"

__all__ = [
    "Migration",
    "Report",
    "SilenceInfo",
    "SummaryInfo",
    "ValueResult",
    "WinbackConfigError",
    "WinbackError",
    "WinbackFitError",
    "WinbackInputError",
    "__version__",
    "compress_summary",
    "migration",
    "report",
    "silence",
    "summary",
    "value",
]
