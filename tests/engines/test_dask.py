"""winback.dask (docs/methods.md#spark): Dask results equal the local API's bit for bit (after
sorting)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

import winback
from benches.gen_data import generate
from tests.engines.test_batches import (
    ENUMS,
    assert_same_bits,
    bad_transactions,
    with_awkward_customers,
)
from winback.errors import WinbackConfigError, WinbackInputError

dd = pytest.importorskip("dask.dataframe")


def as_polars(ddf: object) -> pl.DataFrame:
    frame = ddf.compute()  # type: ignore[attr-defined]
    return pl.DataFrame(pl.from_arrow(pa.Table.from_pandas(frame, preserve_index=False))).sort(
        "customer_id"
    )


@pytest.fixture(scope="module", params=["int", "str"])
def transactions(request: pytest.FixtureRequest) -> pl.DataFrame:
    tx = with_awkward_customers(generate(800, seed=21, id_kind=request.param, rows_per_customer=5))
    return tx.sample(fraction=1.0, shuffle=True, seed=2)


def test_score_equals_local(transactions: pl.DataFrame) -> None:
    from winback import dask as winback_dask

    pdf = transactions.to_pandas()
    ddf = dd.from_pandas(pdf, npartitions=4)
    got = as_polars(winback_dask.score(ddf, min_rows=100, npartitions=3))
    expected = winback.silence(pdf).with_columns(pl.col(ENUMS).cast(pl.String))
    assert got.height == transactions.get_column("customer_id").n_unique()
    assert_same_bits(got, expected)


def test_summary_equals_local(transactions: pl.DataFrame) -> None:
    from winback import dask as winback_dask

    pdf = transactions.to_pandas()
    ddf = dd.from_pandas(pdf, npartitions=4)
    arguments = {"calibration_end": date(2024, 6, 30), "period": "30d", "unit": "D"}
    got = as_polars(winback_dask.summary(ddf, min_rows=100, **arguments))  # type: ignore[arg-type]
    assert_same_bits(got, winback.summary(pdf, **arguments))  # type: ignore[arg-type]


def test_orders_spanning_partitions_are_one_purchase() -> None:
    """With order_col the default as_of is the latest order's first row, as locally, even
    when an order's rows land in different input partitions."""
    from winback import dask as winback_dask

    tx = pl.DataFrame(
        {
            "customer_id": [1, 2, 1, 2],
            "order": [10, 20, 10, 21],
            "ts": [
                datetime(2024, 1, 1),
                datetime(2024, 1, 2),
                datetime(2024, 3, 9),
                datetime(2024, 2, 1),
            ],
        }
    )
    ddf = dd.from_pandas(tx.to_pandas(), npartitions=2, sort=False)
    got = as_polars(winback_dask.score(ddf, order_col="order"))
    expected = winback.silence(tx, order_col="order").with_columns(pl.col(ENUMS).cast(pl.String))
    assert_same_bits(got, expected)
    assert got.get_column("recency_days").to_list() == [31.0, 0.0]


def test_errors_are_raised_on_the_client() -> None:
    from winback import dask as winback_dask

    pdf = pl.DataFrame(
        {"customer_id": [1, 2], "ts": [datetime(2024, 1, 1), None]},
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us")},
    ).to_pandas()
    ddf = dd.from_pandas(pdf, npartitions=1)
    with pytest.raises(WinbackInputError, match="'when'"):
        winback_dask.score(ddf, time_col="when")
    with pytest.raises(WinbackInputError, match="null timestamp"):
        winback_dask.score(ddf)
    with pytest.raises(WinbackConfigError, match="npartitions"):
        winback_dask.score(ddf, as_of="2024-01-01", npartitions=0)


def test_an_as_of_before_the_data_is_refused_by_score() -> None:
    """The same refusal as the local API's (docs/methods.md#as-of), from the driver's read pass."""
    from winback import dask as winback_dask

    pdf = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "ts": [datetime(2024, 1, 1), datetime(2024, 2, 1), datetime(2024, 1, 15)],
        },
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us")},
    ).to_pandas()
    ddf = dd.from_pandas(pdf, npartitions=2)
    with pytest.raises(WinbackConfigError, match="before the first purchase") as remote:
        winback_dask.score(ddf, as_of="1990-01-01")
    with pytest.raises(WinbackConfigError, match="before the first purchase") as local:
        winback.silence(pl.from_pandas(pdf), as_of="1990-01-01")
    assert str(remote.value) == str(local.value)
    assert winback_dask.score(ddf, as_of="2024-03-01").compute().shape[0] == 2


