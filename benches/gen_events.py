"""Seeded synthetic engagement events beside :mod:`gen_data`'s purchases (docs/methods.md#events).

The purchases are :func:`gen_data.generate`'s rows, unchanged; every purchase is an ``order``
event at exactly its time. Around them each customer browses, opens e-mails and the app:

- **purchase sessions**: each purchase at ``t`` is the end of a session ``[app_open,] visit,
  view × (1 + Poisson(1)), cart, order``, events 2 minutes apart ending at ``t``;
- **browsing sessions** while the customer buys: ``Poisson(browse_per_purchase × n)`` sessions
  at uniform times on ``[first purchase, last purchase]`` (``n`` = the customer's purchases),
  each ``[app_open,] visit, view × (1 + Poisson(1.5)), [cart with probability 0.35]`` (an
  abandoned cart);
- **the signature before silence**: after the last purchase the customer keeps browsing for a
  tail of ``Exponential(mean tail_days)`` days (cut at the window's end) at the customer's
  session rate while buying (sessions ÷ max(days from first to last purchase, 30), at most one
  a day), but almost never adds to the cart (probability 0.02) — still browsing, no longer
  buying;
- **channels**: a customer uses the app with probability 0.5; an app user's session is on the
  ``app`` channel with probability 0.6 and starts with an ``app_open`` event, others are ``web``;
- **e-mail**: a weekly mailing from the first purchase to the window's end; each is opened
  (an ``email_open`` event on the ``email`` channel, at a uniform time in its week) with the
  customer's open rate ``q ~ Beta(2, 6)`` while they engage, ``q / 5`` after;
- **items**: views pick a product from a catalogue of ``n_items`` with Zipf-like popularity
  (``item = ⌊n_items · u³⌋ + 1``); a cart is the session's last viewed item and an order its
  cart's item; other events have no item.

Every draw comes from ``default_rng([seed, 7, chunk])`` per fixed chunk of customers, so the
result depends only on the arguments. With the defaults the events are about 20× the purchases.

CLI::

    python benches/gen_events.py --customers 100000 --seed 0 -o events.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_data

__all__ = ["CHANNELS", "EVENT_TYPES", "generate", "generate_pair"]

#: The event types, in the order of the ``event`` Enum.
EVENT_TYPES = ("email_open", "app_open", "visit", "view", "cart", "order")
CHANNELS = ("web", "app", "email")
EMAIL_OPEN, APP_OPEN, VISIT, VIEW, CART, ORDER = range(6)
WEB, APP, EMAIL = range(3)
STEP_US = 120_000_000  # two minutes between a session's events
CHUNK_CUSTOMERS = 1 << 16
APP_USERS = 0.5
APP_SESSION_SHARE = 0.6
CART_BROWSE = 0.35
CART_TAIL = 0.02
EXTRA_VIEWS_ORDER = 1.0
EXTRA_VIEWS_BROWSE = 1.5
EMAIL_OPEN_A, EMAIL_OPEN_B = 2.0, 6.0
EMAIL_AFTER_FACTOR = 0.2


def _customer_spans(tx: pl.DataFrame) -> pl.DataFrame:
    return (
        tx.group_by("customer_id")
        .agg(
            pl.len().alias("n"),
            pl.col("ts").min().cast(pl.Int64).alias("first"),
            pl.col("ts").max().cast(pl.Int64).alias("last"),
        )
        .sort("customer_id")
    )


def _sessions_to_events(
    rng: np.random.Generator,
    cust: np.ndarray,
    anchor: np.ndarray,
    kind: np.ndarray,
    channel: np.ndarray,
    n_items: int,
    lo_us: int,
    hi_us: int,
) -> dict[str, np.ndarray]:
    """Expands sessions into events. ``kind``: 0 purchase (ends at ``anchor``), 1 browsing,
    2 tail (start at ``anchor``)."""
    n = cust.size
    app = (channel == APP).astype(np.int64)
    views = 1 + rng.poisson(np.where(kind == 0, EXTRA_VIEWS_ORDER, EXTRA_VIEWS_BROWSE), n)
    cart_p = np.choose(kind, [1.0, CART_BROWSE, CART_TAIL])
    carts = (rng.random(n) < cart_p).astype(np.int64)
    orders = (kind == 0).astype(np.int64)
    sizes = app + 1 + views + carts + orders
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])
    session = np.repeat(np.arange(n), sizes)
    j = np.arange(total) - offsets[session]
    a, v = app[session], views[session]
    event = np.full(total, VIEW, dtype=np.uint8)
    event[j < a] = APP_OPEN
    event[j == a] = VISIT
    after_views = j >= a + 1 + v
    event[after_views] = CART
    event[after_views & (orders[session] == 1) & (j == sizes[session] - 1)] = ORDER
    # purchase sessions end at their purchase; others start at their anchor
    start = np.where(kind == 0, anchor - (sizes - 1) * STEP_US, anchor)
    ts = start[session] + j * STEP_US
    ends_at_anchor = kind[session] == 0
    ts = np.where(ends_at_anchor, np.maximum(ts, lo_us), np.minimum(ts, hi_us - 1))
    item = (np.floor(n_items * rng.random(total) ** 3) + 1).astype(np.int64)
    carried = np.flatnonzero(event == CART)
    item[carried] = item[carried - 1]
    carried = np.flatnonzero(event == ORDER)
    item[carried] = item[carried - 1]
    has_item = (event == VIEW) | (event == CART) | (event == ORDER)
    ch = np.where(event == APP_OPEN, APP, channel[session]).astype(np.uint8)
    return {
        "customer": cust[session],
        "ts": ts,
        "event": event,
        "channel": ch,
        "item": np.where(has_item, item, 0),
    }


def _chunk_events(
    rng: np.random.Generator,
    spans: pl.DataFrame,
    purchases: pl.DataFrame,
    *,
    browse_per_purchase: float,
    tail_days: float,
    n_items: int,
    lo_us: int,
    hi_us: int,
) -> dict[str, np.ndarray]:
    day = gen_data.DAY_US
    cust = spans.get_column("customer_id").to_numpy()
    n = spans.get_column("n").to_numpy().astype(np.int64)
    first = spans.get_column("first").to_numpy()
    last = spans.get_column("last").to_numpy()
    m = cust.size
    app_user = rng.random(m) < APP_USERS
    open_rate = rng.beta(EMAIL_OPEN_A, EMAIL_OPEN_B, m)
    span_us = (last - first).astype(np.float64)
    # browsing sessions while buying
    n_browse = rng.poisson(browse_per_purchase * n)
    b_owner = np.repeat(np.arange(m), n_browse)
    b_anchor = first[b_owner] + (rng.random(b_owner.size) * span_us[b_owner]).astype(np.int64)
    # the tail: browsing at the same session rate after the last purchase, almost no carts
    rate = (browse_per_purchase * n + n) / np.maximum(span_us / day, 30.0)  # sessions per day
    tail_end = np.minimum(last + rng.exponential(tail_days, m) * day, hi_us - 1)
    tail_days_i = np.maximum(tail_end - last, 0) / day
    n_tail = rng.poisson(np.minimum(rate, 1.0) * tail_days_i)
    t_owner = np.repeat(np.arange(m), n_tail)
    t_anchor = last[t_owner] + (
        rng.random(t_owner.size) * (tail_end[t_owner] - last[t_owner])
    ).astype(np.int64)
    # purchase sessions
    p_owner = np.searchsorted(cust, purchases.get_column("customer_id").to_numpy())
    p_anchor = purchases.get_column("ts").cast(pl.Int64).to_numpy()
    owner = np.concatenate([p_owner, b_owner, t_owner])
    anchor = np.concatenate([p_anchor, b_anchor, t_anchor])
    kind = np.concatenate(
        [
            np.zeros(p_owner.size, np.int64),
            np.ones(b_owner.size, np.int64),
            np.full(t_owner.size, 2, np.int64),
        ]
    )
    on_app = app_user[owner] & (rng.random(owner.size) < APP_SESSION_SHARE)
    channel = np.where(on_app, APP, WEB).astype(np.uint8)
    sessions = _sessions_to_events(rng, cust[owner], anchor, kind, channel, n_items, lo_us, hi_us)
    # weekly e-mails from the first purchase to the end; opened at q while engaged, q/5 after
    weeks = ((hi_us - first) // (7 * day)).astype(np.int64)
    e_owner = np.repeat(np.arange(m), weeks)
    offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(weeks, out=offsets[1:])
    k = np.arange(e_owner.size) - offsets[e_owner]
    e_ts = first[e_owner] + k * 7 * day + (rng.random(e_owner.size) * 7 * day).astype(np.int64)
    engaged = e_ts <= tail_end[e_owner]
    q = np.where(engaged, open_rate[e_owner], open_rate[e_owner] * EMAIL_AFTER_FACTOR)
    opened = (rng.random(e_owner.size) < q) & (e_ts < hi_us)
    e_owner, e_ts = e_owner[opened], e_ts[opened]
    return {
        "customer": np.concatenate([sessions["customer"], cust[e_owner]]),
        "ts": np.concatenate([sessions["ts"], e_ts]),
        "event": np.concatenate(
            [sessions["event"], np.full(e_owner.size, EMAIL_OPEN, dtype=np.uint8)]
        ),
        "channel": np.concatenate(
            [sessions["channel"], np.full(e_owner.size, EMAIL, dtype=np.uint8)]
        ),
        "item": np.concatenate([sessions["item"], np.zeros(e_owner.size, dtype=np.int64)]),
    }


def generate(
    transactions: pl.DataFrame,
    *,
    seed: int = 0,
    start: str | date | datetime = "2023-01-01",
    years: float = 2.0,
    browse_per_purchase: float = 3.0,
    tail_days: float = 42.0,
    n_items: int = 10_000,
    items: bool = True,
    shuffle: bool = True,
) -> pl.DataFrame:
    """Events for ``transactions`` (``customer_id`` Int64, ``ts``): ``customer_id``, ``ts``
    (Datetime µs), ``event`` (Enum :data:`EVENT_TYPES`), ``channel`` (Enum :data:`CHANNELS`)
    and, with ``items``, ``item`` (Int64, null for events without an item).

    ``start`` and ``years`` must be those the transactions were generated with (the window).
    Deterministic given the arguments; see the module docstring for the model.
    """
    begin, end = gen_data.window(start, years)
    epoch = datetime(1970, 1, 1)
    lo_us = (begin - epoch) // timedelta(microseconds=1)
    hi_us = (end - epoch) // timedelta(microseconds=1)
    tx = transactions.select(pl.col("customer_id").cast(pl.Int64), pl.col("ts"))
    spans = _customer_spans(tx)
    ids = spans.get_column("customer_id")
    parts: list[dict[str, np.ndarray]] = []
    for chunk, lo in enumerate(range(0, spans.height, CHUNK_CUSTOMERS)):
        part = spans.slice(lo, CHUNK_CUSTOMERS)
        low, high = ids[lo], ids[min(lo + CHUNK_CUSTOMERS, spans.height) - 1]
        bought = tx.filter(pl.col("customer_id").is_between(low, high))
        parts.append(
            _chunk_events(
                np.random.default_rng([seed, 7, chunk]),
                part,
                bought,
                browse_per_purchase=browse_per_purchase,
                tail_days=tail_days,
                n_items=n_items,
                lo_us=lo_us,
                hi_us=hi_us,
            )
        )
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    del parts
    order: Any
    if shuffle:
        order = np.random.default_rng([seed, 7, 1 << 30]).permutation(columns["ts"].size)
    else:
        order = np.lexsort((columns["event"], columns["ts"], columns["customer"]))
    series = [
        pl.Series("customer_id", columns.pop("customer")[order]),
        pl.Series("ts", columns.pop("ts")[order]).cast(pl.Datetime("us")),
        pl.Series("event", EVENT_TYPES, dtype=pl.Enum(EVENT_TYPES)).gather(
            pl.Series(columns.pop("event")[order].astype(np.uint32))
        ),
        pl.Series("channel", CHANNELS, dtype=pl.Enum(CHANNELS)).gather(
            pl.Series(columns.pop("channel")[order].astype(np.uint32))
        ),
    ]
    item = columns.pop("item")[order] if items else None
    if item is not None:
        series.append(pl.Series("item", item).replace(0, None))
    return pl.DataFrame(series)


def generate_pair(
    n_customers: int,
    *,
    seed: int = 0,
    years: float = 2.0,
    start: str | date | datetime = "2023-01-01",
    rows_per_customer: float = 15.0,
    **options: Any,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(transactions, events)``: :func:`gen_data.generate` (integer ids) and its events."""
    tx = gen_data.generate(
        n_customers, seed=seed, years=years, start=start, rows_per_customer=rows_per_customer
    )
    return tx, generate(tx, seed=seed, start=start, years=years, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows-per-customer", type=float, default=15.0)
    parser.add_argument("--browse-per-purchase", type=float, default=3.0)
    parser.add_argument("-o", "--output", required=True, help="events Parquet file")
    parser.add_argument("--transactions", help="also write the purchases here")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    tx, events = generate_pair(
        args.customers,
        seed=args.seed,
        rows_per_customer=args.rows_per_customer,
        browse_per_purchase=args.browse_per_purchase,
    )
    events.write_parquet(args.output)
    if args.transactions:
        tx.write_parquet(args.transactions)
    print(
        f"{events.height:,} events for {tx.height:,} purchases of {args.customers:,} customers "
        f"in {time.perf_counter() - began:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
