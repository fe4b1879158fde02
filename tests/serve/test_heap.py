"""The service settles its heap at start-up (winback.serve.app.settle_heap): the objects loaded
by then sit in the garbage collector's permanent generation, so a full collection under load
does not walk them (benches/README.md, "this session (serve15c)")."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

pytest.importorskip("starlette")

from winback.serve import create_app
from winback.serve.config import ServeConfig


def test_start_up_freezes_what_is_loaded(model_dir: Path) -> None:
    app = create_app(ServeConfig(models=str(model_dir)))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    async def start_and_stop() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    try:
        frozen = asyncio.run(start_and_stop())
        # the modules, the app and its models: tens of thousands of tracked objects at least
        assert frozen > 10_000
    finally:
        gc.unfreeze()
