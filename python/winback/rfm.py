"""RFM scores, named segments, the seed's three tiers and the quadrant (docs/methods.md#rfm)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

import polars as pl

from winback import _io
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    AsOf,
    OnInvalid,
)
from winback.errors import WinbackConfigError, WinbackInputError
from winback.silence import check_parameters, score_prepared

__all__ = [
    "QUADRANT_LABELS",
    "RFM_COLUMNS",
    "SEGMENT_GRID",
    "SEGMENT_NAMES",
    "TIER_LABELS",
    "check_finite",
    "check_number",
    "check_unique_customers",
    "is_scored_table",
    "quadrant",
    "rfm",
]

#: Named segments of the standard R × (F+M)/2 grid, in the order of :data:`SEGMENT_GRID`'s rows.
SEGMENT_NAMES = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

#: The default named-segment map, as first-match rules over ``r_score`` (``r_min`` ≤ R ≤
#: ``r_max``) and ``fm_score`` = (F+M)/2 (``fm_min`` ≤ FM < ``fm_max``; null = unbounded). As a
#: grid (rows FM, columns R = 1 … 5):
#:
#: ========== =============== =========== ============== ================== ==================
#: FM \\ R     1               2           3              4                  5
#: ========== =============== =========== ============== ================== ==================
#: ≥ 4        Can't lose them At risk     Loyal          Champions          Champions
#: [3, 4)     At risk         At risk     Need attention Loyal              Loyal
#: [2, 3)     Hibernating     Hibernating About to sleep Potential loyalist Potential loyalist
#: < 2        Lost            Hibernating About to sleep Promising          New
#: ========== =============== =========== ============== ================== ==================
#:
#: Copy it, edit it and pass it as ``segment_map=`` to change the names or the cells.
SEGMENT_GRID = pl.DataFrame(
    [
        ("Champions", 4, 5, 4.0, None),
        ("Loyal", 3, 3, 4.0, None),
        ("Loyal", 4, 5, 3.0, 4.0),
        ("Can't lose them", 1, 1, 4.0, None),
        ("At risk", 2, 2, 3.0, None),
        ("At risk", 1, 1, 3.0, 4.0),
        ("Need attention", 3, 3, 3.0, 4.0),
        ("Potential loyalist", 4, 5, 2.0, 3.0),
        ("About to sleep", 3, 3, None, 3.0),
        ("Hibernating", 1, 2, 2.0, 3.0),
        ("Hibernating", 2, 2, None, 2.0),
        ("Promising", 4, 4, None, 2.0),
        ("New", 5, 5, None, 2.0),
        ("Lost", 1, 1, None, 2.0),
    ],
    schema={
        "segment": pl.String,
        "r_min": pl.Int64,
        "r_max": pl.Int64,
        "fm_min": pl.Float64,
        "fm_max": pl.Float64,
    },
    orient="row",
)

#: The seed's three tiers (docs/methods.md#rfm-tiers), in order.
TIER_LABELS = ("high_value_active", "general_silent", "low_value_lost")
#: Quadrants (seed: 蜜蜂/蜻蜓/蝴蝶/螳螂): contribution high/low × loyalty high/low.
QUADRANT_LABELS = ("bee", "dragonfly", "butterfly", "mantis")
#: Columns :func:`rfm` adds, in order.
RFM_COLUMNS = (
    "rfm_frequency",
    "rfm_monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "rfm_cell",
    "rfm_segment",
    "rfm_tier",
)
_DEFAULT_TIERS = {"active_r": 4.0, "lost_r": 2.0, "fm": 3.0}
_SALON_WINDOW_DAYS = 365
#: From this many rows on, the window's occasions and amount are summed by a kernel over the rows
#: grouped by customer (below it, Polars' group-by: no Numba start-up for small inputs).
_GROUPED_ROWS = 200_000


def is_scored_table(columns: Any) -> bool:
    """Whether a table with these column names is already scored (has ``recency_days`` and
    ``n_occasions``, as :func:`winback.silence`'s output) rather than raw transactions."""
    names = set(columns)
    return {"recency_days", "n_occasions"} <= names


def _first_ids(ids: pl.Series, count: int = 5) -> str:
    return ", ".join(str(v) for v in ids.head(count).to_list())


def check_unique_customers(frame: pl.DataFrame, what: str, column: str = "customer_id") -> None:
    """Raises :class:`~winback.WinbackInputError` when ``frame`` (a scored table: one row per
    customer) holds a customer twice, naming how many rows repeat a customer and the first ids."""
    ids = frame.get_column(column)
    n = ids.len()
    if n < 2:
        return
    # scored tables come sorted by id: a linear scan of neighbours instead of a hash of every id
    # (5M string ids: ~0.05 s instead of ~1.5 s)
    sorted_ids = not ids.null_count() and ids.is_sorted()
    if sorted_ids and not (ids.slice(1) == ids.slice(0, n - 1)).any():
        return
    unique = ids.n_unique()
    if unique == frame.height:
        return
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    raise WinbackInputError(
        f"{what} needs one row per customer, but column {column!r} repeats {repeated.len():,} "
        f"customers ({frame.height - unique:,} extra rows; first: {_first_ids(repeated)}). "
        f"Deduplicate the table (e.g. .unique({column!r})) or score the transactions again"
    )


def check_finite(
    frame: pl.DataFrame,
    columns: Sequence[str],
    what: str,
    id_column: str = "customer_id",
    advice: str | None = None,
) -> None:
    """Raises :class:`~winback.WinbackInputError` when a float column of ``columns`` (those present)
    holds NaN or ±inf, naming the column, the count and the first customers, then ``advice``
    (default: how to fix or null them). Nulls are fine: they are the documented "unknown"."""
    for name in columns:
        if name not in frame.columns or not frame.schema[name].is_float():
            continue
        bad = ~pl.col(name).is_finite()
        count = int(frame.select(bad.sum()).item() or 0)
        if not count:
            continue
        shown = ""
        if id_column in frame.columns:
            ids = frame.filter(bad.fill_null(False)).get_column(id_column)
            shown = f" (customers {_first_ids(ids)})"
        advice = advice or (
            "nothing can be ranked or written from them. Fix or drop those rows, or make them "
            f"null (pl.col({name!r}).fill_nan(None)) to treat them as unknown"
        )
        raise WinbackInputError(
            f"{what}: column {name!r} holds {count:,} NaN or infinite values{shown}; {advice}"
        )


def check_number(
    value: Any, name: str, *, minimum: float | None = None, positive: bool = False
) -> float:
    """``value`` as a float when it is a finite number (≥ ``minimum``, > 0 with ``positive``);
    else :class:`~winback.WinbackConfigError` naming the argument ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WinbackConfigError(f"{name}={value!r} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise WinbackConfigError(f"{name}={value!r} must be a finite number, not NaN or infinite")
    if positive and number <= 0:
        raise WinbackConfigError(f"{name}={value!r} must be positive")
    if minimum is not None and number < minimum:
        raise WinbackConfigError(f"{name}={value!r} must be ≥ {minimum:g}")
    return number


def _score(value: pl.Expr) -> pl.Expr:
    """1–5 by quintiles of rank, higher value = higher score (docs/methods.md#rfm).

    score = 1 + ⌊5 × (share of customers with a strictly lower value)⌋, so equal values get equal
    scores and distinct values fall into exact quintiles; the customers holding the highest value
    always score 5 (a mass of ties at the top never empties the top bin), and a column with one
    distinct value carries no ranking: everyone scores 3. Nulls stay null.
    """
    below = value.rank("min").cast(pl.Float64) - 1.0
    share = below / value.count().cast(pl.Float64)
    quintile = (share * 5.0).floor().clip(0.0, 4.0) + 1.0
    return (
        pl.when(value.is_null())
        .then(None)
        .when(value.min() == value.max())
        .then(3.0)
        .when(value == value.max())
        .then(5.0)
        .otherwise(quintile)
        .cast(pl.Int8)
    )


def _segment_expr(segment_map: pl.DataFrame | Mapping[str, str] | None) -> pl.Expr:
    default = segment_map is None
    if segment_map is None:
        segment_map = SEGMENT_GRID
    if isinstance(segment_map, Mapping):
        given = dict(segment_map)
        segment_map = pl.DataFrame(
            {"rfm_cell": list(given), "segment": list(given.values())},
            schema={"rfm_cell": pl.String, "segment": pl.String},
        )
    if not isinstance(segment_map, pl.DataFrame):
        raise WinbackConfigError(
            "segment_map must be a polars DataFrame (rule rows like winback.rfm.SEGMENT_GRID, or "
            f"columns rfm_cell and segment) or a dict of cells, not {type(segment_map).__name__}"
        )
    if "segment" not in segment_map.columns:
        raise WinbackConfigError("segment_map needs a 'segment' column")
    names = [str(s) for s in dict.fromkeys(segment_map.get_column("segment").to_list())]
    if default:
        names = list(SEGMENT_NAMES)
    if "rfm_cell" in segment_map.columns:
        cells = segment_map.get_column("rfm_cell").cast(pl.String).to_list()
        bad = [c for c in cells if c is None or len(c) != 3 or any(d not in "12345" for d in c)]
        if bad:
            raise WinbackConfigError(
                f"segment_map cell {bad[0]!r} is not three digits 1–5 (R, F, M), e.g. '545'"
            )
        if len(set(cells)) != len(cells):
            raise WinbackConfigError("segment_map lists a cell twice")
        mapping = dict(zip(cells, segment_map.get_column("segment").to_list(), strict=True))
        return (
            pl.col("rfm_cell")
            .replace_strict(mapping, default=None, return_dtype=pl.String)
            .cast(pl.Enum(names))
        )
    needed = ("r_min", "r_max", "fm_min", "fm_max")
    missing = [c for c in needed if c not in segment_map.columns]
    if missing:
        raise WinbackConfigError(
            f"segment_map has no column {missing[0]!r}: give rule rows with columns segment, "
            "r_min, r_max, fm_min, fm_max (as winback.rfm.SEGMENT_GRID), or rfm_cell and segment"
        )
    expr: Any = None
    for row in segment_map.iter_rows(named=True):
        condition = pl.lit(True)
        if row["r_min"] is not None:
            condition = condition & (pl.col("r_score") >= row["r_min"])
        if row["r_max"] is not None:
            condition = condition & (pl.col("r_score") <= row["r_max"])
        if row["fm_min"] is not None:
            condition = condition & (pl.col("fm_score") >= row["fm_min"])
        if row["fm_max"] is not None:
            condition = condition & (pl.col("fm_score") < row["fm_max"])
        label = pl.lit(str(row["segment"]))
        expr = pl.when(condition).then(label) if expr is None else expr.when(condition).then(label)
    if expr is None:
        return pl.lit(None, dtype=pl.Enum(names))
    labelled: pl.Expr = expr.otherwise(None).cast(pl.Enum(names))
    return labelled


def _tier_expr(thresholds: Mapping[str, float] | None) -> pl.Expr:
    values = dict(_DEFAULT_TIERS)
    for key, value in (thresholds or {}).items():
        if key not in values:
            raise WinbackConfigError(
                f"tier_thresholds has no key {key!r}; keys are {', '.join(values)}"
            )
        values[key] = check_number(value, f"tier_thresholds[{key!r}]")
    r, fm = pl.col("r_score"), pl.col("fm_score")
    return (
        pl.when(r.is_null() | fm.is_null())
        .then(None)
        .when((r >= values["active_r"]) & (fm >= values["fm"]))
        .then(pl.lit(TIER_LABELS[0]))
        .when((r <= values["lost_r"]) & (fm < values["fm"]))
        .then(pl.lit(TIER_LABELS[2]))
        .otherwise(pl.lit(TIER_LABELS[1]))
        .cast(pl.Enum(TIER_LABELS))
    )


def _window_stats(
    prepared: _io.PreparedTransactions,
    *,
    as_of_us: int,
    resolution_us: int,
    window_us: int,
    name: str,
) -> pl.DataFrame:
    """Per customer: occasions (distinct buckets) and amount in the window's buckets, i.e. buckets
    b with as_of_bucket − window < b ≤ as_of_bucket; customers with none are left out.

    From :data:`_GROUPED_ROWS` rows on, one kernel pass over the rows grouped by customer
    (:func:`winback._io.customer_runs`, shared with the cold-start curves) instead of a Polars
    group-by with a sort per customer: the same values, bits and dtypes (rows in customer order).
    """
    as_of_bucket = as_of_us - as_of_us % resolution_us
    bucket = (pl.col("ts") // resolution_us) * resolution_us
    amounts_known = not (prepared.has_amount and prepared.frame.get_column("amount").null_count())
    if prepared.frame.height >= _GROUPED_ROWS and amounts_known:
        return _window_stats_grouped(
            prepared, bucket, low=as_of_bucket - window_us, high=as_of_bucket, name=name
        )
    aggs = [pl.col("bucket").n_unique().cast(pl.Int64).alias(name)]
    if prepared.has_amount:
        # Summed one by one in ascending order within each customer, so the bits do not depend
        # on row order (a plain sort().sum() is rewritten to sum() by the lazy optimiser).
        aggs.append(pl.col("amount").sort().cum_sum().last().alias(f"{name}_amount"))
    return (
        prepared.frame.lazy()
        .with_columns(bucket.alias("bucket"))
        .filter((pl.col("bucket") <= as_of_bucket) & (pl.col("bucket") > as_of_bucket - window_us))
        .group_by("customer")
        .agg(aggs)
        .rename({"customer": "customer_id"})
        .collect()
    )


def _window_stats_grouped(
    prepared: _io.PreparedTransactions, bucket: pl.Expr, *, low: int, high: int, name: str
) -> pl.DataFrame:
    """:func:`_window_stats` by :func:`winback._kernels.occasions.window_totals` over the rows
    grouped by customer: low < bucket ≤ high."""
    import numpy as np

    from winback._kernels.occasions import window_totals

    ids, starts, grouped = _io.customer_runs(prepared)
    buckets = grouped.select(bucket).to_series().to_numpy().astype(np.int64, copy=False)
    amounts = (
        grouped.get_column("amount").to_numpy().astype(np.float64, copy=False)
        if prepared.has_amount
        else np.zeros(1, dtype=np.float64)
    )
    occasions, totals = window_totals(starts, buckets, amounts, low, high, prepared.has_amount)
    present = np.flatnonzero(occasions >= 0)
    columns = [
        ids.gather(present).alias("customer_id"),
        pl.Series(name, occasions[present], dtype=pl.Int64),
    ]
    if prepared.has_amount:
        columns.append(pl.Series(f"{name}_amount", totals[present], dtype=pl.Float64))
    return pl.DataFrame(columns)


def _from_transactions(
    data: Any,
    *,
    as_of: AsOf | None,
    window: str | timedelta | None,
    resolution: str | timedelta,
    min_occasions: int,
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    order_col: str | None,
    tz: str | None,
    on_invalid: OnInvalid,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    num_threads: int | None,
) -> tuple[pl.DataFrame, pl.Expr, pl.Expr]:
    resolution_us, _, _ = check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    prepared = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    if not prepared.has_amount:
        raise WinbackInputError(
            f"rfm needs an amount column for M; column {amount_col!r} is not in the input "
            "(pass amount_col='...')"
        )
    as_of_us = _io.snapshot_end(prepared, as_of)
    scored, _, _ = score_prepared(
        prepared,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        num_threads=num_threads,
    )
    year = _window_stats(
        prepared,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        window_us=_SALON_WINDOW_DAYS * _io.MICROS_PER_DAY,
        name="occasions_365d",
    ).select("customer_id", "occasions_365d")
    scored = scored.join(year, on="customer_id", how="left").with_columns(
        pl.col("occasions_365d").fill_null(0)
    )
    if window is None:
        return scored, pl.col("n_occasions"), pl.col("total_amount")
    window_us = _io.parse_resolution(window)
    windowed = _window_stats(
        prepared,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        window_us=window_us,
        name="__window",
    )
    scored = scored.join(windowed, on="customer_id", how="left").with_columns(
        pl.col("__window").fill_null(0), pl.col("__window_amount").fill_null(0.0)
    )
    return scored, pl.col("__window"), pl.col("__window_amount")


def rfm(
    data: Any,
    *,
    as_of: AsOf | None = None,
    window: str | timedelta | None = None,
    monetary: Literal["total", "mean"] = "total",
    segment_map: pl.DataFrame | Mapping[str, str] | None = None,
    tier_thresholds: Mapping[str, float] | None = None,
    resolution: str | timedelta = RESOLUTION,
    min_occasions: int = MIN_OCCASIONS,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
    num_threads: int | None = None,
    recency_col: str = "recency_days",
    frequency_col: str = "n_occasions",
    monetary_col: str | None = None,
) -> pl.DataFrame:
    """RFM scores, cell, named segment and the seed's three tiers, one row per customer
    (docs/methods.md#rfm).

    R = days since the last occasion, F = occasions (in the last ``window`` when given, else all
    history), M = total amount (in the window when given) or, with ``monetary="mean"``, the mean
    amount per occasion. Each is scored 1–5 by quintiles of rank (R reversed: recent = 5):
    score = 1 + ⌊5 × share of customers with a strictly worse value⌋, so equal values get equal
    scores, distinct values fall into exact quintiles, and the customers holding the best value
    always score 5 — a mass of equal values never empties the top bin. (A column with a single
    distinct value ranks nobody: all score 3.)

    Parameters
    ----------
    data
        Transactions (anything :func:`winback.silence` reads: they are scored first, with the same
        hygiene, ``as_of`` and occasions), or an already-scored table — one with ``recency_days``
        and ``n_occasions`` such as :func:`winback.silence`'s or :func:`winback.value`'s output.
        All its columns are kept.
    as_of, resolution, min_occasions, trf_cuts, s_cuts, tz, num_threads
        As for :func:`winback.silence` (transactions only).
    customer_col, time_col, amount_col, order_col, on_invalid
        Input columns and hygiene, as for :func:`winback.silence` (transactions only).
    window
        Duration of the F/M window, e.g. ``"365d"`` (transactions only): occasions whose bucket is
        within ``window`` of the ``as_of`` bucket.
    monetary
        ``"total"`` (default) or ``"mean"`` amount.
    segment_map
        The named-segment map: first-match rule rows with columns ``segment, r_min, r_max,
        fm_min, fm_max`` (default :data:`SEGMENT_GRID`), or a table/dict from ``rfm_cell``
        (e.g. ``"545"``) to a segment name. Unmatched customers get a null segment.
    tier_thresholds
        Edits of the three tiers: ``{"active_r": 4, "lost_r": 2, "fm": 3}`` — ``high_value_active``
        when R ≥ active_r and FM ≥ fm, ``low_value_lost`` when R ≤ lost_r and FM < fm,
        ``general_silent`` otherwise.
    recency_col, frequency_col, monetary_col
        Columns of an already-scored table used as R, F and M (M default: ``total_amount`` or
        ``mean_amount`` by ``monetary``).

    Returns
    -------
    polars.DataFrame
        The scored table (from transactions: :func:`winback.silence`'s columns plus
        ``occasions_365d``, the occasions in the 365 days up to ``as_of`` that the ``salon`` rule
        preset reads) with :data:`RFM_COLUMNS` added: ``rfm_frequency`` (F), ``rfm_monetary``
        (M), ``r_score``, ``f_score``, ``m_score`` (Int8, 1–5), ``fm_score`` ((F+M)/2),
        ``rfm_cell`` (``"545"``), ``rfm_segment`` and ``rfm_tier``.

    Examples
    --------
    >>> import polars as pl, winback
    >>> from datetime import date
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 1, 2, 2, 3, 4, 5],
    ...     "ts": [date(2024, 1, d) for d in (1, 10, 20, 5, 28, 2, 30, 15)],
    ...     "amount": [50.0, 60.0, 70.0, 20.0, 20.0, 5.0, 300.0, 10.0]})
    >>> out = winback.rfm(tx, as_of=date(2024, 1, 31))
    >>> out.select("customer_id", "r_score", "f_score", "m_score", "rfm_cell").rows()
    ... # doctest: +NORMALIZE_WHITESPACE
    [(1, 3, 5, 4, '354'), (2, 4, 4, 3, '443'), (3, 1, 1, 1, '111'),
     (4, 5, 1, 5, '515'), (5, 2, 1, 2, '212')]
    >>> out.select("customer_id", "rfm_segment", "rfm_tier").rows()[:2]
    [(1, 'Loyal', 'general_silent'), (2, 'Loyal', 'high_value_active')]
    """
    if monetary not in ("total", "mean"):
        raise WinbackConfigError(f"monetary={monetary!r} must be 'total' or 'mean'")
    prepared_input = isinstance(data, _io.PreparedTransactions)
    frame = data if prepared_input else _io.to_polars(data)
    try:
        names = [] if prepared_input else frame.collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise WinbackInputError(f"could not read the input: {exc}") from exc
    if not prepared_input and (is_scored_table(names) or recency_col != "recency_days"):
        if window is not None:
            raise WinbackConfigError(
                "window= needs transactions (the scored table has no purchase dates); pass the "
                "transactions, or leave window=None"
            )
        scored = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        m_name = monetary_col or ("total_amount" if monetary == "total" else "mean_amount")
        for role, name in (("R", recency_col), ("F", frequency_col), ("M", m_name)):
            if name not in scored.columns:
                raise WinbackInputError(
                    f"the scored table has no column {name!r} for {role}; name it with "
                    f"{ {'R': 'recency_col', 'F': 'frequency_col', 'M': 'monetary_col'}[role] }="
                )
        if "customer_id" in scored.columns:
            check_unique_customers(scored, "rfm")
        check_finite(scored, (recency_col, frequency_col, m_name), "rfm")
        r_expr, f_expr, m_expr = pl.col(recency_col), pl.col(frequency_col), pl.col(m_name)
    else:
        scored, f_expr, m_expr = _from_transactions(
            frame,
            as_of=as_of,
            window=window,
            resolution=resolution,
            min_occasions=min_occasions,
            customer_col=customer_col,
            time_col=time_col,
            amount_col=amount_col,
            order_col=order_col,
            tz=tz,
            on_invalid=on_invalid,
            trf_cuts=trf_cuts,
            s_cuts=s_cuts,
            num_threads=num_threads,
        )
        r_expr = pl.col("recency_days")
        if monetary == "mean":
            m_expr = pl.when(f_expr > 0).then(m_expr / f_expr).otherwise(None)
    if scored.height and scored.select(m_expr.is_null().all()).item():
        raise WinbackInputError(
            "rfm needs amounts for M, but every customer's monetary value is null (was the data "
            "scored without an amount column?)"
        )
    scored = scored.drop([c for c in RFM_COLUMNS if c in scored.columns])
    f_value, m_value = f_expr.cast(pl.Float64), m_expr.cast(pl.Float64)
    out = scored.with_columns(
        f_value.alias("rfm_frequency"),
        m_value.alias("rfm_monetary"),
        _score(-r_expr.cast(pl.Float64)).alias("r_score"),
        _score(f_value).alias("f_score"),
        _score(m_value).alias("m_score"),
    )
    out = out.drop([c for c in ("__window", "__window_amount") if c in out.columns])
    check_finite(
        out,
        ("rfm_monetary",),
        "rfm",
        advice="the amounts are too large to add up in 64-bit floats; check the amount column "
        "(a unit error?) or scale it down",
    )
    out = out.with_columns(
        ((pl.col("f_score") + pl.col("m_score")).cast(pl.Float64) / 2.0).alias("fm_score"),
        (
            pl.col("r_score").cast(pl.Int32) * 100
            + pl.col("f_score").cast(pl.Int32) * 10
            + pl.col("m_score").cast(pl.Int32)
        )
        .cast(pl.String)
        .alias("rfm_cell"),
    )
    return out.with_columns(
        _segment_expr(segment_map).alias("rfm_segment"),
        _tier_expr(tier_thresholds).alias("rfm_tier"),
    )


def quadrant(
    scored: pl.DataFrame,
    *,
    contribution: str | None = None,
    loyalty: str | None = None,
    contribution_cut: float | None = None,
    loyalty_cut: float | None = None,
    min_tenure_days: float = 30.0,
) -> pl.DataFrame:
    """Split customers into four quadrants by contribution × loyalty (docs/methods.md#quadrant;
    seed: 蜜蜂 bee, 蜻蜓 dragonfly, 蝴蝶 butterfly, 螳螂 mantis).

    ``bee`` high contribution and high loyalty, ``dragonfly`` high contribution and low loyalty,
    ``butterfly`` low contribution and high loyalty, ``mantis`` low and low. "High" means strictly
    above the cut (default: the median of the non-null values).

    One definition by default, whatever else the table holds: contribution is M (``rfm_monetary``,
    else ``total_amount``) and loyalty is purchase occasions per year of tenure. Predicted-value
    columns (``clv``, ``p_alive`` …) are used only when named, so the same customer gets the same
    quadrant from :func:`winback.campaign`, the command line and the report.

    Parameters
    ----------
    scored
        A scored table (:func:`winback.silence` or :func:`rfm` output, or any table with the
        columns named below).
    contribution
        Column of contribution. Default: M, ``rfm_monetary`` (else ``total_amount``). Name
        ``"clv"`` or ``"expected_value"`` for a predicted-value quadrant.
    loyalty
        Column of loyalty. Default: purchase occasions per year of tenure,
        ``n_occasions / (max(tenure_days, min_tenure_days) / 365.25)`` (the floor keeps a first
        purchase last week from reading as fifty visits a year). Name ``"p_alive"`` for a
        predicted-value quadrant.
    contribution_cut, loyalty_cut
        Fixed cuts instead of the medians (finite numbers).
    min_tenure_days
        The tenure floor of the default loyalty, in days (a finite number > 0).

    Returns
    -------
    polars.DataFrame
        ``scored`` with ``quadrant_contribution``, ``quadrant_loyalty`` (the values used) and
        ``quadrant`` (Enum; null where either value is null).

    Raises
    ------
    WinbackConfigError
        A cut or ``min_tenure_days`` that is not a finite number (``min_tenure_days`` ≤ 0).
    WinbackInputError
        A missing column (the default needs ``rfm_monetary`` or ``total_amount``, and
        ``n_occasions`` with ``tenure_days``), a customer twice, or a NaN/infinite contribution or
        loyalty input (nulls are fine: they get a null quadrant).

    Examples
    --------
    >>> import polars as pl, winback
    >>> scored = pl.DataFrame({"customer_id": [1, 2, 3, 4],
    ...     "total_amount": [900.0, 800.0, 20.0, 10.0],
    ...     "n_occasions": [12, 2, 10, 1], "tenure_days": [365.25] * 4,
    ...     "clv": [1.0, 2.0, 3.0, 4.0], "p_alive": [0.9, 0.1, 0.2, 0.8]})
    >>> winback.quadrant(scored).get_column("quadrant").to_list()  # M × occasions per year
    ['bee', 'dragonfly', 'butterfly', 'mantis']
    >>> winback.quadrant(scored, contribution="clv", loyalty="p_alive").get_column(
    ...     "quadrant").to_list()
    ['butterfly', 'mantis', 'dragonfly', 'bee']
    """
    if not isinstance(scored, pl.DataFrame):
        scored = pl.DataFrame(_io.to_polars(scored).lazy().collect())
    c_fixed = (
        None if contribution_cut is None else check_number(contribution_cut, "contribution_cut")
    )
    l_fixed = None if loyalty_cut is None else check_number(loyalty_cut, "loyalty_cut")
    floor = check_number(min_tenure_days, "min_tenure_days", positive=True)
    if "customer_id" in scored.columns:
        check_unique_customers(scored, "quadrant")
    columns = scored.columns
    if contribution is None:
        found = [c for c in ("rfm_monetary", "total_amount") if c in columns]
        if not found:
            raise WinbackInputError(
                "quadrant's default contribution is M: the table has neither rfm_monetary nor "
                "total_amount (docs/methods.md#quadrant). Score transactions with an amount, or "
                "name the columns: contribution='clv', loyalty='p_alive' for a predicted-value "
                "quadrant"
            )
        contribution = found[0]
    elif contribution not in columns:
        raise WinbackInputError(f"contribution column {contribution!r} is not in the table")
    if loyalty is None:
        if not {"n_occasions", "tenure_days"} <= set(columns):
            raise WinbackInputError(
                "quadrant's default loyalty is occasions per year of tenure: the table lacks "
                "n_occasions or tenure_days (docs/methods.md#quadrant). Score transactions "
                "first, or name a column: loyalty='p_alive'"
            )
        sources = ["n_occasions", "tenure_days"]
        years = pl.max_horizontal(pl.col("tenure_days"), pl.lit(floor)) / 365.25
        loyalty_expr = pl.col("n_occasions").cast(pl.Float64) / years
    elif loyalty not in columns:
        raise WinbackInputError(f"loyalty column {loyalty!r} is not in the table")
    else:
        loyalty_expr = pl.col(loyalty).cast(pl.Float64)
        sources = [loyalty]
    check_finite(scored, [contribution, *sources], "quadrant")
    out = scored.drop(
        [c for c in ("quadrant_contribution", "quadrant_loyalty", "quadrant") if c in columns]
    ).with_columns(
        pl.col(contribution).cast(pl.Float64).alias("quadrant_contribution"),
        loyalty_expr.alias("quadrant_loyalty"),
    )
    c_cut = pl.col("quadrant_contribution").median() if c_fixed is None else c_fixed
    l_cut = pl.col("quadrant_loyalty").median() if l_fixed is None else l_fixed
    high_c = pl.col("quadrant_contribution") > c_cut
    high_l = pl.col("quadrant_loyalty") > l_cut
    label = (
        pl.when(pl.col("quadrant_contribution").is_null() | pl.col("quadrant_loyalty").is_null())
        .then(None)
        .when(high_c & high_l)
        .then(pl.lit("bee"))
        .when(high_c)
        .then(pl.lit("dragonfly"))
        .when(high_l)
        .then(pl.lit("butterfly"))
        .otherwise(pl.lit("mantis"))
    )
    return out.with_columns(label.cast(pl.Enum(QUADRANT_LABELS)).alias("quadrant"))
