"""The chain's π₀ rows tied to the periodic BG/NBD (``markov._lapse_rows``,
docs/methods.md#markov) against the former implementation, kept here as the slow reference:
the same bits for any customers, states and model."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from winback.value.dropout import PeriodicBGNBD, distinct_rows
from winback.value.markov import _lapse_rows

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def reference_lapse_rows(
    model: PeriodicBGNBD,
    stats: FloatArray,
    recency: IntArray,
    fm: IntArray,
    cells: FloatArray,
    n_states: int,
    max_recency: int,
    n_fm: int,
) -> FloatArray:
    """π₀ rows tied to the periodic BG/NBD (docs/methods.md#markov): for state (r′, f, m), the
    customers now in (r, f, m) with r ≤ r′ — those who reach it after j = r′ − r silent
    periods, weighted by the probability of that silence (1 for j = 0) — each with the model's
    P(active next | silent j more periods), split over the purchase cells as the customer's
    own NB × Gamma–Gamma cells are. States nobody reaches: the same pooled over every (f, m) of
    recency r′, else over all customers now."""
    n_cells = cells.shape[1] - 1
    purchase = cells[:, 1:]
    spread = purchase.sum(axis=1)
    overall = purchase.sum(axis=0)
    total = float(overall.sum())
    overall = overall / total if total > 0 else np.full(n_cells, 1.0 / n_cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(spread[:, None] > 0, purchase / spread[:, None], overall)
    # Customers with the same (recency, f, m, X, t_x, k, T) share every weight below.
    unique, inverse, size = distinct_rows(
        recency.astype(np.float64), fm.astype(np.float64), *stats.T
    )
    g = unique.shape[0]
    share_sum = np.stack(
        [np.bincount(inverse, weights=share[:, c], minlength=g) for c in range(n_cells)], axis=1
    ).reshape(g, n_cells)
    g_r = unique[:, 0].astype(np.int64)
    g_fm = unique[:, 1].astype(np.int64)
    X, t, k, T = unique[:, 2], unique[:, 3], unique[:, 4], unique[:, 5]
    R = max_recency
    num = np.zeros((n_states, n_cells + 1))
    den = np.zeros(n_states)
    r_num = np.zeros((R + 1, n_cells + 1))
    r_den = np.zeros(R + 1)
    first: tuple[FloatArray, FloatArray] | None = None
    for j in range(R + 1):
        at = g_r + j <= R  # R+ (recency ≥ R) is reached once, at j = R − r
        if not at.any():
            continue
        sub = {"period_frequency": X[at], "last_active_offset": t[at], "active_periods": k[at]}
        silent = (
            np.ones(int(at.sum()))
            if j == 0
            else 1.0 - model.probability_active(j, {**sub, "n_periods": T[at]})
        )
        p_next = model.probability_active(1, {**sub, "n_periods": T[at] + j})
        weight = size[at] * silent
        mass = np.concatenate(
            [(weight * (1.0 - p_next))[:, None], (silent * p_next)[:, None] * share_sum[at]],
            axis=1,
        )
        if j == 0:
            first = (mass.sum(axis=0), weight)
        target = (g_r[at] + j) * n_fm + g_fm[at]
        recency_target = g_r[at] + j
        for c in range(n_cells + 1):
            num[:, c] += np.bincount(target, weights=mass[:, c], minlength=n_states)
            r_num[:, c] += np.bincount(recency_target, weights=mass[:, c], minlength=R + 1)
        den += np.bincount(target, weights=weight, minlength=n_states)
        r_den += np.bincount(recency_target, weights=weight, minlength=R + 1)
    rows = np.empty((n_states, n_cells + 1))
    for s in range(n_states):
        r = s // n_fm
        if den[s] > 0:
            rows[s] = num[s] / den[s]
        elif r_den[r] > 0:
            rows[s] = r_num[r] / r_den[r]
        elif first is not None and first[1].sum() > 0:
            rows[s] = first[0] / first[1].sum()
        else:
            rows[s] = cells.mean(axis=0)
    return rows


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_lapse_rows_are_the_reference_bit_for_bit(data: st.DataObject) -> None:
    R = data.draw(st.integers(0, 4), label="max_recency")
    n_f, n_m = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    n_fm = n_f * n_m
    n_states = (R + 1) * n_fm
    n = data.draw(st.integers(1, 40), label="customers")
    # Few distinct values, so customers share groups and groups share model tuples.
    T = np.array(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.float64)
    t = np.array([data.draw(st.integers(0, int(v))) for v in T], dtype=np.float64)
    # The periodic BG/NBD's statistics: k = 1 exactly when t_x = 0, k ≤ t_x + 1, X ≥ k − 1.
    k = np.array(
        [1 if v == 0 else data.draw(st.integers(2, int(v) + 1)) for v in t], dtype=np.float64
    )
    X = np.array([data.draw(st.integers(int(v) - 1, 3 * int(v))) for v in k], dtype=np.float64)
    stats = np.stack([X, t, k, T], axis=1)
    recency = np.array(data.draw(st.lists(st.integers(0, R), min_size=n, max_size=n)))
    fm = np.array(data.draw(st.lists(st.integers(0, n_fm - 1), min_size=n, max_size=n)))
    unit = st.sampled_from([0.0, 0.0, 0.125, 0.3, 1.0, 2.5e-7, 0.7])
    cells = np.array(
        data.draw(
            st.lists(st.lists(unit, min_size=n_fm + 1, max_size=n_fm + 1), min_size=n, max_size=n)
        )
    )
    model = PeriodicBGNBD()
    model.params_ = {
        name: data.draw(st.sampled_from([0.05, 0.6, 1.0, 3.7, 40.0]), label=name)
        for name in ("r", "alpha", "a", "b")
    }
    args = (model, stats, recency, fm, cells, n_states, R, n_fm)
    rows = _lapse_rows(*args)
    assert rows.tobytes() == reference_lapse_rows(*args).tobytes()
    # Rows are distributions (no purchase, then the purchase cells) unless every cell is 0.
    if cells[:, 1:].sum() > 0:
        assert np.all(rows >= 0)
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-12)
    # Any customer order: the same bits.
    order = data.draw(st.permutations(range(n)))
    shuffled = _lapse_rows(
        model, stats[order], recency[order], fm[order], cells[order], n_states, R, n_fm
    )
    np.testing.assert_allclose(shuffled, rows, rtol=1e-13, atol=0)
