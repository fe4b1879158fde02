"""Next-period value, cost and expense, the Markov chain and CLV (docs/methods.md#value, #markov):
:func:`value` and what it returns.

Modules, each importing only those above it:

- ``result``: :class:`ValueResult`, :class:`ValueInfo`, :class:`MarkovChain`, the frame's
  columns and the tier names;
- ``panel``: reading the input, the customer × period panel (with costs and expenses), spend
  bins and per-customer aggregates;
- ``tiers``, ``margins``: the value tiers and the margin and expense rules
  (docs/methods.md#value-tiers, #margin, #expense);
- ``forecast``: the NBD and Gamma–Gamma next-period predictives and P(alive);
- ``markov``: the recency chain and its Dirichlet weight κ (docs/methods.md#markov);
- ``engine``: model fits, forecasts, rules, chain and CLV into a :class:`ValueResult`;
- ``dropout``: the periodic BG/NBD (docs/methods.md#periodic-bg-nbd);
- ``stacked``: the stacked trees fitted by rolling origin (docs/methods.md#stacked-forecast);
- ``headline``: ``forecast=`` — their columns, ``forecast_amount`` and the choice of
  ``"auto"`` (docs/methods.md#headline-forecast);
- ``api``: :func:`value` (argument checks, the panel, then ``engine`` — and ``headline`` when
  ``forecast`` is not ``"nbd"`` — on first use).
"""

from __future__ import annotations

from winback.value.api import value
from winback.value.result import (
    DEFAULT_TIERS,
    VALUE_COLUMNS,
    MarkovChain,
    ValueInfo,
    ValueResult,
)

__all__ = ["DEFAULT_TIERS", "VALUE_COLUMNS", "MarkovChain", "ValueInfo", "ValueResult", "value"]
