"""Months as the pipeline names them: ``YYYY-MM`` strings, checked before any I/O."""

from __future__ import annotations

import re
from datetime import date, datetime

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(value: object) -> date:
    """First day of the month named ``YYYY-MM``; a clear ValueError for anything else."""
    if not isinstance(value, str) or not (match := _MONTH.match(value)):
        raise ValueError(
            f"month {value!r} is not a month: expected YYYY-MM with a month 01-12, e.g. 2021-01"
        )
    year = int(match.group(1))
    if year < 2009:
        raise ValueError(f"month {value!r} is before 2009, the first month the TLC published")
    return date(year, int(match.group(2)), 1)


def month_name(day: date | datetime) -> str:
    """``YYYY-MM`` of the month a date or timestamp falls in."""
    return f"{day.year:04d}-{day.month:02d}"


def partition_suffix(month: date) -> str:
    """``YYYY_MM``: the month as it appears in table names."""
    return f"{month.year:04d}_{month.month:02d}"
