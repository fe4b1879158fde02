"""Engagement events beside purchases (docs/methods.md#events): an optional events table
(customer, time, event type, optional item) read through the transactions' input edge.

- :func:`prepare_events` → :class:`PreparedEvents` (read and checked once);
- :func:`silence`: silence scores over any chosen event types (the Rust silence kernel);
  :func:`compare`: purchase silence next to engagement silence, per customer;
- :func:`funnel_stage`: each customer's furthest funnel stage in a window; :func:`funnel`:
  conversion per segment;
- :func:`paths`: the weeks before ``as_of`` of customers who went silent against those who
  did not, with a significance test per event type and transition (Holm-adjusted).
"""

from __future__ import annotations

from winback.events._funnel import FUNNEL_COLUMNS, STAGE_COLUMNS, funnel, funnel_stage
from winback.events._input import PreparedEvents, prepare_events
from winback.events._paths import DIFFERENCE_COLUMNS, OUTCOME_LABELS, EventPaths, paths
from winback.events._silence import (
    COMPARE_COLUMNS,
    EVENT_SILENCE_COLUMNS,
    PATTERN_LABELS,
    compare,
    silence,
)

__all__ = [
    "COMPARE_COLUMNS",
    "DIFFERENCE_COLUMNS",
    "EVENT_SILENCE_COLUMNS",
    "FUNNEL_COLUMNS",
    "OUTCOME_LABELS",
    "PATTERN_LABELS",
    "STAGE_COLUMNS",
    "EventPaths",
    "PreparedEvents",
    "compare",
    "funnel",
    "funnel_stage",
    "paths",
    "prepare_events",
    "silence",
]
