"""Benchmark: ``winback.recommend`` on generated data with planted affinities
(docs/methods.md#recommendations), side by side with a popularity baseline and, when installed in the running environment
(``pip install implicit==0.7.3``: a binary wheel), the ``implicit`` library's item–item cosine
and ALS recommenders.

Data: :func:`gen_products.generate_with_products` (seeded). Each customer with ≥ 2 rows has the
last purchase held out; every recommender is fitted on the rest and asked for 10 products per
held-out customer, already-bought products excluded. **hit@10** is the share of held-out
purchases among the 10. The popularity baseline lists the 10 most-bought products the customer
has not bought (computed here in Polars, independently of winback). A held-out purchase of an
already-bought product is a miss for every recommender (its share is reported as ``repeat``).

Speed: the ``S`` size is 1,000,000 customers × 100,000 products, every customer scored
(``recommend`` wall time: reading the pairs, neighbour lists, scoring, the output frame).

    .venv/bin/python benches/bench_recommend.py --size M
    .venv/bin/python benches/bench_recommend.py --size S --no-implicit
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_products import generate_with_products, hold_out_last

from winback._parallel import thread_count
from winback.recommend import recommend

__all__ = ["SIZES", "hit_rate", "popularity_hits", "run"]

#: customers, products, categories
SIZES = {
    "tiny": (20_000, 2_000, 40),
    "M": (100_000, 10_000, 100),
    "S": (1_000_000, 100_000, 1_000),
}
SEED = 0
N = 10


def hit_rate(recs: pl.DataFrame, held: pl.DataFrame) -> float:
    """Share of ``held`` (customer_id, product_id) whose product is in the customer's list."""
    joined = held.join(recs, on="customer_id", how="left")
    hits = joined.select(
        pl.col("recommended_products").list.contains(pl.col("product_id")).fill_null(False)
    ).to_series()
    return float(hits.mean() or 0.0)


def popularity_hits(history: pl.DataFrame, held: pl.DataFrame, n: int = N) -> float:
    """hit@n of the n most-bought products each customer has not bought: the held product p
    (not bought) is listed when fewer than n unbought products rank above it."""
    pairs = history.select("customer_id", "product_id").unique()
    ranks = (
        pairs.group_by("product_id")
        .len()
        .with_columns(
            pl.struct(-pl.col("len").cast(pl.Int64), "product_id").rank("ordinal").alias("pop_rank")
        )
        .select("product_id", "pop_rank")
    )
    held_rank = held.join(ranks, on="product_id", how="left")
    bought = pairs.join(
        held_rank.select("customer_id", pl.col("pop_rank").alias("held_rank")), on="customer_id"
    ).join(ranks, on="product_id")
    above = bought.filter(pl.col("pop_rank") < pl.col("held_rank")).group_by("customer_id").len()
    repeat = pairs.join(held, on=["customer_id", "product_id"], how="semi").select("customer_id")
    scored = held_rank.join(above, on="customer_id", how="left").with_columns(
        pl.col("len").fill_null(0)
    )
    scored = scored.with_columns(
        (
            pl.col("pop_rank").is_not_null()
            & (pl.col("pop_rank") - pl.col("len") <= n)
            & ~pl.col("customer_id").is_in(repeat.get_column("customer_id").implode())
        ).alias("hit")
    )
    return float(scored.get_column("hit").mean() or 0.0)


