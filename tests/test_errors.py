"""Input hygiene (docs/methods.md#hygiene) and typed errors (docs/methods.md#errors): every bad
input gets a specific, actionable error."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

import winback
from winback import _winback
from winback.errors import WinbackConfigError, WinbackError, WinbackInputError
from winback.silence import SILENCE_COLUMNS


def _tx(**overrides: list[object]) -> pl.DataFrame:
    data: dict[str, list[object]] = {
        "customer_id": [1, 1, 2, 2, 3],
        "ts": [date(2024, 1, d) for d in (1, 5, 2, 9, 3)],
        "amount": [10.0, 20.0, 5.0, 7.5, 1.0],
    }
    data.update(overrides)
    return pl.DataFrame(data)


@pytest.mark.parametrize(
    ("column", "values", "pattern"),
    [
        (
            "customer_id",
            [1, None, 2, None, 3],
            r"column 'customer_id': 2 rows with null customer id \(rows 1, 3\)",
        ),
        (
            "ts",
            [date(2024, 1, 1), None, date(2024, 1, 2), date(2024, 1, 3), None],
            r"column 'ts': 2 rows with null timestamp \(rows 1, 4\)",
        ),
        (
            "amount",
            [1.0, float("nan"), 2.0, 3.0, 4.0],
            r"column 'amount': 1 rows with NaN or infinite amount \(rows 1\)",
        ),
        (
            "amount",
            [1.0, 2.0, math.inf, -math.inf, 4.0],
            r"column 'amount': 2 rows with NaN or infinite amount \(rows 2, 3\)",
        ),
        (
            "amount",
            [1.0, 2.0, None, 3.0, 4.0],
            r"column 'amount': 1 rows with null amount \(rows 2\)",
        ),
    ],
)
def test_bad_rows_raise_with_column_count_and_rows(
    column: str, values: list[object], pattern: str
) -> None:
    with pytest.raises(WinbackInputError, match=pattern) as info:
        winback.silence(_tx(**{column: values}))
    assert "on_invalid='drop'" in str(info.value)


def test_unparseable_timestamps_are_named() -> None:
    frame = _tx(ts=["2024-01-01", "2024-01-05", "yesterday", "2024-01-09", "2024-01-03"])
    with pytest.raises(
        WinbackInputError, match=r"column 'ts': 1 rows with unparseable timestamp \(rows 2\)"
    ):
        winback.silence(frame)


def test_drop_returns_rejects_with_reasons_and_scores_the_rest() -> None:
    frame = _tx(amount=[10.0, float("nan"), 5.0, None, 1.0], customer_id=[1, 1, None, 2, 3])
    out, info = winback.silence(frame, on_invalid="drop", return_info=True)
    assert info.rows_read == 5
    assert info.rows_rejected == 3
    assert info.rejects.get_column("row_index").to_list() == [1, 2, 3]
    assert info.rejects.get_column("reason").to_list() == [
        "NaN or infinite amount",
        "null customer id",
        "null amount",
    ]
    assert set(info.rejects.columns) == {"row_index", "customer_id", "ts", "amount", "reason"}
    assert out.get_column("customer_id").to_list() == [1, 3]
    assert info.rows_used == 2


def test_the_error_lists_every_problem_at_once() -> None:
    frame = _tx(customer_id=[None, 1, 2, 2, 3], amount=[1.0, 2.0, 3.0, float("inf"), 5.0])
    with pytest.raises(WinbackInputError, match=r"customer_id.*amount"):
        winback.silence(frame)


def test_missing_column_names_the_alternatives() -> None:
    with pytest.raises(
        WinbackInputError,
        match=r"column 'when' \(the time\) is not in the input; available columns: 'customer_id', 'ts', 'amount'. Pass time_col=",
    ):
        winback.silence(_tx(), time_col="when")


def test_an_explicit_amount_column_must_exist() -> None:
    with pytest.raises(WinbackInputError, match="column 'revenue'"):
        winback.silence(_tx(), amount_col="revenue")


def test_default_amount_column_is_optional() -> None:
    out = winback.silence(_tx().drop("amount"))
    assert out.get_column("total_amount").null_count() == out.height


@pytest.mark.parametrize(
    ("frame", "pattern"),
    [
        (_tx(ts=[1, 2, 3, 4, 5]), "Integers are ambiguous"),
        (
            _tx(customer_id=[1.0, 1.0, 2.0, 2.0, 3.0]),
            "customer id\\) has type Float64; use integer or string ids",
        ),
        (
            _tx(amount=["1", "2", "3", "4", "5"]),
            "the amount\\) has type String; use a numeric column",
        ),
    ],
)
def test_wrong_column_types_are_explained(frame: pl.DataFrame, pattern: str) -> None:
    with pytest.raises(WinbackInputError, match=pattern):
        winback.silence(frame)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"resolution": "fortnight"}, "resolution='fortnight' is not a duration"),
        ({"resolution": "0d"}, "must be a positive duration"),
        ({"min_occasions": 0}, "min_occasions=0 must be at least 1"),
        (
            {"trf_cuts": (0.4, 0.3, 0.8, 0.95)},
            r"trf_cuts=.* must be 4 strictly increasing numbers in \(0, 1.0\]",
        ),
        ({"trf_cuts": (0.4, 0.6, 0.8)}, "must be 4 strictly increasing"),
        ({"trf_cuts": (0.4, 0.6, 0.8, 1.5)}, "must be 4 strictly increasing"),
        ({"s_cuts": (2.0, 1.0)}, "s_cuts=.* must be 2 strictly increasing numbers and positive"),
        ({"on_invalid": "ignore"}, "on_invalid='ignore' must be 'raise' or 'drop'"),
        ({"as_of": "last tuesday"}, "as_of='last tuesday' is not an ISO date"),
        ({"as_of": 20240101}, "as_of must be a date, datetime or ISO string, not int"),
        ({"num_threads": 0}, "num_threads=0 must be at least 1"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(WinbackConfigError, match=pattern):
        winback.silence(_tx(), **kwargs)  # type: ignore[call-overload]


def test_empty_input_gives_the_full_schema() -> None:
    empty = _tx().clear()
    out, info = winback.silence(empty, return_info=True)
    assert out.columns == list(SILENCE_COLUMNS)
    assert out.height == 0
    assert info.rows_read == 0
    assert out.schema["rank_ratio"] == pl.Float64
    assert out.schema["customer_id"] == pl.Int64


def test_as_of_before_all_data_is_refused() -> None:
    # Issue 19 item 5 (docs/methods.md#as-of): it gave an empty result before.
    with pytest.raises(WinbackConfigError, match=r"as_of=2023-12-31 is before the first purchase"):
        winback.silence(_tx(), as_of=date(2023, 12, 31), return_info=True)


def test_pyspark_frames_are_pointed_to_the_spark_path() -> None:
    fake = type("DataFrame", (), {"__module__": "pyspark.sql.dataframe"})()
    with pytest.raises(WinbackInputError, match=r"winback\.spark"):
        winback.silence(fake)


def test_unsupported_containers_are_named() -> None:
    with pytest.raises(WinbackInputError, match="unsupported input of type dict"):
        winback.silence({"customer_id": [1]})


def test_missing_files_and_patterns_are_errors(tmp_path: object) -> None:
    with pytest.raises(WinbackInputError, match="does not exist"):
        winback.silence("/nonexistent/sales.parquet")
    with pytest.raises(WinbackInputError, match="no file matches"):
        winback.silence("/nonexistent/*.parquet")


def test_a_rust_panic_becomes_a_winback_error_not_a_crash() -> None:
    with pytest.raises(WinbackError, match="internal error in the panic self-test"):
        _winback._panic_for_test()


def test_kernel_rejects_bad_parameters_itself() -> None:
    frame = pl.DataFrame({"customer": [1], "ts": [0]})
    with pytest.raises(WinbackConfigError, match="invalid parameter resolution"):
        _winback.silence(
            frame,
            as_of_us=0,
            resolution_us=0,
            min_occasions=2,
            trf_cuts=(0.4, 0.6, 0.8, 0.95),
            s_cuts=(1.0, 2.0),
        )
    with pytest.raises(WinbackInputError, match="column 'ts' has 1 null values"):
        _winback.silence(
            pl.DataFrame(
                {"customer": [1], "ts": [None]}, schema={"customer": pl.Int64, "ts": pl.Int64}
            ),
            as_of_us=0,
            resolution_us=1,
            min_occasions=2,
            trf_cuts=(0.4, 0.6, 0.8, 0.95),
            s_cuts=(1.0, 2.0),
        )


def test_as_of_aware_datetime_is_converted_to_the_data_zone() -> None:
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    frame = pl.DataFrame(
        {
            "customer_id": [1, 1],
            "ts": [
                datetime(2024, 1, 1, 1, tzinfo=shanghai),
                datetime(2024, 1, 3, 1, tzinfo=shanghai),
            ],
        },
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us", "Asia/Shanghai")},
    )
    # 2024-01-02 20:00 UTC is 2024-01-03 04:00 in Shanghai: the second purchase is inside.
    as_of = datetime(2024, 1, 2, 20, tzinfo=ZoneInfo("UTC"))
    out = winback.silence(frame, as_of=as_of)
    assert out.get_column("n_occasions").to_list() == [2]


def test_ids_beyond_int64_are_an_input_error() -> None:
    frame = pl.DataFrame(
        {"customer_id": [2**63 + 5, 1], "ts": [date(2024, 1, 1), date(2024, 1, 2)]},
        schema={"customer_id": pl.UInt64, "ts": pl.Date},
    )
    with pytest.raises(
        WinbackInputError, match=r"unsigned ids above 9223372036854775807.*id_type='str'"
    ):
        winback.silence(frame)


def test_a_corrupt_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(
        WinbackInputError, match=r"could not read the input .*broken\.parquet.: parquet"
    ):
        winback.silence(path)
