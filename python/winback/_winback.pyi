"""Stub of the Rust extension ``winback._winback`` (crate ``winback-py``).

The functions take Arrow data through the PyCapsule interface (``__arrow_c_stream__``) and return
Arrow tables; the public, documented API is in :mod:`winback`.
"""

from typing import Any

__all__ = [
    "__version__",
    "_panic_for_test",
    "compress",
    "effective_threads",
    "iso_times_us",
    "panel",
    "score_customer",
    "silence",
    "stable_hash",
    "summary",
]
__version__: str

def silence(
    data: Any,
    *,
    as_of_us: int,
    resolution_us: int,
    min_occasions: int,
    trf_cuts: tuple[float, float, float, float],
    s_cuts: tuple[float, float],
    num_threads: int | None = None,
) -> tuple[Any, int, int]:
    """Silence scoring of a prepared table (docs/methods.md#silence).

    ``data`` columns, by position: customer (Int64 or string), ts (Int64 local wall-clock µs since
    the epoch), optionally amount (Float64); no nulls. Rows after ``as_of_us`` are excluded and
    counted. Returns ``(table, rows_used, rows_after_as_of)``; the table has one row per customer,
    sorted by customer key, with ``customer_id`` (Int64 or string view), ``status``,
    ``rank_ratio_group`` and ``silence_band`` as integer codes, ``first_ts``/``last_ts`` as
    Date32 when ``resolution_us`` is whole days (else µs timestamps), ``n_occasions`` and
    ``recency_rank`` as Int64, and the figures.
    The table is an Arrow table exposing ``__arrow_c_stream__`` (read it with
    ``polars.DataFrame(table)``). Raises ``WinbackConfigError`` on invalid parameters and
    ``WinbackInputError`` on bad columns.
    """

def summary(
    data: Any,
    *,
    calibration_end_us: int,
    max_time_us: int,
    resolution_us: int,
    unit_us: int,
    period_edges_us: list[int] | None = None,
    num_threads: int | None = None,
) -> tuple[Any, dict[str, int]]:
    """Per-customer sufficient statistics of a prepared table (docs/methods.md#summary).

    ``data`` columns as for :func:`silence`. Rows after ``max_time_us`` are excluded; rows at or
    before ``calibration_end_us`` are calibration rows, later ones holdout rows (a bucket holding
    the calibration end is cut there). Durations are (difference in µs) / ``unit_us``; ``T`` runs
    to the calibration end's bucket start. ``period_edges_us`` (strictly increasing, the last at
    most ``calibration_end_us + 1``) are the starts of periods 0, 1, … and the end of the last
    complete period; an occasion is in period k when edges[k] ≤ t < edges[k+1].

    Returns ``(table, counts)``: one row per customer whose first occasion is at or before the
    calibration end, sorted by customer key, with ``customer_id``, ``frequency``, ``recency``,
    ``T``, ``monetary_value``, ``spend_frequency``, ``first_amount``, ``n_periods``,
    ``period_frequency``, ``frequency_holdout``, ``monetary_value_holdout`` (money columns null
    without an amount column); ``counts`` has ``rows_used``, ``rows_after_max_time``,
    ``customers_born_after_calibration`` and ``rows_born_after_calibration``. Raises
    ``WinbackConfigError`` on invalid parameters and ``WinbackInputError`` on bad columns.
    """

def score_customer(
    times_us: Any,
    amounts: Any | None = None,
    *,
    as_of_us: int,
    resolution_us: int,
    min_occasions: int,
    trf_cuts: tuple[float, float, float, float],
    s_cuts: tuple[float, float],
    unit_us: int,
) -> tuple[Any, ...] | None:
    """One customer's silence figures and summary from its own rows (docs/methods.md#scorer).

    ``times_us`` (int64 local wall-clock µs) and ``amounts`` (float64, one per row) are objects
    with the buffer protocol (numpy arrays); rows after ``as_of_us`` are left out. The rows are
    bucketed, collapsed into occasions and scored by the same per-customer functions as
    :func:`silence` and :func:`summary` (no calibration split, durations in ``unit_us``), so the
    figures are theirs bit for bit. Returns None when no row is at or before ``as_of_us``, else
    the tuple ``(status, n_occasions, first_us, last_us, tenure_days, recency_days,
    max_gap_days, mean_gap_days, median_gap_days, recency_rank, rank_ratio, silence_score,
    group, band, total_amount, mean_amount, frequency, recency, T, monetary_value,
    spend_frequency)`` (status, group and band as codes). Raises ``WinbackConfigError`` on
    invalid parameters and ``WinbackInputError`` when the lengths differ.
    """

def panel(
    data: Any,
    *,
    max_time_us: int,
    resolution_us: int,
    period_edges_us: list[int],
    num_threads: int | None = None,
) -> tuple[Any, Any, int]:
    """The customer × period panel of a prepared table (docs/methods.md#periods, #value).

    ``data`` columns as for :func:`silence` (the amount may be a cost column). Rows after
    ``max_time_us`` are excluded. ``period_edges_us`` (strictly increasing, at least one) are the
    starts of periods 0, 1, … and the end of the last complete period; occasions at or after the
    last edge are in the incomplete period ``len(period_edges_us) - 1``.

    Returns ``(customers, rows, rows_excluded)``: ``customers`` has ``customer_id`` in key
    order; ``rows`` has one row per active (customer, period), sorted by customer then period:
    ``customer_index`` (UInt32, into ``customers``), ``period``, ``occasions``,
    ``positive_occasions`` (UInt32), ``revenue`` and ``positive_revenue`` (Float64, sums of the
    occasion amounts and of the positive ones). Raises ``WinbackConfigError`` on invalid
    parameters and ``WinbackInputError`` on bad columns.
    """

def compress(data: Any, *, ranks: bool = False) -> Any:
    """Distinct rows of the numeric columns of ``data`` (an Arrow table or batches), compared by
    their float64 bits, sorted lexicographically (``total_cmp``), with a ``count`` column
    (UInt64). With ``ranks``, a ``<name>_rank`` column (UInt32) per column follows: each row's
    index into that column's sorted distinct values. Raises ``WinbackInputError`` on nulls, NaN
    or non-numeric columns."""

def stable_hash(data: Any, *, prefix: bytes, num_threads: int | None = None) -> Any:
    """Stable hash per customer id (docs/methods.md#campaign-hash): the 8-byte BLAKE2b digest of
    ``prefix + id`` read as a little-endian unsigned integer, where ``id`` is the 8-byte
    little-endian two's complement of an integer id or the UTF-8 bytes of a string id. ``data``
    holds one column of ids (Int64 or string, no nulls). Returns an Arrow table with one UInt64
    column ``hash``, in row order."""

def iso_times_us(texts: list[str]) -> bytearray | None:
    """Naive ISO times (docs/methods.md#as-of) as µs since 1970-01-01, one little-endian int64 per
    text, when every text is ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM:SS`` or
    ``YYYY-MM-DDTHH:MM:SS.ffffff`` (the "T" may be a space), years 1–9999, every field in its
    range: then the values ``datetime.fromisoformat`` gives. None when any text is not (another
    shape, an impossible date or time, not a string)."""

def effective_threads(num_threads: int | None = None) -> int:
    """Worker threads a call would use: ``num_threads``, else ``WINBACK_NUM_THREADS``, else all
    cores."""

def _panic_for_test() -> None:
    """Panics inside the kernel runner; must raise ``WinbackError``, never crash."""
