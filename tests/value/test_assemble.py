"""The value frame's assembly (docs/methods.md#value): when every customer is modelled, the
engine puts the modelled columns beside the base columns instead of joining; the frame must be
the one the left join gives (values, nulls, dtypes and order)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from winback.value.engine import _assemble
from winback.value.result import PMF_MAX, VALUE_COLUMNS

_BASE = {"customer_id", "status", "reason", "n_periods", "period_frequency", "value_to_date"}


def _frames(n: int, seed: int, string_ids: bool, modelled_share: float) -> tuple[pl.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    ids_int = np.sort(rng.choice(10 * n + 10, size=n, replace=False))
    ids = pl.Series("customer_id", [f"C{i:06d}" for i in ids_int] if string_ids else ids_int)
    modelled = rng.random(n) < modelled_share
    c = pl.DataFrame(
        {
            "customer_id": ids,
            "_modelled": modelled,
            "n_periods": rng.integers(0, 24, n),
            "period_frequency": rng.integers(0, 50, n).astype(np.int32),
            "revenue_to_date": rng.normal(100.0, 50.0, n),
            "cost_to_date": rng.normal(40.0, 10.0, n),
            "expense_to_date": rng.random(n),
        }
    )
    m = c.filter(pl.col("_modelled"))
    k = m.height
    columns: dict[str, object] = {"customer_id": m.get_column("customer_id")}
    for name in VALUE_COLUMNS:
        if name in _BASE:
            continue
        if name == "p_frequency":
            columns[name] = pl.Series(name, rng.random((k, PMF_MAX + 1))).cast(
                pl.Array(pl.Float64, PMF_MAX + 1)
            )
        elif name in ("frequency_mode", "spend_bin_mode"):
            columns[name] = rng.integers(0, 5, k)
        elif name == "negative_value":
            columns[name] = rng.random(k) < 0.1
        elif name in ("segment", "margin_basis", "expense_basis", "markov_state", "value_tier"):
            labels = ["a", "b", None]
            columns[name] = pl.Series(
                name, [labels[i] for i in rng.integers(0, 3, k)], dtype=pl.String
            )
        else:
            values = rng.normal(size=k)
            values[rng.random(k) < 0.05] = np.nan
            columns[name] = values
    return c, pl.DataFrame(columns)


def _joined(c: pl.DataFrame, modelled: pl.DataFrame) -> pl.DataFrame:
    """The former assembly: always the left join."""
    frame = _assemble(c, modelled.head(0))  # the join path (no modelled row): the base columns
    base = frame.select(sorted(_BASE, key=VALUE_COLUMNS.index))
    return base.join(modelled, on="customer_id", how="left").select(VALUE_COLUMNS)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**31),
    string_ids=st.booleans(),
    modelled_share=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_side_by_side_is_the_join(
    n: int, seed: int, string_ids: bool, modelled_share: float
) -> None:
    c, modelled = _frames(n, seed, string_ids, modelled_share)
    got = _assemble(c, modelled)
    want = _joined(c, modelled)
    assert got.schema == want.schema
    assert got.equals(want)
    # Floats bit for bit (equals treats NaN as equal to NaN, but not −0.0 and 0.0 apart).
    for name, dtype in got.schema.items():
        if dtype == pl.Float64:
            a = got.get_column(name).to_numpy()
            b = want.get_column(name).to_numpy()
            assert a.tobytes() == b.tobytes(), name
