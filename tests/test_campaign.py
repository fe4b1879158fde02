"""The target list (docs/methods.md#campaign): selection, priority, strategy, staff, follow-up and
holdout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import winback
from winback.campaign import TARGET_COLUMNS, CapacityWarning, assignment_hash
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError

GROUPS = pl.Enum(["a", "b", "c", "d", "e"])
BANDS = pl.Enum(["not_silent", "silent", "deep_silent"])
AS_OF = date(2024, 6, 30)


def scored(
    n: int,
    *,
    groups: list[str | None] | None = None,
    s: list[float | None] | None = None,
    seed: int = 0,
    string_ids: bool = False,
) -> pl.DataFrame:
    """A table shaped like winback.silence's output (the columns the campaign reads)."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(1, 400, size=n).astype(float)
    ids: list[int] | list[str] = (
        [f"C{i:07d}" for i in range(n)] if string_ids else list(range(1, n + 1))
    )
    group_values = groups if groups is not None else ["e"] * n
    s_values = s if s is not None else list(rng.uniform(1.0, 3.0, size=n))
    band = ["deep_silent" if v is not None and v >= 2 else "silent" for v in s_values]
    return pl.DataFrame(
        {
            "customer_id": ids,
            "n_occasions": rng.integers(2, 20, size=n),
            "last_ts": [AS_OF - timedelta(days=int(r)) for r in recency],
            "tenure_days": recency + rng.integers(30, 700, size=n),
            "recency_days": recency,
            "silence_score": pl.Series(s_values, dtype=pl.Float64),
            "rank_ratio_group": pl.Series(group_values, dtype=GROUPS),
            "silence_band": pl.Series(band, dtype=BANDS),
            "total_amount": rng.gamma(2.0, 50.0, size=n),
        }
    )


def test_target_list_columns_and_campaign_start() -> None:
    targets = winback.campaign(scored(50), campaign_id="x", staff=["a", "b"])
    assert tuple(targets.columns) == TARGET_COLUMNS
    assert targets.height == 50
    assert set(targets.get_column("campaign_start").to_list()) == {AS_OF}
    assert targets.get_column("priority").to_list() == list(range(1, 51))
    contacted = targets.filter(pl.col("contact"))
    assert contacted.get_column("staff").null_count() == 0
    assert targets.filter(~pl.col("contact")).get_column("staff").null_count() == (
        targets.height - contacted.height
    )


def test_holdout_share_is_binomial_on_100k_customers() -> None:
    table = scored(100_000)
    for holdout in (0.1, 0.5):
        targets = winback.campaign(table, campaign_id="spring", holdout=holdout)
        control = targets.filter(pl.col("arm") == "control").height
        sd = (100_000 * holdout * (1 - holdout)) ** 0.5
        assert abs(control - 100_000 * holdout) < 4 * sd
    none = winback.campaign(table.head(1000), campaign_id="spring", holdout=0.0)
    assert set(none.get_column("arm").to_list()) == {"treatment"}


def test_the_documented_hash_decides_the_arm() -> None:
    table = scored(2000, string_ids=True)
    targets = winback.campaign(table, campaign_id="autumn", holdout=0.25)
    for customer, arm in targets.select("customer_id", "arm").head(300).iter_rows():
        digest = hashlib.blake2b(b"autumn\x00" + customer.encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "little")
        assert arm == ("control" if h < 0.25 * 2**64 else "treatment")
    ints = assignment_hash(pl.Series([7, -3, 2**62]), "c")
    for value, h in zip([7, -3, 2**62], ints.to_list(), strict=True):
        message = b"c\x00" + value.to_bytes(8, "little", signed=True)
        assert h == int.from_bytes(hashlib.blake2b(message, digest_size=8).digest(), "little")


def test_assignment_is_stable_across_row_orders() -> None:
    table = scored(5000, groups=(["d", "e"] * 2500))
    first = winback.campaign(table, campaign_id="c1", staff=["ann", "bo", "cy"])
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=3)
    second = winback.campaign(shuffled, campaign_id="c1", staff=["ann", "bo", "cy"])
    assert_frame_equal(first, second)
    other = winback.campaign(table, campaign_id="c2", staff=["ann", "bo", "cy"])
    assert not other.get_column("arm").equals(first.get_column("arm"))


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_campaign import scored
import winback
targets = winback.campaign(scored(3000, string_ids=True), campaign_id="proc",
                           staff=["ann", "bo"], cadence={{"*": (15, 30)}})
