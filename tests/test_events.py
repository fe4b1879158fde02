"""The events room (docs/methods.md#events): reading, silence over event types, the comparison
with purchase silence, funnel stages and conversion, paths before silence. Expected values are
worked out by hand in the comments."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winback
from winback import events
from winback.errors import WinbackConfigError, WinbackInputError

D = date


def frame(rows: list[tuple[int, date | datetime, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "event": [r[2] for r in rows],
        },
        schema={"customer_id": pl.Int64, "ts": pl.Date, "event": pl.String},
    )


# Hand-made paths. Customer 1: visit → view → cart (no order). 2: visit → view → cart → order.
# 3: e-mail only. 4: a cart and an order without a view. 5: view on Jan 2, order on Feb 20.
PATHS = frame(
    [
        (1, D(2024, 1, 1), "visit"),
        (1, D(2024, 1, 1), "view"),
        (1, D(2024, 1, 2), "cart"),
        (2, D(2024, 1, 3), "visit"),
        (2, D(2024, 1, 3), "view"),
        (2, D(2024, 1, 3), "cart"),
        (2, D(2024, 1, 3), "order"),
        (3, D(2024, 1, 5), "email_open"),
        (4, D(2024, 1, 6), "cart"),
        (4, D(2024, 1, 6), "order"),
        (5, D(2024, 1, 2), "view"),
        (5, D(2024, 2, 20), "order"),
    ]
)


def test_funnel_stage_on_hand_made_paths() -> None:
    out = events.funnel_stage(PATHS, as_of=D(2024, 2, 29))
    assert out.columns == list(events.STAGE_COLUMNS)
    assert out.rows() == [
        (1, 3, 3, "cart"),
        (2, 4, 4, "order"),
        (3, 1, 0, None),
        (4, 2, 4, "order"),
        (5, 2, 4, "order"),
    ]


def test_funnel_stage_window() -> None:
    # window (Jan 5 end of day − 30 days, Jan 5 end of day] = Dec 6 … Jan 5: 5's order and 4's
    # events are outside; every customer is still listed once.
    out = events.funnel_stage(PATHS, as_of=D(2024, 1, 5), days=30)
    assert out.rows() == [
        (1, 3, 3, "cart"),
        (2, 4, 4, "order"),
        (3, 1, 0, None),
        (4, 0, 0, None),
        (5, 1, 2, "view"),
    ]
    # the last 3 days up to Jan 3: (Dec 31 end, Jan 3 end] — 1's visit/view/cart, 2's four,
    # 5's view.
    short = events.funnel_stage(PATHS, as_of=D(2024, 1, 3), days=3)
    assert short.select("customer_id", "stage_index").rows() == [
        (1, 3),
        (2, 4),
        (3, 0),
        (4, 0),
        (5, 2),
    ]


def test_custom_stages_order() -> None:
    # stages view → order only: 1 reached view (its cart is not a stage), 4 reached order.
    out = events.funnel_stage(PATHS, stages=["view", "order"])
    assert out.select("customer_id", "furthest_stage").rows() == [
        (1, "view"),
        (2, "order"),
        (3, None),
        (4, "order"),
        (5, "order"),
    ]


def test_funnel_per_segment() -> None:
    segments = pl.DataFrame({"customer_id": [1, 2, 3, 4], "group": ["x", "x", "y", "y"]})
    out = events.funnel(PATHS, segments=segments, by="group")
    assert out.columns == list(events.FUNNEL_COLUMNS)
    rows = {(r[0], r[2]): r for r in out.rows()}
    # segment x = {1: cart, 2: order}: visit 2/2, view 2/2, cart 2/2, order 1/2 (step 1/2)
    assert rows[("x", "visit")][3:] == (2, 2, 1.0, 1.0)
    assert rows[("x", "cart")][3:] == (2, 2, 1.0, 1.0)
    assert rows[("x", "order")][3:] == (2, 1, 0.5, 0.5)
    # y = {3: none, 4: order}: each stage 1 of 2; step visit 1/2, then 1/1
    assert rows[("y", "visit")][3:] == (2, 1, 0.5, 0.5)
    assert rows[("y", "view")][3:] == (2, 1, 0.5, 1.0)
    assert rows[("y", "order")][3:] == (2, 1, 0.5, 1.0)
    # customer 5 is in no segment: "(none)", one customer who reached order
    assert rows[("(none)", "order")][3:] == (1, 1, 1.0, 1.0)
    assert out.height == 3 * 4


def test_silence_over_events_equals_purchase_like_table() -> None:
    rows = [
        (7, D(2024, 1, 1), "visit"),
        (7, D(2024, 1, 1), "visit"),  # same day: one occasion
        (7, D(2024, 1, 11), "order"),
        (7, D(2024, 1, 21), "view"),
        (7, D(2024, 2, 20), "visit"),
        (8, D(2024, 2, 1), "visit"),
        (8, D(2024, 2, 15), "email_open"),
        (9, D(2024, 2, 2), "order"),
    ]
    chosen = {"visit", "view"}
    purchases = pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows if r[2] in chosen],
            "ts": [r[1] for r in rows if r[2] in chosen],
        }
    )
    expected = winback.silence(purchases, as_of=D(2024, 3, 1)).drop("total_amount", "mean_amount")
    got = events.silence(frame(rows), event_types=["visit", "view"], as_of=D(2024, 3, 1))
    assert got.equals(expected)
    # by hand for 7: occasions Jan 1, Jan 21, Feb 20 → gaps 20, 30; Tr = 10 → S = 1/3
    seven = got.row(0, named=True)
    assert (seven["n_occasions"], seven["recency_days"], seven["max_gap_days"]) == (3, 10.0, 30.0)
    assert got.get_column("customer_id").to_list() == [7, 8]


def test_compare_patterns_every_customer_once() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 3, 5],
            "ts": [
                D(2024, 1, 1),
                D(2024, 1, 11),
                D(2024, 2, 20),
                D(2024, 2, 28),
                D(2024, 1, 1),
                D(2024, 1, 11),
                D(2024, 2, 1),
            ],
        }
    )
    ev = frame(
        [
            (1, D(2024, 2, 20), "visit"),
            (1, D(2024, 2, 28), "visit"),
            (2, D(2024, 1, 1), "visit"),
            (2, D(2024, 1, 11), "visit"),
            (3, D(2024, 1, 1), "visit"),
            (3, D(2024, 1, 5), "visit"),
            (4, D(2024, 2, 1), "visit"),
            (5, D(2024, 2, 25), "order"),
        ]
    )
    out = events.compare(tx, ev, event_types=["visit"], as_of=D(2024, 3, 1))
    assert out.columns == list(events.COMPARE_COLUMNS)
    # 1: bought Jan 1, 11 (Tr 50, max gap 10: S 5) but visits Feb 20, 28 (Tr 2, gap 8): engaged
    # 2: the reverse; 3: both silent; 4: visits only; 5: no visit events (its order is not a
    # selected type), one purchase.
    assert out.select("customer_id", "pattern").rows() == [
        (1, "engaged_not_buying"),
        (2, "buying_not_engaged"),
        (3, "silent"),
        (4, "no_purchases"),
        (5, "no_events"),
    ]
    assert out.row(0, named=True)["recency_gap_days"] == 50.0 - 2.0


def test_paths_by_hand() -> None:
    # as_of Jan 28 (end of day), 2 weeks back: window (Jan 14 end, Jan 28 end].
    ev = frame(
        [
            (1, D(2024, 1, 2), "order"),
            (1, D(2024, 1, 20), "visit"),  # week 2 (8 days before Jan 28 end … in (7, 14])
            (1, D(2024, 1, 26), "view"),  # week 1
            (1, D(2024, 1, 27), "cart"),  # week 1
            (1, D(2024, 2, 10), "order"),  # bought within 30 days: stayed
            (2, D(2024, 1, 3), "order"),
            (2, D(2024, 1, 22), "visit"),  # week 1 (6 days before)
            (2, D(2024, 1, 23), "view"),  # week 1
            (2, D(2024, 3, 30), "order"),  # after the horizon: went silent
            (3, D(2024, 1, 25), "visit"),  # never bought before as_of: not in the cohort
            (4, D(2024, 1, 1), "order"),  # no event in the window: not in the cohort
        ]
    )
    out = events.paths(ev, as_of=D(2024, 1, 28), weeks=2, horizon_days=30)
    assert out.outcomes.rows() == [(1, "stayed", 3), (2, "went_silent", 2)]
    weekly = {
        (r["outcome"], r["week_before"], r["event"]): r for r in out.weekly.iter_rows(named=True)
    }
    assert out.weekly.height == 2 * 2 * 4  # outcomes × weeks × event types
    stayed_cart = weekly[("stayed", 1, "cart")]
    assert (stayed_cart["events"], stayed_cart["customers"], stayed_cart["share"]) == (1, 1, 0.5)
    assert weekly[("stayed", 2, "visit")]["share"] == 1.0
    silent_view = weekly[("went_silent", 1, "view")]
    assert (silent_view["events"], silent_view["cohort"], silent_view["share"]) == (1, 1, 0.5)
    assert weekly[("went_silent", 2, "visit")]["share"] is None  # no events that week
    assert out.transitions.select("outcome", "from_event", "to_event", "count").rows() == [
        ("went_silent", "visit", "view", 1),
        ("stayed", "view", "cart", 1),
        ("stayed", "visit", "view", 1),
    ]


def test_paths_with_given_outcomes() -> None:
    outcomes = pl.DataFrame({"customer_id": [1, 3], "went_silent": [False, True]})
    out = events.paths(PATHS, as_of=D(2024, 1, 7), weeks=1, outcomes=outcomes)
    assert out.outcomes.rows() == [(1, "stayed", 3), (3, "went_silent", 1)]


# --- typed errors ---------------------------------------------------------------------------


def test_unknown_event_type_is_named() -> None:
    with pytest.raises(WinbackInputError, match=r"not in event_types: \['email_open'\]"):
        events.prepare_events(PATHS, event_types=["visit", "view", "cart", "order"])


def test_missing_and_mistyped_columns() -> None:
    with pytest.raises(WinbackInputError, match=r"'kind' \(the event\) is not in the input"):
        events.prepare_events(PATHS, event_col="kind")
    with pytest.raises(WinbackInputError, match=r"'shop' \(the customer\) is not in the input"):
        events.prepare_events(PATHS, customer_col="shop")
    numeric = PATHS.with_columns(pl.lit(1).alias("event"))
    with pytest.raises(WinbackInputError, match=r"event type\) has type"):
        events.prepare_events(numeric)


def test_null_event_type_raises_or_drops() -> None:
    bad = PATHS.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("event")).alias("event")
    )
    with pytest.raises(WinbackInputError, match=r"null event type in column 'event' \(rows 2\)"):
        events.prepare_events(bad)
    kept = events.prepare_events(bad, on_invalid="drop")
    assert (kept.rows_read, kept.frame.height) == (12, 11)
    assert kept.rejects.select("row_index", "reason").rows() == [(2, "null event type")]


def test_selection_errors() -> None:
    with pytest.raises(WinbackConfigError, match="not in the events' vocabulary"):
        events.silence(PATHS, event_types=["app_open"])
    with pytest.raises(WinbackConfigError, match="event_types is empty"):
        events.silence(PATHS, event_types=[])
    with pytest.raises(WinbackConfigError, match="names a stage twice"):
        events.funnel_stage(PATHS, stages=["visit", "visit"])
    with pytest.raises(WinbackConfigError, match="days="):
        events.funnel_stage(PATHS, days=0)
    with pytest.raises(WinbackConfigError, match="needs by="):
        events.funnel(PATHS, segments=pl.DataFrame({"customer_id": [1]}))
    with pytest.raises(WinbackInputError, match="'group' is not in segments"):
        events.funnel(PATHS, segments=pl.DataFrame({"customer_id": [1]}), by="group")
    with pytest.raises(WinbackConfigError, match="end before the day as_of"):
        events.paths(PATHS, as_of=D(2024, 2, 1))
    # the last event is on Feb 20: a 30-day horizon from Jan 21 ends that day (allowed), from
    # Jan 22 a day later (refused)
    assert events.paths(PATHS, as_of=D(2024, 1, 21), horizon_days=30).outcomes.height == 2
    with pytest.raises(WinbackConfigError, match="end before the day as_of"):
        events.paths(PATHS, as_of=D(2024, 1, 22), horizon_days=30)
    with pytest.raises(WinbackConfigError, match="weeks="):
        events.paths(PATHS, as_of=D(2024, 1, 1), weeks=0)


def test_compare_refuses_mixed_id_types() -> None:
    tx = pl.DataFrame({"customer_id": ["1", "1"], "ts": [D(2024, 1, 1), D(2024, 1, 5)]})
    with pytest.raises(WinbackInputError, match="customer ids are String"):
        events.compare(tx, PATHS, event_types=["visit"])


# --- invariants -----------------------------------------------------------------------------

EVENT_NAMES = ("visit", "view", "cart", "order", "email_open")
OUTCOMES = pl.DataFrame({"customer_id": range(1, 7), "went_silent": [i % 2 == 1 for i in range(6)]})
rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 6),
        st.dates(min_value=D(2024, 1, 1), max_value=D(2024, 3, 31)),
        st.sampled_from(EVENT_NAMES),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**32 - 1))
def test_row_order_invariance_and_every_customer_once(
    rows: list[tuple[int, date, str]], seed: int
) -> None:
    original = frame(rows)
    shuffled = original.sample(fraction=1.0, shuffle=True, seed=seed)
    vocabulary = list(EVENT_NAMES)
    as_of = D(2024, 4, 1)
    a = events.prepare_events(original, event_types=vocabulary)
    b = events.prepare_events(shuffled, event_types=vocabulary)
    for make in (
        lambda e: (
            events.silence(e, event_types=["visit", "view"], as_of=as_of)
            if "visit" in {r[2] for r in rows} or "view" in {r[2] for r in rows}
            else pl.DataFrame()
        ),
        lambda e: events.funnel_stage(e, as_of=as_of, days=60),
        lambda e: events.funnel(e, as_of=as_of),
        lambda e: events.paths(e, as_of=D(2024, 2, 1), weeks=3, outcomes=OUTCOMES).weekly,
        lambda e: events.paths(e, as_of=D(2024, 2, 1), weeks=3, outcomes=OUTCOMES).transitions,
    ):
        assert make(a).equals(make(b))
    chosen = [r for r in rows if r[2] in ("visit", "view")]
    if chosen:  # silence over events = silence over a purchase-like table of those rows
        table = pl.DataFrame(
            {"customer_id": [r[0] for r in chosen], "ts": [r[1] for r in chosen]},
            schema={"customer_id": pl.Int64, "ts": pl.Date},
        )
        expected = winback.silence(table, as_of=as_of).drop("total_amount", "mean_amount")
        assert events.silence(b, event_types=["view", "visit"], as_of=as_of).equals(expected)
    stages = events.funnel_stage(a)
    customers = sorted({r[0] for r in rows})
    assert stages.get_column("customer_id").to_list() == customers
    # furthest stage by brute force: the largest stage position among the customer's events
    order = {"visit": 1, "view": 2, "cart": 3, "order": 4}
    expected = [max(order.get(r[2], 0) for r in rows if r[0] == c) for c in customers]
    assert stages.get_column("stage_index").to_list() == expected
    # compare: every customer of either input exactly once
    tx = pl.DataFrame(
        {"customer_id": [r[0] + 3 for r in rows], "ts": [r[1] for r in rows]},
        schema={"customer_id": pl.Int64, "ts": pl.Date},
    )
    if {"visit", "view"} & {r[2] for r in rows}:
        both = events.compare(tx, a, event_types=["visit", "view"], as_of=as_of)
        ids = both.get_column("customer_id").to_list()
        engaged = {r[0] for r in rows if r[2] in ("visit", "view")}
        assert ids == sorted(engaged | {r[0] + 3 for r in rows})


def test_compare_with_no_selected_events() -> None:
    # app_open is in the vocabulary but has no events: every purchaser is "no_events"
    vocabulary = ["visit", "view", "cart", "order", "email_open", "app_open"]
    ev = events.prepare_events(PATHS, event_types=vocabulary)
    tx = pl.DataFrame(
        {"customer_id": [1, 1, 9], "ts": [D(2024, 1, 1), D(2024, 1, 9), D(2024, 1, 2)]}
    )
    out = events.compare(tx, ev, event_types=["app_open"], as_of=D(2024, 2, 1))
    assert out.select("customer_id", "pattern").rows() == [(1, "no_events"), (9, "no_events")]


def test_funnel_in_a_window_counts_every_customer() -> None:
    # window Dec 6 … Jan 5 (as test_funnel_stage_window): stages 1 cart, 2 order, 3 none,
    # 4 none (no event in the window), 5 view. All five are the segment's customers.
    out = events.funnel(PATHS, as_of=D(2024, 1, 5), days=30)
    assert out.select("stage", "customers", "reached").rows() == [
        ("visit", 5, 3),
        ("view", 5, 3),
        ("cart", 5, 2),
        ("order", 5, 1),
    ]
    assert out.get_column("share_reached").to_list() == pytest.approx([0.6, 0.6, 0.4, 0.2])
    assert out.get_column("step_conversion").to_list() == pytest.approx([0.6, 1.0, 2 / 3, 0.5])
