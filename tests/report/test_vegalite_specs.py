"""The report builds its Vega-Lite specs without Altair (``winback.report._vegalite``, for a
faster ``winback report``); Altair stays the reference: every chart of every section, and each
construct the builder mirrors, must give the spec Altair's ``to_dict`` gives, key for key and in
the same key order (the page's JSON is byte for byte what it was with Altair)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from types import ModuleType, SimpleNamespace
from typing import Any

import altair
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winback
from tests.benches import load_bench
from winback.datasets import load_cdnow
from winback.report import _vegalite as vl

SECTIONS = (
    "common",
    "silence",
    "cold_start",
    "rfm",
    "migration",
    "value",
    "models",
    "funnels",
    "backtest",
    "scorecards",
)


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"winback.report._sections.{name}") for name in SECTIONS]


def _with_altair(monkeypatch: pytest.MonkeyPatch, build: Callable[[], str]) -> tuple[str, str]:
    """``build()`` with the spec builder, then with Altair in its place in every section."""
    mine = build()
    with monkeypatch.context() as patch:
        for module in _modules():
            assert module.vl is vl  # every section draws with the builder
            patch.setattr(module, "vl", altair)
        reference = build()
    return mine, reference


def _page(data: pl.DataFrame, **kwargs: Any) -> Callable[[], str]:
    """The page's chart specs (its tables are not drawn by Altair; some tie orders vary)."""

    def build() -> str:
        page = winback.report(data, **kwargs).html
        found = re.search(r'<script type="application/json" id="wb-specs">(.*?)</script>', page)
        assert found is not None
        return found.group(1)

    return build


def test_the_versions_are_altairs() -> None:
    assert vl.VEGALITE_VERSION == altair.VEGALITE_VERSION
    assert vl.SCHEMA_URL == altair.SCHEMA_URL


def test_the_cdnow_page_is_the_page_altair_made(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every default section on a part of CDNOW, and the back-test's two-frame layers.
    tx = load_cdnow().filter(pl.col("customer_id") <= 1500)
    build = _page(tx, as_of="1998-06-30", backtest=["1998-03-31"])
    mine, reference = _with_altair(monkeypatch, build)
    assert mine.count('"$schema"') >= 10
    assert '"layer"' in mine
    assert "chart-backtest-" in mine
    assert mine == reference


def test_the_funnel_charts_are_altairs(monkeypatch: pytest.MonkeyPatch) -> None:
    tx, ev = load_bench("gen_events").generate_pair(400, seed=5)
    mine, reference = _with_altair(monkeypatch, _page(tx, models=(), events=ev))
    assert "chart-funnels-" in mine
    assert mine == reference


def test_the_faceted_scorecard_chart_is_altairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.loop.test_report_scorecards import hand_cards, two_periods
    from winback.report._html import _spec
    from winback.report._sections.scorecards import scorecard_section

    def build() -> str:
        specs: list[dict[str, Any]] = []
        for cards in (hand_cards(), two_periods()):
            ctx = SimpleNamespace(params=SimpleNamespace(scorecards=cards))
            body = scorecard_section(ctx)  # type: ignore[arg-type]
            specs.extend(_spec(chart) for chart, _ in body.charts)
        return json.dumps(specs)

    mine, reference = _with_altair(monkeypatch, build)
    assert '"facet"' in mine
    assert mine == reference


def _same(chart: Callable[[Any], Any]) -> dict[str, Any]:
    ours, theirs = chart(vl).to_dict(), chart(altair).to_dict(validate=False)
    assert json.dumps(ours) == json.dumps(theirs)
    return dict(ours)


def test_dates_times_and_nulls_are_written_as_altair_writes_them() -> None:
    frame = pl.DataFrame(
        {
            "day": [date(2024, 1, 31), None],
            "at": [datetime(2024, 1, 31, 12, 30, 5, 250), datetime(2024, 2, 1)],
            "label": ["a", None],
            "n": [1, 2],
            "x": [0.1, float("nan")],
        }
    )

    spec = _same(
        lambda alt: (
            alt.Chart(frame)
            .mark_line(point=True, strokeDash=[4, 2])
            .encode(
                x=alt.X("day:T", title=None).axis(format="%b"),
                y=alt.Y("x:Q").scale(type="symlog", domain=[0, 1]),
                color=alt.Color("label:N", legend=None, sort=["a"]),
                tooltip=["at:T", alt.Tooltip("n:Q", format=".0f")],
            )
            .properties(width=100)
        )
    )
    assert spec["datasets"][spec["data"]["name"]][0]["day"] == "2024-01-31T00:00:00"


def test_layers_share_one_frame_only_when_it_is_the_same_object() -> None:
    one = pl.DataFrame({"a": [1, 2], "b": [3.0, 4.5]})
    other = pl.DataFrame({"a": [1, 2], "b": [3.0, 4.5]})  # equal, but another object

    def layered(alt: Any, second: pl.DataFrame) -> Any:
        base = alt.Chart(one).encode(x=alt.X("a:O"), y=alt.Y("b:Q"))
        text = alt.Chart(second).mark_text(fontSize=9).encode(x=alt.X("a:O"), text=alt.Text("b:Q"))
        color = alt.ColorValue(**alt.condition("datum.b > 4", alt.value("white"), alt.value("red")))
        return (base.mark_rect() + text.encode(color=color)).properties(height=50, width=60)

    shared = _same(lambda alt: layered(alt, one))
    assert "data" in shared
    assert all("data" not in layer for layer in shared["layer"])
    apart = _same(lambda alt: layered(alt, other))
    assert "data" not in apart
    assert len(apart["datasets"]) == 1


def test_a_facet_and_an_x2_channel() -> None:
    frame = pl.DataFrame({"p": ["q1", "q2"], "s": [0.0, 1.0], "e": [1.0, 2.0], "m": ["u", "v"]})
    _same(
        lambda alt: (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("s:Q").bin("binned"),
                x2=alt.X2("e:Q"),
                xOffset=alt.XOffset("m:N", sort=["v", "u"]),
                y=alt.Y("e:Q"),
                strokeDash=alt.StrokeDash("m:N"),
            )
            .properties(width=80, height=40)
            .facet(column=alt.Column("p:N", title=None))
        )
    )


