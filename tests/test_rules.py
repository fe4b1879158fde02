"""The rules engine and its presets (docs/methods.md#rules): hand-checked cases and clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

import winback
from winback.errors import WinbackConfigError
from winback.segments import load_rules, parse_rules, presets

GROUPS = pl.Enum(["a", "b", "c", "d", "e"])
STATUS = pl.Enum(["scored", "single_purchase", "below_min_occasions"])


def test_presets_ship_with_the_package() -> None:
    assert {"salon", "auto_dealer", "default", "strategy"} <= set(presets())
    for name in presets():
        rules = load_rules(name)
        assert rules.classifiers
        assert all(rule.line is not None for c in rules.classifiers for rule in c.rules)


def test_salon_recency_and_visit_rate_boundaries() -> None:
    scored = pl.DataFrame(
        {
            "recency_days": [0.0, 30.0, 31.0, 60.0, 61.0, 90.0, 120.0, 121.0],
            "occasions_365d": [24, 23, 15, 14, 6, 5, 0, 40],
        }
    )
    out = winback.classify(scored, "salon")
    assert out.get_column("visit_recency").to_list() == [
        "active",
        "active",
        "one_month_absent",
        "one_month_absent",
        "two_months_absent",
        "two_months_absent",
        "three_months_absent",
        "over_three_months",
    ]
    assert out.get_column("visit_rate").to_list() == [
        "loyal",
        "marginal",
        "marginal",
        "dormant",
        "dormant",
        "lost",
        "lost",
        "loyal",
    ]
    assert out.schema["visit_rate"] == pl.Enum(["loyal", "marginal", "dormant", "lost"])


def test_salon_thresholds_are_editable_without_copying_the_file() -> None:
    scored = pl.DataFrame({"recency_days": [40.0], "occasions_365d": [3]})
    out = winback.classify(scored, "salon", thresholds={"active_days": 45, "dormant_visits": 3})
    assert out.row(0) == (40.0, 3, "active", "dormant")
    with pytest.raises(WinbackConfigError, match=r"no threshold 'activ_days' to override"):
        winback.classify(scored, "salon", thresholds={"activ_days": 45})
    with pytest.raises(WinbackConfigError, match=r"threshold 'active_days' is a number"):
        winback.classify(scored, "salon", thresholds={"active_days": "45"})


def auto_dealer_table() -> pl.DataFrame:
    rows = [
        # status, group, S, recency_days → expected grade
        ("scored", "a", 0.1, 5.0, "not_due"),
        ("scored", "c", 0.6, 40.0, "not_due"),
        ("scored", "e", 1.2, 60.0, "H"),
        ("scored", "d", 0.9, 45.0, "A"),
        ("scored", "e", 1.7, 80.0, "A"),
        ("scored", "e", 2.5, 120.0, "B"),
        ("single_purchase", None, None, 50.0, "B"),
        ("single_purchase", None, None, 120.0, "C"),
        ("scored", "e", 3.5, 300.0, "C"),
        ("below_min_occasions", None, None, 10.0, "B"),
    ]
    return pl.DataFrame(
        rows,
        schema={
            "status": STATUS,
            "rank_ratio_group": GROUPS,
            "silence_score": pl.Float64,
            "recency_days": pl.Float64,
            "expected": pl.String,
        },
        orient="row",
    )


def test_auto_dealer_lead_grades() -> None:
    table = auto_dealer_table()
    out = winback.classify(table, "auto_dealer")
    # below_min_occasions with recency 10: no S, not single → falls to C
    expected = table.get_column("expected").to_list()
    expected[-1] = "C"
    assert out.get_column("lead_grade").cast(pl.String).to_list() == expected
    spec = load_rules("auto_dealer").campaign
    assert spec is not None
    assert spec.cadence == {"H": (1, 1), "A": (3, 3), "B": (7, 7), "C": (15, 30)}
    assert spec.exclude == ("not_due",)


def test_default_selection_and_negative_value() -> None:
    table = pl.DataFrame(
        {
            "rank_ratio_group": pl.Series(["e", "d", "c", "e", None], dtype=GROUPS),
            "silence_score": [1.5, 0.9, 0.5, 1.2, None],
            "expected_value": [10.0, 5.0, 50.0, -3.0, 7.0],
        }
    )
    out = winback.classify(table, "default").get_column("segment").cast(pl.String).to_list()
    assert out == ["group_e", "group_d", "none", "negative_value", "none"]
    without_value = winback.classify(table.drop("expected_value"), "default")
    assert without_value.get_column("segment").to_list()[3] == "group_e"
    # S ≥ 1 marks a customer silent even when custom TrF cuts left them outside d and e
    odd = pl.DataFrame({"rank_ratio_group": pl.Series(["c"], dtype=GROUPS), "silence_score": [1.0]})
    assert winback.classify(odd, "default").get_column("segment").to_list() == ["silent"]


def strategy_table(with_cause: bool) -> pl.DataFrame:
    rows = [
        # value_level, cause, group, quadrant, band → strategy
        ("high", "company", "e", "bee", "silent", "account_manager"),
        ("low", "customer", "e", "butterfly", "silent", "no_action"),
        ("high", "customer", "d", "bee", None, "account_manager"),
        ("mid", "company", "e", "dragonfly", "silent", "coupon"),
        ("mid", "company", "d", "butterfly", None, "points_or_discount"),
        ("low", "company", "e", "mantis", "deep_silent", "no_action"),
        ("low", "company", "e", "mantis", "silent", "message"),
        ("mid", "company", "d", "mantis", None, "message"),
    ]
    frame = pl.DataFrame(
        rows,
        schema=["value_level", "cause", "rank_ratio_group", "quadrant", "silence_band", "want"],
        orient="row",
    )
    return frame if with_cause else frame.drop("cause")


def test_strategy_map_branches_with_a_cause_column() -> None:
    table = strategy_table(with_cause=True)
    out = winback.classify(table, "strategy")
    assert (
        out.get_column("strategy").cast(pl.String).to_list() == table.get_column("want").to_list()
    )


def test_strategy_map_branches_without_a_cause_column() -> None:
    table = strategy_table(with_cause=False)
    out = winback.classify(table, "strategy").get_column("strategy").cast(pl.String).to_list()
    want = table.get_column("want").to_list()
    want[1] = "points_or_discount"  # low & customer-caused needs the cause column
    assert out == want


RULES = """
format = 1
name = "test"

