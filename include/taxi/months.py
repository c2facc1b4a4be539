"""Months as the pipeline names them: ``YYYY-MM`` strings, checked before any I/O."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FIRST_MONTH = date(2009, 1, 1)
"""The first month the TLC published: no log or lake object can hold an earlier one."""


def parse_month(value: object) -> date:
    """First day of the month named ``YYYY-MM``; a clear ValueError for anything else."""
    if not isinstance(value, str) or not (match := _MONTH.match(value)):
        raise ValueError(
            f"month {value!r} is not a month: expected YYYY-MM with a month 01-12, e.g. 2021-01"
        )
    year = int(match.group(1))
    if year < FIRST_MONTH.year:
        raise ValueError(f"month {value!r} is before 2009, the first month the TLC published")
    return date(year, int(match.group(2)), 1)


def next_month(day: date) -> date:
    """First day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def recorded_month(value: object, *, today: date | None = None) -> str:
    """``YYYY-MM`` of a month read back from a log row or lake object metadata.

    What was stored is outside input by the time it is read (any writer, any tool can put an
    object in a bucket), so it is parsed strictly before it drives anything: a ``YYYY-MM``
    string or a date, from 2009-01 to next month (a month in progress may already be loaded;
    nothing later can be). A ValueError says what is wrong with the value otherwise."""
    if isinstance(value, datetime):
        value = value.date()
    first = value.replace(day=1) if isinstance(value, date) else parse_month(value)
    latest = next_month(today or datetime.now(UTC).date())
    if first < FIRST_MONTH:
        raise ValueError(f"month {month_name(first)} is before 2009-01, the TLC's first month")
    if first > latest:
        raise ValueError(f"month {month_name(first)} is after {month_name(latest)} (next month)")
    return month_name(first)


def month_name(day: date | datetime) -> str:
    """``YYYY-MM`` of the month a date or timestamp falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def partition_suffix(month: date) -> str:
    """``YYYY_MM``: the month as it appears in table names."""
    return f"{month.year:04d}_{month.month:02d}"