def test_a_far_future_row_stops_the_default_as_of_as_locally() -> None:
    """The percentile half of the far-future rule (docs/methods.md#as-of), not just the clock's:
    2,000 purchases in 2000–2001 and one typo dated 2010 (before today's clock)."""
    from winback import dask as winback_dask

    days = [datetime(2000, 1, 1) + timedelta(days=i % 700) for i in range(2000)]
    frame = pl.DataFrame(
        {"customer_id": [i % 300 for i in range(2000)] + [7], "ts": [*days, datetime(2010, 5, 5)]},
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us")},
    )
    with pytest.raises(WinbackInputError, match="2010-05-05") as local:
        winback.silence(frame)
    for npartitions in (1, 3):
        ddf = dd.from_pandas(frame.to_pandas(), npartitions=npartitions)
        with pytest.raises(WinbackInputError, match="2010-05-05") as remote:
            winback_dask.score(ddf)
        assert str(remote.value) == str(local.value)
        with pytest.raises(WinbackInputError, match="2010-05-05"):
            winback_dask.summary(ddf)
    assert winback_dask.score(ddf, as_of="2001-12-31").compute().shape[0] == 300


def test_invalid_rows_are_numbered_in_the_whole_input() -> None:
    """Issue 19: an invalid row at whole-input row k is reported as k (the local API's message
    word for word), and with drop the rejects come back as locally, numbered the same."""
    from winback import dask as winback_dask

    tx = bad_transactions().with_columns(pl.col("ts").replace("17/02/2024", "not a date"))
    pdf = tx.to_pandas(use_pyarrow_extension_array=True)
    ddf = dd.from_pandas(pdf, npartitions=4, sort=False)
    with pytest.raises(WinbackInputError) as local:
        winback.silence(tx)
    with pytest.raises(WinbackInputError) as engine:
        winback_dask.score(ddf, as_of="2024-02-01")
    assert str(engine.value) == str(local.value)
    assert "(rows 17)" in str(engine.value)
    assert "(rows 23)" in str(engine.value)
    scores, rejects = winback_dask.score(ddf, on_invalid="drop", return_rejects=True)
    expected, info = winback.silence(tx, on_invalid="drop", return_info=True)
    got = pl.DataFrame(pl.from_arrow(pa.Table.from_pandas(rejects.compute(), preserve_index=False)))
    assert got.equals(info.rejects.with_columns(pl.col("row_index").cast(pl.Int64)))
    assert_same_bits(as_polars(scores), expected.with_columns(pl.col(ENUMS).cast(pl.String)))
    _summary, summary_rejects = winback_dask.summary(ddf, on_invalid="drop", return_rejects=True)
    assert summary_rejects.compute()["row_index"].tolist() == [17, 23, 31]


def test_reading_options_equal_local() -> None:
    """time_format and id_type give the local results: month-first dates, ids with leading
    zeros kept apart as text or merged as integers."""
    from winback import dask as winback_dask

    tx = pl.DataFrame(
        {
            "customer_id": ["00123", "0123", "123", "00123", "0123", "7"],
            "ts": [
                "01/02/2024",
                "03/04/2024",
                "01/12/2024",
                "02/01/2024",
                "05/06/2024",
                "01/03/2024",
            ],
        }
    )
    ddf = dd.from_pandas(tx.to_pandas(), npartitions=2, sort=False)
    with pytest.raises(WinbackInputError, match="time_format"):
        winback_dask.score(ddf)  # ambiguous dates are refused, as locally
    for id_type in ("auto", "str", "int"):
        arguments = {"time_format": "%m/%d/%Y", "id_type": id_type}
        got = as_polars(winback_dask.score(ddf, **arguments))  # type: ignore[arg-type]
        expected = winback.silence(tx, **arguments).with_columns(pl.col(ENUMS).cast(pl.String))  # type: ignore[arg-type]
        assert_same_bits(got, expected)
        assert got.height == (2 if id_type == "int" else 4)
        summary = as_polars(winback_dask.summary(ddf, unit="D", **arguments))  # type: ignore[arg-type]
        assert_same_bits(summary, winback.summary(tx, unit="D", **arguments))  # type: ignore[arg-type]


class _FakeClient:
    """A distributed Client whose one worker lacks winback (client.run's answer)."""

    class scheduler:  # noqa: N801 - mimics client.scheduler.address
        address = "tcp://fake-scheduler:8786"

    def run(self, function: object) -> dict[str, object]:
        return {
            "tcp://10.0.0.5:40000": (
                "/usr/bin/python3",
                ["winback (ModuleNotFoundError: No module named 'winback')"],
                None,
            )
        }


def test_distributed_workers_without_winback(monkeypatch: pytest.MonkeyPatch) -> None:
    from winback import dask as winback_dask

    assert winback_dask._probe()[1:] == ([], winback.__version__)  # this Python has it all
    monkeypatch.setattr(winback_dask, "_distributed_client", lambda: _FakeClient())
    ddf = dd.from_pandas(pl.DataFrame({"customer_id": [1], "ts": [date(2024, 1, 1)]}).to_pandas())
    with pytest.raises(WinbackConfigError, match=r"tcp://10.0.0.5:40000.*cannot import winback"):
        winback_dask.score(ddf)
    monkeypatch.setattr(winback_dask, "_distributed_client", lambda: None)
    assert as_polars(winback_dask.score(ddf)).height == 1  # local schedulers: nothing to check
