"""The report's engagement section (docs/methods.md#events): shown when an events table is
given, skipped with its reason otherwise."""

from __future__ import annotations

from datetime import date

import polars as pl

import winback
from tests.benches import load_bench
from winback._options import ENGAGEMENT_TYPES, S_CUTS, TRF_CUTS
from winback.report._context import ReportContext, ReportParameters
from winback.report._sections.funnels import funnels_section


def test_funnels_section_with_generated_events() -> None:
    tx, ev = load_bench("gen_events").generate_pair(1_500, seed=2)  # type: ignore[attr-defined]
    params = ReportParameters(
        as_of=None,
        previous_as_of=None,
        calibration_end=None,
        models=(),
        top_n=25,
        min_occasions=2,
        resolution="1d",
        trf_cuts=TRF_CUTS,
        s_cuts=S_CUTS,
        customer_col="customer_id",
        time_col="ts",
        amount_col="amount",
        on_invalid="raise",
        num_threads=None,
        events=ev,
        engagement_types=ENGAGEMENT_TYPES,
    )
    scores, info = winback.silence(tx, return_info=True)
    body = funnels_section(ReportContext(tx, params, scores, info))
    assert len(body.charts) == 3  # patterns, funnel by group, paths
    patterns = body.tables[0].frame
    # every customer of either input once: the purchasers and the visitors/viewers
    engaged = ev.filter(pl.col("event").is_in(list(ENGAGEMENT_TYPES))).get_column("customer_id")
    union = set(tx.get_column("customer_id").to_list()) | set(engaged.to_list())
    assert int(patterns.get_column("customers").sum()) == len(union)
    mix = body.tables[1].frame
    assert set(mix.get_column("outcome").to_list()) == {"went_silent", "stayed"}
    # the significance table (docs/methods.md#paths-significance): the planted browse-without-
    # cart tail shows as a significant view → cart row
    assert len(body.tables) == 3
    differences = body.tables[2]
    assert "Holm" in differences.caption
    rows = {r["behaviour"]: r for r in differences.frame.iter_rows(named=True)}
    assert rows["view → cart"]["significant"]
    assert rows["view → cart"]["silent_share"] < rows["view → cart"]["stayed_share"]


def test_funnels_section_skipped_without_events() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5), date(2024, 3, 1)],
        }
    )
    page = winback.report(tx, models=(), as_of="2024-06-30")
    assert page.skipped["funnels"] == "no events table given (events=...)"
    ev = tx.with_columns(pl.lit("visit").alias("event"))
    shown = winback.report(tx, models=(), as_of="2024-06-30", events=ev)
    assert "funnels" in shown.sections


def test_funnels_charts_are_valid_vega_lite() -> None:
    import importlib

    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema.core import load_schema

    page = importlib.import_module("winback.report._html")
    tx, ev = load_bench("gen_events").generate_pair(400, seed=5)  # type: ignore[attr-defined]
    built = winback.report(tx, models=(), events=ev)
    assert "funnels" in built.sections, built.skipped.get("funnels")
    params = ReportParameters(
        as_of=None,
        previous_as_of=None,
        calibration_end=None,
        models=(),
        top_n=25,
        min_occasions=2,
        resolution="1d",
        trf_cuts=TRF_CUTS,
        s_cuts=S_CUTS,
        customer_col="customer_id",
        time_col="ts",
        amount_col="amount",
        on_invalid="raise",
        num_threads=None,
        events=ev,
        engagement_types=ENGAGEMENT_TYPES,
    )
    scores, info = winback.silence(tx, return_info=True)
    body = funnels_section(ReportContext(tx, params, scores, info))
    schema = load_schema()
    for chart, _ in body.charts:
        spec = page._spec(chart)
        validate_jsonschema(spec, schema, rootschema=schema)
