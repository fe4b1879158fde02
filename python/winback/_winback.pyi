"""Stub of the Rust extension ``winback._winback`` (crate ``winback-py``).

The functions take Arrow data through the PyCapsule interface (``__arrow_c_stream__``) and return
Arrow tables; the public, documented API is in :mod:`winback`.
"""

from typing import Any

__all__ = ["__version__", "_panic_for_test", "effective_threads", "silence"]
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
    """Silence scoring of a prepared table (SPEC §2).

    ``data`` columns, by position: customer (Int64 or string), ts (Int64 local wall-clock µs since
    the epoch), optionally amount (Float64); no nulls. Rows after ``as_of_us`` are excluded and
    counted. Returns ``(table, rows_used, rows_after_as_of)``; the table has one row per customer,
    sorted by customer key, with ``customer_id`` (Int64 or large string), ``status``,
    ``rank_ratio_group`` and ``silence_band`` as integer codes, timestamps as µs, and the figures.
    The table is an Arrow table exposing ``__arrow_c_stream__`` (read it with
    ``polars.DataFrame(table)``). Raises ``WinbackConfigError`` on invalid parameters and
    ``WinbackInputError`` on bad columns.
    """

def effective_threads(num_threads: int | None = None) -> int:
    """Worker threads a call would use: ``num_threads``, else ``WINBACK_NUM_THREADS``, else all
    cores."""

def _panic_for_test() -> None:
    """Panics inside the kernel runner; must raise ``WinbackError``, never crash."""
