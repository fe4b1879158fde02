"""The HTML report (docs/methods.md#outputs): built from the API's numbers, drawn by real headless
Chromium."""

from __future__ import annotations

import html
import re
import struct
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import winback
from tests.chromium import Rendered, render
from winback.datasets import load_cdnow
from winback.report import SectionBody, SkipSection, register_section, unregister_section

CAPABILITY_SECTIONS = {"rfm": "rfm", "quadrant": "quadrant", "value": "value", "markov": "value"}


@pytest.fixture(scope="module")
def cdnow_report(tmp_path_factory: pytest.TempPathFactory) -> winback.Report:
    path = tmp_path_factory.mktemp("report") / "cdnow.html"
    return winback.report(load_cdnow(), output=path, as_of="1998-06-30")


@pytest.fixture(scope="module")
def rendered(cdnow_report: winback.Report) -> Rendered:
    assert cdnow_report.path is not None
    return render(cdnow_report.path)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _assert_drawn(page: Rendered, tmp_path: Path) -> None:
    assert page.status.get("done"), f"charts never finished: {page.status}"
    assert page.console_errors == []
    assert page.exceptions == []
    # Self-contained: the page itself is the only thing loaded (no CDN, no fonts, no data files).
    assert all(url.startswith(("file:", "data:", "about:")) for url in page.requests), page.requests
    assert page.charts, "no chart containers"
    for chart in page.charts:
        assert chart["tag"] in ("svg", "canvas"), chart
        assert chart["width"] > 50, chart
        assert chart["height"] > 50, chart
        assert chart["marks"] > 0, chart
        assert chart["rendered"] == "true", chart
    assert page.status["rendered"] == page.status["charts"] == len(page.charts)
    shot = tmp_path / "screenshot.png"
    shot.write_bytes(page.screenshot)
    width, height = _png_size(page.screenshot)
    assert width == 1280
    assert height > 1500  # the whole page, not just the first screen


def test_report_renders_in_chromium(
    cdnow_report: winback.Report, rendered: Rendered, tmp_path: Path
) -> None:
    _assert_drawn(rendered, tmp_path)
    # TrF histogram + group sizes, S histogram + bands, migration heatmap, calibration plot, and
    # the RFM grid, quadrant scatter, Pareto curve and Markov heatmap where those capabilities
    # exist; in section order.
    ids = [chart["id"] for chart in rendered.charts]
    required = {
        "chart-trf-1",
        "chart-trf-2",
        "chart-silence_score-1",
        "chart-silence_score-2",
        "chart-migration-1",
        "chart-calibration-1",
    }
    for key in ("rfm", "quadrant", "value", "markov"):
        if key in cdnow_report.sections:
            required.add(f"chart-{key}-1")
    assert required <= set(ids)
    keys = [chart_id.removeprefix("chart-").rsplit("-", 1)[0] for chart_id in ids]
    assert keys == sorted(keys, key=cdnow_report.sections.index)
    for section in cdnow_report.sections:
        assert f'data-section="{section}"' in rendered.dom


def test_summary_table_equals_the_api(rendered: Rendered) -> None:
    scores, info = winback.silence(load_cdnow(), as_of="1998-06-30", return_info=True)
    status = dict(scores.get_column("status").cast(pl.String).value_counts().iter_rows())
    expected: dict[str, Any] = {
        "rows_read": info.rows_read,
        "rows_rejected": info.rows_rejected,
        "rows_after_as_of": info.rows_after_as_of,
        "rows_used": info.rows_used,
        "customers": info.customers,
        "scored": status.get("scored", 0),
        "single_purchase": status.get("single_purchase", 0),
        "below_min_occasions": status.get("below_min_occasions", 0),
        "first_purchase": scores.get_column("first_ts").min().isoformat(),  # type: ignore[union-attr]
        "last_purchase": scores.get_column("last_ts").max().isoformat(),  # type: ignore[union-attr]
        "as_of": "1998-06-30",
        "total_amount": round(scores.get_column("total_amount").sum(), 2),
    }
    shown = rendered.summary
    assert set(shown) == set(expected)
    for key, value in expected.items():
        text = shown[key].replace(",", "")
        if isinstance(value, int):
            assert int(text) == value, key
        elif isinstance(value, float):
            assert float(text) == pytest.approx(value, abs=0.005), key
        else:
            assert text == value, key
    # The published CDNOW counts, as a cross-check of the whole chain.
    assert shown["rows_read"] == "69,659"
    assert shown["customers"] == "23,570"


