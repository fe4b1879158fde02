"""Campaign evaluation (docs/methods.md#evaluation): intervals, recovery of a known uplift, windows,
errors."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

import winback
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError
from winback.evaluation import ARM_COLUMNS, UPLIFT_COLUMNS, evaluate, newcombe, welch, wilson

START = date(2024, 3, 1)


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 81/263 → Wilson 0.2553–0.3662;
    # 56/70 − 48/80 = 0.2000, hybrid score (method 10) 0.0524–0.3339.
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    d, low, high = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert np.isnan(newcombe(1, 0, 1, 2)[0])


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 10.0, size=40), rng.gamma(2.0, 8.0, size=25)
    d, low, high = welch(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high))


def simulate(
    seed: int,
    n: int = 4000,
    p_control: float = 0.10,
    uplift: float = 0.05,
    mean_amount: float = 50.0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A campaign with a known effect: treated customers buy with p_control + uplift, controls
    with p_control, one purchase each of Gamma(2, mean/2) dollars, within the 30-day window;
    everyone has one purchase of history before the start."""
    rng = np.random.default_rng(seed)
    control = rng.random(n) < 0.3
    bought = rng.random(n) < np.where(control, p_control, p_control + uplift)
    amount = rng.gamma(2.0, mean_amount / 2.0, size=n)
    day = rng.integers(1, 31, size=n)
    ids = np.arange(1, n + 1)
    targets = pl.DataFrame(
        {
            "customer_id": ids,
            "arm": np.where(control, "control", "treatment"),
            "segment": np.where(ids % 2 == 0, "even", "odd"),
            "campaign_start": [START] * n,
        }
    )
    history = pl.DataFrame(
        {"customer_id": ids, "ts": [START - timedelta(days=100)] * n, "amount": [20.0] * n}
    )
    after = pl.DataFrame(
        {
            "customer_id": ids[bought],
            "ts": [START + timedelta(days=int(d)) for d in day[bought]],
            "amount": amount[bought],
        }
    )
    return targets, pl.concat([history, after])


def test_a_known_uplift_is_recovered_inside_the_intervals() -> None:
    seeds = range(40)
    rate_hits = revenue_hits = 0
    for seed in seeds:
        targets, tx = simulate(seed)
        result = evaluate(targets, tx, window_days=30, by=None, migration_states=False)
        row = result.uplift.row(0, named=True)
        assert row["segment"] == "all"
        rate_hits += row["rate_uplift_low"] <= 0.05 <= row["rate_uplift_high"]
        revenue_hits += row["revenue_uplift_low"] <= 2.5 <= row["revenue_uplift_high"]
    assert rate_hits >= 0.9 * len(seeds)
    assert revenue_hits >= 0.9 * len(seeds)


def test_tables_per_arm_and_segment() -> None:
    targets, tx = simulate(0, n=1000)
    result = evaluate(targets, tx, window_days=30, cost_per_contact=2.0)
    assert tuple(result.arms.columns) == ARM_COLUMNS
    assert tuple(result.uplift.columns) == UPLIFT_COLUMNS
    assert result.uplift.get_column("segment").to_list() == ["all", "even", "odd"]
    assert result.arms.height == 6
    overall = result.uplift.row(0, named=True)
    treated = targets.filter(pl.col("arm") == "treatment").height
    assert overall["customers_treatment"] == treated
    assert overall["cost"] == pytest.approx(2.0 * treated)
    arms = result.arms.filter(pl.col("segment") == "all")
    reactivated = arms.filter(pl.col("arm") == "treatment").get_column("reactivated").item()
    assert overall["cost_per_reactivated"] == pytest.approx(2.0 * treated / reactivated)
    assert overall["incremental_revenue"] == pytest.approx(overall["revenue_uplift"] * treated)
    assert result.window_end == START + timedelta(days=30)
    assert result.migration is not None
    assert set(result.migration.get_column("arm").to_list()) == {"treatment", "control"}
    shares = result.migration.group_by("arm", "from_state").agg(pl.col("share").sum())
    assert shares.get_column("share").to_list() == pytest.approx([1.0] * shares.height)


