"""The input edge: everything that reads transactions, once (docs/methods.md#input).

- :mod:`~winback._io.sources`: containers and files → a Polars frame (CSV ids and times as
  text; the files of one input checked to agree);
- :mod:`~winback._io.hygiene`: columns, types, validity rules, refusals, rejects;
- :mod:`~winback._io.times`: the text-time rule (ISO 8601 or ``time_format``), occasion
  buckets, the one ``as_of`` rule (:func:`snapshot_end_at`, over :class:`PurchaseDates`),
  local wall-clock µs;
- :mod:`~winback._io.prepared`: :func:`prepare` → :class:`PreparedTransactions`, the one object
  every public function accepts;
- :mod:`~winback._io.spill`: the out-of-core path (the in-memory/out-of-core decision is made
  here, at the edge, before anything is read whole).

Nothing here imports a room above it (silence, summary, value …).
"""

from __future__ import annotations

from winback._io.hygiene import (
    ReadPlan,
    check_id_type,
    check_on_invalid,
    empty_rejects,
    invalid_rows_error,
    merge_orders,
    plan_read,
    refuse_overflowing_amounts,
    reject_reason,
    unreadable_columns_error,
)
from winback._io.prepared import (
    PreparedTransactions,
    check_num_threads,
    customer_ids,
    customer_runs,
    distinct_customers,
    prepare,
    purchase_dates,
    remembered,
    snapshot_end,
)
from winback._io.sources import (
    expand_paths,
    file_kind,
    open_transactions,
    read_schema,
    to_polars,
)
from winback._io.times import (
    MICROS_PER_DAY,
    PurchaseDates,
    as_of_to_micros,
    check_default_snapshot,
    check_time_format,
    check_time_zone,
    describe_moment,
    end_of_day,
    micros_to_datetime,
    parse_buckets,
    parse_resolution,
    snapshot_end_at,
)
from winback._options import OnInvalid

__all__ = [
    "MICROS_PER_DAY",
    "OnInvalid",
    "PreparedTransactions",
    "PurchaseDates",
    "ReadPlan",
    "as_of_to_micros",
    "check_default_snapshot",
    "check_id_type",
    "check_num_threads",
    "check_on_invalid",
    "check_time_format",
    "check_time_zone",
    "customer_ids",
    "customer_runs",
    "describe_moment",
    "distinct_customers",
    "empty_rejects",
    "end_of_day",
    "expand_paths",
    "file_kind",
    "invalid_rows_error",
    "merge_orders",
    "micros_to_datetime",
    "open_transactions",
    "parse_buckets",
    "parse_resolution",
    "plan_read",
    "prepare",
    "purchase_dates",
    "read_schema",
    "refuse_overflowing_amounts",
    "reject_reason",
    "remembered",
    "snapshot_end",
    "snapshot_end_at",
    "to_polars",
    "unreadable_columns_error",
]
