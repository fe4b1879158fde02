"""The cause matrix preset (docs/methods.md#cause-matrix): why a customer left × their value →
the strategy, every cell written out by hand; overridable lists; no contact for "let go"."""

from __future__ import annotations

import polars as pl
import pytest

import winback
from tests.loop.conftest import transactions
from winback.campaign import campaign
from winback.segments import load_rules

# (value_level, cause) → strategy: the CRM seed's matrix, by hand
CELLS = [
    ("high", "product_problem", "win_back_at_all_costs"),
    ("high", "service_problem", "win_back_at_all_costs"),
    ("high", "staff_left", "win_back_at_all_costs"),
    ("high", "company", "win_back_at_all_costs"),
    ("high", "moved", "win_back_selectively"),
    ("high", "needs_changed", "win_back_selectively"),
    ("high", "competitor", "win_back_selectively"),
    ("high", "unknown", "ask_why"),
    ("high", None, "ask_why"),
    ("mid", "product_problem", "fix_and_apologise"),
    ("low", "staff_left", "fix_and_apologise"),
    ("mid", "competitor", "no_action"),
    ("low", "moved", "no_action"),
    ("low", "customer", "no_action"),
    ("low", "needs_changed", "no_action"),
    ("mid", "a typo", "message"),
    ("low", None, "message"),
    (None, "product_problem", "fix_and_apologise"),  # an unknown value counts as small
]


def table(with_cause: bool = True) -> pl.DataFrame:
    frame = pl.DataFrame(CELLS, schema=["value_level", "cause", "want"], orient="row")
    return frame if with_cause else frame.drop("cause")


def test_every_cell_of_the_matrix() -> None:
    frame = table()
    out = winback.classify(frame, "cause_matrix")
    assert out["strategy"].cast(pl.String).to_list() == frame["want"].to_list()
    side = out["cause_side"].cast(pl.String).to_list()
    assert side[:4] == ["company"] * 4
    assert side[4:7] == ["customer"] * 3
    assert side[7:9] == ["unknown"] * 2


def test_without_a_cause_column_every_cause_is_unknown() -> None:
    out = winback.classify(table(with_cause=False), "cause_matrix")
    want = ["ask_why" if level == "high" else "message" for level, _, _ in CELLS]
    assert out["strategy"].cast(pl.String).to_list() == want


def test_the_lists_are_overridable() -> None:
    rules = load_rules(
        "cause_matrix",
        thresholds={"big_levels": ["high", "mid"], "customer_causes": ["moved", "price"]},
    )
    frame = pl.DataFrame(
        {
            "value_level": ["mid", "mid", "low", "high"],
            "cause": ["competitor", "price", "price", "moved"],
        }
    )
    out = winback.classify(frame, rules)["strategy"].cast(pl.String).to_list()
    assert out == ["ask_why", "win_back_selectively", "no_action", "win_back_selectively"]


def test_let_go_customers_are_not_contacted() -> None:
    scored = winback.silence(transactions(n=300), as_of="2024-03-01")
    causes = ["product_problem", "moved", None, "competitor", "staff_left"]
    scored = scored.with_columns(
        pl.Series("cause", [causes[i % len(causes)] for i in range(scored.height)])
    )
    targets = campaign(scored, campaign_id="c", strategy_map="cause_matrix", holdout=0.0)
    assert targets.height > 0
    cells = set(targets.select("value_level", "strategy").cast(pl.String).iter_rows())
    assert ("high", "win_back_at_all_costs") in cells
    assert ("low", "no_action") in cells
    let_go = targets.filter(pl.col("strategy") == "no_action")
    assert let_go.height > 0
    assert not let_go["contact"].any()
    assert targets.filter(pl.col("strategy") != "no_action")["contact"].all()


@pytest.mark.parametrize("bad", [{"big_levels": "high"}, {"company_causes": 3}])
def test_a_bad_override_is_a_config_error(bad: dict[str, object]) -> None:
    frame = table()
    with pytest.raises(winback.WinbackConfigError):
        winback.classify(frame, load_rules("cause_matrix", thresholds=bad))