def test_window_boundaries() -> None:
    targets = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "arm": ["treatment", "treatment", "control", "control"],
            "segment": ["s"] * 4,
            "campaign_start": [START] * 4,
        }
    )
    tx = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "ts": [
                START,
                START + timedelta(days=1),
                START + timedelta(days=30),
                START + timedelta(days=31),
            ],
            "amount": [10.0, 20.0, 30.0, 40.0],
        }
    )
    arms = evaluate(targets, tx, window_days=30, by=None).arms
    assert arms.get_column("reactivated").to_list() == [1, 1]
    assert arms.get_column("revenue").to_list() == [20.0, 30.0]


def test_cost_by_strategy_counts_contacted_treated_customers_only() -> None:
    targets = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "arm": ["treatment", "treatment", "treatment", "control"],
            "contact": [True, True, False, False],
            "strategy": ["call", "message", "no_action", "call"],
            "segment": ["s"] * 4,
            "campaign_start": [START] * 4,
        }
    )
    tx = pl.DataFrame({"customer_id": [1], "ts": [START + timedelta(days=2)], "amount": [5.0]})
    result = evaluate(targets, tx, cost_per_contact={"call": 3.0, "*": 0.5})
    assert result.uplift.get_column("cost").to_list() == [3.5, 3.5]
    with pytest.raises(WinbackConfigError, match=r"no cost for strategy 'message'"):
        evaluate(targets, tx, cost_per_contact={"call": 3.0})


def test_targets_missing_from_the_transactions_are_an_error() -> None:
    targets, tx = simulate(0, n=100)
    partial = tx.filter(pl.col("customer_id") > 3)
    with pytest.raises(
        WinbackInputError,
        match=r"3 of the 100 targets are missing from the transactions before the campaign "
        r"start 2024-03-01 \(first: 1, 2, 3\)",
    ):
        evaluate(targets, partial)
    after_only = pl.DataFrame(
        {"customer_id": [999], "ts": [START + timedelta(days=3)], "amount": [1.0]}
    )
    with pytest.raises(WinbackInputError, match=r"none of the 100 targets appears in the "):
        evaluate(targets, after_only)


def test_bad_target_lists_and_arguments() -> None:
    targets, tx = simulate(0, n=50)
    with pytest.raises(WinbackInputError, match=r"customer ids are String but the transactions'"):
        evaluate(targets.with_columns(pl.col("customer_id").cast(pl.String)), tx)
    with pytest.raises(WinbackInputError, match=r"the target list has no column 'arm'"):
        evaluate(targets.drop("arm"), tx)
    with pytest.raises(WinbackInputError, match=r"arm column holds 'holdout'"):
        evaluate(targets.with_columns(pl.lit("holdout").alias("arm")), tx)
    with pytest.raises(WinbackConfigError, match=r"window_days=0 must be a whole number ≥ 1"):
        evaluate(targets, tx, window_days=0)
    with pytest.raises(WinbackInputError, match=r"has no campaign_start column; pass start="):
        evaluate(targets.drop("campaign_start"), tx)
    only_after = tx.filter(pl.col("ts") > START)
    result = evaluate(targets, only_after)
    assert result.migration is None


def test_cdnow_campaign_evaluated_on_the_following_months() -> None:
    tx = load_cdnow()
    targets = winback.campaign(
        winback.silence(tx, as_of="1997-12-31"), campaign_id="cdnow-1998", holdout=0.2
    )
    result = winback.evaluate(targets, tx, window_days=60)
    overall = result.uplift.row(0, named=True)
    assert overall["customers_treatment"] + overall["customers_control"] == targets.height
    assert overall["rate_uplift_low"] <= overall["rate_uplift"] <= overall["rate_uplift_high"]
    assert result.window_complete
    assert result.migration is not None
    # nobody was contacted for real: the interval is consistent with no effect
    assert overall["rate_uplift_low"] < 0 < overall["rate_uplift_high"]
