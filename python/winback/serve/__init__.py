"""The HTTP scoring service (docs/serving.md#http): a Starlette app around the process's
:class:`winback.Scorer`, served by uvicorn (optional extra ``winback[serve]``).

- ``config``: :class:`Limits` and :class:`ServeConfig` (what a process is built from).
- ``problems``: RFC 9457 refusals (:class:`~winback.serve.problems.ProblemError`).
- ``json_body``, ``arrow_body``: the two request formats of ``POST /v1/score``.
- ``modelset``: the model set serving and its reload without downtime.
- ``observe``: the middleware (Prometheus metrics, JSON access log, concurrency limit,
  deadline).
- ``openapi``: the OpenAPI description.
- ``app``: :func:`create_app` (the routes), :func:`app_from_env` (the uvicorn factory) and
  :func:`run` (what ``winback serve`` calls).

Starlette, uvicorn and prometheus_client are imported only when an app is built or served, so
importing this package needs none of them.
"""

from __future__ import annotations

from winback.serve.app import app_from_env, create_app, run
from winback.serve.config import Limits, ServeConfig

__all__ = ["Limits", "ServeConfig", "app_from_env", "create_app", "run"]