def test_what_the_builder_does_not_mirror_is_refused() -> None:
    frame = pl.DataFrame({"a": [1]})
    with pytest.raises(TypeError, match="give the type"):
        vl.X("a")
    with pytest.raises(TypeError, match="unsupported channel shorthand"):
        vl.Y("sum(a):Q")
    with pytest.raises(TypeError, match="unsupported chart properties"):
        vl.Chart(frame).mark_bar().properties(title="t").to_dict()
    with pytest.raises(ValueError, match="more than 5,000"):
        vl.Chart(pl.DataFrame({"a": range(5001)})).mark_bar().to_dict()
    with pytest.raises(altair.MaxRowsError):  # Altair refuses the same frame
        altair.Chart(pl.DataFrame({"a": range(5001)})).mark_bar().to_dict(validate=False)


def test_a_report_imports_no_altair() -> None:
    code = (
        "import sys, winback; from winback.datasets import load_cdnow; "
        "winback.report(load_cdnow().head(3000), as_of='1998-06-30', models=()); "
        "print(sorted(m for m in ('altair', 'jsonschema', 'narwhals') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@settings(max_examples=40, deadline=None)
@given(
    ints=st.lists(st.none() | st.integers(-(2**53), 2**53), min_size=0, max_size=12),
    floats=st.data(),
    texts=st.data(),
    title=st.text(max_size=20),
    angle=st.integers(-90, 90),
    shared=st.booleans(),
)
def test_any_frame_and_options_give_altairs_spec(
    ints: list[int | None],
    floats: st.DataObject,
    texts: st.DataObject,
    title: str,
    angle: int,
    shared: bool,
) -> None:
    n = len(ints)
    values = floats.draw(st.lists(st.none() | st.floats(width=64), min_size=n, max_size=n))
    labels = texts.draw(st.lists(st.none() | st.text(max_size=8), min_size=n, max_size=n))
    frame = pl.DataFrame(
        {"n": ints, "x": values, "label": labels},
        schema={"n": pl.Int64, "x": pl.Float64, "label": pl.String},
    )
    other = frame if shared else frame.head(max(n - 1, 0))

    def chart(alt: Any) -> Any:
        base = alt.Chart(frame).encode(
            x=alt.X("label:N", title=title, sort=[title]).axis(labelAngle=angle, grid=shared),
            y=alt.Y("x:Q").scale(type="linear", domain=[0, 1]),
        )
        text = alt.Chart(other).mark_text(fontSize=9).encode(text=alt.Text("n:Q", format=".0f"))
        tips = ["n:Q", alt.Tooltip("x:Q", format=".1%")]
        return (base.mark_rect().encode(tooltip=tips) + text).properties(
            width=120, height=angle + 91
        )

    _same(chart)
