"""The daily win-back loop (docs/loop.md): a declarative pipeline whose state lives in a
database.

- ``config``: the TOML config (``winback run --config``), validated up front into a
  :class:`LoopConfig`; the commented example ``winback init`` writes;
- ``schema``: the state tables (SQLAlchemy Core), the ordered migrations, the engine;
- ``pipeline``: :class:`Pipeline` and its daily run (:class:`RunResult`).

SQLAlchemy is an optional dependency (``pip install winback[loop]``): only ``schema`` imports it
at module level, and the pipeline imports ``schema`` when a run starts, so ``import winback``
does not need it.
"""

from __future__ import annotations

from winback.loop.config import EXAMPLE_CONFIG, LoopConfig, load_config, parse_config
from winback.loop.pipeline import Pipeline, RunResult

__all__ = ["EXAMPLE_CONFIG", "LoopConfig", "Pipeline", "RunResult", "load_config", "parse_config"]
