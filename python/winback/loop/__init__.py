"""The daily win-back loop (docs/loop.md): a declarative pipeline whose state lives in a
database.

- ``config``: the TOML config (``winback run --config``), validated up front into a
  :class:`LoopConfig`; the commented example ``winback init`` writes;
- ``schema``: the state tables (SQLAlchemy Core), the ordered migrations, the engine;
- ``pipeline``: :class:`Pipeline` and its daily run (:class:`RunResult`), the evaluation of
  campaigns whose windows have ended;
- ``crm``: the CRM's contacts and outcomes CSV, checked and imported once;
- ``messages``: templates per strategy and channel, checked and rendered in Jinja2's sandbox
  into the day's outbox; ``templates/``: the bundled example sets (``en``, ``zh``);
- ``silence_words``: the silence in words, English and Chinese;
- ``simulate``: simulated responses with a planted uplift, for trying the loop.

SQLAlchemy and Jinja2 are optional dependencies (``pip install winback[loop]``): only ``schema``
imports SQLAlchemy at module level, ``messages`` imports Jinja2 inside its functions, and the
pipeline imports ``schema`` when a run starts, so ``import winback`` needs neither.
"""

from __future__ import annotations

from winback.loop.config import EXAMPLE_CONFIG, LoopConfig, load_config, parse_config
from winback.loop.pipeline import Pipeline, RunResult

__all__ = ["EXAMPLE_CONFIG", "LoopConfig", "Pipeline", "RunResult", "load_config", "parse_config"]
