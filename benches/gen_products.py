"""Seeded synthetic transactions with products, for the recommendation benchmarks and tests.

The rows (``customer_id``, ``ts``, ``amount``) are :func:`gen_data.generate`'s, unchanged; this
module adds a ``product_id`` (Int64, ``1..n_products``) to every row from a catalogue with planted
structure (docs/methods.md#recommendations says what a recommender can learn from it):

- **catalogue**: ``n_products`` products in ``n_categories`` categories (each product's category
  uniform at random). Popularity is Zipf-like: product ``p`` has weight ``1 / rank(p)^zipf`` over a
  random ranking of the whole catalogue.
- **tastes**: every customer has ``favourites`` (default 3) favourite categories, drawn uniformly
  without replacement, with Dirichlet(1, …, 1) weights among them.
- **a purchase** is, with probability ``affinity``, a product of one of the customer's favourite
  categories (the category by the customer's weights, the product within it by popularity);
  otherwise a product of the whole catalogue by popularity.
- **complements**: every product ``p`` has one complement ``comp(p)`` (uniform over the
  catalogue). With probability ``complement`` a purchase that is not the customer's first is
  instead the complement of the product drawn for the customer's previous purchase.

Everything is vectorised numpy and depends only on the arguments: the catalogue and tastes come from
``default_rng([seed, 1 << 31])``, the per-row draws from ``default_rng([seed, 1 << 31, 1])``.

CLI::

    python benches/gen_products.py --customers 100000 --products 10000 --seed 0 -o tx.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import generate

__all__ = ["Catalogue", "catalogue", "generate_with_products", "hold_out_last"]

_STREAM = 1 << 31  # the seed-sequence branch of this module (gen_data uses [seed, chunk])


class Catalogue:
    """The planted structure: ``category`` (per product, 0-based), ``weight`` (Zipf popularity,
    summing to 1) and ``complement`` (per product, 0-based) — indices are ``product_id − 1``."""

    def __init__(self, category: np.ndarray, weight: np.ndarray, complement: np.ndarray) -> None:
        self.category = category
        self.weight = weight
        self.complement = complement


def catalogue(
    n_products: int, n_categories: int, zipf: float, rng: np.random.Generator
) -> Catalogue:
    """The catalogue of :func:`generate_with_products` (see the module docstring)."""
    if n_products < 2 or n_categories < 1 or n_categories > n_products:
        raise ValueError("need n_products ≥ 2 and 1 ≤ n_categories ≤ n_products")
    category = rng.integers(0, n_categories, size=n_products)
    category[:n_categories] = np.arange(n_categories)  # no category is empty
    rank = rng.permutation(n_products) + 1.0
    weight = rank**-zipf
    weight /= weight.sum()
    complement = rng.integers(0, n_products, size=n_products)
    return Catalogue(category, weight, complement)


def _draw(cum: np.ndarray, lo: np.ndarray, total: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index into ``cum`` (a running sum) of the draw ``u`` within the segment starting at
    running-sum value ``lo`` of mass ``total``."""
    target = lo + u * total
    return np.minimum(np.searchsorted(cum, target, side="right"), cum.size - 1)


def generate_with_products(
    n_customers: int,
    *,
    n_products: int = 10_000,
    n_categories: int = 100,
    seed: int = 0,
    zipf: float = 1.0,
    favourites: int = 3,
    affinity: float = 0.8,
    complement: float = 0.2,
    shuffle: bool = True,
    years: float = 2.0,
    start: str = "2023-01-01",
    rows_per_customer: float = 15.0,
) -> pl.DataFrame:
    """``gen_data.generate``'s transactions plus ``product_id`` (see the module docstring).

    ``affinity=0`` and ``complement=0`` give purchases by popularity alone (no structure for a
    recommender to find beyond popularity). Deterministic given the arguments.
    """
    if not 0 <= affinity <= 1 or not 0 <= complement <= 1:
        raise ValueError("affinity and complement are probabilities")
    if not 1 <= favourites <= n_categories:
        raise ValueError("favourites must be in [1, n_categories]")
    tx = generate(
        n_customers,
        seed=seed,
        years=years,
        start=start,
        shuffle=False,
        rows_per_customer=rows_per_customer,
    )
    rng = np.random.default_rng([seed, _STREAM])
    cat = catalogue(n_products, n_categories, zipf, rng)
    # favourites: the first `favourites` of a random key per (customer, category) — uniform
    # without replacement, drawn in blocks of customers to bound memory
    fav = np.empty((n_customers, favourites), dtype=np.int64)
    for lo in range(0, n_customers, 1 << 16):
        hi = min(lo + (1 << 16), n_customers)
        keys = rng.random((hi - lo, n_categories))
        fav[lo:hi] = np.argpartition(keys, favourites - 1, axis=1)[:, :favourites]
    taste = rng.dirichlet(np.ones(favourites), size=n_customers)
    taste_cum = np.cumsum(taste, axis=1)

    # products ordered by (category, product): the running popularity, per category its slice
    order = np.lexsort((np.arange(n_products), cat.category))
    cum = np.cumsum(cat.weight[order])
    cat_total = np.bincount(cat.category, weights=cat.weight, minlength=n_categories)
    cat_lo = np.concatenate(([0.0], np.cumsum(cat_total)[:-1]))
    global_cum = np.cumsum(cat.weight)

    who = tx.select(pl.col("customer_id").rle_id()).to_series().to_numpy().astype(np.int64)
    rows = who.size
    row_rng = np.random.default_rng([seed, _STREAM, 1])
    u = row_rng.random((4, rows))
    slot = (u[1][:, None] > taste_cum[who]).sum(axis=1)
    np.minimum(slot, favourites - 1, out=slot)
    category = fav[who, slot]
    liked = order[_draw(cum, cat_lo[category], cat_total[category], u[2])]
    anything = _draw(global_cum, np.zeros(rows), np.ones(rows), u[2])
    base = np.where(u[0] < affinity, liked, anything)
    first = np.ones(rows, dtype=bool)
    first[1:] = who[1:] != who[:-1]
    follow = (u[3] < complement) & ~first
    product = base.copy()
    follow_at = np.flatnonzero(follow)
    product[follow_at] = cat.complement[base[follow_at - 1]]
    tx = tx.with_columns(pl.Series("product_id", product + 1, dtype=pl.Int64))
    if shuffle:
        perm = np.random.default_rng([seed, _STREAM, 2]).permutation(rows)
        tx = tx[perm]
    return tx


def hold_out_last(tx: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(history, held_out): each customer with ≥ 2 rows has their last row (by ``ts``, then the
    row's product id) held out; ``held_out`` is ``customer_id, product_id``."""
    ranked = tx.with_columns(
        pl.struct("ts", "product_id")
        .rank("ordinal", descending=True)
        .over("customer_id")
        .alias("__back"),
        pl.len().over("customer_id").alias("__rows"),
    )
    last = (pl.col("__back") == 1) & (pl.col("__rows") >= 2)
    history = ranked.filter(~last).drop("__back", "__rows")
    held = ranked.filter(last).select("customer_id", "product_id").sort("customer_id")
    return history, held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--categories", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    frame = generate_with_products(
        args.customers, n_products=args.products, n_categories=args.categories, seed=args.seed
    )
    frame.write_parquet(args.output)
    print(
        f"{frame.height:,} rows, {args.customers:,} customers, {args.products:,} products in "
        f"{time.perf_counter() - began:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
