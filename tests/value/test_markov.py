"""The Markov chain of docs/methods.md#markov: counts vs an oracle, rows, reachability, values,
CLV."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import winback
from winback._kernels import value as kernels
from winback.datasets import load_cdnow


def _oracle_counts(
    histories: list[list[tuple[int, int, int]]], n_complete: int, R: int, n_f: int, n_m: int
) -> np.ndarray:
    """Walk every customer's periods one by one and count state → next state."""
    n = (R + 1) * n_f * n_m
    counts = np.zeros((n, n))

    def idx(r: int, f: int, m: int) -> int:
        return (r * n_f + f) * n_m + m

    for history in histories:
        active = {k: (f, m) for k, f, m in history}
        birth = history[0][0]
        r, (f, m) = 0, active[birth]
        for t in range(birth, n_complete - 1):
            here = idx(r, f, m)
            if t + 1 in active:
                r, (f, m) = 0, active[t + 1]
            else:
                r = min(r + 1, R)
            counts[here, idx(r, f, m)] += 1
    return counts


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[list[tuple[int, int, int]]], int]:
    n_complete = draw(st.integers(1, 12))
    out = []
    for _ in range(draw(st.integers(0, 6))):
        periods = sorted(draw(st.sets(st.integers(0, n_complete - 1), min_size=1, max_size=8)))
        out.append([(k, draw(st.integers(0, 1)), draw(st.integers(0, 2))) for k in periods])
    return out, n_complete


@given(case=_histories(), R=st.integers(1, 4))
def test_transition_counts_match_a_period_by_period_walk(
    case: tuple[list[list[tuple[int, int, int]]], int], R: int
) -> None:
    histories, n_complete = case
    flat = [row for h in histories for row in h]
    starts = np.concatenate([[0], np.cumsum([len(h) for h in histories])]).astype(np.int64)
    got = kernels.transition_counts(
        starts,
        np.array([r[0] for r in flat], dtype=np.int64),
        np.array([r[1] for r in flat], dtype=np.int64),
        np.array([r[2] for r in flat], dtype=np.int64),
        n_complete,
        R,
        2,
        3,
    )
    np.testing.assert_array_equal(got, _oracle_counts(histories, n_complete, R, 2, 3))


@pytest.fixture(scope="module")
def result() -> winback.ValueResult:
    return winback.value(load_cdnow(), as_of="1998-06-30", horizon=12, discount_rate=0.01)


def test_rows_sum_to_one_and_unreachable_transitions_are_zero(
    result: winback.ValueResult,
) -> None:
    chain = result.chain
    assert chain is not None
    P = chain.transition_matrix.toarray()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    states = chain.states
    n_f = int(states.get_column("frequency_bucket").n_unique())
    n_m = int(states.get_column("spend_bin").n_unique())
    R = int(states.get_column("recency").n_unique()) - 1
    reachable = np.zeros_like(P, dtype=bool)
    for s, r, f, m in states.select("state", "recency", "frequency_bucket", "spend_bin").rows():
        reachable[s, : n_f * n_m] = True  # a purchase: (0, f', m')
        reachable[s, (min(r + 1, R) * n_f + f) * n_m + m] = True  # none: (min(r+1, R), f, m)
    assert (P[~reachable] == 0.0).all()
    assert (chain.counts.toarray()[~reachable] == 0.0).all()
    assert chain.kappa > 0
    # Every row has mass on all its reachable cells (smoothing towards a positive prior).
    assert (P[reachable] > 0).all()


def test_values_solve_the_bellman_equations(result: winback.ValueResult) -> None:
    chain = result.chain
    assert chain is not None
    P = chain.transition_matrix.toarray()
    reward = chain.states.get_column("reward").to_numpy()
    delta = 1 / 1.01
    v_inf = chain.states.get_column("value_infinite").to_numpy()
    np.testing.assert_allclose(v_inf, delta * (reward + P @ v_inf), rtol=1e-9, atol=1e-9)
    # V_H = Σ_{t=1..H} δ^t P^{t−1} R, summed term by term.
    v_h = np.zeros_like(reward)
    power = np.eye(P.shape[0])
    for t in range(1, 13):
        v_h += delta**t * power @ reward
        power = power @ P
    np.testing.assert_allclose(chain.states.get_column("value").to_numpy(), v_h, rtol=1e-9)


