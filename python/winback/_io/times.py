"""Time at the input edge: text times, occasion buckets, snapshot cut-offs, local wall-clock µs.

Timestamps reach the core as local wall-clock microseconds since 1970-01-01 (Int64), so buckets
and dates follow the customer's calendar (docs/methods.md#input). A snapshot cut-off ``as_of`` is
inclusive: a date means the end of that day.

Text times are read by one rule, row by row, whatever the row order, batch split or engine
(docs/methods.md#time-zones): ISO 8601 by default (:func:`iso_time_expr`), or exactly one
``time_format`` (:func:`format_time_expr`). Dates in another layout (``01/02/2024``) are never
guessed: :func:`foreign_date_expr` finds them and :func:`describe_foreign_times` says how they
could read and which ``time_format`` to pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import polars as pl

from winback.errors import WinbackConfigError

__all__ = [
    "ISO_TIME_HINT",
    "MICROS_PER_DAY",
    "as_of_to_micros",
    "check_time_format",
    "check_time_zone",
    "describe_foreign_times",
    "describe_moment",
    "foreign_date_expr",
    "format_time_expr",
    "iso_time_expr",
    "micros_to_datetime",
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
    """Local wall-clock µs since the epoch as a naive datetime."""
    return _EPOCH + timedelta(microseconds=micros)


def snapshot_end_at(
    as_of: date | datetime | str | None, time_zone: str | None, latest_us: int | None
) -> int:
    """:func:`snapshot_end` from the latest purchase time alone (local wall-clock µs, None for
    no rows): what a streaming pass over the input keeps."""
    if as_of is not None:
        return as_of_to_micros(as_of, time_zone)
    return 0 if latest_us is None else latest_us


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
