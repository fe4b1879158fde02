"""The ``winback`` command line: a thin layer over the public functions.

Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 anything else.
Errors print one line (``--debug`` shows the traceback).

- ``_app``: the Typer app, the global --debug/--quiet/--mkdir/--no-csv-guard options, ``main``,
  the exit codes and the translation of the library's keyword advice into flags;
- ``_common``: option types (the reading flags defined once), reading the input once, output
  checks before the work, output writing (CSV formula guard), tables and progress;
- ``score``: ``winback score`` and ``winback migrate``;
- ``fit``: ``winback fit``;
- ``value``: ``winback value``;
- ``backtest``: ``winback backtest``;
- ``campaign``: ``winback segment``, ``winback campaign`` and ``winback evaluate``;
- ``recommend``: ``winback recommend`` (products per customer);
- ``report``: ``winback report`` and ``winback demo``;
- ``run``: ``winback run``, ``winback init`` and ``winback contacts import`` (the daily loop);
- ``serve``: ``winback serve`` (the HTTP scoring service).
"""

from __future__ import annotations

# isort: off
from winback.cli._app import app, main

# Each command module registers its commands on ``app`` when imported: this order is the order
# of ``winback --help``.
import winback.cli.score
import winback.cli.fit
import winback.cli.value
import winback.cli.backtest
import winback.cli.campaign
import winback.cli.recommend
import winback.cli.report
import winback.cli.run
import winback.cli.serve  # noqa: F401 - imported to register its commands

# isort: on

__all__ = ["app", "main"]
