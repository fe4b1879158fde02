"""The HTTP scoring service (docs/serving.md#http): a Starlette app around one
:class:`winback.Scorer`, served by uvicorn (optional extra ``winback[serve]``).

- ``app``: :func:`create_app` (the routes, request validation into RFC 9457 problem bodies,
  JSON-safe answers), :class:`Limits`, :func:`app_from_env` (the uvicorn factory) and
  :func:`run` (what ``winback serve`` calls).

Starlette and uvicorn are imported only when an app is built or served, so importing this
package needs neither.
"""

from __future__ import annotations

from winback.serve.app import Limits, ServeConfig, app_from_env, create_app, run

__all__ = ["Limits", "ServeConfig", "app_from_env", "create_app", "run"]
