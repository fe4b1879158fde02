"""winback.recommend (docs/methods.md#recommendations): a hand-computed case, a slow dense
reference, determinism (row order, threads, chunking), exclusion, typed errors, and recovery of
the planted affinities of the benchmark generator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import winback
from tests.benches import load_bench
from winback import recommend as recommend_room  # the function (the room's module below)
from winback.errors import WinbackConfigError, WinbackInputError

recommend_module = sys.modules["winback.recommend"]

# c1: A B | c2: A B C | c3: A C | c4: B D | c5: A
# n: A 4, B 3, C 2, D 1; together: AB 2, AC 2, BC 1, BD 1 (AD, CD 0)
HAND = pl.DataFrame(
    {
        "customer_id": [1, 1, 2, 2, 2, 3, 3, 4, 4, 5],
        "product_id": ["A", "B", "A", "B", "C", "A", "C", "B", "D", "A"],
    }
)


def _lists(frame: pl.DataFrame) -> dict[Any, list[Any]]:
    return dict(
        zip(frame["customer_id"].to_list(), frame["recommended_products"].to_list(), strict=True)
    )


def test_hand_computed_cosine() -> None:
    recs = recommend_room(HAND, n=3, damping=0.5)
    got = _lists(recs)
    # c5 bought A: C 2/√(4·2) = 0.7071 > B 2/√(4·3) = 0.5774; D never with A: popularity fill
    assert got[5] == ["C", "B", "D"]
    scores = recs.filter(pl.col("customer_id") == 5)["recommendation_scores"][0].to_list()
    assert scores == pytest.approx([2 / np.sqrt(8), 2 / np.sqrt(12), 0.0], abs=1e-12)
    # c4 bought B, D: A 2/√(3·4) = 0.5774 > C 1/√(3·2) = 0.4082; nothing else left
    assert got[4] == ["A", "C"]
    # c2 bought A, B, C: only D is left, reached through B
    assert got[2] == ["D"]


def test_hand_computed_ties_by_product_id() -> None:
    # d = 0: sim(A, B) = 2/4 = sim(A, C): the tie goes to the smaller id
    got = _lists(recommend_room(HAND, n=2, damping=0.0))
    assert got[5] == ["B", "C"]


def test_keep_bought() -> None:
    # d = 0, c4 (B, D): B ← D 1/1, A ← B 2/3, C ← B 1/3, D ← B 1/3 (tie: C before D)
    got = _lists(recommend_room(HAND, n=4, damping=0.0, exclude_bought=False))
    assert got[4] == ["B", "A", "C", "D"]
    excluded = _lists(recommend_room(HAND, n=4, damping=0.0))
    assert excluded[4] == ["A", "C"]


def test_neighbours_cut() -> None:
    # one neighbour per product: A keeps only C (d = 0.5: 0.707 > 0.577); c5 gets C, then the
    # popularity fill B, D
    got = _lists(recommend_room(HAND, n=3, damping=0.5, neighbours=1))
    assert got[5] == ["C", "B", "D"]
    recs = recommend_room(HAND, n=3, damping=0.5, neighbours=1)
    scores = recs.filter(pl.col("customer_id") == 5)["recommendation_scores"][0].to_list()
    assert scores[1:] == [0.0, 0.0]


def test_customers_argument_every_customer_once() -> None:
    recs = recommend_room(HAND, customers=[5, 99, 5, 1], n=2)
    assert recs["customer_id"].to_list() == [1, 5, 99]
    # 99 bought nothing: the two most-bought products
    assert _lists(recs)[99] == ["A", "B"]
    empty = recommend_room(HAND, customers=[])
    assert empty.height == 0
    assert empty.schema["customer_id"] == pl.Int64


def _reference(tx: pl.DataFrame, n: int, m: int, d: float, exclude: bool) -> dict[Any, list[Any]]:
    """Dense, slow: every formula written out over the full customer × product matrix."""
    users = sorted(set(tx["customer_id"].to_list()))
    items = sorted(set(tx["product_id"].to_list()))
    x = np.zeros((len(users), len(items)))
    for u, i in tx.select("customer_id", "product_id").iter_rows():
        x[users.index(u), items.index(i)] = 1.0
    c = x.T @ x
    count = x.sum(axis=0)
    out: dict[Any, list[Any]] = {}
    neigh: list[list[tuple[int, float]]] = []
    for i in range(len(items)):
        cands = [
            (j, c[i, j] / (count[i] ** (1 - d) * count[j] ** d))
            for j in range(len(items))
            if j != i and c[i, j] > 0
        ]
        cands.sort(key=lambda t: (-t[1], t[0]))
        neigh.append(cands[:m])
    popular = sorted(range(len(items)), key=lambda j: (-count[j], j))
    for u, user in enumerate(users):
        bought = {i for i in range(len(items)) if x[u, i]}
        score: dict[int, float] = {}
        for i in sorted(bought):
            for j, s in neigh[i]:
                if exclude and j in bought:
                    continue
                score[j] = score.get(j, 0.0) + s
        ranked = sorted(score, key=lambda j: (-score[j], j))[:n]
        for j in popular:
            if len(ranked) >= n:
                break
            if j not in ranked and not (exclude and j in bought):
                ranked.append(j)
        out[user] = [items[j] for j in ranked]
    return out


@pytest.mark.parametrize(("d", "exclude"), [(0.0, True), (0.5, True), (0.25, False)])
def test_matches_dense_reference(d: float, exclude: bool) -> None:
    rng = np.random.default_rng(3)
    rows = 600
    tx = pl.DataFrame(
        {
            "customer_id": rng.integers(0, 80, rows),
            # a skewed catalogue of 40 products, so co-occurrence counts and ties vary
            "product_id": (rng.zipf(1.6, rows) % 40).astype(np.int64),
        }
    )
    got = _lists(recommend_room(tx, n=5, neighbours=6, damping=d, exclude_bought=exclude))
    want = _reference(tx, 5, 6, d, exclude)
    assert got == want


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 9)), min_size=3, max_size=60).filter(
        lambda pairs: len({p for _, p in pairs}) >= 2
    ),
    st.randoms(use_true_random=False),
)
def test_row_order_threads_and_chunks_do_not_matter(
    pairs: list[tuple[int, int]], random: Any
) -> None:
    tx = pl.DataFrame(pairs, schema=["customer_id", "product_id"], orient="row")
    base = recommend_room(tx, n=3, neighbours=4, num_threads=1)
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=random.randint(0, 1000))
    assert recommend_room(shuffled, n=3, neighbours=4, num_threads=2).equals(base)
    # every customer once, no bought product recommended
    assert base["customer_id"].to_list() == sorted({c for c, _ in pairs})
    bought: dict[int, set[int]] = {}
    for c, p in pairs:
        bought.setdefault(c, set()).add(p)
    for c, listed in _lists(base).items():
        assert not set(listed) & bought[c]
        assert len(listed) == min(3, len({p for _, p in pairs} - bought[c]))
        assert len(set(listed)) == len(listed)


def test_chunking_does_not_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    tx = pl.DataFrame(
        {"customer_id": rng.integers(0, 300, 3000), "product_id": rng.integers(0, 90, 3000)}
    )
    base = recommend_room(tx, num_threads=1)
    monkeypatch.setattr(recommend_module, "_ITEM_CHUNK", 7)
    monkeypatch.setattr(recommend_module, "_USER_CHUNK", 5)
    assert recommend_room(tx, num_threads=2).equals(base)


def test_errors() -> None:
    with pytest.raises(WinbackInputError, match="product column 'product_id'"):
        recommend_room(HAND.rename({"product_id": "sku"}))
    with pytest.raises(WinbackInputError, match="at least 2 products"):
        recommend_room(HAND.with_columns(pl.lit("A").alias("product_id")))
    with pytest.raises(WinbackInputError, match="'product_id' is null"):
        recommend_room(HAND.with_columns(pl.col("product_id").replace("D", None)))
    with pytest.raises(WinbackConfigError, match="n=0"):
        recommend_room(HAND, n=0)
    with pytest.raises(WinbackConfigError, match="damping"):
        recommend_room(HAND, damping=1.5)
    with pytest.raises(WinbackInputError, match="customers="):
        recommend_room(HAND, customers=["x"])


def test_product_col_and_extra_columns() -> None:
    tx = HAND.rename({"product_id": "sku", "customer_id": "who"}).with_columns(
        pl.lit(1.0).alias("amount")
    )
    recs = recommend_room(tx, product_col="sku", customer_col="who", n=3)
    assert _lists(recs)[5] == ["C", "B", "D"]


def test_generator_is_seeded_and_planted() -> None:
    gen = load_bench("gen_products")
    a = gen.generate_with_products(2_000, n_products=300, n_categories=10, seed=4)
    assert a.equals(gen.generate_with_products(2_000, n_products=300, n_categories=10, seed=4))
    assert not a.equals(gen.generate_with_products(2_000, n_products=300, n_categories=10, seed=5))
    assert a["product_id"].min() >= 1
    assert a["product_id"].max() <= 300


def test_planted_affinities_are_recovered() -> None:
    """hit@10 of the held-out last purchase at least twice the popularity baseline's."""
    bench = load_bench("bench_recommend")
    gen = load_bench("gen_products")
    tx = gen.generate_with_products(8_000, n_products=1_000, n_categories=50, seed=1)
    history, held = gen.hold_out_last(tx)
    recs = winback.recommend(history, customers=held["customer_id"], num_threads=1)
    hit = bench.hit_rate(recs, held)
    pop = bench.popularity_hits(history, held)
    assert pop > 0.01
    assert hit >= 2 * pop, (hit, pop)
    # without planted structure the co-occurrence has nothing to find beyond popularity
    flat = gen.generate_with_products(
        8_000, n_products=1_000, n_categories=50, seed=1, affinity=0.0, complement=0.0
    )
    history, held = gen.hold_out_last(flat)
    recs = winback.recommend(history, customers=held["customer_id"], num_threads=1)
    assert bench.hit_rate(recs, held) < 1.5 * bench.popularity_hits(history, held)