def test_clv_keeps_individual_propensity(result: winback.ValueResult) -> None:
    # docs/methods.md#clv: clv is the customer's own periodic BG/NBD forecast, not a state's
    # pooled value. Discounted: Σ_t δ^t e(t) × E[M′] × value per revenue, with e(t) the
    # expected occasions of period t (the differences of the closed form's cumulative counts).
    frame = result.frame.filter(pl.col("status") == "modelled")
    chain = result.chain
    assert chain is not None
    assert chain.lapse is not None
    stats = _customer_statistics(frame)
    cumulative = [np.zeros(frame.height)] + [
        chain.lapse.expected_count(h, stats) for h in range(1, 13)
    ]
    discounted = sum((cumulative[t] - cumulative[t - 1]) / 1.01**t for t in range(1, 13))
    per_revenue = (frame["expected_value"] / frame["expected_amount"]).to_numpy()
    want = discounted * frame["expected_mean_amount"].to_numpy() * per_revenue
    np.testing.assert_allclose(frame["clv"].to_numpy(), want, rtol=1e-9, atol=1e-9)
    infinite = frame["clv_infinite"].to_numpy()
    assert (infinite >= frame["clv"].to_numpy()).all()
    assert np.isfinite(infinite).all()
    assert frame.get_column("p_active_next_markov").is_between(0, 1).all()
    # Recent buyers are more likely to buy next period than long-silent ones.
    recent = frame.filter(pl.col("markov_state").str.starts_with("r0|"))
    silent = frame.filter(pl.col("markov_state").str.starts_with("r12+|"))
    assert recent["p_active_next_markov"].mean() > silent["p_active_next_markov"].mean()  # type: ignore[operator]


def _customer_statistics(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The periodic BG/NBD's (X, t_x, k, T) per modelled customer, from the transactions
    (monthly periods, the birth period the first; docs/methods.md#periodic-bg-nbd)."""
    tx = load_cdnow().filter(pl.col("ts") <= pl.date(1998, 6, 30))
    monthly = (
        tx.group_by("customer_id", pl.col("ts").dt.month_start().alias("month"))
        .agg(pl.col("ts").n_unique().alias("occasions"))
        .with_columns(
            ((pl.col("month").dt.year() - 1997) * 12 + pl.col("month").dt.month() - 1).alias("p")
        )
    )
    per = monthly.group_by("customer_id").agg(
        pl.col("p").min().alias("birth"),
        pl.col("p").max().alias("last"),
        pl.len().alias("k"),
        pl.col("occasions").sort_by("p").slice(1).sum().alias("X"),
    )
    joined = frame.select("customer_id").join(per, on="customer_id", how="left")
    birth = joined["birth"].to_numpy()
    return {
        "period_frequency": joined["X"].to_numpy().astype(float),
        "last_active_offset": (joined["last"] - joined["birth"]).to_numpy().astype(float),
        "active_periods": joined["k"].to_numpy().astype(float),
        "n_periods": (17 - birth).astype(float),  # June 1998 is period 17, the last complete
    }


def test_clv_infinite_does_not_depend_on_the_horizon() -> None:
    tx = load_cdnow().filter(pl.col("ts") <= pl.date(1998, 3, 31))
    short, long = (
        winback.value(tx, as_of="1998-03-31", horizon=h).frame.filter(
            pl.col("status") == "modelled"
        )
        for h in (1, 12)
    )
    np.testing.assert_allclose(short["clv_infinite"], long["clv_infinite"], rtol=1e-9)
    assert (long["clv"].to_numpy() > short["clv"].to_numpy()).all()


def test_transitions_frame_is_labelled(result: winback.ValueResult) -> None:
    chain = result.chain
    assert chain is not None
    long = chain.transitions()
    assert long.columns == ["from", "to", "probability", "count"]
    assert long.group_by("from").agg(pl.col("probability").sum())["probability"].min() == (
        pytest.approx(1.0)
    )
    assert result.state_values is not None


def test_kappa_is_the_evidence_maximiser_to_full_precision(result: winback.ValueResult) -> None:
    from winback.value.markov import evidence_kappa

    chain = result.chain
    assert chain is not None
    counts, prior = chain.counts.toarray(), chain.prior.toarray()
    kappa = chain.kappa
    best = kernels.log_evidence(kappa, counts, prior)
    for factor in (0.9, 0.999, 1.001, 1.1):
        assert kernels.log_evidence(kappa * factor, counts, prior) < best
    # Rounding-level changes of the inputs move κ by rounding-level amounts (a maximiser of
    # the flat evidence itself wandered by ~1e-7, which showed in CLV's last printed digits).
    rng = np.random.default_rng(5)
    nudged = prior * (1.0 + 1e-13 * rng.standard_normal(prior.shape))
    assert evidence_kappa(counts, nudged) == pytest.approx(kappa, rel=1e-10)


def test_kappa_falls_back_to_a_bound_without_an_interior_maximum() -> None:
    from winback.value.markov import KAPPA_BOUNDS, evidence_kappa

    # Counts exactly proportional to the prior: the evidence grows with κ up to the bound.
    prior = np.array([[0.25, 0.75], [0.5, 0.5]])
    counts = np.array([[250.0, 750.0], [500.0, 500.0]])
    assert evidence_kappa(counts, prior) == pytest.approx(KAPPA_BOUNDS[1])
    # No observed row: nothing to learn, the evidence is flat; a bound is returned, not NaN.
    assert evidence_kappa(np.zeros((2, 2)), prior) in KAPPA_BOUNDS
