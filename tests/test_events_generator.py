"""benches/gen_events.py: seeded, consistent with gen_data's purchases, 10–100× as many
events, and the planted signature before silence visible through winback.events.paths."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType

import polars as pl
import pytest

from tests.benches import load_bench
from winback import events


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_bench("gen_events")


@pytest.fixture(scope="module")
def pair(gen: ModuleType) -> tuple[pl.DataFrame, pl.DataFrame]:
    tx, ev = gen.generate_pair(3_000, seed=3)
    return tx, ev


def test_seeded(gen: ModuleType, pair: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    tx, ev = pair
    assert gen.generate(tx, seed=3).equals(ev)
    assert not gen.generate(tx, seed=4).equals(ev)


def test_orders_are_the_purchases(pair: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    tx, ev = pair
    orders = ev.filter(pl.col("event") == "order").select("customer_id", "ts")
    assert orders.sort("customer_id", "ts").equals(
        tx.select("customer_id", "ts").sort("customer_id", "ts")
    )
    ratio = ev.height / tx.height
    assert 10 <= ratio <= 100
    # views, carts and orders carry an item; visits and opens do not
    with_item = ev.group_by("event").agg(pl.col("item").null_count().alias("nulls"), pl.len())
    nulls = {r[0]: (r[1], r[2]) for r in with_item.rows()}
    for kind in ("view", "cart", "order"):
        assert nulls[kind][0] == 0
    for kind in ("visit", "app_open", "email_open"):
        assert nulls[kind][0] == nulls[kind][1]
    # every event inside the generated window
    assert ev.get_column("ts").min() >= tx.get_column("ts").min() - timedelta(hours=1)


def test_signature_before_silence(gen: ModuleType, pair: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    tx, ev = pair
    end = tx.get_column("ts").max()
    assert end is not None
    out = events.paths(ev, as_of=end - timedelta(days=120), weeks=4, horizon_days=90)
    mix = dict(
        ((r[0], r[1]), r[2])
        for r in out.weekly.group_by("outcome", "event").agg(pl.col("events").sum()).rows()
    )
    # planted: after the last purchase customers browse on but almost never add to the cart, so
    # those who went silent put far fewer of their views into the cart in the weeks before
    silent = mix[("went_silent", "cart")] / mix[("went_silent", "view")]
    stayed = mix[("stayed", "cart")] / mix[("stayed", "view")]
    assert silent < 0.6 * stayed
    assert mix[("went_silent", "view")] > 0
    sizes = dict(out.outcomes.group_by("outcome").len().rows())
    assert sizes["went_silent"] > 50
    assert sizes["stayed"] > 50
