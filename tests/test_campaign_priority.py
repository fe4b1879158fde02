"""The campaign's priority options (docs/methods.md#priority, #priority-blend): p_lapse × value
and the weighted blend, against orders worked out by hand; the default order untouched."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

import winback
from winback.errors import WinbackConfigError, WinbackInputError


@pytest.fixture(scope="module")
def scored() -> pl.DataFrame:
    # Five customers, each with two purchases 10 days apart and silent since (S ≥ 1: all
    # targeted by the default rule), amounts 10 … 50 by id.
    ids, ts, amounts = [], [], []
    for c in range(1, 6):
        ids += [c, c]
        ts += [date(2024, 1, c), date(2024, 1, 10 + c)]
        amounts += [5.0 * c, 5.0 * c]
    tx = pl.DataFrame({"customer_id": ids, "ts": ts, "amount": amounts})
    frame = winback.silence(tx, as_of=date(2024, 3, 1))
    return frame.with_columns(
        pl.Series("p_lapse", [0.9, 0.2, 0.5, 0.8, 0.1]),
        pl.Series("expert", [1.0, 5.0, 2.0, 4.0, 3.0]),
    )


def order(targets: pl.DataFrame) -> list[int]:
    return targets.sort("priority").get_column("customer_id").to_list()


def test_lapse_value_orders_by_the_product(scored: pl.DataFrame) -> None:
    targets = winback.campaign(scored, campaign_id="x", priority="lapse_value", holdout=0)
    # p_lapse × total_amount (10, 20, 30, 40, 50): 9, 4, 15, 32, 5
    assert order(targets) == [4, 3, 1, 5, 2]
    assert targets.sort("priority").get_column("priority_score").to_list() == pytest.approx(
        [32.0, 15.0, 9.0, 5.0, 4.0]
    )


def test_blend_with_a_business_score(scored: pl.DataFrame) -> None:
    targets = winback.campaign(
        scored,
        campaign_id="x",
        priority="blend",
        priority_weights={"p_lapse": 2, "value": 1, "business": 1},
        business_score_col="expert",
        holdout=0,
    )
    # percentile ranks (rank − ½)/5: value (total 10 … 50) 0.1 … 0.9 by id; expert 1→0.1, 2→0.9, 3→0.3, 4→0.7,
    # 5→0.5; score = 0.5·p + 0.25·value + 0.25·expert
    expected = {
        1: 0.5 * 0.9 + 0.25 * 0.1 + 0.25 * 0.1,
        2: 0.5 * 0.2 + 0.25 * 0.3 + 0.25 * 0.9,
        3: 0.5 * 0.5 + 0.25 * 0.5 + 0.25 * 0.3,
        4: 0.5 * 0.8 + 0.25 * 0.7 + 0.25 * 0.7,
        5: 0.5 * 0.1 + 0.25 * 0.9 + 0.25 * 0.5,
    }
    assert order(targets) == sorted(expected, key=lambda c: -expected[c])
    got = dict(targets.select("customer_id", "priority_score").iter_rows())
    assert got == pytest.approx(expected)


def test_default_weights_without_a_business_score(scored: pl.DataFrame) -> None:
    targets = winback.campaign(scored, campaign_id="x", priority="blend", holdout=0)
    # PRIORITY_WEIGHTS 0.5 / 0.3 (business dropped) → 0.625 · p + 0.375 · value percentile
    lapse = [0.9, 0.2, 0.5, 0.8, 0.1]
    expected = {c: 0.625 * p + 0.375 * (c - 0.5) / 5 for c, p in enumerate(lapse, start=1)}
    assert order(targets) == sorted(expected, key=lambda c: -expected[c])


def test_default_priority_has_the_old_columns_and_order(scored: pl.DataFrame) -> None:
    plain = winback.campaign(scored.drop("p_lapse", "expert"), campaign_id="x")
    same = winback.campaign(scored, campaign_id="x", priority="group")
    assert plain.equals(same)
    assert "priority_score" not in plain.columns
    assert plain.columns == list(winback.campaign.__globals__["TARGET_COLUMNS"])


def test_refusals(scored: pl.DataFrame) -> None:
    with pytest.raises(WinbackInputError, match=r"winback\.lapse"):
        winback.campaign(scored.drop("p_lapse"), campaign_id="x", priority="lapse_value")
    with pytest.raises(WinbackConfigError, match="priority="):
        winback.campaign(scored, campaign_id="x", priority="random")  # type: ignore[arg-type]
    with pytest.raises(WinbackConfigError, match="components"):
        winback.campaign(scored, campaign_id="x", priority="blend", priority_weights={"rfm": 1})
    with pytest.raises(WinbackConfigError, match="≥ 0"):
        winback.campaign(
            scored, campaign_id="x", priority="blend", priority_weights={"p_lapse": -1}
        )
    with pytest.raises(WinbackInputError, match="business_score_col"):
        winback.campaign(scored, campaign_id="x", priority="blend", business_score_col="nope")
    with pytest.raises(WinbackConfigError, match="only with priority='blend'"):
        winback.campaign(scored, campaign_id="x", priority_weights={"p_lapse": 1})
