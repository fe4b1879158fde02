"""The report's back-test section (docs/methods.md#backtest): opt-in, the metrics of
``winback.backtest`` per horizon and method, and valid Vega-Lite reliability plots."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import winback
from winback.datasets import load_cdnow


@pytest.fixture(scope="module")
def small_cdnow() -> pl.DataFrame:
    return load_cdnow().filter(pl.col("customer_id") <= 1200)


def test_the_section_is_left_out_unless_asked_for(small_cdnow: pl.DataFrame) -> None:
    page = winback.report(small_cdnow, models=(), as_of="1998-06-30")
    assert "backtest" not in page.sections
    assert page.skipped["backtest"].startswith("not asked for: pass backtest=N")


def test_the_section_shows_the_back_tests_metrics(
    small_cdnow: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema.core import load_schema

    from winback.report._registry import _REGISTRY, Section

    bodies: list[Any] = []
    registered = _REGISTRY["backtest"]

    def capture(ctx: Any) -> Any:
        body = registered.build(ctx)
        bodies.append(body)
        return body

    monkeypatch.setitem(
        _REGISTRY,
        "backtest",
        Section(registered.key, registered.title, registered.order, registered.requires, capture),
    )
    page = winback.report(small_cdnow, models=(), as_of="1998-06-30", backtest=["1998-03-31"])
    assert "backtest" in page.sections
    (body,) = bodies
    table = body.tables[0].frame
    want = winback.backtest(small_cdnow, origins=["1998-03-31"], as_of="1998-06-30").summary
    want = want.filter(pl.col("note").is_null())
    assert table.get_column("method").to_list() == want.get_column("method").to_list()
    assert table.get_column("horizon").to_list() == want.get_column("horizon").to_list()
    for column, title in (
        ("pooled_total_error", "pooled total error"),
        ("rmse", "RMSE"),
        ("spearman", "Spearman"),
        ("top_decile_capture", "top-decile capture"),
        ("brier", "Brier"),
    ):
        got = table.get_column(title).to_list()
        expected = [None if v is None else round(v, 4) for v in want.get_column(column).to_list()]
        assert got == pytest.approx(expected, abs=1e-12, nan_ok=True)
    # One reliability plot per horizon, each a valid Vega-Lite spec.
    assert len(body.charts) == 2
    schema = load_schema()
    for chart, caption in body.charts:
        assert caption.startswith("Reliability of P(active)")
        spec = chart.to_dict()
        validate_jsonschema(spec, schema, rootschema=schema)


@pytest.mark.parametrize("backtest", [0, -2, True])
def test_bad_origins_are_config_errors(small_cdnow: pl.DataFrame, backtest: Any) -> None:
    with pytest.raises(winback.WinbackConfigError, match="backtest="):
        winback.report(small_cdnow, models=(), backtest=backtest)
