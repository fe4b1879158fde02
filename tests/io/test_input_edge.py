"""The one input edge (docs/architecture.md): every public function reads raw transactions
exactly once, and takes prepared transactions without reading them again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import polars as pl
import pytest

import winback
from winback import _io

AS_OF = "1997-12-31"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each call of the edge that reads raw data (not a PreparedTransactions)."""
    seen: list[str] = []
    real = _io.prepare

    def spy(data: Any, **kwargs: Any) -> _io.PreparedTransactions:
        if not isinstance(data, _io.PreparedTransactions):
            seen.append(type(data).__name__)
        return real(data, **kwargs)

    monkeypatch.setattr(_io, "prepare", spy)
    return seen


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    from winback.datasets import load_cdnow

    return load_cdnow().filter(pl.col("customer_id") < 3000)


CALLS: dict[str, Callable[[Any], Any]] = {
    "silence": lambda data: winback.silence(data, as_of=AS_OF),
    "summary": lambda data: winback.summary(data, calibration_end="1997-09-30"),
    "value": lambda data: winback.value(data, as_of=AS_OF).frame,
    "rfm": lambda data: winback.rfm(data, as_of=AS_OF),
    "migration": lambda data: winback.migration(data, as_of=["1997-06-30", AS_OF]).states,
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_raw_data_reaches_the_edge_once(name: str, tx: pl.DataFrame, reads: list[str]) -> None:
    CALLS[name](tx)
    assert reads == ["DataFrame"], f"{name} read its input {len(reads)} times"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_prepared_input_is_not_read_again(name: str, tx: pl.DataFrame, reads: list[str]) -> None:
    expected = CALLS[name](tx)
    prepared = winback.prepare(tx)
    reads.clear()
    got = CALLS[name](prepared)
    assert reads == []
    assert got.equals(expected, null_equal=True)
    assert got.schema == expected.schema


def test_value_with_costs_reads_once(tx: pl.DataFrame, reads: list[str]) -> None:
    with_cost = tx.with_columns((pl.col("amount") * 0.6).alias("cost"))
    result = winback.value(with_cost, as_of=AS_OF)
    assert reads == ["DataFrame"]
    assert result.info.has_cost
    margins = result.frame.filter(pl.col("margin_basis") == "cost").get_column("next_margin")
    assert margins.len() > 0
    assert (margins - 0.4).abs().max() < 1e-9  # cost = 60 % of every amount


def test_evaluate_reads_the_transactions_once(tx: pl.DataFrame, reads: list[str]) -> None:
    targets = winback.campaign(winback.silence(tx, as_of="1997-09-30"), campaign_id="c1")
    reads.clear()
    winback.evaluate(targets, tx, start="1997-10-01", window_days=60)
    assert reads == ["DataFrame"]


def test_a_stream_is_read_once_by_value(tx: pl.DataFrame) -> None:
    """A record-batch reader cannot be read twice: value must not try."""
    reader = tx.to_arrow().to_reader()
    frame = winback.value(reader, as_of=AS_OF).frame
    assert frame.height == tx.get_column("customer_id").n_unique()


def test_bad_costs_are_rejected_with_their_reason() -> None:
    data = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5), date(2024, 3, 5)],
            "amount": [10.0, None, 3.0, 4.0],
            "cost": [5.0, 1.0, float("nan"), 2.0],
        }
    )
    prepared = winback.prepare(data, cost_col="cost", on_invalid="drop")
    assert prepared.rows_read == 4
    assert prepared.rejects.select("row_index", "reason").rows() == [
        (1, "null amount"),
        (2, "NaN or infinite cost"),
    ]
    assert prepared.frame.columns == ["customer", "ts", "amount", "cost"]
    with pytest.raises(winback.WinbackInputError, match=r"column 'cost': 1 rows with NaN or inf"):
        winback.prepare(data.drop_nulls("amount"), cost_col="cost")
    with pytest.raises(winback.WinbackInputError, match="without an amount column"):
        winback.prepare(data.drop("amount"), cost_col="cost")


def test_prepared_without_amounts_is_refused_by_value(tx: pl.DataFrame) -> None:
    prepared = winback.prepare(tx.drop("amount"))
    with pytest.raises(winback.WinbackInputError, match="no amounts"):
        winback.value(prepared, as_of=AS_OF)


def test_report_reads_its_input_once(tx: pl.DataFrame, reads: list[str]) -> None:
    page = winback.report(tx, as_of=AS_OF, previous_as_of="1997-06-30", models=("bgnbd",))
    assert reads == ["DataFrame"]
    assert "winback" in page.html
