"""Nothing lost, nothing misread in the activation rooms (issue 19): rules never overwrite columns
silently (docs/methods.md#rules), duplicate customers and NaN/inf values and parameters are refused
(docs/methods.md#campaign, #quadrant, #rfm, #evaluation), `evaluate` refuses windows it cannot
measure, and inputs that used to be ignored are errors or warnings (#cadence, #holdout)."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import winback
from tests.test_campaign import AS_OF, scored
from winback.campaign import CapacityWarning
from winback.errors import WinbackConfigError, WinbackInputError
from winback.segments import KEY_COLUMNS, load_rules, parse_rules, presets

NAN, INF = math.nan, math.inf
START = date(2024, 3, 1)


def rules_writing(column: str, *, replace: str = "") -> str:
    return (
        f'[[classifier]]\ncolumn = "{column}"\ninputs = ["recency_days"]\n{replace}'
        'default = "old"\nrules = [\n  { label = "new", when = { recency_days = { le = 30 } } },\n]\n'
    )


# --- item 4: a rules file cannot overwrite columns ---------------------------------------------


def test_a_classifier_writing_an_existing_column_is_an_error(tmp_path: Any) -> None:
    table = pl.DataFrame({"customer_id": [1, 2], "recency_days": [10.0, 90.0], "tag": ["x", "y"]})
    path = tmp_path / "tag.toml"
    path.write_text(rules_writing("tag"), encoding="utf-8")
    with pytest.raises(
        WinbackConfigError,
        match=r"tag\.toml, classifier 'tag' \(line 1\): the table already has a column 'tag'.*"
        r"replace = true",
    ):
        winback.classify(table, path)
    # the same file on a table without the column works, and replace = true overwrites on purpose
    assert winback.classify(table.drop("tag"), path).get_column("tag").to_list() == ["new", "old"]
    path.write_text(rules_writing("tag", replace="replace = true\n"), encoding="utf-8")
    assert winback.classify(table, path).get_column("tag").to_list() == ["new", "old"]


@pytest.mark.parametrize("column", ["customer_id", "rank_ratio_group", "silence_score"])
@pytest.mark.parametrize("replace", ["", "replace = true\n"])
def test_key_columns_are_never_written_even_with_replace(column: str, replace: str) -> None:
    with pytest.raises(
        WinbackConfigError,
        match=rf"<rules>, classifier '{column}' \(line 1\): column '{column}' is a key column",
    ):
        parse_rules(rules_writing(column, replace=replace))


def test_replace_must_be_a_boolean() -> None:
    with pytest.raises(WinbackConfigError, match=r"'replace' must be true or false, not 'yes'"):
        parse_rules(rules_writing("tag", replace='replace = "yes"\n'))


def test_the_campaign_columns_are_key_columns() -> None:
    assert {"customer_id", "rank_ratio_group", "silence_score", "recency_days"} <= set(KEY_COLUMNS)
    methods = (Path(__file__).parents[1] / "docs" / "methods.md").read_text(encoding="utf-8")
    rules = methods.split('<a id="rules"></a>')[1].split("<a id=")[0]
    listed = rules.split("The\n  key columns")[1].split("(`winback.segments.KEY_COLUMNS`)")[0]
    named = re.findall(r"`(\w+)`", listed.replace("`campaign` reads", ""))
    assert named == list(KEY_COLUMNS)  # the docs list them all, in order
    for name in presets():
        for classifier in load_rules(name).classifiers:
            assert classifier.column not in KEY_COLUMNS
            assert not classifier.replace


def test_classifying_twice_and_a_campaign_over_its_own_column_are_errors() -> None:
    table = scored(20)
    once = winback.classify(table, "default")
    with pytest.raises(WinbackConfigError, match=r"default\.toml, classifier 'segment'"):
        winback.classify(once, "default")
    with pytest.raises(WinbackConfigError, match=r"already has a column 'segment'"):
        winback.campaign(once, campaign_id="x")


# --- item 8: duplicate customers --------------------------------------------------------------


def test_duplicate_customers_are_refused_everywhere() -> None:
    table = scored(10)
    doubled = pl.concat([table, table.head(2), table.head(1)])
    message = r"repeats 2 customers \(3 extra rows; first: 1, 2\)"
    with pytest.raises(WinbackInputError, match=rf"campaign needs one row per customer.*{message}"):
        winback.campaign(doubled, campaign_id="x")
    with pytest.raises(WinbackInputError, match=message):
        winback.classify(doubled, "default")
    with pytest.raises(WinbackInputError, match=message):
        winback.quadrant(doubled)
    with pytest.raises(WinbackInputError, match=message):
        winback.rfm(doubled)


# --- non-finite parameters and values ---------------------------------------------------------


def evaluation_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    targets = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "arm": ["treatment", "treatment", "control", "control"],
            "contact": [True, True, False, False],
            "strategy": ["call", "message", "call", "call"],
            "segment": ["s"] * 4,
            "campaign_start": [START] * 4,
        }
    )
    tx = pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 1, 3],
            "ts": [START - timedelta(days=40)] * 4
            + [START + timedelta(days=3), START + timedelta(days=40)],
            "amount": [5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        }
    )
    return targets, tx


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost_per_contact": NAN}, r"cost_per_contact=nan must be a finite number"),
        ({"cost_per_contact": INF}, r"cost_per_contact=inf must be a finite number"),
        ({"cost_per_contact": -1.0}, r"cost_per_contact=-1.0 must be ≥ 0"),
        ({"cost_per_contact": {"call": NAN, "*": 1}}, r"cost_per_contact\['call'\]=nan"),
        ({"cost_per_contact": {"*": -2}}, r"cost_per_contact\['\*'\]=-2 must be ≥ 0"),
        ({"cost_per_contact": {"*": "2"}}, r"cost_per_contact\['\*'\]='2' must be a number"),
        ({"confidence": NAN}, r"confidence=nan must be a finite number"),
        ({"confidence": "0.9"}, r"confidence='0.9' must be a number"),
        ({"confidence": 1.5}, r"confidence=1.5 must be in \(0, 1\)"),
    ],
)
def test_evaluate_refuses_non_finite_and_negative_parameters(
    kwargs: dict[str, Any], message: str
) -> None:
    targets, tx = evaluation_inputs()
    with pytest.raises(WinbackConfigError, match=message):
        winback.evaluate(targets, tx, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contribution_cut": NAN}, r"contribution_cut=nan must be a finite number"),
        ({"loyalty_cut": INF}, r"loyalty_cut=inf must be a finite number"),
        ({"loyalty_cut": "1"}, r"loyalty_cut='1' must be a number"),
        ({"min_tenure_days": NAN}, r"min_tenure_days=nan must be a finite number"),
        ({"min_tenure_days": 0}, r"min_tenure_days=0 must be positive"),
    ],
)
def test_quadrant_refuses_non_finite_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WinbackConfigError, match=message):
        winback.quadrant(scored(10), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"holdout": NAN}, r"holdout=nan must be in \[0, 1\)"),
        ({"holdout": INF}, r"holdout=inf must be in \[0, 1\)"),
        ({"staff": ["a"], "capacity": NAN}, r"capacity of 'a' is nan"),
        ({"staff": ["a"], "capacity": {"a": INF}}, r"capacity of 'a' is inf"),
        ({"staff": ["a"], "capacity": -1}, r"capacity of 'a' is -1"),
    ],
)
def test_campaign_refuses_non_finite_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(WinbackConfigError, match=message):
        winback.campaign(scored(10), campaign_id="x", **kwargs)


def test_nan_thresholds_are_refused_not_matched_by_everyone() -> None:
    table = pl.DataFrame({"recency_days": [10.0, 500.0], "occasions_365d": [30, 0]})
    with pytest.raises(
        WinbackConfigError, match=r"threshold 'active_days' = nan is not a finite number"
    ):
        winback.classify(table, "salon", thresholds={"active_days": NAN})
    with pytest.raises(
        WinbackConfigError, match=r"threshold 'active_days' = inf is not a finite number"
    ):
        winback.classify(table, "salon", thresholds={"active_days": INF})
    with pytest.raises(WinbackConfigError, match=r"tier_thresholds\['fm'\]=nan must be a finite"):
        winback.rfm(scored(10), tier_thresholds={"fm": NAN})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (rules_writing("tag").replace("le = 30", "le = nan"), r"le nan is not a finite number"),
        (rules_writing("tag").replace("le = 30", "in = [1.0, inf]"), r"in \[1.0, inf\] is not"),
        (
            "[thresholds]\nx = -inf\n" + rules_writing("tag").replace("le = 30", 'le = "$x"'),
            r"threshold 'x' = -inf is not a finite number",
        ),
    ],
)
def test_non_finite_rule_literals_are_refused(text: str, message: str) -> None:
    with pytest.raises(WinbackConfigError, match=message):
        parse_rules(text)


def test_nan_and_inf_values_never_reach_the_target_list() -> None:
    table = scored(6).with_columns(clv=pl.Series([1.0, NAN, 3.0, 4.0, NAN, 6.0]))
    with pytest.raises(
        WinbackInputError,
        match=r"campaign: column 'clv' holds 2 NaN or infinite values \(customers 2, 5\).*"
        r"fill_nan\(None\)",
    ):
        winback.campaign(table, campaign_id="x")
    # the documented way out: NaN as null, i.e. an unknown value (ranked last, no value level)
    unknown = table.with_columns(pl.col("clv").fill_nan(None))
    targets = winback.campaign(unknown, campaign_id="x")
    values = targets.get_column("predicted_value")
    assert values.null_count() == 2
    assert not values.drop_nulls().is_nan().any()
    infinite = scored(4).with_columns(expected_value=pl.Series([1.0, INF, 2.0, 3.0]))
    with pytest.raises(WinbackInputError, match=r"column 'expected_value' holds 1 NaN"):
        winback.campaign(infinite, campaign_id="x")
    silence = scored(4).with_columns(silence_score=pl.Series([1.0, 2.0, NAN, 3.0]))
    with pytest.raises(WinbackInputError, match=r"column 'silence_score'.*customers 3"):
        winback.campaign(silence, campaign_id="x")


def test_nan_values_are_refused_by_quadrant_and_rfm() -> None:
    table = scored(4).with_columns(total_amount=pl.Series([1.0, NAN, 2.0, 3.0]))
    with pytest.raises(WinbackInputError, match=r"quadrant: column 'total_amount'.*customers 2"):
        winback.quadrant(table)
    with pytest.raises(WinbackInputError, match=r"rfm: column 'total_amount'.*customers 2"):
        winback.rfm(table)


def test_rfm_never_writes_an_overflowed_monetary_value() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "ts": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5), date(2024, 1, 9)],
            "amount": [1e308, 1e308, 1.0, 2.0],
        }
    )
    # Silence scoring under rfm refuses the overflowing total first, naming the customer.
    with pytest.raises(
        WinbackInputError,
        match=r"amounts of 1 customer\(s\) \(1\) add up beyond the largest float",
    ):
        winback.rfm(tx, as_of="2024-03-01")


# --- evaluate windows with no data ------------------------------------------------------------


def test_evaluate_refuses_a_window_the_transactions_do_not_reach() -> None:
    targets, tx = evaluation_inputs()
    before = tx.filter(pl.col("ts") <= pl.lit(START).cast(pl.Datetime("us")))
    with pytest.raises(
        WinbackInputError,
        match=r"the transactions end on 2024-01-21, before the window 2024-03-02 … 2024-03-31 "
        r"starts: there is nothing to measure yet\. Evaluate after the window has data",
    ):
        winback.evaluate(targets, before, window_days=30)
    with pytest.raises(WinbackInputError, match=r"end on 2024-04-10, before the window 2024-05-02"):
        winback.evaluate(targets, tx, start=date(2024, 5, 1))
    # a window the data reaches in part is measured as far as it goes, and says so
    partial = winback.evaluate(targets, tx, window_days=60)
    assert not partial.window_complete


def test_evaluate_refuses_a_start_before_the_campaign() -> None:
    targets, tx = evaluation_inputs()
    with pytest.raises(
        WinbackConfigError,
        match=r"start 2024-02-01 is before the campaign's start 2024-03-01 \(the target list's "
        r"campaign_start\)",
    ):
        winback.evaluate(targets, tx, start="2024-02-01")
    with pytest.raises(WinbackConfigError, match=r"window_days=1,000,000,000 runs past"):
        winback.evaluate(targets, tx, window_days=10**9)
    later = winback.evaluate(targets, tx, start=START + timedelta(days=1), window_days=5)
    assert later.window_start == START + timedelta(days=1)


# --- inputs that were silently ignored --------------------------------------------------------


def test_a_cadence_for_an_unknown_segment_is_an_error() -> None:
    with pytest.raises(
        WinbackConfigError,
        match=r"cadence names segment 'group_z', which default\.toml never labels \(segments of "
        r"'segment': negative_value, group_e, group_d, silent, none; '\*' for any other\)",
    ):
        winback.campaign(scored(10), campaign_id="x", cadence={"group_z": 3})
    assert winback.campaign(scored(10), campaign_id="x", cadence={"*": 3}).height == 10


def test_targets_cut_by_capacity_are_counted_in_a_warning() -> None:
    table = scored(200)
    full = winback.campaign(table, campaign_id="cap", holdout=0.2)
    with pytest.warns(CapacityWarning, match=r"targets \(\d+ of them to contact\) are left off"):
        cut = winback.campaign(table, campaign_id="cap", holdout=0.2, staff=["a"], capacity=50)
    with pytest.warns(CapacityWarning) as caught:
        winback.campaign(table, campaign_id="cap", holdout=0.2, staff=["a"], capacity=50)
    warning = caught[0].message
    assert isinstance(warning, CapacityWarning)
    assert (warning.capacity, warning.targets_cut) == (50, full.height - cut.height)
    assert warning.contacts_cut == full.get_column("contact").sum() - 50
    # a capacity that is not reached cuts nothing and warns about nothing
    assert winback.campaign(table, campaign_id="cap", staff=["a"], capacity=10_000).height == 200
    assert AS_OF in cut.get_column("campaign_start").to_list()
