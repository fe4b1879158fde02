"""The value tiers' rank (``winback.value.tiers.min_rank``) against SciPy's ``rankdata``.

The tiers rank with NumPy so that the value engine does not import ``scipy.stats`` at start-up;
the ranks, and so the tiers, must stay exactly those of ``rankdata(method="min")``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

from winback.value.tiers import min_rank, tier_codes

values = arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e300, -1e-300, 7.0]),
)


@given(values)
@example(np.array([0.0, -0.0, 0.0]))  # −0.0 and 0.0 tie, as in rankdata
@example(np.array([3.0]))
def test_min_rank_equals_rankdata(x: np.ndarray) -> None:
    expected = rankdata(x, method="min")
    got = min_rank(x)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


@given(arrays(np.float64, st.integers(1, 80), elements=st.floats(-5, 100, width=16)))
def test_tier_codes_match_a_rankdata_oracle(x: np.ndarray) -> None:
    """The tiers of a slow oracle built on ``rankdata`` (ties share the better tier)."""
    tiers = {"top": 0.2, "middle": 0.3}
    codes = tier_codes(x, tiers)
    nonneg = x >= 0
    expected = np.where(nonneg, -1, len(tiers) + 1)
    if nonneg.any():
        share = rankdata(-x[nonneg], method="min") / nonneg.sum()
        bounds = np.cumsum(list(tiers.values())) + 1e-12
        expected[nonneg] = [int(np.sum(bounds < s)) for s in share]
    np.testing.assert_array_equal(codes, expected)
