"""Product recommendations for the customers of a win-back campaign
(docs/methods.md#recommendations): item–item purchase co-occurrence, top-N per customer.

From the distinct (customer, product) pairs of the transactions, each product's ``neighbours``
most similar products are kept, with ``sim(i, j) = c_ij / (n_i^(1−d) · n_j^d)`` (``c_ij``
customers who bought both, ``n`` customers who bought each, ``d = damping``). A customer's score
of a product is the sum of its similarities to the products they bought; the top ``n`` are
returned, products they already bought left out unless ``exclude_bought=False``, ties broken by
product id, a list short of ``n`` filled with the most-bought products (score 0). Every customer
is scored on their own and the kernels visit the data in a fixed order, so the result is the same
bits for any row order and any thread count (docs/methods.md#determinism).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from winback import _io, _parallel
from winback._options import (
    CUSTOMER_COL,
    PRODUCT_COL,
    PRODUCTS_SEPARATOR,
    RECOMMEND_DAMPING,
    RECOMMEND_N,
    RECOMMEND_NEIGHBOURS,
)
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = ["RECOMMEND_COLUMNS", "products_as_text", "recommend"]

#: Columns of :func:`recommend`'s output, in order.
RECOMMEND_COLUMNS = ("customer_id", "recommended_products", "recommendation_scores")
_ITEM_CHUNK = 1 << 11  # products per kernel call (fixed: the output never depends on it)
_USER_CHUNK = 1 << 14  # customers per kernel call


def _check_options(n: Any, neighbours: Any, damping: Any) -> None:
    for name, value in (("n", n), ("neighbours", neighbours)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WinbackConfigError(f"{name}={value!r} must be a whole number ≥ 1")
    if (
        isinstance(damping, bool)
        or not isinstance(damping, int | float)
        or not 0.0 <= float(damping) <= 1.0
    ):
        raise WinbackConfigError(
            f"damping={damping!r} must be in [0, 1] (0: P(j | i), 0.5: cosine; "
            "docs/methods.md#recommendations)"
        )


def _pairs(transactions: Any, customer_col: str, product_col: str) -> pl.DataFrame:
    """The distinct (customer_id, product) pairs, checked."""
    # CSV files: both id columns read as text, as winback reads customer ids (leading zeros
    # kept); other containers keep their types
    frame = _io.open_transactions(
        transactions,
        customer_col=customer_col,
        time_col=product_col,
        columns=[customer_col, product_col],
    )
    schema = frame.collect_schema()
    for column, what in ((customer_col, "customer"), (product_col, "product")):
        if column not in schema:
            hint = (
                "recommendations need a product id on every purchase row; name its column with "
                "product_col= (CDNOW has none)"
                if what == "product"
                else "name it with customer_col="
            )
            raise WinbackInputError(
                f"the transactions have no {what} column {column!r} "
                f"(columns: {', '.join(schema.names())}); {hint}"
            )
    for column in (customer_col, product_col):
        dtype = schema[column]
        if not (dtype.is_integer() or dtype == pl.String):
            raise WinbackInputError(
                f"column {column!r} has type {dtype}; use integer or string ids"
            )
    pairs = (
        frame.lazy()
        .select(pl.col(customer_col).alias("customer_id"), pl.col(product_col).alias("product"))
        .unique()
        .sort("customer_id", "product")
        .collect()
    )
    for column, shown in (("customer_id", customer_col), ("product", product_col)):
        nulls = pairs.get_column(column).null_count()
        if nulls:
            raise WinbackInputError(
                f"column {shown!r} is null in some rows; drop or fill them before recommending"
            )
    return pairs


def recommend(
    transactions: Any,
    *,
    customers: pl.Series | Sequence[Any] | None = None,
    n: int = RECOMMEND_N,
    customer_col: str = CUSTOMER_COL,
    product_col: str = PRODUCT_COL,
    exclude_bought: bool = True,
    neighbours: int = RECOMMEND_NEIGHBOURS,
    damping: float = RECOMMEND_DAMPING,
    num_threads: int | None = None,
) -> pl.DataFrame:
    """Top-``n`` products per customer from purchase co-occurrence
    (docs/methods.md#recommendations).

    Parameters
    ----------
    transactions
        Purchase rows with a customer and a product column (any input :func:`winback.silence`
        reads: Polars/pandas frames, Arrow, files); other columns are ignored.
    customers
        The customers to recommend to (e.g. a target list's ``customer_id``); default every
        customer in ``transactions``. A customer without purchases gets the most-bought products.
    n
        Products per customer.
    exclude_bought
        Leave out the products a customer already bought (default); ``False`` keeps them (for
        consumables bought again).
    neighbours
        Similar products kept per product.
    damping
        ``d`` of the similarity, in [0, 1]: 0 ranks by P(j | i) (favours popular products),
        0.5 is the cosine.
    num_threads
        Worker threads (None: ``WINBACK_NUM_THREADS``, else all cores); the result does not
        depend on it.

    Returns
    -------
    polars.DataFrame
        ``customer_id, recommended_products`` (a list of product ids, best first, ``n`` long
        unless the catalogue is too small), ``recommendation_scores`` (list of Float64, summed
        similarities, unitless; 0 for popularity fill-ins); one row per customer, sorted by
        ``customer_id``.

    Raises
    ------
    WinbackInputError
        A missing customer or product column, null ids, fewer than 2 distinct products.
    WinbackConfigError
        ``n``, ``neighbours`` or ``damping`` out of range.

    Examples
    --------
    >>> import polars as pl, winback
    >>> tx = pl.DataFrame({"customer_id": [1, 1, 2, 2, 3], "product_id": [10, 20, 10, 30, 10]})
    >>> winback.recommend(tx, n=2).select("customer_id", "recommended_products").rows()
    [(1, [30]), (2, [20]), (3, [20, 30])]
    """
    from winback._kernels.recommend import item_neighbours, score_customers  # Numba on first use

    _check_options(n, neighbours, damping)
    _io.check_num_threads(num_threads)
    pairs = _pairs(transactions, customer_col, product_col)
    products = pairs.get_column("product").unique().sort()
    if products.len() < 2:
        raise WinbackInputError(
            f"column {product_col!r} holds {products.len()} distinct product(s); recommendations "
            "need at least 2 products"
        )
    known = pairs.get_column("customer_id").unique().sort()
    if customers is not None:
        wanted = customers if isinstance(customers, pl.Series) else pl.Series(list(customers))
        if wanted.len() and wanted.dtype != known.dtype:
            try:
                wanted = wanted.cast(known.dtype, strict=True)
            except pl.exceptions.PolarsError as exc:
                raise WinbackInputError(
                    f"customers= has ids of type {wanted.dtype}, the transactions {known.dtype}"
                ) from exc
        if wanted.null_count():
            raise WinbackInputError("customers= holds null ids")
        targets = wanted.cast(known.dtype).unique().sort()
    else:
        targets = known
    all_customers = pl.concat([known, targets.cast(known.dtype)]).unique().sort()

    user = all_customers.search_sorted(pairs.get_column("customer_id")).to_numpy()
    item = products.search_sorted(pairs.get_column("product")).to_numpy()
    user = user.astype(np.int64)
    item = item.astype(np.int64)
    n_users, n_items = all_customers.len(), products.len()
    # the pairs come sorted by (customer, product): the customers' lists are the products as
    # they are, and a stable sort by product gives each product's customers in order
    user_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=n_users), out=user_ptr[1:])
    user_items = np.ascontiguousarray(item)
    by_item = np.argsort(item, kind="stable")
    counts = np.bincount(item, minlength=n_items)
    item_ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=item_ptr[1:])
    item_users = np.ascontiguousarray(user[by_item])
    del by_item, user, item

    m = min(neighbours, n_items - 1)
    nb_idx = np.empty((n_items, m), dtype=np.int64)
    nb_sim = np.empty((n_items, m), dtype=np.float64)
    d = float(damping)

    def neighbour_chunk(lo: int, hi: int) -> None:
        item_neighbours(
            item_ptr, item_users, user_ptr, user_items, lo, hi, d, nb_idx[lo:hi], nb_sim[lo:hi]
        )

    _parallel.map_chunks(neighbour_chunk, _parallel.chunk_bounds(n_items, _ITEM_CHUNK), num_threads)
    popular = np.lexsort((np.arange(n_items), -counts)).astype(np.int64)

    rows = all_customers.search_sorted(targets).to_numpy().astype(np.int64)
    width = min(n, n_items)
    out_items = np.empty((rows.size, width), dtype=np.int64)
    out_scores = np.empty((rows.size, width), dtype=np.float64)
    # the targets' own CSR slice, so a chunk of targets is a contiguous range
    sub_ptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(user_ptr[rows + 1] - user_ptr[rows], out=sub_ptr[1:])
    if rows.size == n_users:
        sub_items = user_items
    else:
        starts = np.repeat(user_ptr[rows] - sub_ptr[:-1], np.diff(sub_ptr))
        sub_items = user_items[np.arange(int(sub_ptr[-1])) + starts]

    def score_chunk(lo: int, hi: int) -> None:
        score_customers(
            sub_ptr,
            sub_items,
            nb_idx,
            nb_sim,
            popular,
            bool(exclude_bought),
            lo,
            hi,
            out_items[lo:hi],
            out_scores[lo:hi],
        )

    _parallel.map_chunks(score_chunk, _parallel.chunk_bounds(rows.size, _USER_CHUNK), num_threads)
    codes = pl.Series(out_items.reshape(-1))
    listed = products.gather(codes.set(codes < 0, None))
    scores = pl.Series(out_scores.reshape(-1)).set(codes < 0, None)
    frame = pl.DataFrame(
        {
            "customer_id": targets,
            "recommended_products": listed.reshape((rows.size, width)).arr.to_list(),
            "recommendation_scores": scores.reshape((rows.size, width)).arr.to_list(),
        }
    )
    if (out_items < 0).any():
        frame = frame.with_columns(
            pl.col("recommended_products", "recommendation_scores").list.drop_nulls()
        )
    return frame


def products_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its ``recommended_products`` and ``recommendation_scores`` lists as one
    text cell per row, for a CSV file: the items best first, joined by ``|``
    (``PRODUCTS_SEPARATOR``; a customer without recommendations gets an empty cell,
    docs/methods.md#recommendations). Other columns, and a frame without these, are returned
    as they are.

    Raises
    ------
    WinbackInputError
        A product id holds the separator (the cell could not be split back): write Parquet,
        which keeps the list.

    Examples
    --------
    >>> import polars as pl
    >>> from winback.recommend import products_as_text
    >>> f = pl.DataFrame({"customer_id": [1, 2], "recommended_products": [[30, 7], None]})
    >>> products_as_text(f).rows()
    [(1, '30|7'), (2, None)]
    """
    lists = [
        c
        for c in RECOMMEND_COLUMNS[1:]
        if c in frame.columns and isinstance(frame.schema[c], pl.List)
    ]
    if not lists:
        return frame
    text = {c: pl.col(c).list.eval(pl.element().cast(pl.String)) for c in lists}
    column = RECOMMEND_COLUMNS[1]
    if column in text:
        clash = frame.select(
            text[column]
            .list.eval(pl.element().str.contains(PRODUCTS_SEPARATOR, literal=True))
            .list.any()
            .fill_null(False)
            .arg_true()
        ).to_series()
        if clash.len():
            raise WinbackInputError(
                f"a product id holds {PRODUCTS_SEPARATOR!r}, which separates the ids of "
                f"{column!r} in a CSV file (first row {int(clash[0])}); write the list as "
                "Parquet (a .parquet file name), which keeps it a list"
            )
    return frame.with_columns(
        expr.list.join(PRODUCTS_SEPARATOR).alias(c) for c, expr in text.items()
    )
