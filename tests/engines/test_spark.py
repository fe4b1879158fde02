"""winback.spark (docs/methods.md#spark): Spark results equal the local API's bit for bit.

One shared ``local[2]`` session (UI off, 4 shuffle partitions, Arrow batches of 97 rows so
customers straddle batches, session time zone UTC). Each test runs a few Spark jobs on a few
thousand generated transactions with awkward cases: single-purchase customers, string ids,
customers split across Arrow batches and across input files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
import winback._engines.batches as _batches
from benches.gen_data import generate
from tests.engines.test_batches import (
    ENUMS,
    assert_same_bits,
    bad_transactions,
    with_awkward_customers,
)
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
    with pytest.raises(WinbackInputError, match=r"null timestamp \(rows 1\)"):
        winback_spark.score(naive, as_of="2024-02-01")  # the input is read first under raise
    dropped = as_polars(winback_spark.score(naive, on_invalid="drop"))
    assert dropped.get_column("customer_id").to_list() == [1, 2]
    assert dropped.get_column("recency_days").to_list() == [1.0, 0.0]


def test_invalid_rows_are_numbered_in_the_whole_input(spark: object) -> None:
    """Issue 19: an invalid row at whole-input row k is reported as k (the local API's message
    word for word) whatever the partitions, and with drop the rejects come back as locally."""
    from winback import spark as winback_spark

    tx = bad_transactions().with_columns(pl.col("ts").replace("17/02/2024", "not a date"))
    df = spark.createDataFrame(tx.to_arrow()).repartition(3)  # type: ignore[attr-defined]
    df = df.sortWithinPartitions("amount").cache()  # one fixed layout for every job
    seen = pl.DataFrame(pl.from_arrow(df.toArrow()))  # the rows in the input's own order
    with pytest.raises(WinbackInputError) as local:
        winback.silence(seen)
    for as_of in (None, "2024-02-01"):
        with pytest.raises(WinbackInputError) as engine:
            winback_spark.score(df, as_of=as_of)
        assert str(engine.value) == str(local.value)
    with pytest.raises(WinbackInputError) as engine:
        winback_spark.summary(df)
    assert str(engine.value) == str(local.value)
    scores, rejects = winback_spark.score(df, on_invalid="drop", return_rejects=True, min_rows=7)
    expected, info = winback.silence(seen, on_invalid="drop", return_info=True)
    got = pl.DataFrame(pl.from_arrow(rejects.toArrow()))
    assert got.equals(info.rejects.with_columns(pl.col("row_index").cast(pl.Int64)))
    assert_same_bits(as_polars(scores), expected.with_columns(pl.col(ENUMS).cast(pl.String)))
    df.unpersist()


def test_reading_options_equal_local(spark: object) -> None:
    """time_format and id_type give the local results: month-first dates, ids with leading
    zeros kept apart as text or merged as integers (the shuffle then keys on the parsed id)."""
    from winback import spark as winback_spark

    tx = pl.DataFrame(
        {
            "customer_id": ["00123", "0123", "123", "00123", "0123", "7", " 123"],
            "ts": [
                "01/02/2024",
                "03/04/2024",
                "01/12/2024",
                "02/01/2024",
                "05/06/2024",
                "01/03/2024",
                "07/08/2024",
            ],
        }
    )
    df = spark.createDataFrame(tx.to_arrow())  # type: ignore[attr-defined]
    with pytest.raises(WinbackInputError, match="time_format"):
        winback_spark.score(df)  # ambiguous dates are refused, as locally
    for id_type in ("auto", "int"):
        arguments = {"time_format": "%m/%d/%Y", "id_type": id_type}
        got = as_polars(winback_spark.score(df, min_rows=2, **arguments))  # type: ignore[arg-type]
        assert got.height == (2 if id_type == "int" else 5)
        assert_same_bits(got, local_silence(tx, **arguments))
        summary = as_polars(winback_spark.summary(df, unit="D", **arguments))  # type: ignore[arg-type]
        assert_same_bits(summary, winback.summary(tx, unit="D", **arguments))  # type: ignore[arg-type]


_WORKERS_SCRIPT = """
import os, sys
os.environ.pop("PYSPARK_PYTHON", None)
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
from datetime import date
from pyspark.sql import SparkSession
import winback.spark as ws
from winback.errors import WinbackConfigError

def session(**conf):
    builder = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("OFF")
    return spark

spark = session()
df = spark.createDataFrame([(1, date(2024, 1, 1))], "customer_id long, ts date")
print("local", ws.score(df).count(), spark.sparkContext.pythonExec == sys.executable)
spark.stop()
spark = session(**{"spark.pyspark.python": sys.argv[1]})
df = spark.createDataFrame([(1, date(2024, 1, 1))], "customer_id long, ts date")
try:
    ws.score(df)
except WinbackConfigError as exc:
    print("error", exc)
spark.stop()
"""


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs a plain system Python")
def test_workers_without_winback_are_a_config_error(tmp_path: Path) -> None:
    """Issue 19: on a local master the workers default to the driver's Python; a workers'
    Python without winback is one WinbackConfigError naming spark.pyspark.python, not a worker
    stack trace at the first action. Own Spark application (a subprocess): the setting is
    per SparkContext."""
    plain = "/usr/bin/python3"
    has = subprocess.run([plain, "-c", "import winback"], capture_output=True, check=False)
    if has.returncode == 0:
        pytest.skip(f"{plain} has winback")
    script = tmp_path / "workers.py"
    script.write_text(textwrap.dedent(_WORKERS_SCRIPT))
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON",)}
    # winback's own tree only: the venv's site-packages must not leak to the plain Python
    env["PYTHONPATH"] = str(Path(winback.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, str(script), plain],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("local", "error"))]
    assert lines[:1] == ["local 1 True"], done.stdout[-2000:] + done.stderr[-3000:]
    assert lines[1].startswith(f"error the Spark workers' Python '{plain}'"), lines
    assert f"spark.pyspark.python='{plain}'" in lines[1]
    assert "cannot import" in lines[1]
    # `import winback` is lazy, so with winback's tree on the path what the plain Python
    # lacks first is winback's libraries; either way the message names a missing module.
    assert "(ModuleNotFoundError" in lines[1]
    assert any(f"{name} (ModuleNotFoundError" in lines[1] for name in ("pyarrow", "winback"))
    assert "docs/spark.md#workers" in lines[1]
