"""The chain's historical buy rate (docs/methods.md#markov) walked without building the
transition rows (``_walked_buy_rate``: a dense table of the distinct (X, t_x, k, T), then sums
over the same walk) against the rows of ``history_transitions`` with ``distinct_rows`` and
``np.bincount``, and against a plain per-row mean."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from winback._kernels import chain as chain_kernels
from winback.value.dropout import STAT_COLUMNS, PeriodicBGNBD
from winback.value.markov import _historical_buy_rate, _walked_buy_rate


def _model() -> PeriodicBGNBD:
    model = PeriodicBGNBD()
    model.params_ = {"r": 0.8, "alpha": 2.5, "a": 0.7, "b": 3.1}
    return model


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_walked_buy_rate_is_the_rows_buy_rate_bit_for_bit(data: st.DataObject) -> None:
    n_complete = data.draw(st.integers(1, 9))
    R, n_f, n_m = data.draw(st.integers(1, 4)), 2, 3
    n_states = (R + 1) * n_f * n_m
    histories = []
    for _ in range(data.draw(st.integers(0, 8))):
        periods = sorted(data.draw(st.sets(st.integers(0, n_complete - 1), min_size=1, max_size=6)))
        histories.append(
            [
                (
                    p,
                    data.draw(st.integers(1, 40)),
                    data.draw(st.integers(0, n_f - 1)),
                    data.draw(st.integers(0, n_m - 1)),
                )
                for p in periods
            ]
        )
    flat = [row for h in histories for row in h]
    starts = np.cumsum([0] + [len(h) for h in histories]).astype(np.int64)
    walk = tuple(np.array([r[i] for r in flat], dtype=np.int64) for i in range(4))
    periods, occasions, f_bins, m_bins = walk
    fallback = np.linspace(0.1, 0.9, n_states)
    model = _model()
    args = (model, (starts, *walk), n_complete, R, n_f, n_m, fallback)

    dense = _walked_buy_rate(*args)
    through_rows = _walked_buy_rate(*args, dense_keys=0)
    rows = chain_kernels.history_transitions(
        starts, periods, occasions, f_bins, m_bins, n_complete, R, n_f, n_m
    )
    reference = (
        fallback if rows.shape[0] == 0 else _historical_buy_rate(model, rows, n_states, fallback)
    )
    assert dense.tobytes() == through_rows.tobytes() == reference.tobytes()
    # The same as a plain mean of the model's P(buy next) over each state's rows.
    for s in range(n_states):
        at = rows[:, 0] == s
        if not at.any():
            assert dense[s] == fallback[s]
            continue
        stats = {c: rows[at, 2 + j].astype(np.float64) for j, c in enumerate(STAT_COLUMNS)}
        want = float(np.clip(model.probability_active(1, stats).mean(), 1e-12, 1 - 1e-12))
        assert abs(dense[s] - want) <= 1e-12 * want


def test_freed_memory_is_released_on_glibc() -> None:
    """The panel hands glibc's freed heap back (``malloc_trim``); elsewhere a no-op."""
    import platform

    from winback.value.panel import _malloc_trim, release_freed_memory

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert _malloc_trim() is not None
    release_freed_memory()  # never raises
