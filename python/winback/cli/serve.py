"""``winback serve``: the HTTP scoring service (docs/serving.md#http) on a model directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from winback._options import (
    SERVE_MAX_BODY_BYTES,
    SERVE_MAX_CONCURRENCY,
    SERVE_MAX_CUSTOMERS,
    SERVE_MAX_PURCHASES,
    SERVE_TIMEOUT_S,
)
from winback.cli._app import app
from winback.errors import WinbackConfigError

__all__ = ["serve"]


@app.command()
def serve(
    models: Annotated[
        Path, typer.Option("--models", help="Directory of model files (winback fit -o DIR).")
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    rules: Annotated[
        str, typer.Option(help="Strategy rules: a preset name or a .toml file.")
    ] = "strategy",
    value: Annotated[
        Path | None,
        typer.Option(help="JSON file of value settings (horizon, period, margin, …)."),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body in bytes (larger: 413).")
    ] = SERVE_MAX_BODY_BYTES,
    max_customers: Annotated[
        int, typer.Option(help="Most customers per request (more: 413).")
    ] = SERVE_MAX_CUSTOMERS,
    max_purchases: Annotated[
        int, typer.Option(help="Most purchases per customer (more: 413).")
    ] = SERVE_MAX_PURCHASES,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a request may take, upload included (slow upload: 408; slow score: 503)."
        ),
    ] = SERVE_TIMEOUT_S,
    max_concurrency: Annotated[
        int, typer.Option(help="Requests served at once (more: 503 with Retry-After).")
    ] = SERVE_MAX_CONCURRENCY,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="WINBACK_ADMIN_TOKEN",
            show_envvar=True,
            help="Turns on POST /v1/admin/reload for 'Authorization: Bearer <token>' (prefer the "
            "environment variable: a flag shows in the process list).",
        ),
    ] = None,
    preload: Annotated[
        bool,
        typer.Option(
            "--preload",
            help="Load (or compile and cache) the model and value kernels in each server "
            "process before it reports ready, so the first requests start warm "
            "(docs/serving.md#start-up).",
        ),
    ] = False,
) -> None:
    """Serve the models over HTTP: POST /v1/score (JSON or Arrow IPC), GET /v1/models,
    /healthz, /readyz, /metrics, /openapi.json. SIGHUP reloads the models (the old ones keep
    serving if the new ones are refused).

    Example: winback serve --models models/ --port 8000
    """
    from winback.serve import Limits, ServeConfig, run

    settings: dict[str, Any] | None = None
    if value is not None:
        try:
            settings = json.loads(value.read_text())
        except (OSError, ValueError) as exc:
            raise WinbackConfigError(f"--value {str(value)!r}: cannot read JSON ({exc})") from None
        if not isinstance(settings, dict):
            raise WinbackConfigError(f"--value {str(value)!r} must hold a JSON object")
    config = ServeConfig(
        models=str(models),
        rules=rules,
        value=settings,
        limits=Limits(
            max_body_bytes=max_body_bytes,
            max_customers=max_customers,
            max_purchases=max_purchases,
            timeout_s=timeout,
            max_concurrency=max_concurrency,
        ),
    )
    run(
        config,
        host=host,
        port=port,
        workers=workers,
        admin_token=admin_token,
        preload=preload,
    )