def test_report_figures_and_sections(cdnow_report: winback.Report) -> None:
    assert cdnow_report.figures["customers"] == 23_570
    assert cdnow_report.sections[:3] == ["summary", "trf", "silence_score"]
    for key in ("migration", "calibration", "activation", "parameters"):
        assert key in cdnow_report.sections
    for key, capability in CAPABILITY_SECTIONS.items():
        if hasattr(winback, capability):
            assert key in cdnow_report.sections or key in cdnow_report.skipped
        else:
            assert f"needs winback.{capability}" in cdnow_report.skipped[key]
            assert html.escape(cdnow_report.skipped[key]) in cdnow_report.html
    page = cdnow_report.html
    assert "<script src" not in page
    assert "<link" not in page
    assert page.count("<script") == 3  # Vega bundle, chart specs, render script: all inline
    assert 'src="http' not in page
    # Calibration vs holdout: the split the literature uses when halving CDNOW's 78 weeks.
    assert cdnow_report.parameters["calibration_end (models)"] == "1997-09-30"
    assert "Pareto/NBD" in page
    assert "BG/NBD" in page


def test_activation_list_shows_the_top_customers_to_contact(
    cdnow_report: winback.Report,
) -> None:
    """Issue 19: the list showed the first 25 targets by priority, all ``no_action`` with
    ``contact = false`` on CDNOW. It now lists customers to contact, by the rule it states."""
    from winback.report._context import call_capability
    from winback.report._sections import CAMPAIGN_ID, campaign_input
    from winback.report._sections.campaign import top_contacts

    section = re.search(r'<section id="sec-activation".*?</section>', cdnow_report.html, re.S)
    assert section is not None
    text = html.unescape(section.group(0))
    assert "ranked by predicted value" in text
    assert "descending, then by priority" in text
    ids = [int(c) for c in re.findall(r"<tr><td>(\d+)</td>", section.group(0))]
    assert len(ids) == 25

    # the same list from winback.campaign on the report's input
    ctx = _context(load_cdnow(), "1998-06-30")
    targets = call_capability(
        "campaign", campaign_input(ctx), campaign_id=CAMPAIGN_ID, start=ctx.as_of
    )
    top, _ = top_contacts(targets, 25)
    assert top.get_column("customer_id").to_list() == ids
    assert top.get_column("contact").all()
    assert (top.get_column("strategy").cast(pl.String) != "no_action").all()
    assert (top.get_column("arm").cast(pl.String) == "treatment").all()
    # the stated order: predicted value descending, then priority
    expected = (
        targets.filter(pl.col("contact"))
        .sort(["predicted_value", "priority"], descending=[True, False], nulls_last=True)
        .head(25)
    )
    assert top.equals(expected)
    values = top.get_column("predicted_value").to_list()
    assert values == sorted(values, reverse=True)
    # no contacted customer outside the list is worth more than the last one listed
    rest = targets.filter(pl.col("contact") & ~pl.col("customer_id").is_in(ids))
    assert rest.get_column("predicted_value").max() <= values[-1]


def test_top_contacts_without_a_predicted_value_follow_the_priority() -> None:
    from winback.report._sections.campaign import top_contacts

    targets = pl.DataFrame(
        {
            "customer_id": [5, 6, 7, 8],
            "priority": [1, 2, 3, 4],
            "contact": [False, True, True, True],
            "predicted_value": pl.Series([None] * 4, dtype=pl.Float64),
        }
    )
    top, rule = top_contacts(targets, 2)
    assert top.get_column("customer_id").to_list() == [6, 7]
    assert "priority order" in rule


def _context(data: Any, as_of: str) -> Any:
    from winback.report._context import ReportContext, ReportParameters

    scores, info = winback.silence(data, as_of=as_of, return_info=True)
    params = ReportParameters(
        as_of=as_of,
        previous_as_of=None,
        calibration_end=None,
        models=(),
        top_n=25,
        min_occasions=2,
        resolution="1d",
        trf_cuts=(0.4, 0.6, 0.8, 0.95),
        s_cuts=(1.0, 2.0),
        customer_col="customer_id",
        time_col="ts",
        amount_col="amount",
        on_invalid="raise",
        num_threads=None,
    )
    return ReportContext(data, params, scores, info)


