"""The stacked forecast's training sample (docs/methods.md#stacked-forecast): a hash of the
customer id alone, the same sample for any row order, and the same stacked columns for any
thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.datasets import load_cdnow
from winback.value.stacked import id_hash, sample_panel

ROOT = Path(__file__).resolve().parents[2]


def test_integer_ids_hash_by_splitmix64() -> None:
    # SplitMix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c) from state 0: its first
    # outputs are the finaliser of 1×, 2× and 3× the golden gamma, i.e. of ids 0, γ, 2γ here.
    gamma = 0x9E3779B97F4A7C15

    def signed(v: int) -> int:
        v %= 2**64
        return v - 2**64 if v >= 2**63 else v

    ids = pl.Series([0, signed(gamma), signed(2 * gamma)], dtype=pl.Int64)
    assert id_hash(ids).tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def _panel(ids: list[int | str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": [i for i in ids for _ in range(2)], "period": [0, 1] * len(ids)}
    )


@settings(max_examples=40, deadline=None)
@given(
    st.sets(st.integers(-(2**40), 2**40), min_size=1, max_size=60),
    st.integers(1, 30),
    st.randoms(use_true_random=False),
)
def test_the_sample_is_the_smallest_hashes_in_any_row_order(
    ids: set[int], size: int, random: object
) -> None:
    panel = _panel(sorted(ids))
    shuffled = panel.sample(fraction=1.0, shuffle=True, seed=random.randint(0, 2**31))  # type: ignore[attr-defined]
    got = sample_panel(shuffled, size)
    chosen = set(got.get_column("customer_id").to_list())
    # Expected by brute force: the ids ranked by their SplitMix64 hash, computed one by one.
    ranked = sorted(ids, key=lambda i: int(id_hash(pl.Series([i], dtype=pl.Int64))[0]))
    assert chosen == set(ranked[: min(size, len(ids))])
    assert got.height == 2 * len(chosen)  # every row of a chosen customer, nothing else
    assert got.equals(shuffled.filter(pl.col("customer_id").is_in(list(chosen))))


def test_text_ids_sample_the_same_whatever_their_order() -> None:
    ids = [f"c{i:05d}" for i in range(300)]
    first = sample_panel(_panel(ids), 50).get_column("customer_id").unique().sort()
    second = sample_panel(_panel(ids[::-1]), 50).get_column("customer_id").unique().sort()
    assert first.len() == 50
    assert first.equals(second)
    assert sample_panel(_panel(ids), 300).equals(_panel(ids))  # not more customers: unchanged


_CHILD = """
import json, sys
import polars as pl
import winback
from winback.value import headline, stacked
headline.sample_panel = lambda panel: stacked.sample_panel(panel, 400)
tx = pl.read_parquet(sys.argv[1])
frame = winback.value(tx, as_of="1997-12-31", forecast="stacked").frame
print(json.dumps({
    "ids": frame.get_column("customer_id").to_list(),
    "amount": [float(v).hex() for v in frame.get_column("stacked_expected_amount")],
    "p": [float(v).hex() for v in frame.get_column("stacked_p_active_next")],
}))
"""


@pytest.mark.slow
def test_stacked_columns_are_the_same_for_any_thread_count(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    path = tmp_path / "tx.parquet"
    load_cdnow().filter(pl.col("customer_id") <= 1500).write_parquet(path)
    outputs = []
    for threads in ("1", "2"):
        env = {
            **os.environ,
            "POLARS_MAX_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "NUMBA_NUM_THREADS": threads,
            "PYTHONPATH": str(ROOT),
        }
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["ids"]) == 1500
    assert not any(np.isnan(float.fromhex(v)) for v in outputs[0]["amount"])


def test_negative_period_revenue_is_a_reasoned_fallback_not_a_crash() -> None:
    pytest.importorskip("sklearn")
    import winback

    tx = load_cdnow().filter(pl.col("customer_id") <= 1500)
    # A return larger than the purchase: customer 1's November 1997 nets to −100.
    tx = pl.concat(
        [
            tx,
            pl.DataFrame(
                {
                    "customer_id": [1],
                    "ts": [date(1997, 11, 15)],
                    "quantity": [1],
                    "amount": [-100.0],
                }
            ).cast(tx.schema),
        ]
    )
    result = winback.value(tx, as_of="1997-12-31", forecast="stacked")
    assert result.forecast == "nbd"
    assert "negative revenue" in (result.forecast_reason or "")
    assert result.frame.get_column("stacked_expected_amount").is_null().all()
