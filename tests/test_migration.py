"""Migration between snapshots (docs/methods.md#migration)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import winback
from tests.conftest import START, transaction_logs
from winback.errors import WinbackConfigError
from winback.migrate import MIGRATION_STATES


@pytest.fixture
def tx() -> pl.DataFrame:
    # Customer 1 buys every 10 days then stops; 2 buys once early; 3 appears only in February;
    # 4 buys twice in January and again in late February.
    rows = [
        (1, date(2024, 1, 1)),
        (1, date(2024, 1, 11)),
        (1, date(2024, 1, 21)),
        (2, date(2024, 1, 3)),
        (3, date(2024, 2, 10)),
        (4, date(2024, 1, 2)),
        (4, date(2024, 1, 30)),
        (4, date(2024, 2, 27)),
    ]
    return pl.DataFrame(rows, schema=["customer_id", "ts"], orient="row")


def test_states_at_each_snapshot(tx: pl.DataFrame) -> None:
    result = winback.migration(tx, as_of=[date(2024, 1, 31), date(2024, 2, 29)])
    assert result.states.columns == ["customer_id", "2024-01-31", "2024-02-29"]
    states = {row[0]: row[1:] for row in result.states.iter_rows()}
    # Jan 31: customer 1 silent 10 days, gaps 10, 10 -> rank 3/3 -> e; Feb 29: 39 days -> e.
    assert states[1] == ("e", "e")
    assert states[2] == ("single_purchase", "single_purchase")
    assert states[3] == ("not_yet_customer", "single_purchase")
    # Customer 4 on Jan 31: gap 28, Tr 1 -> rank 1/2 -> b; Feb 29: gaps 28, 28, Tr 2 -> 1/3 -> a.
    assert states[4] == ("b", "a")


def test_transition_counts_and_shares(tx: pl.DataFrame) -> None:
    result = winback.migration(tx, as_of=["2024-01-31", "2024-02-29"])
    assert result.share("not_yet_customer", "single_purchase") == 1.0
    assert result.share("b", "a") == 1.0
    assert result.share("c", "e") == 0.0
    counts = result.matrix(values="customers")
    assert counts.columns == ["from_state", *MIGRATION_STATES]
    assert counts.drop("from_state").sum_horizontal().sum() == 4


def test_states_agree_with_silence_at_each_date(cdnow_master: pl.DataFrame) -> None:
    dates = [date(1997, 6, 30), date(1997, 12, 31), date(1998, 6, 30)]
    result = winback.migration(cdnow_master, as_of=dates)
    for day in dates:
        scored = winback.silence(cdnow_master, as_of=day)
        state = (
            pl.when(pl.col("status") == "scored")
            .then(pl.col("rank_ratio_group").cast(pl.String))
            .otherwise(pl.col("status").cast(pl.String))
        )
        expected = scored.select("customer_id", state.alias("state"))
        got = result.states.select(
            "customer_id", pl.col(day.isoformat()).cast(pl.String).alias("state")
        )
        joined = got.join(expected, on="customer_id", how="left", suffix="_silence")
        merged = joined.with_columns(pl.col("state_silence").fill_null("not_yet_customer"))
        assert (merged["state"] == merged["state_silence"]).all()
    shares = result.transitions.group_by("from_as_of", "from_state").agg(pl.col("share").sum())
    assert shares.get_column("share").is_between(1 - 1e-12, 1 + 1e-12).all()


@given(log=transaction_logs(max_rows=40), first=st.integers(0, 20), second=st.integers(21, 45))
def test_no_customer_lost_between_snapshots(log: pl.DataFrame, first: int, second: int) -> None:
    from datetime import timedelta

    as_of = [START + timedelta(days=first), START + timedelta(days=second)]
    if log.height and as_of[0] < log.get_column("ts").min():  # type: ignore[operator]
        # docs/methods.md#as-of: a first snapshot before all the data is refused, not empty.
        with pytest.raises(WinbackConfigError, match="is before the first purchase"):
            winback.migration(log, as_of=as_of)
        return
    result = winback.migration(log, as_of=as_of)
    assert result.states.height == log.get_column("customer_id").n_unique()
    total = result.transitions.get_column("customers").sum() if result.transitions.height else 0
    assert total == result.states.height
    # Nobody goes back to "not yet a customer".
    back = result.transitions.filter(
        (pl.col("to_state") == "not_yet_customer") & (pl.col("from_state") != "not_yet_customer")
    )
    assert back.height == 0


def test_bad_snapshot_lists(tx: pl.DataFrame) -> None:
    with pytest.raises(WinbackConfigError, match="at least two as_of dates"):
        winback.migration(tx, as_of=[date(2024, 1, 31)])
    with pytest.raises(WinbackConfigError, match="strictly increasing"):
        winback.migration(tx, as_of=[date(2024, 2, 1), date(2024, 1, 1)])
    result = winback.migration(tx, as_of=[date(2024, 1, 31), date(2024, 2, 29)])
    with pytest.raises(WinbackConfigError, match="pair=1 is out of range"):
        result.matrix(1)
    with pytest.raises(WinbackConfigError, match="unknown state 'f'"):
        result.share("a", "f")