[thresholds]
late = 60

[[classifier]]
column = "state"
inputs = ["recency_days", "group", "seen", "vip"]
default = "other"
rules = [
  { label = "vip", when = { vip = { eq = true } } },
  { label = "late", when = [ { recency_days = { gt = "$late" } }, { group = { ge = "d" } } ] },
  { label = "unknown", when = { seen = { is_null = true } } },
  { label = "early", when = { seen = { lt = 2024-03-01 } } },
]

[[classifier]]
column = "action"
inputs = ["state"]
rules = [
  { label = "call", when = { state = { in = ["late", "vip"] } } },
  { label = "wait", when = { state = { not_in = ["late", "vip", "unknown"] } } },
]
"""


def test_first_match_or_lists_operators_and_chained_classifiers() -> None:
    table = pl.DataFrame(
        {
            "recency_days": [90.0, 10.0, 10.0, 10.0, 10.0, 90.0],
            "group": pl.Series(["a", "e", "a", "a", "b", "a"], dtype=GROUPS),
            "seen": [
                date(2024, 1, 1),
                date(2024, 1, 1),
                None,
                date(2024, 1, 1),
                date(2024, 6, 1),
                date(2024, 1, 1),
            ],
            "vip": [False, False, False, False, False, True],
        }
    )
    out = parse_rules(RULES).apply(table)
    assert out.get_column("state").cast(pl.String).to_list() == [
        "late",
        "late",
        "unknown",
        "early",
        "other",
        "vip",
    ]
    assert out.get_column("action").cast(pl.String).to_list() == [
        "call",
        "call",
        None,
        "wait",
        "wait",
        "call",
    ]


def test_labels_are_data_never_code() -> None:
    rules = parse_rules(
        '[[classifier]]\ncolumn = "x"\ninputs = ["v"]\n'
        "rules = [{ label = \"__import__('os').system('false')\", when = { v = { eq = 1 } } }]\n"
    )
    out = rules.apply(pl.DataFrame({"v": [1]}))
    assert out.get_column("x").to_list() == ["__import__('os').system('false')"]


def test_a_rules_file_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(RULES)
    assert load_rules(path).name == "test"
    assert load_rules(str(path)).classifier("action").labels == ("call", "wait")
    with pytest.raises(WinbackConfigError, match=r"neither a preset .* nor an existing .toml file"):
        load_rules(tmp_path / "missing.toml")


def test_unknown_column_names_the_rule_and_its_line() -> None:
    with pytest.raises(
        WinbackConfigError,
        match=r"salon.toml, classifier 'visit_rate', rule 'loyal' \(line 37\): unknown column "
        r"'occasions_365d'",
    ):
        winback.classify(pl.DataFrame({"recency_days": [1.0]}), "salon")


BAD_FILES = [
    (
        'column = "x"',
        r"<rules>: unknown key 'column' in the file",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [\n'
        '  { label = "ok", when = { r = { le = 3 } } },\n'
        '  { label = "bad", when = { r = { lte = 3 } } },\n]\n',
        r"classifier 's', rule 'bad' \(line 6\): bad operator 'lte' on column 'r'; operators: eq",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [\n'
        '  { label = "far", when = { q = { gt = 3 } } },\n]\n',
        r"rule 'far' \(line 5\): column 'q' is not listed in the classifier's inputs \(r\)",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [\n'
        '  { label = "far", when = { r = { gt = [3] } } },\n]\n',
        r"rule 'far' \(line 5\): gt takes one number, string, boolean or date, not list \[3\]",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [\n'
        '  { label = "far", when = { r = { gt = "$missing" } } },\n]\n',
        r"threshold '\$missing' is not defined in \[thresholds\]",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [\n  { when = { r = { gt = 1 } } },\n]\n',
        r"classifier 's', rule '#1': 'label' must be a non-empty string, not None",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = []\n',
        r"classifier 's' \(line 1\): 'rules' must be a non-empty list of rules",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [{ label = "a" }]\n'
        '[campaign]\nsegment = "t"\n',
        r"\[campaign\] segment = 't' must name a classifier column \(s\)",
    ),
    (
        '[[classifier]]\ncolumn = "s"\ninputs = ["r"]\nrules = [{ label = "a" }]\n'
        '[campaign]\nsegment = "s"\ncadence = { a = [30, 15] }\n',
        r"\[campaign\] cadence for 'a' must be whole days ≥ 0 or \[min, max\], not \[30, 15\]",
    ),
    ("[[classifier]\n", r"<rules>: not valid TOML"),
    ('format = 2\n[[classifier]]\ncolumn = "s"\n', r"format = 2 is not supported"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_invalid_rule_files_raise_clear_errors(text: str, message: str) -> None:
    with pytest.raises(WinbackConfigError, match=message):
        parse_rules(text)


def test_threshold_type_must_fit_the_column() -> None:
    rules = parse_rules(
        '[thresholds]\nlimit = "thirty"\n[[classifier]]\ncolumn = "s"\ninputs = ["r", "g"]\n'
        'rules = [\n  { label = "x", when = { r = { le = "$limit" } } },\n'
        '  { label = "y", when = { g = { eq = "f" } } },\n]\n',
        source="mine.toml",
    )
    table = pl.DataFrame({"r": [1.0], "g": pl.Series(["a"], dtype=GROUPS)})
    with pytest.raises(
        WinbackConfigError,
        match=r"mine.toml, classifier 's', rule 'x' \(line 7\): column 'r' is Float64, so le "
        r"\$limit = 'thirty' does not fit; the value must be a number",
    ):
        rules.apply(table)
    fixed = rules.with_thresholds({"limit": "x"})
    with pytest.raises(WinbackConfigError, match=r"rule 'x'"):
        fixed.apply(table)
    numeric = parse_rules(
        '[[classifier]]\ncolumn = "s"\ninputs = ["g"]\nrules = [\n'
        '  { label = "y", when = { g = { eq = "f" } } },\n]\n'
    )
    with pytest.raises(
        WinbackConfigError, match=r"rule 'y' \(line 5\): column 'g' is Enum.*one of 'a', 'b'"
    ):
        numeric.apply(table)
