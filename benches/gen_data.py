"""Seeded synthetic transactions for the winback benchmarks.

Data model (one draw per customer, then one row per purchase; time is measured in days from
``start`` over a window of ``years × 365.25`` days, rounded to whole days, ``W``):

- **birth** ``b ~ Uniform(0, W/2)``: the first purchase happens at ``b`` (every customer has at
  least this one row), at a random time of day.
- **purchase rate** ``λ ~ Gamma(shape r = 0.8, scale θ)`` per day, with ``θ`` chosen analytically
  so that the expected number of rows per customer is ``rows_per_customer`` (default 15, counting
  same-day repeats as separate rows): ``1 + E[λ]·E[active length] = rows_per_customer``.
- **dropout** ``τ ~ Exponential(mean 365 days)`` after birth; the customer is active on
  ``[b, min(b + τ, W))`` and makes ``N ~ Poisson(λ · active length)`` further purchases at
  uniform times on that interval (a homogeneous Poisson process conditioned on its count).
- **amounts** are Gamma–Gamma (Colombo & Jiang 1999): per-customer ``ν ~ Gamma(shape q = 4,
  rate γ = 40)`` and per row ``amount ~ Gamma(shape p = 6, rate ν)`` (mean ``p·γ/(q−1) = 80``
  per row), rounded to cents. About 2 % of the non-birth rows are
  refunds (the amount negated).
- **ids**: ``"int"`` gives ``customer_id = 1..n`` (Int64); ``"sparse_int"`` random distinct 63-bit
  non-negative integers; ``"sparse31"`` random distinct integers in ``[0, 2³¹)`` (Int64: ids
  spread over 31 bits, as database keys with gaps); ``"sparse31_str"`` the same numbers as text,
  ``"C"`` + 10 digits (String); ``"sparse31_hex"`` the same numbers mixed by an odd 64-bit
  multiplier (a bijection) and written as 16 lower-case hex digits (String: opaque keys such as
  hashed e-mails, neither of one width of digits nor short enough for an inline view);
  ``"str"`` ``"C"`` + the number zero-padded to 9 digits (String).
- **time**: ``time_kind="datetime"`` (default) gives µs datetimes with a time of day;
  ``"date"`` gives the calendar day only (Date), for date-typed logs.
- rows are shuffled (seeded) unless ``shuffle=False``, in which case they come grouped by customer
  in birth-then-time order within each customer.

Everything is vectorised numpy. Per-customer draws come from ``default_rng(seed)``; per-row draws
are made in fixed-size customer chunks, each from its own ``default_rng([seed, chunk])``, so
memory stays bounded (the output arrays, allocated once, plus one chunk's temporaries) and the
result depends only on the arguments. The 1,000,000-customer size (``S``) gives ≈ 15M rows, the
5,000,000-customer size (``L``) ≈ 75M.

CLI::

    python benches/gen_data.py --customers 1000000 --seed 0 -o tx.parquet
    python benches/gen_data.py --customers 33000000 --chunk-customers 1000000 --files 16 -o tx/

Larger than memory (:func:`write_chunked`, ``--chunk-customers``): customers are generated a
chunk at a time — chunk ``k`` is ``generate(chunk, seed=seed·2²⁰ + k)`` with its ids shifted past
the earlier chunks' — and each chunk's shuffled rows are dealt in equal slices to ``--files``
Parquet files, so every customer's rows are spread over every file. Memory is one chunk's
(≈ 15M rows, 0.4 GB, for a million customers); disk about 13.5 bytes a row with integer ids.
The data differs from ``generate`` of all customers at once (other seeds, shuffled per chunk).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

__all__ = ["DAY_US", "ID_KINDS", "IdKind", "TimeKind", "generate", "window", "write_chunked"]

IdKind = Literal["int", "sparse_int", "sparse31", "sparse31_str", "sparse31_hex", "str"]
TimeKind = Literal["datetime", "date"]
ID_KINDS: tuple[str, ...] = (
    "int",
    "sparse_int",
    "sparse31",
    "sparse31_str",
    "sparse31_hex",
    "str",
)

DAY_US = 86_400_000_000
RATE_SHAPE = 0.8  # r: shape of the Gamma heterogeneity in purchase rates
DROPOUT_MEAN_DAYS = 365.0  # mean of the exponential lifetime after birth
SPEND_P = 6.0  # p: shape of a row's amount given the customer's ν
SPEND_Q = 4.0  # q: shape of ν across customers
SPEND_GAMMA = 40.0  # γ: rate of ν across customers
REFUND_SHARE = 0.02  # share of non-birth rows that are refunds
STR_ID_WIDTH = 9
CHUNK_CUSTOMERS = 1 << 18  # customers per row-generation chunk (fixed: part of the seeding)


def _as_datetime(start: str | date | datetime) -> datetime:
    if isinstance(start, datetime):
        return start
    if isinstance(start, date):
        return datetime.combine(start, datetime.min.time())
    return datetime.fromisoformat(start)


def window(
    start: str | date | datetime = "2023-01-01", years: float = 2.0
) -> tuple[datetime, datetime]:
    """The generated window ``[start, end)``: ``end`` is ``years × 365.25`` days later, whole days.

    ``end`` is the natural ``as_of`` for the generated data: every row is strictly before it.
    """
    begin = _as_datetime(start)
    return begin, begin + timedelta(days=int(years * 365.25 + 0.5))


def _mean_active_days(window_days: float, dropout_mean: float) -> float:
    """E[min(τ, W − b)] with b ~ U(0, W/2), τ ~ Exp(mean m): the mean active length."""
    m, w = dropout_mean, window_days
    # W − b ~ U(W/2, W) and E[min(τ, c)] = m (1 − e^{−c/m}); average over c.
    return m - m * m / (w / 2) * (math.exp(-w / (2 * m)) - math.exp(-w / m))


#: Odd 64-bit multiplier of ``"sparse31_hex"`` ids (odd, so multiplication mod 2⁶⁴ is one-to-one).
_HEX_MULTIPLIER = 0x9E3779B97F4A7C15


def _customer_ids(n: int, id_kind: IdKind, rng: np.random.Generator) -> pl.Series:
    if id_kind == "int":
        return pl.Series("customer_id", np.arange(1, n + 1, dtype=np.int64))
    if id_kind == "sparse_int":
        ids = rng.integers(0, np.iinfo(np.int64).max, size=n, dtype=np.int64)
        while True:  # redraw the (astronomically rare) duplicates
            _, first = np.unique(ids, return_index=True)
            if first.size == n:
                break
            dup = np.ones(n, dtype=bool)
            dup[first] = False
            ids[dup] = rng.integers(0, np.iinfo(np.int64).max, size=int(dup.sum()), dtype=np.int64)
        return pl.Series("customer_id", ids)
    if id_kind in ("sparse31", "sparse31_str", "sparse31_hex"):
        if n > 1 << 30:
            raise ValueError("sparse31 ids need n_customers ≤ 2³⁰")
        # n distinct values of [0, 2³¹): a seeded sample without replacement, in random order.
        picked = rng.choice(1 << 31, size=n, replace=False).astype(np.int64)
        numbers = pl.Series("customer_id", picked)
        if id_kind == "sparse31":
            return numbers
        if id_kind == "sparse31_hex":
            mixed = picked.astype(np.uint64) * np.uint64(_HEX_MULTIPLIER)  # wraps: a bijection
            return pl.Series("customer_id", [f"{v:016x}" for v in mixed.tolist()])
        return ("C" + numbers.cast(pl.String).str.zfill(10)).alias("customer_id")
    if id_kind == "str":
        width = max(STR_ID_WIDTH, len(str(n)))
        numbers = pl.Series("customer_id", np.arange(1, n + 1, dtype=np.int64))
        return ("C" + numbers.cast(pl.String).str.zfill(width)).alias("customer_id")
    raise ValueError(f"id_kind={id_kind!r} must be one of {ID_KINDS}")


def generate(
    n_customers: int,
    *,
    seed: int = 0,
    years: float = 2.0,
    start: str | date | datetime = "2023-01-01",
    id_kind: IdKind = "int",
    shuffle: bool = True,
    rows_per_customer: float = 15.0,
    dropout_shape: float | None = None,
    time_kind: TimeKind = "datetime",
) -> pl.DataFrame:
    """Synthetic transactions ``customer_id``, ``ts`` (Datetime µs), ``amount`` (Float64).

    ``time_kind="date"`` makes ``ts`` a Date (the row's calendar day; same draws otherwise).

    See the module docstring for the model. ``n_customers`` customers each have ≥ 1 row; the
    expected row count is ``n_customers × rows_per_customer``. Deterministic given the arguments.

    ``dropout_shape=s`` makes dropout rates heterogeneous, as Pareto/NBD assumes: each customer's
    rate μ ~ Gamma(shape s, mean 1/365 per day) and the lifetime ~ Exponential(μ). The default
    (None) gives everyone the same rate, whose likelihood maximum lies at s → ∞. With a shape the
    row count per customer is only approximately ``rows_per_customer``.
    """
    if n_customers < 1:
        raise ValueError("n_customers must be positive")
    if rows_per_customer < 1:
        raise ValueError("rows_per_customer must be at least 1")
    if time_kind not in ("datetime", "date"):
        raise ValueError(f"time_kind={time_kind!r} must be 'datetime' or 'date'")
    begin, end = window(start, years)
    window_days = (end - begin).days
    start_us = (begin - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    end_us = start_us + window_days * DAY_US

    rng = np.random.default_rng(seed)
    n = n_customers
    birth = rng.random(n) * (window_days / 2.0)
    scale = (rows_per_customer - 1.0) / (
        RATE_SHAPE * _mean_active_days(window_days, DROPOUT_MEAN_DAYS)
    )
    rate = rng.gamma(RATE_SHAPE, scale, size=n)
    if dropout_shape is None:
        lifetime = rng.exponential(DROPOUT_MEAN_DAYS, size=n)
    else:
        dropout_rate = rng.gamma(dropout_shape, 1.0 / (dropout_shape * DROPOUT_MEAN_DAYS), size=n)
        lifetime = rng.exponential(1.0 / dropout_rate)
    active = np.minimum(birth + lifetime, window_days) - birth
    nu = rng.gamma(SPEND_Q, 1.0 / SPEND_GAMMA, size=n)
    counts = 1 + rng.poisson(rate * active)
    del rate, lifetime
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])

    index_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    cust = np.empty(total, dtype=index_dtype)
    ts_us = np.empty(total, dtype=np.int64)
    amount = np.empty(total, dtype=np.float64)
    for chunk, lo_c in enumerate(range(0, n, CHUNK_CUSTOMERS)):
        hi_c = min(lo_c + CHUNK_CUSTOMERS, n)
        crng = np.random.default_rng([seed, chunk])
        lo, hi = int(offsets[lo_c]), int(offsets[hi_c])
        local = np.repeat(np.arange(lo_c, hi_c, dtype=index_dtype), counts[lo_c:hi_c])
        cust[lo:hi] = local
        u = crng.random(hi - lo)
        births = offsets[lo_c:hi_c] - lo
        u[births] = 0.0  # the birth purchase
        days = birth[local] + u * active[local]
        stamp = (days * DAY_US).astype(np.int64)
        stamp += start_us
        np.minimum(stamp, end_us - 1, out=stamp)
        ts_us[lo:hi] = stamp
        del days, stamp
        spend = crng.standard_gamma(SPEND_P, size=hi - lo)
        spend /= nu[local]
        refund = crng.random(hi - lo) < REFUND_SHARE
        refund[births] = False
        spend[refund] *= -1.0
        amount[lo:hi] = np.round(spend, 2)
        del local, u, spend, refund

    if shuffle:
        order = np.random.default_rng([seed, 1 << 30]).permutation(total)
        cust = cust[order]
        ts_us = ts_us[order]
        amount = amount[order]
        del order

    ids = _customer_ids(n, id_kind, rng)
    if id_kind == "int":
        customer = pl.Series("customer_id", cust.astype(np.int64) + 1)
    else:
        customer = ids.gather(pl.Series(cust))
    del cust
    ts = pl.Series("ts", ts_us).cast(pl.Datetime("us"))
    if time_kind == "date":
        ts = ts.dt.date()
    return pl.DataFrame([customer, ts, pl.Series("amount", amount)])


def write_chunked(
    n_customers: int,
    output: str | Path,
    *,
    files: int = 1,
    chunk_customers: int = 1_000_000,
    seed: int = 0,
    years: float = 2.0,
    start: str | date | datetime = "2023-01-01",
    id_kind: Literal["int", "str"] = "int",
    row_group_rows: int = 1 << 20,
    rows_per_customer: float = 15.0,
) -> tuple[int, list[Path]]:
    """Writes ``n_customers`` customers' transactions to Parquet a chunk of customers at a time
    (see the module docstring); returns the row count and the files written.

    ``output`` is the file when ``files == 1``, else a directory receiving ``part-NNN.parquet``.
    Ids are ``1..n_customers`` (``"int"``) or their ``"C"``-prefixed zero-padded text (``"str"``).
    """
    import pyarrow.parquet as pq

    if files < 1 or chunk_customers < 1:
        raise ValueError("files and chunk_customers must be positive")
    if id_kind not in ("int", "str"):
        raise ValueError("chunked writing supports id_kind 'int' or 'str' (distinct across chunks)")
    target = Path(output)
    if files == 1:
        target.parent.mkdir(parents=True, exist_ok=True)
        paths = [target]
    else:
        target.mkdir(parents=True, exist_ok=True)
        paths = [target / f"part-{index:03d}.parquet" for index in range(files)]
    width = max(STR_ID_WIDTH, len(str(n_customers)))
    writers: list[Any] = [None] * files
    rows = 0
    try:
        for chunk, first in enumerate(range(0, n_customers, chunk_customers)):
            count = min(chunk_customers, n_customers - first)
            frame = generate(
                count,
                seed=(seed << 20) + chunk,
                years=years,
                start=start,
                id_kind="int",
                rows_per_customer=rows_per_customer,
            )
            ids = pl.col("customer_id") + first
            if id_kind == "str":
                ids = "C" + ids.cast(pl.String).str.zfill(width)
            frame = frame.with_columns(ids.alias("customer_id"))
            step = -(-frame.height // files)
            for index in range(files):
                table = frame.slice(index * step, step).to_arrow()
                if writers[index] is None:
                    writers[index] = pq.ParquetWriter(str(paths[index]), table.schema)
                writers[index].write_table(table, row_group_size=row_group_rows)
            rows += frame.height
            del frame
    finally:
        for writer in writers:
            if writer is not None:
                writer.close()
    return rows, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--years", type=float, default=2.0)
    parser.add_argument("--start", default="2023-01-01")
    parser.add_argument("--id-kind", choices=ID_KINDS, default="int")
    parser.add_argument("--rows-per-customer", type=float, default=15.0)
    parser.add_argument("--time-kind", choices=["datetime", "date"], default="datetime")
    parser.add_argument("--no-shuffle", action="store_true", help="keep rows grouped by customer")
    parser.add_argument("-o", "--output", required=True, help="output Parquet file")
    parser.add_argument(
        "--chunk-customers",
        type=int,
        default=None,
        help="write larger-than-memory data a chunk of this many customers at a time",
    )
    parser.add_argument(
        "--files", type=int, default=1, help="with --chunk-customers: files (-o is a directory)"
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.chunk_customers is not None:
        rows, _ = write_chunked(
            args.customers,
            args.output,
            files=args.files,
            chunk_customers=args.chunk_customers,
            seed=args.seed,
            years=args.years,
            start=args.start,
            id_kind=args.id_kind,
        )
        print(
            f"{rows:,} rows for {args.customers:,} customers written to {args.output} in "
            f"{time.perf_counter() - began:.1f}s",
            file=sys.stderr,
        )
        return 0
    frame = generate(
        args.customers,
        seed=args.seed,
        years=args.years,
        start=args.start,
        id_kind=args.id_kind,
        shuffle=not args.no_shuffle,
    )
    made = time.perf_counter()
    frame.write_parquet(args.output)
    done = time.perf_counter()
    print(
        f"{frame.height:,} rows for {args.customers:,} customers: generated in "
        f"{made - began:.1f}s, written to {args.output} in {done - made:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
