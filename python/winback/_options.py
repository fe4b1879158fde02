"""Every default and shared option, defined once.

Public functions keep explicit keyword arguments (as Polars and scikit-learn do) whose defaults
are these constants; the CLI, the report and the Spark/Dask engines take theirs from here too, so
a default changes in one place. Each constant names the ``docs/methods.md`` section that defines
its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "AMOUNT_COL",
    "CUSTOMER_COL",
    "FORECAST",
    "FORECASTS",
    "HORIZON_PERIODS",
    "ID_TYPE",
    "LOCK_WAIT_SECONDS",
    "MIN_OCCASIONS",
    "ON_INVALID",
    "PERIOD",
    "RESOLUTION",
    "S_CUTS",
    "TIME_COL",
    "TIME_FORMAT",
    "TRF_CUTS",
    "UNIT",
    "AsOf",
    "IdType",
    "OnInvalid",
    "TimeUnit",
]

#: A snapshot time: a date (the end of that day), a datetime, or ISO-8601 text.
AsOf = date | datetime | str
#: What to do with invalid input rows: raise a ``WinbackInputError`` or set them aside.
OnInvalid = Literal["raise", "drop"]
#: The time unit of the customer-base summary (days or weeks).
TimeUnit = Literal["D", "W"]

# Input columns (docs/methods.md#input).
CUSTOMER_COL: Final = "customer_id"
TIME_COL: Final = "ts"
#: The amount column; when it is this default and absent, scoring runs without amounts.
AMOUNT_COL: Final = "amount"
ON_INVALID: Final[OnInvalid] = "raise"
#: Occasion bucket: rows of one customer within one bucket are one purchase occasion.
RESOLUTION: Final = "1d"

# Silence scoring (docs/methods.md#silence).
#: Occasions a customer needs to be scored against their own gaps.
MIN_OCCASIONS: Final = 2
#: TrF group boundaries a | b | c | d | e.
TRF_CUTS: Final[tuple[float, float, float, float]] = (0.4, 0.6, 0.8, 0.95)
#: S band boundaries not_silent | silent | deep_silent.
S_CUTS: Final[tuple[float, float]] = (1.0, 2.0)

# Customer-base summary and value (docs/methods.md#summary, #value).
UNIT: Final[TimeUnit] = "W"
#: The calendar period of the period-NBD panel and of ``winback.value``.
PERIOD: Final = "month"
#: Periods the CLV sums over.
HORIZON_PERIODS: Final = 12
#: The headline forecast of winback.value (docs/methods.md#headline-forecast).
FORECAST: Final = "nbd"
#: The headline forecasts winback.value accepts.
FORECASTS: Final[tuple[str, ...]] = ("nbd", "dropout", "stacked", "auto", "combined")

# Reading text times and ids (docs/methods.md#input, #time-zones).
#: How customer ids are read: ``"auto"`` (CSV ids as text, typed sources keep their type),
#: ``"int"`` (Int64; non-integers are invalid rows) or ``"str"`` (text).
IdType = Literal["auto", "int", "str"]
#: The strftime/chrono format of text times; None: ISO 8601 only.
TIME_FORMAT: Final[str | None] = None
ID_TYPE: Final[IdType] = "auto"

# Back-test of the forecasts (docs/methods.md#backtest).
#: Forecast origins: the last N month ends that leave every horizon inside the data.
BACKTEST_ORIGINS: Final = 6
#: Horizons in calendar months after each origin.
BACKTEST_HORIZONS: Final[tuple[str, ...]] = ("1M", "3M")

# Cold-start customers (docs/methods.md#cold-start).
#: Days N of ``p_next_within``: the chance of a next purchase within N days, given none so far.
COLD_START_HORIZON_DAYS: Final = 90.0
__all__ += ["BACKTEST_HORIZONS", "BACKTEST_ORIGINS", "COLD_START_HORIZON_DAYS"]

#: Largest Erlang order k the CNBD-k models try when choosing k by likelihood
#: (docs/methods.md#cnbd-k); the search also stops at the first k whose likelihood falls.
CNBD_MAX_K: Final = 12
#: Summary column with each customer's sum of log inter-purchase times (docs/methods.md#cnbd-k).
LITT_COL: Final = "litt"
#: Cap of the Wheat–Morrison regularity estimate k (docs/methods.md#regularity): equal gaps give
#: an infinite k; beyond 100 (gap coefficient of variation 0.1) the difference is not readable.
REGULARITY_MAX_K: Final = 100.0
#: Fewest consecutive gap pairs for a customer's own regularity estimate
#: (docs/methods.md#regularity).
REGULARITY_MIN_PAIRS: Final = 3
__all__ += ["CNBD_MAX_K", "LITT_COL", "REGULARITY_MAX_K", "REGULARITY_MIN_PAIRS"]

# The HTTP scoring service (docs/serving.md#http-limits).
#: Largest request body in bytes (larger: 413).
SERVE_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Most customers in one request (more: 413).
SERVE_MAX_CUSTOMERS: Final = 10_000
#: Most purchases of one customer in one request (more: 413).
SERVE_MAX_PURCHASES: Final = 100_000
#: Seconds a request may take, body upload included (slower upload: 408; slower scoring: 503).
SERVE_TIMEOUT_S: Final = 30.0
#: Requests (other than health, readiness and metrics) served at once; more: 503 + Retry-After.
SERVE_MAX_CONCURRENCY: Final = 64
__all__ += [
    "SERVE_MAX_BODY_BYTES",
    "SERVE_MAX_CONCURRENCY",
    "SERVE_MAX_CUSTOMERS",
    "SERVE_MAX_PURCHASES",
    "SERVE_TIMEOUT_S",
]

# The calibrated silence probability (docs/methods.md#p-lapse).
#: The model behind p_lapse: a monotone gradient-boosted classifier or a logistic regression.
LapseModelKind = Literal["hgb", "logistic"]
#: Days H of p_lapse = P(no purchase in the next H days).
LAPSE_HORIZON_DAYS: Final = 90.0
LAPSE_MODEL: Final[LapseModelKind] = "hgb"
#: The most recent labelled month-end snapshots held out for the isotonic calibration.
LAPSE_CALIBRATION_SNAPSHOTS: Final = 1
#: The latest labelled snapshots whose lapse-rate trend is carried forward to as_of (0: off; an
#: extrapolation that helps while a trend persists and hurts when it stops), or ``"auto"``:
#: chosen among :data:`LAPSE_DRIFT_CANDIDATES` by an out-of-time check on the data's own latest
#: snapshots (docs/methods.md#p-lapse-drift-auto).
LapseDrift = int | Literal["auto"]
LAPSE_DRIFT_SNAPSHOTS: Final[LapseDrift] = "auto"
#: The windows ``drift_snapshots="auto"`` chooses among (0 = no correction, the tie winner).
LAPSE_DRIFT_CANDIDATES: Final = (0, 3, 6, 12)
#: The latest labelled snapshots ``"auto"`` scores each candidate on, out of time.
LAPSE_DRIFT_CHECK_SNAPSHOTS: Final = 3
#: How many standard errors the check's log-loss gain must reach before a window is chosen.
LAPSE_DRIFT_EVIDENCE_Z: Final = 2.0
#: Smallest group of the data-driven TrF cuts, as a share of the rows
#: (docs/methods.md#outcome-cuts).
OUTCOME_CUTS_MIN_SHARE: Final = 0.05
__all__ += [
    "LAPSE_CALIBRATION_SNAPSHOTS",
    "LAPSE_DRIFT_CANDIDATES",
    "LAPSE_DRIFT_CHECK_SNAPSHOTS",
    "LAPSE_DRIFT_EVIDENCE_Z",
    "LAPSE_DRIFT_SNAPSHOTS",
    "LAPSE_HORIZON_DAYS",
    "LAPSE_MODEL",
    "OUTCOME_CUTS_MIN_SHARE",
    "LapseDrift",
    "LapseModelKind",
]

# The campaign's priority (docs/methods.md#priority, #priority-blend).
#: ``"group"``: TrF group, S, value (the seed's order); ``"lapse_value"``: p_lapse × value;
#: ``"blend"``: the weighted combination of PRIORITY_WEIGHTS' components.
PriorityKind = Literal["group", "lapse_value", "blend"]
PRIORITY: Final[PriorityKind] = "group"
#: Weights of the blended priority's components (normalised to sum 1; "business" counts only
#: when a business score column is given).
PRIORITY_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"p_lapse": 0.5, "value": 0.3, "business": 0.2}
)
__all__ += ["PRIORITY", "PRIORITY_WEIGHTS", "PriorityKind"]

# The daily loop's state database (docs/loop.md#two-runs-at-once).
#: How long a run waits for another run (or import) holding the state database, in seconds.
LOCK_WAIT_SECONDS: Final = 30

# Engagement events (docs/methods.md#events).
#: The events table's event-type column.
EVENT_COL: Final = "event"
#: The funnel stages of ``winback.events.funnel_stage`` and ``funnel``, first to last.
FUNNEL_STAGES: Final[tuple[str, ...]] = ("visit", "view", "cart", "order")
#: The event types whose silence the report compares with purchase silence.
ENGAGEMENT_TYPES: Final[tuple[str, ...]] = ("visit", "view")
#: The event type that is a purchase (the outcome of ``winback.events.paths``).
PURCHASE_EVENT: Final = "order"
#: Weeks before the snapshot that ``winback.events.paths`` compares.
PATH_WEEKS: Final = 8
#: Days after the snapshot without a purchase event that make a customer "went silent" in
#: ``winback.events.paths``.
PATH_HORIZON_DAYS: Final = 90
__all__ += [
    "ENGAGEMENT_TYPES",
    "EVENT_COL",
    "FUNNEL_STAGES",
    "PATH_HORIZON_DAYS",
    "PATH_WEEKS",
    "PURCHASE_EVENT",
]
# Recommendations for the win-back targets (docs/methods.md#recommendations).
#: The product id column of the transactions.
PRODUCT_COL: Final = "product_id"
#: Products recommended per customer.
RECOMMEND_N: Final = 10
#: Similar products kept per product (the item–item neighbour lists).
RECOMMEND_NEIGHBOURS: Final = 50
#: d of sim(i, j) = c_ij / (n_i^(1−d) · n_j^d): 0 is P(j | i), 0.5 the cosine.
RECOMMEND_DAMPING: Final = 0.5
__all__ += ["PRODUCT_COL", "RECOMMEND_DAMPING", "RECOMMEND_N", "RECOMMEND_NEIGHBOURS"]
# The stacked forecast and forecast="auto" (docs/methods.md#stacked-forecast).
#: Customers the trees train on (and "auto" back-tests on) when there are more: a deterministic
#: sample, the smallest hashed customer ids; the forecast itself covers every customer.
STACK_SAMPLE_CUSTOMERS: Final = 50_000
__all__ += ["STACK_SAMPLE_CUSTOMERS"]
# Recommendations in CSV files, and the paths' significance test (issue 17's rest).
#: Separator of the product ids of ``recommended_products`` in a CSV file (one text cell;
#: Parquet keeps the list; docs/methods.md#recommendations).
PRODUCTS_SEPARATOR: Final = "|"
#: Family-wise error rate of the paths' significance tests (Holm; docs/methods.md#paths).
PATH_ALPHA: Final = 0.05
__all__ += ["PATH_ALPHA", "PRODUCTS_SEPARATOR"]
