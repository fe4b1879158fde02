"""events.paths(...).differences (docs/methods.md#paths-significance): Fisher exact tests per
event type and transition on customers, Holm's adjustment; a hand case, Holm against its
definition, the planted browse-without-cart tail of benches/gen_events.py (significant) and
random outcomes (nothing significant)."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import fisher_exact

from tests.benches import load_bench
from winback import events
from winback.errors import WinbackConfigError

_paths = sys.modules["winback.events._paths"]


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12)


# The window is the week up to 2024-01-07 (outcomes given). Silent: 1–4; stayed: 5–8.
# visit: 1 2 3 4 5 6 7 8 (all); view: 1 2 3 5 6 7 8; cart: 5 6 7 (and 1); order: 6 7.
# A transition whose first event one group never did is left out (none here: customer 1 carts).
_ROWS = [
    (1, at(2024, 1, 2), "visit"),
    (1, at(2024, 1, 3), "view"),
    (1, at(2024, 1, 4), "cart"),
    (2, at(2024, 1, 2), "visit"),
    (2, at(2024, 1, 3), "view"),
    (3, at(2024, 1, 5), "visit"),
    (3, at(2024, 1, 6), "view"),
    (4, at(2024, 1, 6), "visit"),
    (5, at(2024, 1, 2), "visit"),
    (5, at(2024, 1, 3), "view"),
    (5, at(2024, 1, 4), "cart"),
    (6, at(2024, 1, 2), "visit"),
    (6, at(2024, 1, 3), "view"),
    (6, at(2024, 1, 4), "cart"),
    (6, at(2024, 1, 5), "order"),
    (7, at(2024, 1, 1), "visit"),
    (7, at(2024, 1, 2), "view"),
    (7, at(2024, 1, 3), "cart"),
    (7, at(2024, 1, 4), "order"),
    (8, at(2024, 1, 3), "visit"),
    (8, at(2024, 1, 4), "view"),
    (9, at(2023, 12, 1), "order"),  # outside the window: not in the cohort
]
HAND = pl.DataFrame(_ROWS, schema=["customer_id", "ts", "event"], orient="row")
OUTCOMES = pl.DataFrame(
    {"customer_id": list(range(1, 10)), "went_silent": [True] * 4 + [False] * 5}
)


def test_hand_counts_and_fisher() -> None:
    out = events.paths(HAND, as_of=date(2024, 1, 7), weeks=1, outcomes=OUTCOMES)
    diff = out.differences
    assert tuple(diff.columns) == events.DIFFERENCE_COLUMNS
    rows = {(r["kind"], r["event"], r["to_event"]): r for r in diff.iter_rows(named=True)}
    # counted by hand from the table above: 4 silent, 4 stayed customers in the window; an
    # event type out of the cohort, a transition out of those who did its first event
    hand = {
        ("event", "visit", None): (4, 4, 4, 4),
        ("event", "view", None): (3, 4, 4, 4),
        ("event", "cart", None): (1, 4, 3, 4),
        ("event", "order", None): (0, 4, 2, 4),
        ("transition", "visit", "view"): (3, 4, 4, 4),
        ("transition", "view", "cart"): (1, 3, 3, 4),
        ("transition", "cart", "order"): (0, 1, 2, 3),
    }
    assert set(rows) == set(hand)
    p_raw = {}
    for key, (a, na, b, nb) in hand.items():
        row = rows[key]
        assert (row["silent_customers"], row["silent_base"]) == (a, na)
        assert (row["stayed_customers"], row["stayed_base"]) == (b, nb)
        assert row["silent_share"] == a / na
        assert row["stayed_share"] == b / nb
        p = fisher_exact([[a, na - a], [b, nb - b]]).pvalue
        assert row["p_value"] == pytest.approx(min(p, 1.0), rel=1e-12)
        p_raw[key] = min(p, 1.0)
    # the sample odds ratio, null where it divides by zero
    assert rows[("event", "cart", None)]["odds_ratio"] == pytest.approx((1 * 1) / (3 * 3))
    assert rows[("event", "order", None)]["odds_ratio"] == 0.0
    assert rows[("event", "visit", None)]["odds_ratio"] is None
    assert rows[("transition", "view", "cart")]["odds_ratio"] == pytest.approx((1 * 1) / (2 * 3))
    # Holm by hand: m = 7, sorted p's times 7, 6, 5 …, running maximum, capped at 1
    order = sorted(p_raw, key=lambda k: p_raw[k])
    running = 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, (7 - i) * p_raw[key]))
        assert rows[key]["p_adjusted"] == pytest.approx(running, rel=1e-12)
    assert not diff["significant"].any()  # 8 customers prove nothing
    assert diff["p_adjusted"].is_sorted()


def _holm_reference(p: list[float]) -> list[float]:
    """Holm's adjusted p-values from the definition, one at a time."""
    m = len(p)
    ranked = sorted(range(m), key=lambda i: (p[i], i))
    out = [0.0] * m
    for position, i in enumerate(ranked):
        out[i] = max(min(1.0, (m - j) * p[ranked[j]]) for j in range(position + 1))
    return out


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_holm_matches_its_definition(p: list[float]) -> None:
    got = _paths.holm(p)
    assert got.tolist() == pytest.approx(_holm_reference(p), rel=1e-12, abs=0)
    assert (got >= np.asarray(p)).all()
    assert (got <= 1.0).all()


