"""winback.spark (docs/methods.md#spark): Spark results equal the local API's bit for bit.

One shared ``local[2]`` session (UI off, 4 shuffle partitions, Arrow batches of 97 rows so
customers straddle batches, session time zone UTC). Each test runs a few Spark jobs on a few
thousand generated transactions with awkward cases: single-purchase customers, string ids,
customers split across Arrow batches and across input files.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
import winback._engines.batches as _batches
from benches.gen_data import generate
from tests.engines.test_batches import ENUMS, assert_same_bits, with_awkward_customers
from winback.errors import WinbackConfigError, WinbackInputError
from winback.models import BetaGeoModel, NBDModel, ParetoNBDModel

pytest.importorskip("pyspark")

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("PySpark needs Java 17: apt-get install openjdk-17-jre-headless")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("winback-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def as_polars(spark_df: object) -> pl.DataFrame:
    return pl.DataFrame(pl.from_arrow(spark_df.toArrow())).sort("customer_id")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def int_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """~7k rows with int ids in three Parquet files, rows shuffled so customers span files."""
    tx = with_awkward_customers(generate(1200, seed=11, rows_per_customer=6))
    tx = tx.sample(fraction=1.0, shuffle=True, seed=4)
    folder = tmp_path_factory.mktemp("int_tx")
    for part, rows in enumerate(np.array_split(np.arange(tx.height), 3)):
        tx[rows].write_parquet(folder / f"part-{part}.parquet")
    return folder, tx


@pytest.fixture(scope="module")
def str_frame(spark: object) -> tuple[object, pl.DataFrame]:
    tx = with_awkward_customers(generate(1000, seed=12, id_kind="str", rows_per_customer=5))
    return spark.createDataFrame(tx.to_arrow()), tx  # type: ignore[attr-defined]


def local_silence(tx: object, **kwargs: object) -> pl.DataFrame:
    return winback.silence(tx, **kwargs).with_columns(pl.col(ENUMS).cast(pl.String))  # type: ignore[arg-type]


def test_score_over_files_equals_local(spark: object, int_files: tuple[Path, pl.DataFrame]) -> None:
    from winback import spark as winback_spark

    folder, tx = int_files
    df = spark.read.parquet(str(folder))  # type: ignore[attr-defined]
    assert df.schema["ts"].dataType.typeName() == "timestamp_ntz"  # as_of from Spark's max
    got = as_polars(winback_spark.score(df, min_rows=150))
    expected = local_silence(tx)
    assert got.height == tx.get_column("customer_id").n_unique()
    assert (got.get_column("status") == "single_purchase").sum() > 0
    assert_same_bits(got, expected)


def test_summary_fit_predict_equal_local(
    spark: object, str_frame: tuple[object, pl.DataFrame]
) -> None:
    from winback import spark as winback_spark

    df, tx = str_frame
    arguments = {"calibration_end": date(2024, 6, 30), "period": "30d"}
    summary = winback_spark.summary(df, min_rows=120, **arguments)  # type: ignore[arg-type]
    local = winback.summary(tx, **arguments)  # type: ignore[arg-type]
    assert_same_bits(as_polars(summary), local)

    model = winback_spark.fit(summary, BetaGeoModel())
    binned = _batches.bin_frame(local, 1.0, ["recency", "T"])
    reference = BetaGeoModel().fit(binned)
    assert model.params_ == reference.params_
    assert model.log_likelihood_ == reference.log_likelihood_

    scored = as_polars(winback_spark.predict(summary, model, t=26.0))
    assert scored.get_column("customer_id").equals(local.get_column("customer_id"))
    assert_same_bits(
        scored.select("p_alive", "expected_purchases"),
        pl.DataFrame(
            [
                model.probability_alive(local).alias("p_alive"),
                model.expected_purchases(26.0, local).alias("expected_purchases"),
            ]
        ),
    )


def test_fit_from_transactions_exact_and_nbd(
    spark: object, int_files: tuple[Path, pl.DataFrame]
) -> None:
    from winback import spark as winback_spark

    folder, tx = int_files
    df = spark.read.parquet(str(folder))  # type: ignore[attr-defined]
    local = winback.summary(tx, unit="D")
    summary = winback_spark.summary(df, unit="D").cache()
    exact = winback_spark.fit(summary, ParetoNBDModel(), unit="D", bin_width=0)
    assert exact.params_ == ParetoNBDModel().fit(local).params_
    nbd = winback_spark.fit(summary, NBDModel())
    assert nbd.params_ == NBDModel().fit(local).params_
    with pytest.raises(WinbackConfigError, match="max_distinct"):
        winback_spark.fit(summary, BetaGeoModel(), unit="D", bin_width=0, max_distinct=10)
    summary.unpersist()


def test_tz_aware_times_equal_local(spark: object) -> None:
    """Spark timestamps arrive in the session time zone; tz= sets the calendar as locally. The
    default as_of then comes from the mapInArrow pre-pass (not Spark's own max)."""
    from winback import spark as winback_spark

    tx = generate(300, seed=13, id_kind="str", rows_per_customer=4)
    tx = tx.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    df = spark.createDataFrame(tx.to_arrow())  # type: ignore[attr-defined]
    arguments = {"tz": "Asia/Shanghai", "resolution": "6h"}
    got = as_polars(winback_spark.score(df, min_rows=50, **arguments))  # type: ignore[arg-type]
    assert got.schema["first_ts"] == pl.Datetime("us")
    assert_same_bits(got, local_silence(tx, **arguments))


def test_bad_rows_raise_a_winback_error(spark: object) -> None:
    from winback import spark as winback_spark

    rows = [(1, datetime(2024, 1, 1)), (1, None), (2, datetime(2024, 1, 2))]
    aware = spark.createDataFrame(rows, "customer_id long, ts timestamp")  # type: ignore[attr-defined]
    with pytest.raises(WinbackInputError, match="null timestamp"):
        winback_spark.score(aware)  # the pre-pass reads every row
    with pytest.raises(WinbackInputError, match="'when'"):
        winback_spark.score(aware, time_col="when")
    naive = spark.createDataFrame(rows, "customer_id long, ts timestamp_ntz")  # type: ignore[attr-defined]
    scored = winback_spark.score(naive)  # Spark's own max: the rows are read when scoring
    with pytest.raises(Exception, match=r"WinbackInputError.*null timestamp"):
        scored.toArrow()
    dropped = as_polars(winback_spark.score(naive, on_invalid="drop"))
    assert dropped.get_column("customer_id").to_list() == [1, 2]
    assert dropped.get_column("recency_days").to_list() == [1.0, 0.0]