def _implicit_side(history: pl.DataFrame, held: pl.DataFrame, threads: int) -> list[dict[str, Any]]:
    try:
        import implicit
        from scipy import sparse
    except ImportError:
        return []
    pairs = history.select("customer_id", "product_id").unique()
    users = pairs.get_column("customer_id").unique().sort()
    items = pairs.get_column("product_id").unique().sort()
    u = users.search_sorted(pairs.get_column("customer_id")).to_numpy()
    i = items.search_sorted(pairs.get_column("product_id")).to_numpy()
    matrix = sparse.csr_matrix(
        (np.ones(u.size, dtype=np.float32), (u, i)), shape=(users.len(), items.len())
    )
    who = users.search_sorted(held.get_column("customer_id")).to_numpy()
    rows = []
    models = {
        "implicit cosine (item-item, K=50)": implicit.nearest_neighbours.CosineRecommender(K=50),
        "implicit ALS (64 factors, 15 it.)": implicit.cpu.als.AlternatingLeastSquares(
            factors=64, iterations=15, random_state=0, num_threads=threads
        ),
    }
    for name, model in models.items():
        began = time.perf_counter()
        model.fit(matrix, show_progress=False)
        ids, _ = model.recommend(who, matrix[who], N=N, filter_already_liked_items=True)
        seconds = time.perf_counter() - began
        recs = pl.DataFrame(
            {
                "customer_id": held.get_column("customer_id"),
                "recommended_products": items.gather(pl.Series(ids.reshape(-1)))
                .reshape(ids.shape)
                .arr.to_list(),
            }
        )
        rows.append({"recommender": name, "hit@10": hit_rate(recs, held), "seconds": seconds})
    return rows


def run(
    size: str = "M",
    *,
    implicit_side: bool = True,
    speed: bool = True,
    dampings: tuple[float, ...] = (0.0, 0.25, 0.5),
) -> dict[str, Any]:
    """The accuracy table (and, with ``speed``, every customer scored) at ``size``."""
    n_customers, n_products, n_categories = SIZES[size]
    threads = thread_count(None)
    began = time.perf_counter()
    tx = generate_with_products(
        n_customers, n_products=n_products, n_categories=n_categories, seed=SEED
    )
    generated = time.perf_counter() - began
    history, held = hold_out_last(tx)
    repeat = held.join(history, on=["customer_id", "product_id"], how="semi").height / held.height
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    pop = popularity_hits(history, held)
    rows.append(
        {"recommender": "popularity", "hit@10": pop, "seconds": time.perf_counter() - began}
    )
    for damping in dampings:
        began = time.perf_counter()
        recs = recommend(history, customers=held.get_column("customer_id"), damping=damping)
        rows.append(
            {
                "recommender": f"winback co-occurrence (d={damping})",
                "hit@10": hit_rate(recs, held),
                "seconds": time.perf_counter() - began,
            }
        )
    if implicit_side:
        rows.extend(_implicit_side(history, held, threads))
    for row in rows:
        row["vs popularity"] = row["hit@10"] / pop if pop > 0 else float("nan")
    result: dict[str, Any] = {
        "size": size,
        "customers": n_customers,
        "products": n_products,
        "rows": tx.height,
        "held_out": held.height,
        "repeat": repeat,
        "generate_seconds": generated,
        "accuracy": rows,
        "load": os.getloadavg(),
        "threads": threads,
    }
    if speed:
        result.update(score_all(tx))
    return result


def score_all(tx: pl.DataFrame, num_threads: int | None = None) -> dict[str, Any]:
    """Every customer of ``tx`` scored: wall and CPU seconds (the CPU time of all threads, a
    figure less dependent on the machine's load), the load average after."""
    began, cpu = time.perf_counter(), time.process_time()
    everyone = recommend(tx, num_threads=num_threads)
    return {
        "score_all_seconds": time.perf_counter() - began,
        "score_all_cpu_seconds": time.process_time() - cpu,
        "score_all_customers": everyone.height,
        "score_all_threads": thread_count(num_threads),
        "score_all_load": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="M")
    parser.add_argument("--no-implicit", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--damping", type=float, action="append", help="(repeatable)")
    parser.add_argument("--speed-only", action="store_true", help="only score every customer")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.speed_only:
        n_customers, n_products, n_categories = SIZES[args.size]
        tx = generate_with_products(
            n_customers, n_products=n_products, n_categories=n_categories, seed=SEED
        )
        recommend(tx.head(1_000))  # compile (or load) the kernels first
        print(json.dumps({"size": args.size, **score_all(tx, args.threads)}, indent=2))
        return 0
    result = run(
        args.size,
        implicit_side=not args.no_implicit,
        speed=not args.no_speed,
        dampings=tuple(args.damping) if args.damping else (0.0, 0.25, 0.5),
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
