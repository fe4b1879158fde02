"""Every default and shared option, defined once.

Public functions keep explicit keyword arguments (as Polars and scikit-learn do) whose defaults
are these constants; the CLI, the report and the Spark/Dask engines take theirs from here too, so
a default changes in one place. Each constant names the ``docs/methods.md`` section that defines
its meaning.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Literal

__all__ = [
    "AMOUNT_COL",
    "CUSTOMER_COL",
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

# The daily loop's state database (docs/loop.md#two-runs-at-once).
#: How long a run waits for another run (or import) holding the state database, in seconds.
LOCK_WAIT_SECONDS: Final = 30
