"""String customer ids through silence scoring's range split (docs/methods.md#silence,
#determinism): ids of at most 12 bytes are grouped by a range split on sampled splitters, longer
ones by the hash split. Both must give the same frame, whatever the row order or batches."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback

AS_OF = datetime(2024, 3, 1)
#: 13 bytes: every id prefixed with it is longer than a string view's 12 inline bytes, so the
#: prefixed log takes the hash split; a common prefix keeps the bytewise order.
LONG_PREFIX = "~" * 13


def _through_the_hash_split(log: pl.DataFrame, **kwargs: object) -> pl.DataFrame:
    """Scores of ``log`` with every id made long (hash split), ids given back."""
    longer = log.with_columns(LONG_PREFIX + pl.col("customer_id"))
    out: pl.DataFrame = winback.silence(longer, as_of=AS_OF, **kwargs)  # type: ignore[call-overload]
    return out.with_columns(pl.col("customer_id").str.strip_prefix(LONG_PREFIX))


short_ids = st.text(alphabet=st.sampled_from(["a", "b", "0", "\x00", "é", "€"]), max_size=4)


@st.composite
def string_logs(draw: st.DrawFn) -> pl.DataFrame:
    """Small logs with short string ids (empty, NUL bytes, multi-byte UTF-8 included)."""
    ids = draw(st.lists(short_ids, min_size=1, max_size=8, unique=True))
    n = draw(st.integers(1, 60))
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(ids),
                st.integers(-5 * 86_400, 90 * 86_400),
                st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e16, -1e16, 3.0]),
            ),
            min_size=n,
            max_size=n,
        )
    )
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [datetime(2024, 1, 1) + timedelta(seconds=r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        },
        schema={"customer_id": pl.String, "ts": pl.Datetime("us"), "amount": pl.Float64},
    )


@settings(max_examples=60, deadline=None)
@given(log=string_logs(), seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 7))
def test_short_string_ids_equal_the_hash_split_in_any_order_and_batches(
    log: pl.DataFrame, seed: int, batch: int
) -> None:
    out = winback.silence(log, as_of=AS_OF)
    assert_frame_equal(out, _through_the_hash_split(log))
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=seed)
    assert_frame_equal(out, winback.silence(shuffled, as_of=AS_OF))
    batches = pa.Table.from_batches(shuffled.to_arrow().to_batches(max_chunksize=batch))
    assert_frame_equal(out, winback.silence(batches, as_of=AS_OF))


def test_many_short_string_ids_equal_the_hash_split() -> None:
    """300k rows (several partitions and rounds), ids of 0–12 bytes with shared prefixes."""
    rng = np.random.default_rng(18)
    n = 300_000
    numbers = rng.integers(0, 40_000, n)
    width = rng.integers(0, 12, n)
    ids = [
        ("C" + str(k).zfill(9))[: w + 1] if w else "" for k, w in zip(numbers, width, strict=True)
    ]
    seconds = rng.integers(0, 400 * 86_400, n)
    log = pl.DataFrame(
        {
            "customer_id": ids,
            "ts": (np.datetime64("2023-03-01", "us") + seconds.astype("timedelta64[s]")),
            "amount": rng.normal(20, 30, n).round(2),
        }
    )
    for kwargs in ({}, {"resolution": "6h", "num_threads": 1}):
        out = winback.silence(log, as_of=AS_OF, **kwargs)  # type: ignore[call-overload]
        assert out.get_column("customer_id").is_sorted()
        assert_frame_equal(out, _through_the_hash_split(log, **kwargs))
        assert_frame_equal(
            out,
            winback.silence(log.reverse(), as_of=AS_OF, **kwargs),  # type: ignore[call-overload]
        )
