"""Arrow IPC stream bodies of ``POST /v1/score`` for bulk callers (docs/serving.md#http-arrow):
a stream of ``customer_id``, ``ts`` and optionally ``amount`` in, :meth:`Scorer.score`'s frame
out as a stream, column types as the scorer gives them (bit for bit the same values)."""

from __future__ import annotations

import io
from typing import Any, Final

import polars as pl
from polars.exceptions import PanicException

from winback.errors import WinbackError
from winback.scorer import Scorer
from winback.serve.config import Limits
from winback.serve.problems import ProblemError, moment

__all__ = ["ARROW_STREAM", "parse_arrow", "score_arrow"]

#: The media type of an Arrow IPC stream (the IANA registration).
ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
_COLUMNS: Final = ("customer_id", "ts", "amount")
#: The end-of-stream marker (continuation token, zero length) every Arrow writer ends with.
_END: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _first_row(frame: pl.DataFrame, mask: pl.Series) -> tuple[int, Any]:
    """The index and ``customer_id`` of the first row where ``mask`` holds."""
    index = int(mask.arg_true()[0])
    return index, frame.get_column("customer_id")[index]


def _field(meta: memoryview, table: int, index: int) -> int | None:
    """Position of field ``index`` of the flatbuffer table at ``table``, None when absent."""
    vtable = table - int.from_bytes(meta[table : table + 4], "little", signed=True)
    size = int.from_bytes(meta[vtable : vtable + 2], "little")
    if 4 + 2 * index + 2 > size:
        return None
    offset = int.from_bytes(meta[vtable + 4 + 2 * index : vtable + 6 + 2 * index], "little")
    return table + offset if offset else None


def _child(meta: memoryview, table: int, index: int) -> int | None:
    """The table field ``index`` of ``table`` points to, None when absent."""
    at = _field(meta, table, index)
    return None if at is None else at + int.from_bytes(meta[at : at + 4], "little")


def _compressed(meta: memoryview) -> bool:
    """Whether an IPC message's metadata (Arrow's ``Message.fbs`` flatbuffer) is a record or
    dictionary batch whose buffers are compressed (its ``compression`` field is set)."""
    message = int.from_bytes(meta[0:4], "little")
    kind_at = _field(meta, message, 1)  # header_type: 2 dictionary batch, 3 record batch
    kind = 0 if kind_at is None else meta[kind_at]
    batch = _child(meta, message, 2)
    if kind == 2 and batch is not None:
        batch = _child(meta, batch, 1)  # the dictionary batch's data: a record batch
    elif kind != 3:
        return False
    return batch is not None and _field(meta, batch, 3) is not None


def refuse_compressed(body: bytes) -> None:
    """A 415 for an Arrow stream whose batches are compressed (LZ4 or ZSTD buffers): what such
    a body decodes to is not bounded by its size (a few kilobytes can hold gigabytes of
    repeated values), so ``--max-body-bytes`` could not protect the process; a 400 for bytes
    that are not a stream of IPC messages."""
    import pyarrow as pa

    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
        compressed = any(_compressed(memoryview(message.metadata)) for message in reader)
    except Exception as exc:  # damaged framing or metadata, in any of several ways
        raise ProblemError(
            400, f"the body is not an Arrow IPC stream ({type(exc).__name__}: {exc})"[:500]
        ) from None
    if compressed:
        raise ProblemError(
            415,
            "the Arrow stream's buffers are compressed; send an uncompressed stream (the size "
            "limit --max-body-bytes must bound what a body decodes to)",
        )