@pytest.fixture(scope="module")
def generated() -> tuple[pl.DataFrame, datetime]:
    gen = load_bench("gen_events")
    tx, ev = gen.generate_pair(3_000, seed=3)
    end = tx.get_column("ts").max()
    assert isinstance(end, datetime)
    return ev, end - timedelta(days=120)


def test_planted_tail_is_significant(generated: tuple[pl.DataFrame, datetime]) -> None:
    ev, as_of = generated
    out = events.paths(ev, as_of=as_of, weeks=4, horizon_days=90)
    diff = out.differences
    rows = {(r["kind"], r["event"], r["to_event"]): r for r in diff.iter_rows(named=True)}
    # planted: after the last purchase customers browse on with almost no carts, so the
    # silent viewers go on to the cart far less often than the stayed ones
    step = rows[("transition", "view", "cart")]
    assert step["significant"], step
    assert step["p_adjusted"] < 1e-9
    assert step["silent_share"] < step["stayed_share"] - 0.2
    assert step["odds_ratio"] < 0.3
    # … while the silent who visit still view, and those who cart still order: no difference
    for key in (("transition", "visit", "view"), ("transition", "cart", "order")):
        assert not rows[key]["significant"], rows[key]
    # the silent do less of everything but open e-mails
    assert rows[("event", "cart", None)]["significant"]
    assert rows[("event", "email_open", None)]["odds_ratio"] > 1
    assert diff["p_adjusted"].is_sorted()
    assert diff["odds_ratio"].drop_nulls().is_finite().all()


def test_random_outcomes_are_not_significant(generated: tuple[pl.DataFrame, datetime]) -> None:
    ev, as_of = generated
    ids = ev.get_column("customer_id").unique().sort()
    rng = np.random.default_rng(11)
    null = pl.DataFrame({"customer_id": ids, "went_silent": rng.random(ids.len()) < 0.6})
    out = events.paths(ev, as_of=as_of, weeks=4, outcomes=null)
    diff = out.differences
    assert diff.height >= 10  # event types and transitions were tested
    assert not diff["significant"].any(), diff.filter(pl.col("significant"))
    # the labels drawn at random: over the cohort (≈ 1,250 customers) the shares agree to a few
    # points
    kinds = diff.filter(pl.col("kind") == "event")
    gaps = (kinds["silent_share"] - kinds["stayed_share"]).abs()
    assert kinds.height >= 5
    assert gaps.max() < 0.05  # type: ignore[operator]


def test_differences_ignore_row_order(generated: tuple[pl.DataFrame, datetime]) -> None:
    ev, as_of = generated
    first = events.paths(ev, as_of=as_of, weeks=2, horizon_days=90).differences
    shuffled = ev.sample(fraction=1.0, shuffle=True, seed=5)
    again = events.paths(shuffled, as_of=as_of, weeks=2, horizon_days=90).differences
    assert first.equals(again)


def test_alpha_checked_and_used(generated: tuple[pl.DataFrame, datetime]) -> None:
    with pytest.raises(WinbackConfigError, match=r"alpha=1\.5 must be a probability"):
        events.paths(HAND, as_of=date(2024, 1, 7), outcomes=OUTCOMES, alpha=1.5)
    ev, as_of = generated
    strict = events.paths(ev, as_of=as_of, weeks=4, horizon_days=90, alpha=1e-20).differences
    p = strict["p_adjusted"]
    assert 0 < (p < 1e-20).sum() < (p < 0.05).sum()  # the cut falls inside the table
    assert strict["significant"].to_list() == (p < 1e-20).to_list()


def test_one_group_empty_gives_an_empty_table() -> None:
    everyone_silent = OUTCOMES.with_columns(pl.lit(True).alias("went_silent"))
    out = events.paths(HAND, as_of=date(2024, 1, 7), weeks=1, outcomes=everyone_silent)
    assert out.differences.height == 0
    assert tuple(out.differences.columns) == events.DIFFERENCE_COLUMNS
