"""`winback.value`'s memory: the prepared rows are let go of once the panel is built, and the
chain's rows are tallied beside the forecast (docs/methods.md#markov) and let go of before the
chain — the same bits as tallying them inside :func:`build_chain`."""

from __future__ import annotations

import gc
import importlib
import weakref
from typing import Any

import numpy as np
import polars as pl
import pytest

import winback

# ``winback.value`` is the function: the modules are imported by name.
api = importlib.import_module("winback.value.api")
engine = importlib.import_module("winback.value.engine")
markov = importlib.import_module("winback.value.markov")


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    from winback.datasets import load_cdnow

    return load_cdnow().filter(pl.col("customer_id") <= 3000)


def _chain_bits(result: Any) -> list[Any]:
    chain = result.chain
    return [
        chain.states,
        chain.transition_matrix.toarray(),
        chain.counts.toarray(),
        chain.prior.toarray(),
        chain.kappa,
        chain.customer_state,
        chain.customer_purchases,
        chain.customer_purchases_infinite,
    ]


def _same(a: list[Any], b: list[Any]) -> bool:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, pl.DataFrame):
            if not x.equals(y):
                return False
        elif isinstance(x, np.ndarray) or x is None:
            if (x is None) != (y is None) or (x is not None and x.tobytes() != y.tobytes()):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(
    ("as_of", "kwargs"),
    [
        ("1998-06-30", {}),
        # customers born in March 1997 are not modelled: the filtered panel
        ("1997-03-20", {}),
        ("1998-06-30", {"max_recency": 3, "frequency_buckets": (1, 2, 4), "discount_rate": 0.0}),
    ],
)
def test_tallied_rows_give_the_chain_of_the_rows_bit_for_bit(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, as_of: str, kwargs: dict[str, Any]
) -> None:
    tallied: list[bool] = []
    real = engine.tally_chain_rows

    def spy(rows: Any, **kw: Any) -> Any:
        out = real(rows, **kw)
        tallied.append(out.tallies is not None and out.period.size == 0 < rows.period.size)
        return out

    monkeypatch.setattr(engine, "tally_chain_rows", spy)
    tallied_result = winback.value(tx, as_of=as_of, **kwargs)
    assert tallied == [True]
    # The rows handed to build_chain untallied: it tallies them itself (the former path).
    monkeypatch.setattr(engine, "tally_chain_rows", lambda rows, **kw: rows)
    rows_result = winback.value(tx, as_of=as_of, **kwargs)
    assert tallied_result.frame.equals(rows_result.frame)
    assert _same(_chain_bits(tallied_result), _chain_bits(rows_result))


def test_only_tied_rows_with_their_fit_are_tallied() -> None:
    panel_rows = markov.ChainRows(
        ids=pl.Series([1]),
        sizes=np.array([1]),
        starts=np.array([0, 1]),
        period=np.zeros(0, dtype=np.int64),
        occasions=np.zeros(0, dtype=np.int64),
        m_bin=np.zeros(0, dtype=np.int64),
        revenue=np.zeros(0),
        f_bin=None,
    )
    with pytest.raises(ValueError, match="tied to the modelled customers"):
        markov.tally_chain_rows(panel_rows, n_complete=3, max_recency=2, buckets=[1, 2], n_m=2)


def test_prepared_rows_are_let_go_of_once_the_panel_is_built(
    tx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs: list[weakref.ref[Any]] = []
    alive: list[bool] = []
    real_read, real_aggregates = api.read_value_input, api.customer_aggregates

    def read(*args: Any, **kwargs: Any) -> Any:
        prepared = real_read(*args, **kwargs)
        refs.append(weakref.ref(prepared.frame))
        return prepared

    def aggregates(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive.append(refs[0]() is not None)
        return real_aggregates(*args, **kwargs)

    monkeypatch.setattr(api, "read_value_input", read)
    monkeypatch.setattr(api, "customer_aggregates", aggregates)
    winback.value(tx, as_of="1998-06-30")
    assert alive == [False]