def parse_arrow(body: bytes, limits: Limits) -> tuple[pl.DataFrame, bool]:
    """The transactions frame of an Arrow IPC stream body and whether it has amounts; a
    400 (not a stream), 413 (too many customers or purchases) or 422 (a missing, unknown or
    mistyped column, a null, a time zone, a non-finite amount) naming the column, row and
    customer otherwise."""
    if not body.endswith(_END):
        # Readers accept a stream cut at a batch boundary as complete: without the marker a
        # truncated body would be scored as if it held every customer.
        raise ProblemError(
            400,
            "the body is not a complete Arrow IPC stream: it does not end with the "
            "end-of-stream marker (close the stream writer before sending)",
        )
    refuse_compressed(body)
    try:
        frame = pl.read_ipc_stream(io.BytesIO(body))
    except (Exception, PanicException) as exc:  # several types for a damaged stream
        raise ProblemError(
            400, f"the body is not an Arrow IPC stream ({type(exc).__name__}: {exc})"[:500]
        ) from None
    unknown = [c for c in frame.columns if c not in _COLUMNS]
    if unknown:
        raise ProblemError(
            422,
            f"unknown column {unknown[0]!r}; allowed: {', '.join(_COLUMNS)}",
            field=unknown[0],
        )
    for name in ("customer_id", "ts"):
        if name not in frame.columns:
            raise ProblemError(422, f"the column {name!r} is missing", field=name)
    ids = frame.schema["customer_id"]
    if ids.is_integer():
        # An unsigned id beyond 2^63 becomes null here and is refused with the nulls below.
        frame = frame.with_columns(pl.col("customer_id").cast(pl.Int64, strict=False))
    elif ids != pl.String:
        raise ProblemError(
            422,
            f"customer_id is {ids}; send 64-bit integers or strings",
            field="customer_id",
        )
    ts = frame.schema["ts"]
    if not (ts == pl.Date or (isinstance(ts, pl.Datetime) and ts.time_zone is None)):
        zoned = isinstance(ts, pl.Datetime)
        raise ProblemError(
            422,
            f"ts is {ts}; send "
            + (
                "local wall-clock times without a time zone (docs/serving.md#http)"
                if zoned
                else "dates or timestamps without a time zone"
            ),
            field="ts",
        )
    with_amount = "amount" in frame.columns
    if with_amount:
        if not frame.schema["amount"].is_numeric():
            raise ProblemError(
                422, f"amount is {frame.schema['amount']}; send numbers", field="amount"
            )
        frame = frame.with_columns(pl.col("amount").cast(pl.Float64))
    for name in frame.columns:
        nulls = frame.get_column(name).is_null()
        if nulls.any():
            index = int(nulls.arg_true()[0])
            who = frame.get_column("customer_id")[index]
            what = "is null" if name != "customer_id" else "is null (or does not fit 64 bits)"
            raise ProblemError(
                422,
                f"{name} at row {index} {what}; every row needs a customer, a time"
                + (" and an amount" if with_amount else ""),
                field=f"{name}[{index}]",
                customer_id=None if who is None else who,
            )
    if with_amount:
        bad = ~frame.get_column("amount").is_finite()
        if bad.any():
            index, who = _first_row(frame, bad)
            raise ProblemError(
                422,
                f"amount at row {index} is NaN or infinite; every amount must be a finite number",
                field=f"amount[{index}]",
                customer_id=who,
            )
    counts = frame.group_by("customer_id").len()
    if counts.height > limits.max_customers:
        raise ProblemError(
            413,
            f"{counts.height} customers in one request; the limit is {limits.max_customers} "
            "(split the request, or raise --max-customers)",
            field="customer_id",
        )
    over = counts.filter(pl.col("len") > limits.max_purchases).sort("customer_id")
    if over.height:
        who, n = over.row(0)
        raise ProblemError(
            413,
            f"customer {who!r} has {n} purchases; the limit is {limits.max_purchases} per "
            "customer (raise --max-purchases)",
            field="ts",
            customer_id=who,
        )
    return frame, with_amount


def score_arrow(
    scorer: Scorer, body: bytes, limits: Limits, as_of: str | None
) -> tuple[bytes, int]:
    """Check and score an Arrow IPC stream body: :meth:`Scorer.score`'s frame as an Arrow IPC
    stream, and the number of customers. Blocking: run it off the event loop."""
    if as_of is not None:
        moment(as_of, "as_of")
    try:
        frame, with_amount = parse_arrow(body, limits)
    except PanicException as exc:
        raise ProblemError(
            400, f"the body is not a readable Arrow IPC stream ({str(exc)[:200]})"
        ) from None
    try:
        scores = scorer.score(frame, as_of=as_of, amount_col="amount" if with_amount else None)
    except WinbackError as exc:
        field = "as_of" if "as_of" in str(exc) else None
        raise ProblemError(422, str(exc), field=field) from None
    except PanicException as exc:
        # A value the stream's type allows but no calendar holds (a date beyond year 262,143):
        # Polars stops on it; the client gets a refusal, never a 500.
        raise ProblemError(
            422, f"the stream holds a value winback cannot read ({str(exc)[:200]})"
        ) from None
    out = io.BytesIO()
    scores.write_ipc_stream(out)
    return out.getvalue(), scores.height
