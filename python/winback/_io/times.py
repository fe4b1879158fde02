"""Time at the input edge: text times, occasion buckets, snapshot cut-offs, local wall-clock µs.

Timestamps reach the core as local wall-clock microseconds since 1970-01-01 (Int64), so buckets
and dates follow the customer's calendar (docs/methods.md#input). A snapshot cut-off ``as_of`` is
inclusive: a date means the end of that day, and the default is the end of the latest purchase's
day; :func:`snapshot_end_at` is the one rule every function applies (docs/methods.md#as-of), over
the figures of :class:`PurchaseDates`.

Text times are read by one rule, row by row, whatever the row order, batch split or engine
(docs/methods.md#time-zones): ISO 8601 by default (:func:`iso_time_expr`), or exactly one
``time_format`` (:func:`format_time_expr`). Dates in another layout (``01/02/2024``) are never
guessed: :func:`foreign_date_expr` finds them and :func:`describe_foreign_times` says how they
could read and which ``time_format`` to pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

import polars as pl

from winback.errors import WinbackConfigError, WinbackInputError

__all__ = [
    "ISO_TIME_HINT",
    "LATE_DAYS",
    "LATE_SHARE",
    "MICROS_PER_DAY",
    "SHOWN_LATE",
    "PurchaseDates",
    "as_of_to_micros",
    "check_default_snapshot",
    "check_time_format",
    "check_time_zone",
    "describe_foreign_times",
    "describe_moment",
    "end_of_day",
    "foreign_date_expr",
    "format_time_expr",
    "iso_time_expr",
    "micros_to_datetime",
    "parse_buckets",
    "parse_resolution",
    "snapshot_end_at",
]

MICROS_PER_DAY = 86_400_000_000

_EPOCH = datetime(1970, 1, 1)

_UNIT_MICROS = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": MICROS_PER_DAY,
    "w": 7 * MICROS_PER_DAY,
}

_RESOLUTION_RE = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d|w)\s*$")


def parse_resolution(resolution: str | timedelta) -> int:
    """Occasion bucket width in µs, from ``"1d"``, ``"12h"``, ``"7d"``, ``"1w"``…
    (docs/methods.md#occasions).

    Units: ``us``, ``ms``, ``s``, ``m`` (minutes), ``h``, ``d``, ``w``. A ``timedelta`` works too.
    """
    if isinstance(resolution, timedelta):
        micros = (resolution.days * 86_400 + resolution.seconds) * 1_000_000
        micros += resolution.microseconds
    else:
        match = _RESOLUTION_RE.match(str(resolution).lower())
        if match is None:
            raise WinbackConfigError(
                f"resolution={resolution!r} is not a duration; use a positive count and a unit, "
                "e.g. '1d', '12h', '30m', '1s' or '1w'"
            )
        micros = int(match.group(1)) * _UNIT_MICROS[match.group(2)]
    if micros <= 0:
        raise WinbackConfigError(f"resolution={resolution!r} must be a positive duration")
    return micros


#: Resolutions that are calendar buckets: name → (width, origin) in µs. ``"week"``: weeks from
#: Monday 00:00 (1970-01-05 is the first Monday after the epoch, a Thursday).
_CALENDAR_BUCKETS = {"week": (7 * MICROS_PER_DAY, 4 * MICROS_PER_DAY)}


def parse_buckets(resolution: str | timedelta) -> tuple[int, int]:
    """Occasion buckets as (width, origin) in µs (docs/methods.md#occasions): a bucket starts
    at origin + k · width. Every duration :func:`parse_resolution` reads has origin 0 (buckets
    from the epoch, 1970-01-01 00:00, so ``"7d"`` weeks start on Thursdays); ``"week"`` is the
    calendar week from Monday 00:00 (lifetimes' ``freq="W"``)."""
    if isinstance(resolution, str) and resolution.strip().lower() in _CALENDAR_BUCKETS:
        return _CALENDAR_BUCKETS[resolution.strip().lower()]
    try:
        return parse_resolution(resolution), 0
    except WinbackConfigError as exc:
        if "is not a duration" not in str(exc):
            raise
        raise WinbackConfigError(
            f"{exc}, or 'week' (calendar weeks from Monday, lifetimes' freq='W')"
        ) from None


def describe_moment(moment: datetime) -> str:
    """ISO text of a snapshot time; the end of a day (a date's cut-off) reads as that date."""
    if (moment + timedelta(microseconds=1)).time() == time() or moment.time() == time():
        return moment.date().isoformat()
    return moment.isoformat()


def as_of_to_micros(as_of: date | datetime | str, time_zone: str | None) -> int:
    """The snapshot cut-off in local wall-clock µs: rows at or before it are in the snapshot.

    A ``date`` (or ``"YYYY-MM-DD"``) means the end of that day, so the day's purchases count. A
    tz-aware datetime is converted to the data's time zone; a naive one is taken as local time.
    """
    if isinstance(as_of, str):
        text = as_of.strip()
        try:
            as_of = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError as exc:
            raise WinbackConfigError(
                f"as_of={text!r} is not an ISO date or datetime (e.g. '2024-06-30')"
            ) from exc
    if isinstance(as_of, datetime):
        if as_of.tzinfo is not None:
            if time_zone is not None:
                from zoneinfo import ZoneInfo

                as_of = as_of.astimezone(ZoneInfo(time_zone))
            as_of = as_of.replace(tzinfo=None)
        delta = as_of - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(as_of, date):
        start = datetime.combine(as_of, time())
        return as_of_to_micros(start, None) + MICROS_PER_DAY - 1
    raise WinbackConfigError(
        f"as_of must be a date, datetime or ISO string, not {type(as_of).__name__}"
    )


def micros_to_datetime(micros: int) -> datetime:
    """Local wall-clock µs since the epoch as a naive datetime; a time outside Python's years
    1–9999 (a year-1 purchase read in a zone west of UTC) is a :class:`WinbackInputError`."""
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise WinbackInputError(
            f"a purchase time lies outside the years 1–9999 in the data's local time "
            f"({micros} µs from 1970-01-01); check the time column and its zone"
        ) from None


# --------------------------------------------------------------------------------------------
# The snapshot time as_of (docs/methods.md#as-of)

#: The default ``as_of`` is refused when it would come from purchases dated more than this many
#: days after the 99.9th percentile of the purchase dates (docs/methods.md#as-of).
LATE_DAYS = 365
#: The 99.9th percentile (nearest rank): ``rows // LATE_SHARE`` purchases may lie above it.
LATE_SHARE = 1000
#: Late purchases named in the message.
SHOWN_LATE = 5
#: Day histograms kept before they are merged (a streaming pass adds one per batch).
_MERGE_EVERY = 64


def end_of_day(micros: int) -> int:
    """The last µs of the local day holding ``micros``: the cut-off a date stands for."""
    return (micros // MICROS_PER_DAY + 1) * MICROS_PER_DAY - 1


class PurchaseDates:
    """What the snapshot rule needs of the purchase times (docs/methods.md#as-of): how many,
    the first and the latest, a histogram of their days and the latest few purchases.

    :meth:`of` wraps a whole prepared frame (the histogram is made only when needed);
    :meth:`add` takes a streaming pass's batches. The figures are exact and depend only on the
    set of purchases, never on their order or on the batch split, and the memory held is one
    count per distinct day plus :data:`SHOWN_LATE` rows.
    """

    def __init__(self) -> None:
        self.rows = 0
        self.first_us: int | None = None
        self.latest_us: int | None = None
        self._whole: pl.DataFrame | None = None
        self._days: list[pl.DataFrame] = []
        self._latest: list[pl.DataFrame] = []

    @classmethod
    def of(cls, frame: pl.DataFrame) -> PurchaseDates:
        """The purchases of a frame with ``customer`` and ``ts`` (local wall-clock µs)."""
        dates = cls()
        if frame.height:
            times = frame.get_column("ts")
            dates.rows = frame.height
            dates.first_us = int(times.min())  # type: ignore[arg-type]
            dates.latest_us = int(times.max())  # type: ignore[arg-type]
            dates._whole = frame.select("customer", "ts")
        return dates

    @classmethod
    def bounds(cls, first_us: int | None, latest_us: int | None) -> PurchaseDates:
        """Only the first and latest purchase known (an engine's bounds job): the percentile
        cannot be told, so only the clock's limit applies to the default ``as_of``."""
        dates = cls()
        if first_us is not None and latest_us is not None:
            dates.rows = 2
            dates.first_us, dates.latest_us = first_us, latest_us
            dates._days = [
                pl.DataFrame(
                    {
                        "day": [first_us // MICROS_PER_DAY, latest_us // MICROS_PER_DAY],
                        "rows": [1, 1],
                    },
                    schema={"day": pl.Int64, "rows": pl.Int64},
                )
            ]
        return dates

    @classmethod
    def merge(cls, parts: Iterable[PurchaseDates]) -> PurchaseDates:
        """The purchases of several parts together (an engine's chunks, read apart): the same
        figures as one pass over all of them, in any order of the parts."""
        merged = cls()
        for part in parts:
            if part.first_us is None or part.latest_us is None:
                continue
            merged.rows += part.rows
            if merged.first_us is None or merged.latest_us is None:
                merged.first_us, merged.latest_us = part.first_us, part.latest_us
            else:
                merged.first_us = min(merged.first_us, part.first_us)
                merged.latest_us = max(merged.latest_us, part.latest_us)
            if part._whole is not None:
                merged._days.append(_day_counts(part._whole))
                merged._latest.append(_latest_rows(part._whole))
            merged._days.extend(part._days)
            merged._latest.extend(part._latest)
        if merged._days:
            merged._days = [_merge_days(merged._days)]
            merged._latest = [_latest_rows(pl.concat(merged._latest))]
        return merged

    def add(self, frame: pl.DataFrame) -> None:
        """Counts a batch of purchases (``customer``, ``ts``)."""
        if not frame.height:
            return
        times = frame.get_column("ts")
        low, high = int(times.min()), int(times.max())  # type: ignore[arg-type]
        self.rows += frame.height
        self.first_us = low if self.first_us is None else min(self.first_us, low)
        self.latest_us = high if self.latest_us is None else max(self.latest_us, high)
        self._days.append(_day_counts(frame))
        self._latest.append(_latest_rows(frame.select("customer", "ts")))
        if len(self._days) >= _MERGE_EVERY:
            self._days = [_merge_days(self._days)]
            self._latest = [_latest_rows(pl.concat(self._latest))]

    def rows_from(self, day: int) -> int:
        """Purchases on or after ``day`` (local days since 1970-01-01)."""
        if self._whole is not None:
            return int((self._whole.get_column("ts") >= day * MICROS_PER_DAY).sum())
        if not self._days:
            return 0
        days = _merge_days(self._days)
        return int(days.filter(pl.col("day") >= day).get_column("rows").sum())

    def day_from_top(self, rank: int) -> int:
        """The day of the ``rank``-th latest purchase (1 = the latest; at most :attr:`rows`)."""
        if self._whole is not None:
            return int(self._whole.get_column("ts").top_k(rank).min()) // MICROS_PER_DAY  # type: ignore[arg-type]
        days = _merge_days(self._days).sort("day", descending=True)
        reached = days.get_column("rows").cum_sum() >= rank
        return int(days.get_column("day").filter(reached)[0])

    def latest(self) -> pl.DataFrame:
        """The :data:`SHOWN_LATE` latest purchases (``customer``, ``ts``): latest first, ties by
        customer id."""
        if self._whole is not None:
            return _latest_rows(self._whole)
        if not self._latest:
            return pl.DataFrame(schema={"customer": pl.Int64, "ts": pl.Int64})
        return _latest_rows(pl.concat(self._latest))

    def describe_span(self) -> str:
        """``"from 1997-01-01 to 1998-06-30"``, the dates of the first and latest purchase."""
        if self.first_us is None or self.latest_us is None:
            return "none"
        first = micros_to_datetime(self.first_us)
        latest = micros_to_datetime(self.latest_us)
        return f"from {_show(first)} to {_show(latest)}"


def _day_counts(frame: pl.DataFrame) -> pl.DataFrame:
    day = (pl.col("ts") // MICROS_PER_DAY).alias("day")
    return frame.lazy().group_by(day).agg(pl.len().cast(pl.Int64).alias("rows")).collect()


def _merge_days(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts).group_by("day").agg(pl.col("rows").sum())


def _latest_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The :data:`SHOWN_LATE` latest rows, latest first, ties by customer id: a total order on
    (ts, customer), so the rows kept from batches merge to the rows of the whole."""
    times = frame.get_column("ts")
    if frame.height > SHOWN_LATE:  # the rows at or after the k-th latest time first (cheap)
        frame = frame.filter(times >= times.top_k(SHOWN_LATE).min())
    top = frame.sort(["ts", "customer"], descending=[True, False])
    return top.head(SHOWN_LATE)


def _describe_value(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _today(time_zone: str | None) -> date:
    if time_zone is None:
        return date.today()
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(time_zone)).date()


def check_default_snapshot(
    dates: PurchaseDates, time_zone: str | None, *, today: date | None = None
) -> None:
    """Refuses a default ``as_of`` set by purchases dated far beyond the rest of the data
    (docs/methods.md#as-of): more than :data:`LATE_DAYS` days after the day of the 99.9th
    percentile (nearest rank) of the purchases, or after tomorrow by the machine's clock (in the
    data's zone; the day of slack covers a naive input written in another zone than the
    machine's). Such rows are most often typos (2204 for 2024); the error names how many, the
    latest few with their customers, and how to pass ``as_of``."""
    if dates.latest_us is None or dates.first_us is None:
        return
    day_one = _EPOCH.date()
    clock_day = ((today or _today(time_zone)) - day_one).days + 1
    latest_day = dates.latest_us // MICROS_PER_DAY
    above = dates.rows // LATE_SHARE  # purchases allowed above the percentile (nearest rank)
    if latest_day <= clock_day:
        # The percentile is on or after the first day, and it is on or after a day d exactly
        # when more than ``above`` purchases are on or after d: two cheap tests settle most data.
        if latest_day <= dates.first_us // MICROS_PER_DAY + LATE_DAYS:
            return
        if dates.rows_from(latest_day - LATE_DAYS) > above:
            return
    percentile_day = dates.day_from_top(above + 1)
    limit = min(percentile_day + LATE_DAYS, clock_day)
    count = dates.rows_from(limit + 1)
    if not count:
        return
    limit_date = day_one + timedelta(days=limit)
    reasons = []
    if percentile_day + LATE_DAYS <= limit:
        pct = _show(micros_to_datetime(percentile_day * MICROS_PER_DAY))
        reasons.append(
            f"more than {LATE_DAYS} days after the 99.9th percentile of the purchase dates ({pct})"
        )
    if clock_day <= limit:
        reasons.append(f"after tomorrow by this machine's clock ({limit_date.isoformat()})")
    shown = dates.latest().filter(pl.col("ts") > end_of_day(limit * MICROS_PER_DAY))
    listed = ", ".join(
        f"customer {_describe_value(customer)} on {_show(micros_to_datetime(ts))}"
        for customer, ts in shown.iter_rows()
    )
    more = f" and {count - shown.height} more" if count > shown.height else ""
    latest = _show(micros_to_datetime(dates.latest_us))
    raise WinbackInputError(
        f"{count} purchase(s) dated after {limit_date.isoformat()} ("
        f"{' and '.join(reasons)}) would set the default as_of ({latest}): {listed}{more}. "
        "They look like typos in the purchase time; correct or remove them, or pass as_of= "
        "(CLI: --as-of) with the snapshot date you mean (rows after it are left out and "
        "counted as rows_after_as_of). See docs/methods.md#as-of."
    )


def snapshot_end_at(
    as_of: date | datetime | str | None,
    time_zone: str | None,
    dates: PurchaseDates,
    *,
    name: str = "as_of",
) -> int:
    """The snapshot cut-off in local wall-clock µs, by the one rule of docs/methods.md#as-of:
    rows at or before it are in the snapshot.

    ``as_of`` given: :func:`as_of_to_micros` (a date is the end of that day); a cut-off before
    the first purchase is refused (the snapshot would hold nobody). Default: the end of the
    latest purchase's day, the same cut-off as ``as_of`` = that date, after
    :func:`check_default_snapshot`; 0 when there is no purchase. ``name`` is the argument the
    explicit value came from, for messages.
    """
    if as_of is not None:
        cut = as_of_to_micros(as_of, time_zone)
        if dates.first_us is not None and cut < dates.first_us:
            shown = as_of if isinstance(as_of, str) else as_of.isoformat()
            first = _show(micros_to_datetime(dates.first_us))
            raise WinbackConfigError(
                f"{name}={shown} is before the first purchase ({first}): the purchases run "
                f"{dates.describe_span()}, so the snapshot would hold no customer; pass "
                f"{name}= (CLI: --{name.replace('_', '-')}) on or after {first}"
            )
        return cut
    if dates.latest_us is None:
        return 0
    check_default_snapshot(dates, time_zone)
    return end_of_day(dates.latest_us)


# --------------------------------------------------------------------------------------------
# Text times (docs/methods.md#time-zones)

#: What the default rule accepts, for messages.
ISO_TIME_HINT = "ISO 8601 (YYYY-MM-DD, optionally THH:MM[:SS[.fff]] and Z or ±HH:MM)"

_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_CLOCK = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
_OFFSET = r"(?:Z|[+-][0-9]{2}:?[0-9]{2})"
#: Naive ISO 8601: a date, or a date and a wall-clock time.
_ISO_NAIVE = rf"^\s*{_DATE}(?:[T ]{_CLOCK})?\s*$"
#: ISO 8601 with an offset: an instant.
_ISO_OFFSET = rf"^\s*{_DATE}[T ]{_CLOCK}{_OFFSET}\s*$"
#: Text that looks like a date in another layout (day or month first, slashes or dots, a year
#: first with slashes or one-digit fields, or YYYYMMDD), with anything after it; ISO-shaped text
#: (YYYY-MM-DD…) is excluded by :func:`foreign_date_expr`.
_FOREIGN = (
    r"^(?:[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{2}|[0-9]{4})|[0-9]{4}[/.][0-9]{1,2}[/.][0-9]{1,2}"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{8})(?:[Tt ].*)?$"
)
_ISO_PREFIX = rf"^{_DATE}(?:[^0-9]|$)"
_CANONICAL = "%Y-%m-%d %H:%M:%S%.f"


def check_time_zone(tz: str | None) -> None:
    """``tz`` must be None or an IANA zone name (``"Europe/Paris"``, ``"UTC"``)."""
    if tz is None:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise WinbackConfigError(
            f"tz={tz!r} is not a known time zone; use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from exc


def check_time_format(time_format: str | None) -> None:
    """``time_format`` must be None or a strftime/chrono format with at least one directive."""
    if time_format is None:
        return
    if not isinstance(time_format, str) or "%" not in time_format:
        raise WinbackConfigError(
            f"time_format={time_format!r} is not a format; use strftime directives, e.g. "
            "'%d/%m/%Y' or '%m/%d/%Y %H:%M'"
        )


def _local(instants: pl.Expr, zone: str | None) -> pl.Expr:
    """Instants (UTC) as local wall-clock datetimes of ``zone`` (UTC when None)."""
    return instants.dt.convert_time_zone(zone or "UTC").dt.replace_time_zone(None)


def iso_time_expr(text: pl.Expr, zone: str | None) -> pl.Expr:
    """ISO 8601 text as local wall-clock datetimes (µs), null where a row does not follow it.

    Accepted, row by row (surrounding spaces ignored): ``YYYY-MM-DD`` (midnight), a date and a
    time joined by ``T`` or a space (``HH:MM``, ``HH:MM:SS``, a fraction after ``.`` up to
    nanoseconds, truncated to µs), and the same with an offset (``Z``, ``±HH:MM``,
    ``±HHMM``). A naive time is local wall-clock time as it stands; a time with an offset is an
    instant, converted to ``zone`` (UTC when None) and read on its wall clock.
    """
    length = text.str.len_bytes()
    naive = text.str.contains(_ISO_NAIVE)
    # The common layouts parse with fixed formats (fast); the rest is first made canonical.
    seconds = pl.when(naive & (length == 19)).then(text).str.replace("T", " ", literal=True)
    day = pl.when(naive & (length == 10)).then(text)
    other = pl.when(naive & (length != 19) & (length != 10)).then(text)
    offset = pl.when(text.str.contains(_ISO_OFFSET)).then(text)
    aware = _canonical(offset).str.to_datetime(f"{_CANONICAL}%z", strict=False, time_unit="us")
    return pl.coalesce(
        seconds.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"),
        day.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us"),
        _canonical(other).str.to_datetime(_CANONICAL, strict=False, time_unit="us"),
        _local(aware, zone),
    )


def _canonical(text: pl.Expr) -> pl.Expr:
    """ISO text as ``YYYY-MM-DD HH:MM:SS[.f][±HH:MM]`` (the layouts of :func:`iso_time_expr`)."""
    return (
        text.str.strip_chars()
        .str.replace(rf"^({_DATE})$", "${1} 00:00:00")
        .str.replace("T", " ", literal=True)
        .str.replace(rf"^({_DATE} [0-9]{{2}}:[0-9]{{2}})([^:0-9]|$)", "${1}:00${2}")
        .str.replace("Z", "+00:00", literal=True)
    )


def format_time_expr(text: pl.Expr, time_format: str, zone: str | None) -> pl.Expr:
    """Text parsed exactly with ``time_format`` (surrounding spaces ignored) as local wall-clock
    datetimes (µs); null where a row does not match. A format with an offset (``%z``) gives
    instants, converted to ``zone`` (UTC when None) like ISO text with an offset."""
    parsed = text.str.strip_chars().str.to_datetime(time_format, strict=False, time_unit="us")
    probe = pl.Series([], dtype=pl.String).str.to_datetime(
        time_format, strict=False, time_unit="us"
    )
    aware = isinstance(probe.dtype, pl.Datetime) and probe.dtype.time_zone is not None
    return _local(parsed, zone) if aware else parsed


def foreign_date_expr(text: pl.Expr) -> pl.Expr:
    """True where text looks like a date in a layout other than ISO 8601 (``01/02/2024``,
    ``2024/01/02``, ``2024-1-2``, ``20240102``): such a column is refused, not guessed."""
    stripped = text.str.strip_chars()
    return stripped.str.contains(_FOREIGN) & ~stripped.str.contains(_ISO_PREFIX)


_FOREIGN_PARTS = re.compile(r"^([0-9]{1,4})([/.\-])([0-9]{1,2})\2([0-9]{1,4})(.*)$")
_COMPACT_PARTS = re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})(.*)$")
_CLOCK_PARTS = re.compile(
    r"^(?P<sep>[Tt ])[0-9]{1,2}:[0-9]{2}(?P<s>:[0-9]{2}(?P<f>[.][0-9]+)?)?(?P<ampm> ?[AaPp][Mm])?$"
)


def _clock_format(tail: str) -> str | None:
    """The format of a time after a date (``" 14:30"`` → ``" %H:%M"``); None if unknown."""
    if not tail:
        return ""
    match = _CLOCK_PARTS.match(tail)
    if match is None:
        return None
    hour = "%I" if match["ampm"] else "%H"
    clock = f"{match['sep']}{hour}:%M"
    if match["s"]:
        clock += ":%S%.f" if match["f"] else ":%S"
    if match["ampm"]:
        clock += " %p" if match["ampm"][0].isspace() else "%p"
    return clock


def _candidate_formats(sample: str) -> list[tuple[str, str]]:
    """(reading, format) pairs under which ``sample`` could be a date (or a date and time)."""
    text = sample.strip()
    parts = _FOREIGN_PARTS.match(text)
    if parts is not None:
        first, sep, _, last, tail = parts.groups()
        clock = _clock_format(tail)
        if clock is None:
            return []
        if len(first) == 4:
            return [("year first", f"%Y{sep}%m{sep}%d{clock}")]
        year = "%y" if len(last) == 2 else "%Y"
        return [
            ("month first", f"%m{sep}%d{sep}{year}{clock}"),
            ("day first", f"%d{sep}%m{sep}{year}{clock}"),
        ]
    compact = _COMPACT_PARTS.match(text)
    if compact is not None:
        clock = _clock_format(compact.group(4))
        return [] if clock is None else [("year first", f"%Y%m%d{clock}")]
    return []


def _show(moment: datetime) -> str:
    return moment.date().isoformat() if moment.time() == time() else moment.isoformat(" ")


def describe_foreign_times(column: str, row: int | None, values: Sequence[str]) -> str:
    """Why a column of dates in another layout is refused, and what to pass: the first such
    value ``values[0]`` (at ``row``), how it reads day first and month first (only the readings
    that every one of ``values`` fits, when some do) and the ``time_format`` of each."""
    sample = values[0]
    where = f" (row {row})" if row is not None else ""
    head = (
        f"column {column!r} (the purchase time) holds text times that are not ISO 8601, e.g. "
        f"{sample!r}{where}; winback does not guess a date layout."
    )
    series = pl.Series(list(dict.fromkeys(v.strip() for v in values)), dtype=pl.String)
    readings = []
    for label, fmt in _candidate_formats(sample):
        parsed = series.str.to_datetime(fmt, strict=False, time_unit="us")
        first = parsed[series.to_list().index(sample.strip())]
        if first is None:
            continue
        misfit = series.filter(parsed.is_null())
        readings.append((label, fmt, first, misfit[0] if misfit.len() else None))
    fitting = [r for r in readings if r[3] is None]
    shown = fitting or readings
    if shown:
        options = " or ".join(
            f"{_show(moment)} ({label}, time_format={fmt!r})" for label, fmt, moment, _ in shown
        )
        text = f" {sample.strip()!r} reads as {options}"
        ruled_out = [r for r in readings if r[3] is not None]
        if fitting and ruled_out:
            text += "; " + "; ".join(
                f"{label} does not fit {misfit!r}" for label, _, _, misfit in ruled_out
            )
        elif not fitting:
            text += f", but no one layout fits every value (e.g. {ruled_out[0][3]!r})"
        head += text + "."
    return (
        f"{head} Pass time_format= (CLI: --time-format) with the column's format, or write the "
        f"times as {ISO_TIME_HINT}."
    )
