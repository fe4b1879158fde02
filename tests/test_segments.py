"""RFM scores, named segments, tiers, quadrants and migration feature differences
(docs/methods.md#migration, #rfm)."""

from __future__ import annotations

import doctest
import importlib
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import winback
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError
from winback.rfm import SEGMENT_GRID, SEGMENT_NAMES


def scored_table(recency: list[float], frequency: list[int], money: list[float]) -> pl.DataFrame:
    n = len(recency)
    return pl.DataFrame(
        {
            "customer_id": list(range(1, n + 1)),
            "recency_days": recency,
            "n_occasions": frequency,
            "total_amount": money,
            "tenure_days": [365.25] * n,
        }
    )


@pytest.mark.parametrize("name", ["winback.rfm", "winback.segments", "winback.campaign"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_distinct_values_fall_into_exact_quintiles() -> None:
    out = winback.rfm(
        scored_table(
            recency=[float(10 * i) for i in range(10)],  # customer 1 most recent
            frequency=list(range(1, 11)),
            money=[float(m) for m in range(10, 0, -1)],
        )
    )
    assert out.get_column("r_score").to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out.get_column("f_score").to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out.get_column("m_score").to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out.get_column("rfm_cell").to_list()[:2] == ["515", "515"]
    assert out.get_column("fm_score").to_list()[0] == 3.0


def test_ties_get_equal_scores_from_the_share_strictly_below() -> None:
    # F: 1,1,1,1,2,2,3,4,5,6 → 1 + ⌊5·(customers strictly below)/10⌋
    out = winback.rfm(
        scored_table([1.0] * 5 + [2.0] * 5, [1, 1, 1, 1, 2, 2, 3, 4, 5, 6], [1.0] * 10)
    )
    assert out.get_column("f_score").to_list() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    # two recency values, half each: the most recent half holds the best value → 5, the rest 1.
    assert out.get_column("r_score").to_list() == [5] * 5 + [1] * 5
    # a column with one distinct value ranks nobody
    assert set(out.get_column("m_score").to_list()) == {3}


def test_a_mass_of_equal_values_never_empties_the_top_bin() -> None:
    # 70 % of the customers share the highest amount: rank quintiles would put them at 2,
    # value quintiles would leave bin 5 empty; they are the best, so they score 5.
    money = [10.0, 20.0, 30.0] + [99.0] * 7
    out = winback.rfm(scored_table([float(i) for i in range(10)], list(range(1, 11)), money))
    scores = out.get_column("m_score").to_list()
    assert scores[3:] == [5] * 7
    assert scores[:3] == [1, 1, 2]
    # 60 % at the lowest frequency: they score 1 (not a middle score), and the top bin is used.
    out = winback.rfm(scored_table([1.0] * 10, [1] * 6 + [2, 3, 4, 5], [1.0] * 10))
    assert out.get_column("f_score").to_list() == [1] * 6 + [4, 4, 5, 5]


def test_nulls_stay_null_and_do_not_count() -> None:
    table = scored_table([1.0, 2.0, 3.0], [1, 2, 3], [5.0, 6.0, 7.0]).with_columns(
        pl.Series("total_amount", [5.0, None, 7.0])
    )
    out = winback.rfm(table)
    assert out.get_column("m_score").to_list() == [1, None, 5]
    assert out.get_column("rfm_cell").to_list()[1] is None
    assert out.get_column("rfm_segment").to_list()[1] is None


def grid_segment(r: int, fm: float) -> str:
    table = pl.DataFrame({"r_score": [r], "fm_score": [fm]})
    from winback.rfm import _segment_expr

    return str(table.select(_segment_expr(None)).item())


@pytest.mark.parametrize(
    ("r", "fm", "segment"),
    [
        (5, 5.0, "Champions"),
        (4, 4.0, "Champions"),
        (3, 4.5, "Loyal"),
        (5, 3.5, "Loyal"),
        (4, 3.0, "Loyal"),
        (1, 4.0, "Can't lose them"),
        (2, 5.0, "At risk"),
        (1, 3.5, "At risk"),
        (2, 3.0, "At risk"),
        (3, 3.5, "Need attention"),
        (5, 2.5, "Potential loyalist"),
        (4, 2.0, "Potential loyalist"),
        (3, 2.5, "About to sleep"),
        (3, 1.0, "About to sleep"),
        (1, 2.5, "Hibernating"),
        (2, 1.5, "Hibernating"),
        (4, 1.5, "Promising"),
        (5, 1.0, "New"),
        (1, 1.5, "Lost"),
    ],
)
def test_default_grid_cells(r: int, fm: float, segment: str) -> None:
    assert grid_segment(r, fm) == segment


def test_default_grid_covers_every_cell_with_the_eleven_names() -> None:
    cells = pl.DataFrame(
        [(r, fm / 2) for r in range(1, 6) for fm in range(2, 11)],
        schema={"r_score": pl.Int64, "fm_score": pl.Float64},
        orient="row",
    )
    from winback.rfm import _segment_expr

    names = cells.select(_segment_expr(None).alias("s")).get_column("s")
    assert names.null_count() == 0
    assert set(names.cast(pl.String).to_list()) == set(SEGMENT_NAMES)
    assert set(SEGMENT_GRID.get_column("segment").to_list()) == set(SEGMENT_NAMES)


def test_segment_map_overrides_by_cell_or_rule_rows() -> None:
    table = scored_table([1.0, 50.0], [5, 1], [100.0, 1.0])
    by_cell = winback.rfm(table, segment_map={"555": "VIP"})
    assert by_cell.get_column("rfm_segment").to_list() == ["VIP", None]
    rows = pl.DataFrame(
        {
            "segment": ["recent", "old"],
            "r_min": [4, None],
            "r_max": [None, 3],
            "fm_min": [None, None],
            "fm_max": [None, None],
        },
        schema={
            "segment": pl.String,
            "r_min": pl.Int64,
            "r_max": pl.Int64,
            "fm_min": pl.Float64,
            "fm_max": pl.Float64,
        },
    )
    by_rows = winback.rfm(table, segment_map=rows)
    assert by_rows.get_column("rfm_segment").to_list() == ["recent", "old"]
    with pytest.raises(WinbackConfigError, match=r"segment_map cell '65' is not three digits"):
        winback.rfm(table, segment_map={"65": "x"})
    with pytest.raises(WinbackConfigError, match=r"segment_map has no column 'r_max'"):
        winback.rfm(table, segment_map=pl.DataFrame({"segment": ["a"], "r_min": [1]}))


def test_three_tiers_and_their_editable_thresholds() -> None:
    # R: 5 5 4 4 3 3 2 2 1 1; F = M so FM = F: 1 1 2 2 3 3 4 4 5 5 (reversed below)
    table = scored_table(
        [float(i) for i in range(10)], list(range(10, 0, -1)), [float(m) for m in range(10, 0, -1)]
    )
    out = winback.rfm(table)
    assert out.get_column("fm_score").to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out.get_column("rfm_tier").to_list() == (
        ["high_value_active"] * 4 + ["general_silent"] * 2 + ["low_value_lost"] * 4
    )
    edited = winback.rfm(table, tier_thresholds={"active_r": 5, "fm": 2})
    assert edited.get_column("rfm_tier").to_list() == (
        ["high_value_active"] * 2 + ["general_silent"] * 6 + ["low_value_lost"] * 2
    )
    with pytest.raises(WinbackConfigError, match=r"tier_thresholds has no key 'r'"):
        winback.rfm(table, tier_thresholds={"r": 3})


def test_from_transactions_equals_from_the_scored_table() -> None:
    tx = load_cdnow()
    direct = winback.rfm(tx, as_of="1998-06-30")
    via = winback.rfm(winback.silence(tx, as_of="1998-06-30"))
    assert_frame_equal(direct.drop("occasions_365d"), via)
    # CDNOW: half the customers bought once; they take the bottom F score, the top bins are used.
    f = direct.get_column("f_score")
    singles = direct.filter(pl.col("n_occasions") == 1).get_column("f_score")
    assert set(singles.to_list()) == {1}
    assert set(f.to_list()) >= {1, 5}
    assert set(direct.get_column("r_score").to_list()) == {1, 2, 3, 4, 5}
    assert direct.get_column("rfm_segment").null_count() == 0


def test_window_counts_only_recent_occasions() -> None:
    start = date(2024, 1, 1)
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "ts": [
                start,
                start + timedelta(days=100),
                start + timedelta(days=300),
                start + timedelta(days=10),
                start + timedelta(days=20),
            ],
            "amount": [10.0, 20.0, 40.0, 5.0, 5.0],
        }
    )
    as_of = start + timedelta(days=364)
    out = winback.rfm(tx, as_of=as_of, window="90d")
    assert out.get_column("rfm_frequency").to_list() == [1.0, 0.0]
    assert out.get_column("rfm_monetary").to_list() == [40.0, 0.0]
    assert out.get_column("occasions_365d").to_list() == [3, 2]
    mean = winback.rfm(tx, as_of=as_of, monetary="mean")
    assert mean.get_column("rfm_monetary").to_list() == [70.0 / 3, 5.0]


