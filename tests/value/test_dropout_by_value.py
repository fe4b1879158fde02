"""The periodic BG/NBD's fit objective (docs/methods.md#periodic-bg-nbd) with each special
function evaluated once per distinct value of its statistic (``_log_terms_by_value``) against
the row-by-row terms (``_log_terms``): the same bits, so the same fitted parameters."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.value.dropout import PeriodicBGNBD, _by_value, distinct_rows


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_log_terms_by_value_are_the_row_terms_bit_for_bit(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 50), label="rows")
    T = np.array(data.draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)), dtype=float)
    t = np.array([data.draw(st.integers(0, int(v))) for v in T], dtype=float)
    k = np.array([1 if v == 0 else data.draw(st.integers(2, int(v) + 1)) for v in t], dtype=float)
    X = np.array([data.draw(st.integers(int(v) - 1, 5 * int(v))) for v in k], dtype=float)
    stats = np.stack([X, t, k, T], axis=1)
    log_params = np.array(
        data.draw(st.lists(st.floats(-12.0, 12.0), min_size=4, max_size=4)), dtype=float
    )
    params = np.exp(log_params)
    rows = PeriodicBGNBD._log_terms(params, X, t, k, T)
    by_value = PeriodicBGNBD._log_terms_by_value(params, _by_value(stats))
    for want, got in zip(rows, by_value, strict=True):
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    weights = np.array(data.draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)), float)
    shared, dropped, alive = rows
    ll = -float((weights * (shared + np.logaddexp(dropped, alive))).sum())
    want_ll = ll if np.isfinite(ll) else 1e300
    got_ll = PeriodicBGNBD()._negative_ll(log_params, _by_value(stats), weights)
    assert got_ll == want_ll or (np.isnan(got_ll) and np.isnan(want_ll))


def test_fit_on_distinct_values_keeps_the_parameters() -> None:
    """A fit on a small panel-like sample: the parameters are those of the row-by-row
    objective minimised the same way (the same bits, as the objective is)."""
    from scipy import optimize

    rng = np.random.default_rng(3)
    T = rng.integers(1, 24, 3000).astype(float)
    t = np.floor(rng.random(3000) * (T + 1))
    k = np.where(t == 0, 1.0, np.minimum(t + 1, 1 + rng.integers(1, 6, 3000)))
    X = k - 1 + rng.integers(0, 8, 3000)
    data = {"period_frequency": X, "last_active_offset": t, "active_periods": k, "n_periods": T}
    model = PeriodicBGNBD().fit(data)
    unique, _, weights = distinct_rows(X, t, k, T)

    def row_objective(log_params: np.ndarray) -> float:
        shared, dropped, alive = PeriodicBGNBD._log_terms(np.exp(log_params), *unique.T)
        value = -float((weights * (shared + np.logaddexp(dropped, alive))).sum())
        return value if np.isfinite(value) else 1e300

    mean_rate = max(float(X.sum()) / max(float(T.sum()), 1.0), 1e-3)
    result = optimize.minimize(
        row_objective,
        np.log([1.0, 1.0 / mean_rate, 1.0, 3.0]),
        method="L-BFGS-B",
        bounds=[(-12.0, 12.0)] * 4,
    )
    assert list(model.params_.values()) == [float(v) for v in np.exp(result.x)]
    assert model.log_likelihood_ == -float(result.fun)
