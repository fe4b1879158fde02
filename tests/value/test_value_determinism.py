"""Determinism audit (docs/methods.md#determinism): value (with costs and expenses), rfm's windowed
monetary and evaluate's per-arm revenue give the same bits for shuffled rows and for 1 or 2 threads
(both winback's and Polars' pools, which are fixed per process: each run is a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    from datetime import datetime, timedelta
    import numpy as np
    import polars as pl
    import winback
    import importlib
    engine = importlib.import_module("winback.value.forecast")  # winback.value is the function
    from winback.datasets import load_cdnow

    engine._CHUNK = 512  # several chunks of threaded work even at this size
    seed = int(sys.argv[1])

    def digest(frame):
        return hashlib.sha256(repr(frame.rows()).encode()).hexdigest()

    rng = np.random.default_rng(0)
    base = load_cdnow().filter(pl.col("customer_id") <= 3000).select("customer_id", "ts", "amount")
    # Same-day repeats with awkward amounts: sums of 3+ values whose order changes the bits.
    extra = base.sample(n=6000, with_replacement=True, seed=1).with_columns(
        pl.Series("amount", np.round(rng.gamma(0.5, 40.0, 6000), 2) + 1e-3 / 3)
    )
    tx = pl.concat([base, extra]).with_columns(
        (pl.col("amount") * 0.6 + 0.1 / 7).alias("cost")
    )
    expenses = tx.sample(n=9000, with_replacement=True, seed=2).select(
        "customer_id", "ts", (pl.col("amount").abs() * 0.1 + 1 / 3).alias("expense")
    )
    shuffle = lambda frame, k: frame.sample(fraction=1.0, shuffle=True, seed=seed * 10 + k)
    out = {}
    result = winback.value(shuffle(tx, 1), expenses=shuffle(expenses, 2), as_of="1998-06-30")
    out["value"] = digest(result.frame)
    out["value_states"] = digest(result.chain.states)
    out["rfm"] = digest(winback.rfm(shuffle(tx, 3).drop("cost"), as_of="1998-06-30", window="120d"))
    # evaluate: targets from the first 3000 customers, window purchases from the log.
    ids = np.arange(1, 3001)
    targets = pl.DataFrame({
        "customer_id": ids,
        "arm": np.where(ids % 3 == 0, "control", "treatment"),
        "segment": np.where(ids % 2 == 0, "even", "odd"),
        "campaign_start": [datetime(1997, 6, 1)] * 3000,
    })
    evaluation = winback.evaluate(
        shuffle(targets, 5), shuffle(tx, 4).drop("cost"), window_days=120, migration_states=False
    )
    out["evaluate_arms"] = digest(evaluation.arms)
    out["evaluate_uplift"] = digest(evaluation.uplift)
    print(json.dumps(out))
    """
)


def _run(threads: int, seed: int) -> dict[str, str]:
    env = {**os.environ, "WINBACK_NUM_THREADS": str(threads), "POLARS_MAX_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(seed)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_same_bits_for_shuffled_rows_and_one_or_two_threads() -> None:
    one = _run(1, seed=1)
    two = _run(2, seed=2)
    assert set(one) == {"value", "value_states", "rfm", "evaluate_arms", "evaluate_uplift"}
    differing = [name for name in one if one[name] != two[name]]
    assert not differing, f"different bits between runs: {differing}"
