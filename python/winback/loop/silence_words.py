"""The silence put in words (docs/loop.md#contact-messages): the time since a customer's last
purchase as a person would say it, in English ("2 months and 7 days") and Chinese
("两个月零七天"), counted in calendar months and days."""

from __future__ import annotations

import calendar
from datetime import date

from winback.errors import WinbackConfigError

__all__ = ["LANGUAGES", "chinese_number", "silence_in_words", "span"]

#: The languages :func:`silence_in_words` speaks.
LANGUAGES = ("en", "zh")
_DIGITS = "零一二三四五六七八九"


def _add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months (the 31st becomes the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def span(since: date, until: date) -> tuple[int, int, int]:
    """(years, months, days) from ``since`` to ``until``: whole calendar months first, then
    the days left (Jan 31 → Mar 7 is 1 month and 7 days: Jan 31 + 1 month is Feb 29 or 28)."""
    if until < since:
        raise WinbackConfigError(f"the silence runs backwards: {since} is after {until}")
    months = (until.year - since.year) * 12 + until.month - since.month
    if _add_months(since, months) > until:
        months -= 1
    days = (until - _add_months(since, months)).days
    return months // 12, months % 12, days


def chinese_number(n: int, *, counting: bool = True) -> str:
    """``n`` (0 ≤ n < 10,000) in Chinese numerals; ``counting``: 2 alone is 两 (两个月)."""
    if not 0 <= n < 10_000:
        raise WinbackConfigError(f"{n} is outside 0 … 9,999")
    if n == 2 and counting:
        return "两"
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n - 10] if n > 10 else "")
    out, zero = "", False
    for unit, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // unit % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + name
    if counting and out.startswith("二") and n >= 1000:  # 两千
        out = "两" + out[1:]
    return out


def silence_in_words(since: date, until: date, language: str = "en") -> str:
    """The time from ``since`` (the last purchase) to ``until`` (the day) in words.

    Examples
    --------
    >>> from datetime import date
    >>> silence_in_words(date(2024, 1, 23), date(2024, 3, 30))
    '2 months and 7 days'
    >>> silence_in_words(date(2024, 1, 23), date(2024, 3, 30), "zh")
    '两个月零七天'
    """
    years, months, days = span(since, until)
    if language == "en":
        parts = [
            f"{n} {unit}{'s' if n != 1 else ''}"
            for n, unit in ((years, "year"), (months, "month"), (days, "day"))
            if n
        ]
        if not parts:
            return "0 days"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    if language == "zh":
        text = ""
        if years:
            text += chinese_number(years) + "年"
        if months:
            text += chinese_number(months) + "个月"
        if days:
            text += ("零" if text else "") + chinese_number(days) + "天"
        return text or "零天"
    raise WinbackConfigError(
        f"language={language!r} is not one winback speaks ({', '.join(LANGUAGES)})"
    )
