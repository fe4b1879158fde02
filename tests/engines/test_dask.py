"""winback.dask (docs/methods.md#spark): Dask results equal the local API's bit for bit (after
sorting)."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pyarrow as pa
import pytest

import winback
from benches.gen_data import generate
from tests.engines.test_batches import ENUMS, assert_same_bits, with_awkward_customers
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
