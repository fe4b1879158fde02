"""The periodic BG/NBD (docs/methods.md#periodic-bg-nbd): parameter recovery from data simulated
with a known dropout process, the closed forms against Monte Carlo from the model, determinism
under row order, and bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.errors import WinbackInputError
from winback.value.dropout import PeriodicBGNBD

TRUE = {"r": 0.8, "alpha": 2.5, "a": 1.2, "b": 4.0}


def simulate(
    n: int, T: np.ndarray, h: int, seed: int, params: dict[str, float] = TRUE
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Histories of ``n`` customers over T[i] periods after their birth period, straight from the
    model's story, and what they do over the next ``h`` periods: (statistics, future occasions,
    alive at the end of T, active in the next h periods)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    alive = rng.random(n) >= p  # the birth period is active: a first chance to drop out
    X = np.zeros(n)
    t = np.zeros(n)
    k = np.ones(n)
    future = np.zeros(n)
    alive_at_T = np.zeros(n, dtype=bool)
    for period in range(1, int(T.max()) + h + 1):
        counts = rng.poisson(lam) * alive
        inside = period <= T
        X += np.where(inside, counts, 0)
        k += np.where(inside & (counts > 0), 1, 0)
        t = np.where(inside & (counts > 0), period, t)
        after = (period > T) & (period <= T + h)
        future += np.where(after, counts, 0)
        drop = (counts > 0) & (rng.random(n) < p)
        alive = alive & ~drop
        alive_at_T |= (period == T) & alive  # after the period's dropout chance
    frame = pl.DataFrame(
        {
            "period_frequency": X.astype(np.int64),
            "last_active_offset": t.astype(np.int64),
            "active_periods": k.astype(np.int64),
            "n_periods": T.astype(np.int64),
        }
    )
    return frame, future, alive_at_T, future > 0


def test_recovers_the_parameters_of_a_known_dropout_process() -> None:
    rng = np.random.default_rng(3)
    T = rng.integers(4, 19, 6000).astype(np.float64)
    frame, *_ = simulate(6000, T, 1, seed=11)
    fitted = PeriodicBGNBD().fit(frame).params_
    assert fitted["r"] == pytest.approx(TRUE["r"], rel=0.15)
    assert fitted["alpha"] == pytest.approx(TRUE["alpha"], rel=0.2)
    # mean dropout probability a/(a+b) is what the data pin down best
    mean_p = fitted["a"] / (fitted["a"] + fitted["b"])
    assert mean_p == pytest.approx(TRUE["a"] / (TRUE["a"] + TRUE["b"]), rel=0.15)


@pytest.mark.parametrize("h", [1, 3, 6])
def test_closed_forms_agree_with_monte_carlo_from_the_model(h: int) -> None:
    """Simulate many customers with the model's own parameters and compare, per history tuple
    common enough, the empirical next-h occasions, alive share and active share with the
    closed forms."""
    n = 200_000
    frame, future, alive, active = simulate(n, np.full(n, 4.0), h, seed=5)
    model = PeriodicBGNBD()
    model.params_ = dict(TRUE)
    expected = model.expected_count(h, frame)
    p_alive = model.probability_alive(frame)
    p_active = model.probability_active(h, frame)
    key = frame.select(pl.concat_str(pl.all().cast(pl.String), separator="|")).to_series()
    groups = (
        pl.DataFrame(
            {
                "key": key,
                "future": future,
                "alive": alive.astype(np.float64),
                "active": active.astype(np.float64),
                "expected": expected,
                "p_alive": p_alive,
                "p_active": p_active,
            }
        )
        .group_by("key")
        .agg(pl.len().alias("n"), pl.all().mean(), pl.col("future").std().alias("sd"))
    )
    common = groups.filter(pl.col("n") >= 4000)
    assert common.height >= 4
    for row in common.iter_rows(named=True):
        se = row["sd"] / np.sqrt(row["n"]) + 1e-9
        assert abs(row["future"] - row["expected"]) < 4.5 * se + 1e-3, row
        assert abs(row["alive"] - row["p_alive"]) < 0.025, row
        assert abs(row["active"] - row["p_active"]) < 0.025, row


@settings(max_examples=10, deadline=None)
@given(st.randoms(use_true_random=False))
def test_same_parameters_and_forecasts_in_any_row_order(random: object) -> None:
    rng = np.random.default_rng(7)
    T = rng.integers(2, 10, 800).astype(np.float64)
    frame, *_ = simulate(800, T, 1, seed=2)
    order = list(range(frame.height))
    random.shuffle(order)  # type: ignore[attr-defined]
    shuffled = frame[order]
    a, b = PeriodicBGNBD().fit(frame), PeriodicBGNBD().fit(shuffled)
    assert a.params_ == b.params_
    np.testing.assert_array_equal(a.expected_count(3, frame)[order], b.expected_count(3, shuffled))


def test_inconsistent_statistics_are_refused_with_the_row() -> None:
    frame = pl.DataFrame(
        {
            "period_frequency": [3, 0],
            "last_active_offset": [2, 4],
            "active_periods": [2, 1],
            "n_periods": [5, 3],
        }
    )
    with pytest.raises(WinbackInputError, match="row 1"):
        PeriodicBGNBD().fit(frame)
    with pytest.raises(WinbackInputError, match="missing"):
        PeriodicBGNBD().fit(frame.drop("n_periods"))