def _small_sales() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3, 4, 4, 4, 4],
            "ts": [
                date(2024, 1, 1),
                date(2024, 2, 1),
                date(2024, 3, 1),
                date(2024, 1, 5),
                date(2024, 1, 20),
                date(2024, 2, 10),
                date(2024, 1, 2),
                date(2024, 1, 9),
                date(2024, 1, 16),
                date(2024, 5, 30),
            ],
            "amount": [10.0, 20.0, 30.0, 5.0, 5.0, 8.0, 1.0, 2.0, 3.0, 4.0],
        }
    )


def test_registered_sections_light_up_or_skip() -> None:
    def custom(ctx: Any) -> SectionBody:
        return SectionBody(text=f"{ctx.scores.height} customers here")

    def unavailable(ctx: Any) -> SectionBody:  # pragma: no cover - never called
        raise AssertionError("a section whose capability is missing must not run")

    def declines(ctx: Any) -> SectionBody:
        raise SkipSection("nothing to show for this data")

    register_section("custom", "Custom", order=95, requires=("silence",))(custom)
    register_section("future", "Future", order=96, requires=("no_such_feature",))(unavailable)
    register_section("declines", "Declines", order=97)(declines)
    try:
        page = winback.report(_small_sales(), models=(), as_of="2024-06-30")
    finally:
        for key in ("custom", "future", "declines"):
            unregister_section(key)
    assert "custom" in page.sections
    assert "4 customers here" in page.html
    assert page.skipped["future"] == (
        "needs winback.no_such_feature, which this version of winback does not have"
    )
    assert page.skipped["declines"] == "nothing to show for this data"
    assert page.skipped["calibration"] == "no models requested (models=())"