def test_rfm_bad_inputs() -> None:
    tx = pl.DataFrame({"customer_id": [1, 2], "ts": [date(2024, 1, 1)] * 2})
    with pytest.raises(WinbackInputError, match=r"rfm needs an amount column for M"):
        winback.rfm(tx)
    with pytest.raises(WinbackConfigError, match=r"window= needs transactions"):
        winback.rfm(scored_table([1.0], [1], [1.0]), window="30d")
    with pytest.raises(WinbackConfigError, match=r"monetary='median' must be 'total' or 'mean'"):
        winback.rfm(scored_table([1.0], [1], [1.0]), monetary="median")  # type: ignore[arg-type]


def test_quadrant_defaults_cuts_and_fitted_columns() -> None:
    table = scored_table([1.0] * 4, [12, 2, 10, 1], [900.0, 800.0, 20.0, 10.0])
    out = winback.quadrant(table)
    assert out.get_column("quadrant").to_list() == ["bee", "dragonfly", "butterfly", "mantis"]
    assert out.get_column("quadrant_loyalty").to_list() == [12.0, 2.0, 10.0, 1.0]
    fixed = winback.quadrant(table, contribution_cut=5.0, loyalty_cut=0.5)
    assert set(fixed.get_column("quadrant").to_list()) == {"bee"}
    fitted = table.with_columns(
        clv=pl.Series([1.0, 2.0, 3.0, 4.0]), p_alive=pl.Series([0.9, 0.1, 0.8, 0.2])
    )
    # one definition: fitted columns in the table do not change the default quadrant ...
    assert winback.quadrant(fitted).get_column("quadrant").equals(out.get_column("quadrant"))
    # ... they are used when named
    out = winback.quadrant(fitted, contribution="clv", loyalty="p_alive")
    assert out.get_column("quadrant").to_list() == ["butterfly", "mantis", "bee", "dragonfly"]
    with pytest.raises(WinbackInputError, match=r"loyalty column 'visits' is not in the table"):
        winback.quadrant(table, loyalty="visits")


