"""The report's cold-start section (docs/methods.md#cold-start): the customers below the minimum,
counted as silence counts them, by population TrF group; skipped when there are none."""

from __future__ import annotations

from datetime import date

import polars as pl

import winback
from winback._options import S_CUTS, TRF_CUTS
from winback.datasets import load_cdnow
from winback.report._context import ReportContext, ReportParameters
from winback.report._sections.cold_start import cold_start_section


def test_cold_start_section_counts_the_customers_below_the_minimum() -> None:
    tx = load_cdnow().filter(pl.col("customer_id") <= 3000)
    params = ReportParameters(
        as_of="1998-06-30",
        previous_as_of=None,
        calibration_end=None,
        models=(),
        top_n=25,
        min_occasions=3,
        resolution="1d",
        trf_cuts=TRF_CUTS,
        s_cuts=S_CUTS,
        customer_col="customer_id",
        time_col="ts",
        amount_col="amount",
        on_invalid="raise",
        num_threads=None,
    )
    scores, info = winback.silence(tx, as_of="1998-06-30", min_occasions=3, return_info=True)
    body = cold_start_section(ReportContext(tx, params, scores, info))
    # counted independently: customers with fewer than 3 distinct purchase days
    days = tx.group_by("customer_id").agg(pl.col("ts").dt.date().n_unique().alias("days"))
    below = days.filter(pl.col("days") < 3).height
    single = days.filter(pl.col("days") == 1).height
    assert f"{below:,} customers" in body.text
    assert f"({single:,} bought once)" in body.text
    table = body.tables[0].frame
    assert table.get_column("group").to_list() == ["a", "b", "c", "d", "e"]
    assert int(table.get_column("customers").sum()) == below


def test_cold_start_section_skipped_when_everyone_is_scored() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5), date(2024, 3, 1)],
        }
    )
    page = winback.report(tx, models=(), as_of="2024-06-30")
    assert page.skipped["cold_start"] == "every customer has 2 or more purchase occasions"
