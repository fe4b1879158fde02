"""`winback.value` on one or two threads and any chunk size of the threaded work: the same bits
(docs/methods.md#determinism); and the panel is let go of once the chain has read it, unless a
headline forecast reads it again."""

from __future__ import annotations

import gc
import importlib
import weakref
from typing import Any

import polars as pl
import pytest

import winback

# ``winback.value`` is the function: the modules are imported by name.
engine = importlib.import_module("winback.value.engine")
forecast = importlib.import_module("winback.value.forecast")


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    from winback.datasets import load_cdnow

    return load_cdnow().filter(pl.col("customer_id") <= 2500)


def test_value_same_bits_on_one_or_two_threads_and_small_chunks(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CDNOW's 2,500 customers fit in one default chunk: small chunks make the pool split the
    # special functions and the cells' loop into many pieces, run on one or two threads.
    frames = {}
    for chunk in (forecast._CHUNK, 211):
        monkeypatch.setattr(forecast, "_CHUNK", chunk)
        for threads in ("1", "2"):
            monkeypatch.setenv("WINBACK_NUM_THREADS", threads)
            frames[chunk, threads] = winback.value(tx, as_of="1998-06-30").frame
    reference = frames[next(iter(frames))]
    assert reference.height > 2000
    differing = [key for key, frame in frames.items() if not frame.equals(reference)]
    assert not differing, f"different bits for (chunk, threads) = {differing}"


def _panel_alive_after_chain(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, as_of: str = "1998-06-30", **kwargs: Any
) -> tuple[bool, bool]:
    """(the panel still alive once the chain's rows are read from it, some customer not
    modelled)."""
    seen: list[bool] = []
    real = engine.chain_rows

    def spy(panel: pl.DataFrame, **kw: Any) -> Any:
        ref = weakref.ref(panel)
        out = real(panel, **kw)
        del panel
        gc.collect()
        seen.append(ref() is not None)
        return out

    monkeypatch.setattr(engine, "chain_rows", spy)
    result = winback.value(tx, as_of=as_of, **kwargs)
    assert len(seen) == 1
    return seen[0], bool((result.frame.get_column("status") == "not_modelled").any())


def test_default_forecast_frees_the_panel_once_the_chain_has_read_it(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _panel_alive_after_chain(tx, monkeypatch) == (False, False)


def test_not_every_customer_modelled_frees_the_panel_too(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as_of inside March 1997: the customers born in it are not modelled (the filtered panel).
    assert _panel_alive_after_chain(tx, monkeypatch, as_of="1997-03-20") == (False, True)


def test_headline_forecast_keeps_the_panel(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _panel_alive_after_chain(tx, monkeypatch, forecast="dropout") == (True, False)