def _fake_rfm(data: Any, *, as_of: Any = None, customer_col: str = "customer_id") -> pl.DataFrame:
    scores = winback.silence(data, as_of=as_of, customer_col=customer_col)
    n = scores.height
    return scores.select("customer_id", "total_amount", "n_occasions").with_columns(
        r_score=pl.Series([(i % 5) + 1 for i in range(n)]),
        f_score=pl.Series([((i // 2) % 5) + 1 for i in range(n)]),
        m_score=pl.Series([((i // 3) % 5) + 1 for i in range(n)]),
        segment=pl.Series(["Champions", "At risk", "Lost", "New"] * (n // 4 + 1))[:n],
    )


def _fake_quadrant(scored: pl.DataFrame) -> pl.DataFrame:
    contribution = pl.col("total_amount")
    loyalty = pl.col("n_occasions").cast(pl.Float64)
    high_c = contribution >= contribution.median()
    high_l = loyalty >= loyalty.median()
    return scored.with_columns(
        contribution=contribution,
        loyalty=loyalty,
        quadrant=pl.when(high_c & high_l)
        .then(pl.lit("bee"))
        .when(high_c)
        .then(pl.lit("dragonfly"))
        .when(high_l)
        .then(pl.lit("butterfly"))
        .otherwise(pl.lit("mantis")),
    )


def _fake_value(data: Any, *, as_of: Any = None) -> pl.DataFrame:
    scores = winback.silence(data, as_of=as_of)
    value = scores.get_column("total_amount").fill_null(0.0)
    rank = value.rank("ordinal", descending=True)
    tier = (
        pl.when(rank <= 0.05 * len(value))
        .then(pl.lit("platinum"))
        .when(rank <= 0.2 * len(value))
        .then(pl.lit("gold"))
        .otherwise(pl.lit("bronze"))
    )
    return scores.select("customer_id").with_columns(
        expected_value=value, value_tier=pl.select(tier).to_series()
    )


def test_capability_sections_draw_when_the_capabilities_exist(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Stand-ins with docs/methods.md#rfm, #value column names, until issues 4 and 5 land the real
    # functions.
    for name, fake in (("rfm", _fake_rfm), ("quadrant", _fake_quadrant), ("value", _fake_value)):
        if not hasattr(winback, name):
            monkeypatch.setattr(winback, name, fake, raising=False)
    tx = load_cdnow().filter(pl.col("customer_id") <= 3000)
    page = winback.report(tx, output=tmp_path / "all.html", models=())
    for key in ("rfm", "quadrant", "value"):
        assert key in page.sections, page.skipped.get(key)
    assert page.path is not None
    drawn = render(page.path)
    _assert_drawn(drawn, tmp_path)
    ids = {chart["id"] for chart in drawn.charts}
    assert {"chart-rfm-1", "chart-quadrant-1", "chart-value-1"} <= ids


def test_rejected_rows_are_counted(tmp_path: Path) -> None:
    sales = _small_sales().with_columns(pl.col("customer_id").cast(pl.String))
    bad = pl.DataFrame(
        {"customer_id": [None, "9"], "ts": [date(2024, 1, 3), None], "amount": [1.0, 2.0]}
    )
    page = winback.report(pl.concat([sales, bad]), models=(), on_invalid="drop", as_of="2024-06-30")
    assert page.figures["rows_rejected"] == 2
    assert page.figures["rows_read"] == 12
    assert "Rejected rows by reason" in page.html
    with pytest.raises(winback.WinbackInputError, match="null customer id"):
        winback.report(pl.concat([sales, bad]), models=())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": "report.txt"}, r"output='report.txt' must be an \.html file"),
        ({"models": ("weibull",)}, r"models='weibull' is not one of bgnbd, mbgnbd, pareto"),
        ({"top_n": 0}, r"top_n=0 must be a positive integer"),
        ({"min_occasions": 0}, r"min_occasions=0 must be at least 1"),
        ({"as_of": "2023-01-01"}, r"as_of=2023-01-01 is before the first purchase \(2024-01-01\)"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(winback.WinbackConfigError, match=message):
        winback.report(_small_sales(), **kwargs)


def test_model_fit_failure_is_a_note_not_a_crash() -> None:
    # Nobody buys again before the calibration end: the models cannot be fitted.
    sales = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 1, 2],
            "ts": [
                date(2024, 1, 1),
                date(2024, 1, 2),
                date(2024, 1, 3),
                date(2024, 6, 1),
                date(2024, 6, 2),
            ],
        }
    )
    page = winback.report(sales, calibration_end="2024-02-01", models=("bgnbd",))
    assert "calibration" in page.skipped
    assert "no model could be fitted" in page.skipped["calibration"]


def test_import_winback_loads_no_chart_library() -> None:
    code = (
        "import sys, winback; "
        "print(sorted(m for m in ('altair', 'vl_convert') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_vega_bundle_is_built_offline_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from winback.report._html import vega_bundle

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bundle = vega_bundle.__wrapped__()  # past the in-process cache: a fresh machine's first report
    assert "window.vegaEmbed=" in bundle
    assert "</script" not in bundle
    cached = list((tmp_path / "winback").glob("vega-bundle-*.js"))
    assert len(cached) == 1
    assert vega_bundle.__wrapped__() == bundle  # read back from the cache


def test_the_page_is_the_same_on_every_run() -> None:
    """Deterministic output: two builds of one report differ only in the generation stamp (the
    Markov chart's rows came in group_by's varying order before)."""
    tx = load_cdnow()

    def page() -> str:
        built = winback.report(tx, as_of="1998-06-30", models=("bgnbd",)).html
        return re.sub(r"Made by winback [^<]*", "", built)

    first = page()
    assert "Markov" in first
    assert all(page() == first for _ in range(2))


def test_every_chart_spec_is_valid_vega_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    # The page builder does not validate the specs (it cost ~1 s a report): this test does, for
    # every chart of the CDNOW report, against the Vega-Lite schema Altair ships.
    import importlib

    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema.core import load_schema

    page = importlib.import_module("winback.report._html")
    specs: list[dict[str, Any]] = []
    build = page._spec

    def capture(chart: Any) -> dict[str, Any]:
        spec = build(chart)
        specs.append(spec)
        return spec

    monkeypatch.setattr(page, "_spec", capture)
    winback.report(load_cdnow(), as_of="1998-06-30")
    assert len(specs) >= 5
    schema = load_schema()
    for spec in specs:
        validate_jsonschema(spec, schema, rootschema=schema)
