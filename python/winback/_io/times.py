"""Time at the input edge: occasion buckets, snapshot cut-offs, local wall-clock µs.

Timestamps reach the core as local wall-clock microseconds since 1970-01-01 (Int64), so buckets
and dates follow the customer's calendar (docs/methods.md#input). A snapshot cut-off ``as_of`` is
inclusive: a date means the end of that day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from winback.errors import WinbackConfigError

__all__ = [
    "MICROS_PER_DAY",
    "as_of_to_micros",
    "describe_moment",
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