targets.write_parquet(sys.argv[1])
"""


def test_assignment_is_stable_across_processes(tmp_path: Path) -> None:
    here = winback.campaign(
        scored(3000, string_ids=True),
        campaign_id="proc",
        staff=["ann", "bo"],
        cadence={"*": (15, 30)},
    )
    script = SCRIPT.format(tests=str(Path(__file__).parent))
    for seed in ("1", "987654"):
        out = tmp_path / f"targets_{seed}.parquet"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(out)], env=env, check=True)
        assert_frame_equal(pl.read_parquet(out), here)


def test_staff_get_even_shares_of_every_segment() -> None:
    table = scored(1001, groups=(["d"] * 300 + ["e"] * 701))
    staff = ["ann", "bo", "cy", "di"]
    targets = winback.campaign(table, campaign_id="even", staff=staff, holdout=0.2)
    contacted = targets.filter(pl.col("contact"))
    overall = contacted.group_by("staff").len().get_column("len")
    assert overall.max() - overall.min() <= 1  # type: ignore[operator]
    per_segment = contacted.group_by("segment", "staff").len()
    for _, group in per_segment.group_by("segment"):
        counts = group.get_column("len")
        assert counts.len() == 4
        assert counts.max() - counts.min() <= 1  # type: ignore[operator]


def test_capacity_cuts_both_arms_at_the_same_priority() -> None:
    table = scored(1000)
    with pytest.warns(CapacityWarning, match=r"capacity of 150 contacts is used up") as caught:
        targets = winback.campaign(
            table, campaign_id="cap", staff=["ann", "bo"], capacity={"ann": 100, "bo": 50}
        )
    warning = caught[0].message
    assert isinstance(warning, CapacityWarning)
    assert warning.capacity == 150
    contacted = targets.filter(pl.col("contact"))
    counts = dict(contacted.group_by("staff").len().iter_rows())
    assert counts == {"ann": 100, "bo": 50}
    last = targets.get_column("priority").max()
    assert targets.row(-1, named=True)["contact"]  # cut right after the last contact that fits
    full = winback.campaign(table, campaign_id="cap")
    kept = full.filter(pl.col("priority") <= last)
    assert kept.get_column("customer_id").equals(targets.get_column("customer_id"))
    assert warning.targets_cut == full.height - targets.height
    assert (
        warning.contacts_cut == full.filter(pl.col("priority") > last).get_column("contact").sum()
    )
    assert set(targets.get_column("arm").to_list()) == {"treatment", "control"}
    with pytest.warns(CapacityWarning):
        evenly = winback.campaign(table, campaign_id="cap", staff=["ann", "bo", "cy"], capacity=10)
    assert evenly.filter(pl.col("contact")).group_by("staff").len().get_column("len").to_list() == [
        10,
        10,
        10,
    ]


def test_quota_spread_honours_small_capacities() -> None:
    table = scored(30)
    targets = winback.campaign(
        table,
        campaign_id="q",
        staff=["ann", "bo", "cy"],
        capacity={"ann": 2, "bo": 100, "cy": 100},
        holdout=0.0,
        strategy_map={"*": "call"},
    )
    counts = dict(targets.group_by("staff").len().iter_rows())
    assert counts == {"ann": 2, "bo": 14, "cy": 14}


def test_priority_follows_group_then_s_then_value_then_id() -> None:
    table = scored(6, groups=["d", "e", "e", "e", "d", "e"], s=[0.9, 1.5, 2.5, 1.5, 0.95, 1.5])
    table = table.with_columns(expected_value=pl.Series([1.0, 5.0, 1.0, 9.0, 1.0, 5.0]))
    targets = winback.campaign(table, campaign_id="p", holdout=0.0)
    assert targets.get_column("customer_id").to_list() == [3, 4, 2, 6, 5, 1]
    assert targets.get_column("predicted_value").to_list() == [1.0, 9.0, 5.0, 5.0, 1.0, 1.0]


def test_default_selection_excludes_negative_predicted_value_and_quiet_groups() -> None:
    table = scored(5, groups=["e", "d", "c", "e", None], s=[1.5, 0.9, 0.5, 1.2, None])
    table = table.with_columns(clv=pl.Series([10.0, 5.0, 50.0, -3.0, 7.0]))
    targets = winback.campaign(table, campaign_id="d", holdout=0.0)
    assert targets.get_column("customer_id").to_list() == [1, 2]
    assert targets.get_column("segment").to_list() == ["group_e", "group_d"]
    assert targets.get_column("next_contact").to_list() == [
        AS_OF + timedelta(days=1),
        AS_OF + timedelta(days=3),
    ]


def test_strategy_from_a_mapping_and_its_errors() -> None:
    table = scored(40, groups=["d", "e"] * 20)
    targets = winback.campaign(
        table, campaign_id="m", strategy_map={"group_e": "call", "*": "no_action"}, staff=["a"]
    )
    by_segment = dict(targets.select("segment", "strategy").unique().iter_rows())
    assert by_segment == {"group_e": "call", "group_d": "no_action"}
    assert targets.filter(pl.col("strategy") == "no_action").get_column("contact").sum() == 0
    with pytest.raises(
        WinbackConfigError, match=r"strategy_map has no strategy for segment 'group_d'"
    ):
        winback.campaign(table, campaign_id="m", strategy_map={"group_e": "call"})


def test_default_strategy_reads_value_tier_when_present() -> None:
    table = scored(4, s=[1.2, 1.2, 1.2, 2.5]).with_columns(
        value_tier=pl.Series(["platinum", "silver", "bronze", "bronze"])
    )
    targets = winback.campaign(table, campaign_id="v", holdout=0.0).sort("customer_id")
    assert targets.get_column("value_level").to_list() == ["high", "mid", "low", "low"]
    strategies = targets.get_column("strategy").to_list()
    assert strategies[0] == "account_manager"
    assert strategies[1] == "coupon"  # group e, mid value


def test_cadence_ranges_spread_contacts_and_override_the_file() -> None:
    table = scored(2000)
    targets = winback.campaign(table, campaign_id="cad", cadence={"group_e": (15, 30)})
    days = targets.drop_nulls("next_contact").select(
        (pl.col("next_contact") - pl.col("campaign_start")).dt.total_days().alias("d")
    )
    values = days.get_column("d")
    assert values.min() == 15
    assert values.max() == 30
    assert values.n_unique() == 16
    with pytest.raises(WinbackConfigError, match=r"cadence for 'group_e' must be whole days"):
        winback.campaign(table, campaign_id="cad", cadence={"group_e": (30, 15)})


def test_salon_campaign_hand_checked() -> None:
    table = scored(5, groups=["a", "b", "c", "d", "e"], s=[0.2, 0.4, 0.6, 0.9, 1.1]).with_columns(
        recency_days=pl.Series([10.0, 45.0, 80.0, 100.0, 200.0]),
        occasions_365d=pl.Series([30, 12, 8, 4, 1]),
    )
    targets = winback.campaign(
        table, campaign_id="salon", rule="salon", staff=["amy", "ben"], holdout=0.0, start=AS_OF
    ).sort("customer_id")
    assert targets.get_column("customer_id").to_list() == [2, 3, 4, 5]  # 1 is active
    assert targets.get_column("segment").to_list() == [
        "one_month_absent",
        "two_months_absent",
        "three_months_absent",
        "over_three_months",
    ]
    offsets = [(d - AS_OF).days for d in targets.get_column("next_contact").to_list()]
    assert offsets[:3] == [1, 3, 7]
    assert 15 <= offsets[3] <= 30


def test_auto_dealer_campaign_hand_checked() -> None:
    table = scored(5, groups=["e", "d", "e", "e", "b"], s=[1.2, 0.9, 2.5, 3.5, 0.3]).with_columns(
        status=pl.Series(["scored"] * 5)
    )
    targets = winback.campaign(
        table,
        campaign_id="car",
        rule="auto_dealer",
        staff=["x"],
        holdout=0.0,
        strategy_map={"*": "call"},
    ).sort("customer_id")
    assert targets.get_column("segment").to_list() == ["H", "A", "B", "C"]
    offsets = [(d - AS_OF).days for d in targets.get_column("next_contact").to_list()]
    assert offsets[:3] == [1, 3, 7]
    assert 15 <= offsets[3] <= 30


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"staff": []}, WinbackConfigError, r"staff is an empty list: name at least one"),
        ({"staff": ["a", "a"]}, WinbackConfigError, r"staff lists 'a' twice"),
        ({"holdout": 1.0}, WinbackConfigError, r"holdout=1.0 must be in \[0, 1\)"),
        ({"holdout": -0.1}, WinbackConfigError, r"holdout=-0.1 must be in \[0, 1\)"),
        ({"holdout": "0.1"}, WinbackConfigError, r"holdout='0.1' must be in \[0, 1\)"),
        ({"campaign_id": ""}, WinbackConfigError, r"campaign_id='' must be a non-empty string"),
        ({"capacity": 5}, WinbackConfigError, r"capacity= needs staff=\[...\]"),
        (
            {"staff": ["a"], "capacity": {"b": 3}},
            WinbackConfigError,
            r"capacity names 'b', who is not in staff",
        ),
        ({"staff": ["a"], "capacity": 0}, WinbackConfigError, r"total capacity is 0"),
        ({"rule": "strategy"}, WinbackConfigError, r"strategy.toml: has no \[campaign\] table"),
        ({"strategy_map": "salon"}, WinbackConfigError, r"no classifier writes column 'strategy'"),
        ({"value_col": "ltv"}, WinbackInputError, r"value_col 'ltv' is not in the scored table"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {"campaign_id": "bad", **kwargs}
    with pytest.raises(error, match=message):
        winback.campaign(scored(10), **arguments)  # type: ignore[arg-type]


def test_unscored_input_is_refused() -> None:
    tx = pl.DataFrame({"customer_id": [1], "ts": [AS_OF], "amount": [1.0]})
    with pytest.raises(WinbackInputError, match=r"campaign needs a scored table; column "):
        winback.campaign(tx, campaign_id="x")
    no_dates = scored(3).drop("last_ts")
    with pytest.raises(WinbackInputError, match=r"cannot tell the campaign's start date"):
        winback.campaign(no_dates, campaign_id="x")
    assert winback.campaign(no_dates, campaign_id="x", start="2024-07-01").height == 3


def test_cdnow_end_to_end_silence_rfm_campaign() -> None:
    scores = winback.silence(load_cdnow(), as_of="1998-06-30")
    segmented = winback.quadrant(winback.rfm(scores))
    targets = winback.campaign(
        segmented, campaign_id="cdnow", staff=["ann", "bo", "cy"], holdout=0.1
    )
    assert targets.get_column("customer_id").is_unique().all()
    expected = scores.filter(pl.col("rank_ratio_group").is_in(["d", "e"])).height
    assert targets.height == expected
    control = targets.filter(pl.col("arm") == "control").height
    sd = (expected * 0.1 * 0.9) ** 0.5
    assert abs(control - 0.1 * expected) < 4 * sd
    assert targets.get_column("rank_ratio_group").to_list()[0] == "e"
    assert (targets.get_column("next_contact").drop_nulls() > date(1998, 6, 30)).all()
    assert set(targets.get_column("strategy").unique().to_list()) <= {
        "account_manager",
        "coupon",
        "points_or_discount",
        "no_action",
        "message",
    }
    # the silence table alone is enough: RFM and quadrant are derived on the way
    direct = winback.campaign(scores, campaign_id="cdnow", staff=["ann", "bo", "cy"])
    assert_frame_equal(direct, targets)


def test_campaign_benchmark_runs_at_tiny_size() -> None:
    import importlib.util

    benches = Path(__file__).resolve().parents[1] / "benches"
    spec = importlib.util.spec_from_file_location("bench_campaign", benches / "bench_campaign.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run("tiny")
    assert result["customers"] == 20_000
    assert result["targets"] > 0
    assert set(result["seconds"]) == {"rfm", "quadrant", "classify", "campaign", "total"}
