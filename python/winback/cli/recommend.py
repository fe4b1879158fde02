"""``winback recommend``: top-N products per customer from purchase co-occurrence
(docs/methods.md#recommendations), for every customer or for a list of them (a target list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from winback._options import (
    CUSTOMER_COL,
    PRODUCT_COL,
    RECOMMEND_DAMPING,
    RECOMMEND_N,
    RECOMMEND_NEIGHBOURS,
)
from winback.cli._app import app
from winback.cli._common import (
    CustomerCol,
    JsonOut,
    OutputTable,
    Transactions,
    check_output_file,
    show,
    stage,
    write_output,
)
from winback.errors import WinbackConfigError, WinbackInputError

__all__ = ["recommend_command"]

_CUSTOMER_SUFFIXES = (".csv", ".parquet", ".pq")


def read_customer_list(path: Path, column: str) -> pl.Series:
    """The customer ids of ``--customers``: the ``customer_id`` column of a CSV or Parquet file
    (a ``winback campaign`` target list, say), else its ``column``; CSV ids are read as text,
    as winback reads ids (leading zeros kept). Duplicates are read once."""
    suffix = path.suffix.lower()
    if suffix not in _CUSTOMER_SUFFIXES:
        raise WinbackConfigError(f"--customers {str(path)!r} must be a .csv or .parquet file")
    if not path.is_file():
        raise WinbackConfigError(f"--customers {str(path)!r} does not exist")
    try:
        csv = suffix == ".csv"
        frame = pl.read_csv(path, infer_schema=False) if csv else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WinbackInputError(f"--customers {str(path)!r} cannot be read: {first}") from None
    name = next((c for c in ("customer_id", column) if c in frame.columns), None)
    if name is None:
        raise WinbackInputError(
            f"--customers {str(path)!r} has no 'customer_id' column (nor {column!r}; columns: "
            f"{', '.join(frame.columns[:20])}); name it customer_id or pass --customer-col"
        )
    ids = frame.get_column(name)
    if ids.null_count():
        raise WinbackInputError(
            f"--customers {str(path)!r}: column {name!r} is empty in {ids.null_count()} row(s); "
            "drop those rows"
        )
    return ids.unique(maintain_order=True)


@app.command("recommend")
def recommend_command(
    input: Transactions,
    output: OutputTable,
    product_col: Annotated[str, typer.Option(help="Product id column.")] = PRODUCT_COL,
    n: Annotated[int, typer.Option("-n", "--n", help="Products per customer.")] = RECOMMEND_N,
    customers: Annotated[
        Path | None,
        typer.Option(
            help="Recommend only to these customers: a CSV or Parquet file with a customer_id "
            "column, e.g. a winback campaign target list (default: every customer)."
        ),
    ] = None,
    include_bought: Annotated[
        bool,
        typer.Option(
            "--include-bought",
            help="Keep products the customer already bought (consumables bought again).",
        ),
    ] = False,
    neighbours: Annotated[
        int, typer.Option(help="Similar products kept per product.")
    ] = RECOMMEND_NEIGHBOURS,
    damping: Annotated[
        float,
        typer.Option(
            help="Similarity damping d in [0, 1]: 0 favours popular products, 0.5 cosine."
        ),
    ] = RECOMMEND_DAMPING,
    customer_col: CustomerCol = CUSTOMER_COL,
    threads: Annotated[
        int | None, typer.Option(help="Worker threads (default: all cores).")
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Top-N products per customer from purchase co-occurrence (item–item similarity).

    Writes one row per customer: customer_id, recommended_products (best first) and
    recommendation_scores (summed similarities; 0 for the most-bought products that fill a short
    list). In a CSV each list is one cell, the items joined by |; Parquet keeps lists. Products
    a customer already bought are left out unless --include-bought.

    Example: winback recommend sales.parquet --product-col sku -n 5 --customers targets.csv
    -o recommendations.csv
    """
    from winback import _io
    from winback.recommend import recommend

    _io.check_num_threads(threads)
    check_output_file(output, inputs=[input, customers])
    wanted = None if customers is None else read_customer_list(customers, customer_col)
    with stage(f"recommending from {input}"):
        table = recommend(
            input,
            customers=wanted,
            n=n,
            customer_col=customer_col,
            product_col=product_col,
            exclude_bought=not include_bought,
            neighbours=neighbours,
            damping=damping,
            num_threads=threads,
        )
    with stage(f"writing {output}"):
        write_output(table, output)
    lengths = table.get_column("recommended_products").list.len()
    short = int((lengths < n).sum())
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "customers": table.height,
                    "products_per_customer": n,
                    "short_lists": short,
                    "output": str(output),
                }
            )
        )
        return
    note = f" ({short:,} with fewer than {n}: the catalogue is smaller)" if short else ""
    show(f"{table.height:,} customers' recommendations written to {output.resolve()}{note}")
