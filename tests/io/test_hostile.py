"""The hostile-input suite at the edge (issue 19, "Tests"; docs/methods.md#input, #hygiene).

Hypothesis draws transaction logs with random column types (int64/int32/uint64 ids — some beyond
Int64 —, text, large text, categorical, binary and decimal ids; date32, date64, timestamps in
every unit and several zones — fixed offsets, DST, half-hour and ±12 h zones —, ISO text with
and without offsets, foreign layouts and garbage text; pre-1970 and post-2100 dates; float64,
float32, integer, uint64 and decimal amounts or none), nulls, NaN/inf amounts, duplicate rows
and empty logs, in one table, split into record batches, or in several Parquet files. Each goes
through ``winback.prepare``, ``winback.silence`` and ``winback.summary`` (and ``winback.value``
on a bounded subset, it is slower), under ``on_invalid="raise"`` and ``"drop"``.

The property: either a typed ``Winback*Error`` whose message names the column (or file), or a
result in which every valid input customer appears exactly once (under drop, the rejects are
reported and counted), no output float is NaN or infinite, and the result is the same for any
row order and batch split. An oracle written here from the drawn values says which of the two
must happen.

Example counts: the ``ci`` profile (the default) runs a bounded count so the module stays
within about a minute; ``HYPOTHESIS_PROFILE=fast`` fewer; ``HYPOTHESIS_PROFILE=slow`` or
``long`` run longer locally, e.g.::

    HYPOTHESIS_PROFILE=long pytest tests/io/test_hostile.py --hypothesis-show-statistics

The statistics list the categories drawn (``event``) and the outcomes met.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from winback.errors import WinbackError, WinbackFitError, WinbackInputError, WinbackWarning

#: Examples per test: bounded under the CI profile (the default) and ``fast``; the profile's own
#: count under ``slow`` and ``long`` (tests/conftest.py).
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_EXAMPLES = {"fast": 12, "ci": 100}.get(_PROFILE, settings.default.max_examples)
HOSTILE = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ID_KINDS = (
    "int64",
    "int32",
    "uint64",
    "uint64_big",
    "string",
    "large_string",
    "categorical",
    "binary",
    "decimal",
)
TIME_KINDS = (
    "date32",
    "date64",
    "s",
    "ms",
    "us",
    "ns",
    "iso",
    "iso_large",
    "iso_offset",
    "foreign",
    "garbage",
)
ZONES = (
    None,
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "+05:30",
)
AMOUNT_KINDS = ("none", "float64", "float32", "int64", "uint64", "decimal")
#: Eras of the drawn days: pre-1970, around now, post-2100 (all within the ns range).
ERAS = {
    "pre1970": (date(1901, 1, 1), date(1969, 12, 31)),
    "modern": (date(2020, 1, 1), date(2024, 12, 31)),
    "post2100": (date(2100, 1, 1), date(2200, 12, 31)),
}


@dataclass
class Log:
    """A drawn log: its rows (Python values), how to type them, and what must happen."""

    ids: list[Any]
    times: list[Any]
    amounts: list[Any] | None
    id_kind: str
    time_kind: str
    zone: str | None
    amount_kind: str
    refused: tuple[str, ...] = ()  # columns refused whatever on_invalid says (one is named)
    invalid: list[bool] = field(default_factory=list)  # rows a raise refuses / a drop sets aside

    def column(self, name: str, rows: list[int]) -> pa.Array:
        if name == "customer_id":
            return _id_array([self.ids[i] for i in rows], self.id_kind)
        if name == "ts":
            return _time_array([self.times[i] for i in rows], self.time_kind, self.zone)
        assert self.amounts is not None
        return _amount_array([self.amounts[i] for i in rows], self.amount_kind)

    def table(self, rows: list[int]) -> pa.Table:
        names = ["customer_id", "ts"] + ([] if self.amounts is None else ["amount"])
        return pa.table({name: self.column(name, rows) for name in names})

    def expected_customers(self) -> set[Any]:
        return {
            _output_id(self.ids[i], self.id_kind)
            for i in range(len(self.ids))
            if not self.invalid[i]
        }


def _output_id(value: Any, kind: str) -> Any:
    return str(value) if kind in ("string", "large_string", "categorical") else int(value)


def _id_array(values: list[Any], kind: str) -> pa.Array:
    if kind in ("int64", "int32", "uint64", "uint64_big"):
        return pa.array(values, {"int64": pa.int64(), "int32": pa.int32()}.get(kind, pa.uint64()))
    if kind == "string":
        return pa.array(values, pa.string())
    if kind == "large_string":
        return pa.array(values, pa.large_string())
    if kind == "categorical":
        return pa.array(values, pa.string()).dictionary_encode()
    if kind == "binary":
        return pa.array([None if v is None else str(v).encode() for v in values], pa.binary())
    return pa.array([None if v is None else Decimal(v) for v in values], pa.decimal128(20, 0))


def _time_array(values: list[Any], kind: str, zone: str | None) -> pa.Array:
    if kind == "date32":
        return pa.array([None if v is None else v.date() for v in values], pa.date32())
    if kind == "date64":
        return pa.array([None if v is None else v.date() for v in values], pa.date64())
    if kind in ("s", "ms", "us", "ns"):
        return pa.array(values, pa.timestamp(kind, tz=zone))
    return pa.array(values, pa.large_string() if kind == "iso_large" else pa.string())


def _amount_array(values: list[Any], kind: str) -> pa.Array:
    if kind == "float64":
        return pa.array(values, pa.float64())
    if kind == "float32":
        return pa.array(values, pa.float32())
    if kind in ("int64", "uint64"):
        return pa.array(values, pa.int64() if kind == "int64" else pa.uint64())
    return pa.array([None if v is None else Decimal(str(v)) for v in values], pa.decimal128(18, 2))


@st.composite
def hostile_logs(
    draw: st.DrawFn, max_rows: int = 40, amounts: bool | None = None, eras: tuple[str, ...] = ()
) -> Log:
    id_kind = draw(st.sampled_from(ID_KINDS))
    time_kind = draw(st.sampled_from(TIME_KINDS))
    zone = draw(st.sampled_from(ZONES)) if time_kind in ("s", "ms", "us", "ns") else None
    amount_kind = draw(st.sampled_from(AMOUNT_KINDS[1:] if amounts else AMOUNT_KINDS))
    if amounts is False:
        amount_kind = "none"
    era = draw(st.sampled_from(eras or sorted(ERAS)))
    start, end = ERAS[era]
    n = draw(st.integers(0, max_rows))
    pool = draw(st.integers(1, 8))
    null_share = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
    for name, value in (
        ("ids", id_kind),
        ("times", time_kind),
        ("zone", zone),
        ("amounts", amount_kind),
        ("era", era),
    ):
        event(f"{name}: {value}")
    event(f"rows: {'0' if n == 0 else '1-9' if n < 10 else '10+'}")
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    span = (end - start).days
    ids: list[Any] = []
    times: list[Any] = []
    amounts_out: list[Any] = []
    invalid: list[bool] = []
    for _ in range(n):
        c = rng.randrange(pool)
        if id_kind in ("string", "large_string", "categorical"):
            raw_id: Any = rng.choice(["0", "00", "=1+1", " a ", "é", ""]) + f"{c:03d}"
        elif id_kind == "uint64_big":
            raw_id = 2**63 + c
        else:
            raw_id = c * 1_000_003 + (0 if id_kind == "int32" else 7)
        moment = datetime.combine(start, datetime.min.time()) + timedelta(
            days=rng.randrange(span + 1), seconds=rng.randrange(86_400)
        )
        bad = False
        if rng.random() < null_share:
            raw_id, bad = None, True
        if rng.random() < null_share:
            moment_v: Any = None
            bad = True
        else:
            moment_v = moment
        if time_kind in ("iso", "iso_large", "iso_offset", "foreign", "garbage"):
            moment_v = _text_time(moment_v, time_kind, rng)
            if moment_v == "not a date":
                bad = True
        amount: Any = None
        if amount_kind != "none":
            amount = round(rng.uniform(-50, 500), 2)
            if amount_kind in ("int64", "uint64"):
                amount = abs(int(amount))
            roll = rng.random()
            if roll < null_share:
                amount, bad = None, True
            elif amount_kind in ("float64", "float32") and roll < 2 * null_share:
                amount, bad = rng.choice([math.nan, math.inf, -math.inf]), True
        ids.append(raw_id)
        times.append(moment_v)
        amounts_out.append(amount)
        invalid.append(bad)
    # Duplicates: some rows repeated whole.
    for _ in range(draw(st.integers(0, 3)) if n else 0):
        i = rng.randrange(n)
        ids.append(ids[i])
        times.append(times[i])
        amounts_out.append(amounts_out[i])
        invalid.append(invalid[i])
    refused = []  # columns refused whatever on_invalid says; the error names one of them
    if id_kind in ("binary", "decimal") or (
        id_kind == "uint64_big" and any(v is not None for v in ids)
    ):
        refused.append("customer_id")
    if zone == "+05:30" or (
        time_kind == "foreign" and any(isinstance(t, str) and "/" in t for t in times)
    ):
        refused.append("ts")
    return Log(
        ids,
        times,
        None if amount_kind == "none" else amounts_out,
        id_kind,
        time_kind,
        zone,
        amount_kind,
        tuple(refused),
        invalid,
    )


def _text_time(moment: datetime | None, kind: str, rng: random.Random) -> str | None:
    if moment is None:
        return None
    if kind == "iso_offset":
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(["Z", "+05:30", "-08:00"])
    if kind == "foreign":
        return moment.strftime("%d/%m/%Y")
    if kind == "garbage" and rng.random() < 0.3:
        return "not a date"
    return moment.strftime(rng.choice(["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]))


# -- containers: one table, record batches, several Parquet files ---------------------------


def _split(rows: list[int], cuts: list[int]) -> list[list[int]]:
    bounds = sorted({min(c, len(rows)) for c in cuts})
    parts, last = [], 0
    for bound in [*bounds, len(rows)]:
        parts.append(rows[last:bound])
        last = bound
    return parts


def _container(log: Log, rows: list[int], cuts: list[int], kind: str, where: Path) -> Any:
    """The rows as ``kind``: a table, a record-batch reader, or a directory of Parquet files."""
    if kind == "table":
        return log.table(rows)
    parts = [log.table(part) for part in _split(rows, cuts)]
    if kind == "batches":
        schema = parts[0].schema
        batches = [b for part in parts for b in part.cast(schema).to_batches()]
        return pa.RecordBatchReader.from_batches(schema, batches)
    where.mkdir()
    for index, part in enumerate(parts):
        pq.write_table(part.cast(parts[0].schema), where / f"part-{index:02d}.parquet")
    return where


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except WinbackError as exc:
        return "error", exc


def _check_error(exc: BaseException, log: Log) -> None:
    """A typed error that says where: the column, the customers or the file (a fit error says
    why the model is not identified)."""
    message = str(exc)
    if isinstance(exc, WinbackFitError):
        assert len(message) > 20, message
        return
    named = [c for c in ("customer_id", "ts", "amount") if repr(c) in message]
    assert named or "customer" in message or ".parquet" in message, message


def _finite(frame: pl.DataFrame) -> None:
    floats = [n for n, t in frame.schema.items() if t.is_float()]
    if floats and frame.height:
        bad = frame.select(
            pl.any_horizontal(pl.col(floats).is_nan() | pl.col(floats).is_infinite()).any()
        ).item()
        assert not bad, frame.filter(
            pl.any_horizontal(pl.col(floats).is_nan() | pl.col(floats).is_infinite())
        )


def _once(frame: pl.DataFrame, log: Log) -> None:
    customers = frame.get_column("customer_id").to_list()
    assert len(customers) == len(set(customers)), "a customer appears twice"
    assert set(customers) == log.expected_customers()


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("customer_id")


def _run_edge(log: Log, on_invalid: str, data: Any) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    out["prepare"] = _outcome(lambda: winback.prepare(data, on_invalid=on_invalid))
    if out["prepare"][0] == "error":
        return out
    prepared = out["prepare"][1]
    out["silence"] = _outcome(lambda: winback.silence(prepared))
    out["summary"] = _outcome(lambda: winback.summary(prepared))
    return out


def _judge(log: Log, on_invalid: str, results: dict[str, tuple[str, Any]]) -> str:
    status, prepared = results["prepare"]
    must_refuse = bool(log.refused) or (on_invalid == "raise" and any(log.invalid))
    if status == "error":
        _check_error(prepared, log)
        assert isinstance(prepared, WinbackInputError)
        if log.refused:
            assert any(repr(c) in str(prepared) for c in log.refused), str(prepared)
        assert must_refuse, f"refused a valid log: {prepared}"
        return f"refused at the edge ({' or '.join(log.refused) or 'rows'})"
    assert not must_refuse, "an invalid log was accepted"
    assert prepared.rows_read == len(log.ids)
    assert prepared.rows_rejected == sum(log.invalid)
    if prepared.rows_rejected:
        assert set(prepared.rejects.get_column("reason").to_list()) <= {
            "null customer id",
            "null timestamp",
            "unparseable timestamp",
            "null amount",
            "NaN or infinite amount",
        }
    outcome = "result"
    for name in ("silence", "summary"):
        status, value = results[name]
        if status == "error":
            _check_error(value, log)
            outcome = f"{name} refused"
            continue
        _once(value, log)
        _finite(value)
    return outcome


def _same(first: dict[str, tuple[str, Any]], other: dict[str, tuple[str, Any]]) -> None:
    assert first.keys() == other.keys()
    for name, (status, value) in first.items():
        assert other[name][0] == status, (name, value, other[name][1])
        if status == "error":
            assert type(other[name][1]) is type(value)
        elif name == "prepare":
            assert_frame_equal(other[name][1].frame.sort(pl.all()), value.frame.sort(pl.all()))
        else:
            assert_frame_equal(_canonical(other[name][1]), _canonical(value))


@HOSTILE
@given(
    log=hostile_logs(),
    on_invalid=st.sampled_from(["raise", "drop"]),
    container=st.sampled_from(["table", "batches", "files"]),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 45), max_size=4),
)
def test_hostile_logs_are_refused_typed_or_read_whole(
    log: Log, on_invalid: str, container: str, seed: int, cuts: list[int]
) -> None:
    rows = list(range(len(log.ids)))
    first = _run_edge(log, on_invalid, log.table(rows))
    outcome = _judge(log, on_invalid, first)
    event(f"outcome ({on_invalid}): {outcome}")
    random.Random(seed).shuffle(rows)
    event(f"container: {container}")
    with tempfile.TemporaryDirectory() as tmp:
        other = _run_edge(log, on_invalid, _container(log, rows, cuts, container, Path(tmp) / "d"))
    _same(first, other)


@settings(HOSTILE, max_examples=max(5, HOSTILE.max_examples // 4))
@given(
    log=hostile_logs(max_rows=25, amounts=True, eras=("modern",)), seed=st.integers(0, 2**32 - 1)
)
def test_value_on_hostile_logs(log: Log, seed: int) -> None:
    rows = list(range(len(log.ids)))

    def run(order: list[int]) -> Any:
        # tiny or degenerate logs fall back to the documented population defaults with a
        # warning (docs/methods.md#population-defaults): that is a result, not a failure
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WinbackWarning)
            return winback.value(log.table(order), on_invalid="drop")

    status, result = _outcome(lambda: run(rows))
    event(f"value: {status}")
    if status == "error":
        _check_error(result, log)
        return
    assert not log.refused
    customers = result.frame
    _once(customers, log)
    _finite(customers)
    random.Random(seed).shuffle(rows)
    again = run(rows).frame
    assert_frame_equal(_canonical(again), _canonical(customers))


# -- what the suite found outside the edge (reported; fixed where the edge owns it) --------------


def test_fixed_offset_zones_and_wide_decimals_are_named(tmp_path: Path) -> None:
    """Found by the suite: a ``+05:30`` Arrow zone was a raw Polars ComputeError (in a Parquet
    file, a Rust panic at the schema) and a decimal256 amount a Rust panic (not even an
    ``Exception``); all now name the column (and the file)."""
    ts = pa.array([datetime(2024, 1, 1)] * 2, pa.timestamp("us", tz="+05:30"))
    table = pa.table({"customer_id": [1, 1], "ts": ts})
    with pytest.raises(WinbackInputError, match="column 'ts' has the time zone '\\+05:30'"):
        winback.prepare(table)
    pq.write_table(table, tmp_path / "a.parquet")
    pq.write_table(table, tmp_path / "b.parquet")
    for source in (tmp_path / "a.parquet", tmp_path):
        with pytest.raises(WinbackInputError, match=r"a\.parquet'.*column 'ts' has the time zone"):
            winback.silence(source)
    whole = pa.array([datetime(2024, 1, 1)] * 2, pa.timestamp("us", tz="+01:00"))
    assert winback.prepare(pa.table({"customer_id": [1, 1], "ts": whole})).time_zone == "Etc/GMT-1"
    wide = pa.array([Decimal("1.5")] * 2, pa.decimal256(40, 2))
    days = pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32())
    with pytest.raises(WinbackInputError, match="column 'amount' has type decimal256"):
        winback.silence(pa.table({"customer_id": [1, 1], "ts": days, "amount": wide}))


def test_summary_of_data_in_the_last_month_of_year_9999() -> None:
    ts = pa.array([datetime(9999, 12, 1), datetime(9999, 12, 31)], pa.timestamp("us"))
    with contextlib.suppress(WinbackError):
        winback.summary(pa.table({"customer_id": [1, 1], "ts": ts}))


def test_summary_of_year_one_rows_west_of_utc() -> None:
    ts = pa.array(
        [datetime(1, 1, 1), datetime(1900, 1, 1), datetime(2024, 12, 31)],
        pa.timestamp("s", tz="America/New_York"),
    )
    with contextlib.suppress(WinbackError):
        winback.summary(pa.table({"customer_id": [1, 1, 2], "ts": ts}))


def test_value_refuses_amounts_whose_sum_overflows() -> None:
    days = [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 5), date(2024, 3, 1)]
    table = pa.table(
        {
            "customer_id": [1, 1, 2, 2],
            "ts": pa.array(days, pa.date32()),
            "amount": [1e308, 1e308, 5.0, 7.0],
        }
    )
    with pytest.raises(WinbackInputError, match="customer"):
        winback.value(table)
