"""Small data sets shipped with winback, and a reader for the CDNOW text files.

The bundled ``cdnow.parquet`` holds the CDNOW transactions: purchases of CDs by the cohort of
customers who first bought at the online retailer CDNOW in the first quarter of 1997, followed
through June 1998 (69,659 rows, 23,570 customers). It is the standard data set of the
customer-base-analysis literature (Fader, Hardie & Lee 2005, "Counting your customers the easy
way", Marketing Science 24(2); "RFM and CLV", JMR 42(4)), converted from ``CDNOW_master.txt`` as
redistributed in the ``lifetimes`` 0.11.3 package (MIT License, (c) 2015 Cameron Davidson-Pilon).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import polars as pl

from winback.errors import WinbackInputError

__all__ = ["cdnow_path", "load_cdnow", "read_cdnow_text"]


def cdnow_path() -> Path:
    """Path of the bundled CDNOW Parquet file."""
    return Path(str(resources.files(__package__).joinpath("cdnow.parquet")))


def load_cdnow() -> pl.DataFrame:
    """The CDNOW transactions: ``customer_id`` (Int64), ``ts`` (Date), ``quantity`` (number of
    CDs, Int32) and ``amount`` (US dollars, Float64), one row per transaction."""
    return pl.read_parquet(cdnow_path())


def read_cdnow_text(path: str | Path) -> pl.DataFrame:
    """Parses a CDNOW text file (``CDNOW_master.txt`` or ``CDNOW_sample.txt``) into the columns of
    :func:`load_cdnow`. The master file has 4 whitespace-separated fields (id, YYYYMMDD, CDs,
    dollars) after one header line; the sample file has 5 (master id, sample id, …) and no header.
    """
    text = Path(path).read_text()
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if rows and not rows[0][0].isdigit():
        rows = rows[1:]
    if not rows:
        return pl.DataFrame(
            schema={
                "customer_id": pl.Int64,
                "ts": pl.Date,
                "quantity": pl.Int32,
                "amount": pl.Float64,
            }
        )
    width = len(rows[0])
    if width not in (4, 5) or any(len(r) != width for r in rows):
        raise WinbackInputError(f"{path}: expected 4 or 5 whitespace-separated fields per line")
    first = width - 3
    frame = pl.DataFrame(
        {
            "customer_id": [int(r[0]) for r in rows],
            "ts": [r[first] for r in rows],
            "quantity": [int(r[first + 1]) for r in rows],
            "amount": [float(r[first + 2]) for r in rows],
        },
        schema={
            "customer_id": pl.Int64,
            "ts": pl.String,
            "quantity": pl.Int32,
            "amount": pl.Float64,
        },
    )
    return frame.with_columns(pl.col("ts").str.to_date("%Y%m%d"))
