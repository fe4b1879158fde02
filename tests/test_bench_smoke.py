"""The benchmark runs once, small, as a smoke test: the competitors must agree with winback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benches import load_bench


@pytest.mark.parametrize("id_kind", ["int", "str"])
def test_tiny_benchmark_agrees(id_kind: str) -> None:
    bench = load_bench("bench_silence")
    rows = bench.run("tiny", id_kind=id_kind, repeat=1)  # type: ignore[attr-defined]
    names = {row["implementation"] for row in rows}
    assert {"winback", "polars", "duckdb"} <= names
    assert all(row["seconds"] > 0 for row in rows)


@pytest.mark.parametrize("shape", ["sparse", "sparse_str", "sparse_date"])
def test_tiny_sparse_shapes_agree(shape: str) -> None:
    bench = load_bench("bench_silence")
    rows = bench.run("tiny", repeat=1, shape=shape)  # type: ignore[attr-defined]
    assert {row["implementation"] for row in rows} >= {"winback", "polars", "duckdb"}
    assert all(row["agrees"] is not False for row in rows)


def test_generator_sparse_ids_and_date_times() -> None:
    import polars as pl

    gen = load_bench("gen_data")
    ints = gen.generate(3_000, seed=2, id_kind="sparse31", rows_per_customer=6.3)  # type: ignore[attr-defined]
    ids = ints.get_column("customer_id")
    assert ids.n_unique() == 3_000
    assert ids.min() >= 0
    assert ids.max() < 1 << 31
    assert ids.max() > 1 << 28  # spread over the range, not 1..n
    texts = gen.generate(3_000, seed=2, id_kind="sparse31_str", rows_per_customer=6.3)  # type: ignore[attr-defined]
    expected = "C" + ids.cast(pl.String).str.zfill(10)
    assert texts.get_column("customer_id").equals(expected, check_names=False)
    hexes = gen.generate(3_000, seed=2, id_kind="sparse31_hex", rows_per_customer=6.3)  # type: ignore[attr-defined]
    mixed = [(int(v) * 0x9E3779B97F4A7C15) % (1 << 64) for v in ids.to_list()]
    assert hexes.get_column("customer_id").to_list() == [f"{v:016x}" for v in mixed]
    assert hexes.get_column("customer_id").n_unique() == 3_000
    dates = gen.generate(3_000, seed=2, id_kind="sparse31", rows_per_customer=6.3, time_kind="date")  # type: ignore[attr-defined]
    assert dates.schema["ts"] == pl.Date
    assert dates.get_column("ts").equals(ints.get_column("ts").dt.date())
    assert dates.get_column("amount").equals(ints.get_column("amount"))


def test_generator_is_seeded() -> None:
    gen = load_bench("gen_data")
    a = gen.generate(2_000, seed=5)  # type: ignore[attr-defined]
    b = gen.generate(2_000, seed=5)  # type: ignore[attr-defined]
    c = gen.generate(2_000, seed=6)  # type: ignore[attr-defined]
    assert a.equals(b)
    assert not a.equals(c)
    assert a.get_column("customer_id").n_unique() == 2_000


def test_tiny_models_benchmark_fits_every_model() -> None:
    bench = load_bench("bench_models")
    result = bench.run(
        "tiny", models={"bgnbd", "mbgnbd", "pareto", "gg", "nbd"}, lifetimes_models=set()
    )  # type: ignore[attr-defined]
    assert result["customers"] == 20_000
    for name in ("bgnbd", "mbgnbd", "pareto", "gg", "nbd"):
        fit = result["fits"][name]
        assert "error" not in fit, fit
        assert fit["seconds"] > 0
        assert all(value > 0 for value in fit["params"].values())


def test_tiny_value_benchmark_panels_agree() -> None:
    bench = load_bench("bench_value")
    result = bench.run("tiny")  # type: ignore[attr-defined]
    assert result["agree"], result["problems"]
    assert result["customers"] == 20_000
    assert result["months"] == 24
    assert all(r["seconds"] > 0 for r in result["results"].values())


def test_tiny_spill_benchmark_agrees_and_cleans_up(tmp_path: Path) -> None:
    bench = load_bench("bench_spill")
    result = bench.run(  # type: ignore[attr-defined]
        3_000, memory_limit="64MB", files=3, chunk_customers=1_000, work_dir=tmp_path
    )
    assert result["agreement"]["customers"] == 3_000
    assert result["agreement"]["disagreeing"] == 0
    assert {side["implementation"] for side in result["sides"]} == {"winback", "duckdb"}
    assert all(side["seconds"] > 0 for side in result["sides"])
    assert list(tmp_path.iterdir()) == []  # data, outputs and spill removed


def test_coldstart_backtest_scores_every_one_purchase_customer() -> None:
    """benches/backtest_coldstart.py on the CDNOW sample, one origin (issue 17's cold-start
    target): every one-purchase customer gets p_next_within; both AUCs are measured."""
    sample = Path("/work/shared/data/CDNOW_sample.txt")
    if not sample.exists():
        pytest.skip("the CDNOW sample is not in /work/shared/data")
    bench = load_bench("backtest_coldstart")
    (row,) = bench.run(str(sample), ("1997-04-30",))  # type: ignore[attr-defined]
    assert row["one_purchase"] > 1000
    assert row["scored"] == row["one_purchase"]
    assert 0.3 < row["auc_p_next"] < 0.8
    assert 0.3 < row["auc_second"] < 0.8
    assert row["pending"] > 100