def test_quadrant_short_tenure_is_floored() -> None:
    table = scored_table([1.0, 1.0], [1, 6], [1.0, 1.0]).with_columns(
        pl.Series("tenure_days", [2.0, 730.5])
    )
    loyalty = winback.quadrant(table).get_column("quadrant_loyalty").to_list()
    assert loyalty == pytest.approx([365.25 / 30.0, 3.0])


def test_feature_differences_are_standardised_mean_differences() -> None:
    # Customers 1–4 buy every 10 days until day 30; at day 35 they are in groups a/b. 1 and 2
    # then stop (→ e by day 80), 3 and 4 keep buying (stay low).
    rows = []
    for c in (1, 2, 3, 4):
        days = [0, 10, 20, 30] + ([] if c <= 2 else [40, 50, 60, 70, 80])
        amount = 10.0 * c
        rows += [(c, date(2024, 1, 1) + timedelta(days=d), amount) for d in days]
    tx = pl.DataFrame(rows, schema=["customer_id", "ts", "amount"], orient="row")
    moves = winback.migration(tx, as_of=[date(2024, 2, 5), date(2024, 3, 21)])
    table = moves.feature_differences()
    row = table.filter(pl.col("feature") == "total_amount").row(0, named=True)
    assert (row["n_moved"], row["n_not_moved"]) == (2, 2)
    assert row["mean_moved"] == pytest.approx(60.0)  # 4 × 10 and 4 × 20
    assert row["mean_not_moved"] == pytest.approx(140.0)
    sd = (800.0 / 1.0) ** 0.5  # both groups: values 40 apart → variance 800
    assert row["smd"] == pytest.approx((60.0 - 140.0) / sd)
    assert table.get_column("smd").abs().is_sorted(descending=True, nulls_last=True)
    with pytest.raises(WinbackConfigError, match=r"toward='f' must be one of the groups a–e"):
        moves.feature_differences(toward="f")


def test_feature_differences_on_cdnow() -> None:
    moves = winback.migration(load_cdnow(), as_of=["1997-09-30", "1998-03-31"])
    table = moves.feature_differences(from_states=["c"])
    assert table.height == 13
    assert {"r_score", "f_score", "m_score", "n_occasions", "mean_amount"} <= set(
        table.get_column("feature").to_list()
    )
    moved = int(table.get_column("n_moved")[0])
    assert (
        moved
        == moves.transitions.filter(
            (pl.col("from_state") == "c") & pl.col("to_state").is_in(["d", "e"])
        )
        .get_column("customers")
        .sum()
    )