def test_popularity_baseline_counts_by_hand() -> None:
    bench = load_bench("bench_recommend")
    history = HAND.rename({"product_id": "product_id"})
    # popularity A 4, B 3, C 2, D 1; c5 bought A: its top-2 list is B, C
    held = pl.DataFrame({"customer_id": [5, 5, 4], "product_id": ["C", "D", "A"]})
    held = held.slice(0, 1)
    assert bench.popularity_hits(history, held, n=2) == 1.0
    assert bench.popularity_hits(history, held, n=1) == 0.0
    held = pl.DataFrame({"customer_id": [4], "product_id": ["A"]})
    assert bench.popularity_hits(history, held, n=1) == 1.0


def test_campaign_adds_recommended_products() -> None:
    scored = winback.silence(
        pl.DataFrame(
            {
                "customer_id": [1, 1, 1, 2, 2, 2],
                "ts": pl.Series(
                    [
                        "2024-01-01",
                        "2024-01-10",
                        "2024-01-20",
                        "2024-01-01",
                        "2024-02-01",
                        "2024-03-01",
                    ]
                ).str.to_datetime(),
                "amount": [10.0] * 6,
            }
        ),
        as_of="2024-12-31",
    )
    plain = winback.campaign(scored, campaign_id="c", holdout=0.0)
    recs = pl.DataFrame(
        {"customer_id": [2, 1], "recommended_products": [["x"], ["y", "z"]], "extra": [0, 0]}
    )
    listed = winback.campaign(scored, campaign_id="c", holdout=0.0, recommendations=recs)
    assert listed.columns == [*plain.columns, "recommended_products"]
    assert listed.drop("recommended_products").equals(plain)
    got = dict(zip(listed["customer_id"], listed["recommended_products"].to_list(), strict=True))
    assert got == {1: ["y", "z"], 2: ["x"]}
    with pytest.raises(WinbackInputError, match="recommended_products"):
        winback.campaign(scored, campaign_id="c", recommendations=recs.drop("recommended_products"))


def test_csv_files_keep_text_ids(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pl.DataFrame({"customer_id": ["007", "007", "8"], "sku": ["01", "02", "01"]}).write_csv(a)
    pl.DataFrame({"customer_id": ["9"], "sku": ["03"]}).write_csv(b)
    recs = recommend_room([a, b], product_col="sku")
    # 8 bought 01, which 007 bought with 02 (cosine 1/√2); then the most-bought 03 (ties by id)
    assert recs.rows() == [
        ("007", ["03"], [0.0]),
        ("8", ["02", "03"], [pytest.approx(2**-0.5), 0.0]),
        ("9", ["01", "02"], [0.0, 0.0]),
    ]
