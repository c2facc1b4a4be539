"""The month every path is keyed by: a ``Month`` value, parsed once where a month enters.

A month arrives as text at the boundaries (a Param, a partition key, a file name, a log row,
object metadata) and is checked there, before any I/O: below the task entry points months are
``Month`` values, compared, shifted and spelled by the methods here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """One calendar month; ``str(month)`` is ``YYYY-MM``, the only spelling the pipeline keeps."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month number {self.month} of {self.year} is not 1-12")

    @classmethod
    def parse(cls, value: object) -> Month:
        """The month named ``YYYY-MM``, from 2009-01 on; a clear ValueError for anything else."""
        if not isinstance(value, str) or not (match := _MONTH.match(value)):
            raise ValueError(
                f"month {value!r} is not a month: expected YYYY-MM with a month 01-12, e.g. 2021-01"
            )
        month = cls(int(match.group(1)), int(match.group(2)))
        if month < FIRST_MONTH:
            raise ValueError(f"month {value!r} is before 2009, the first month the TLC published")
        return month

    @classmethod
    def of(cls, day: date | datetime) -> Month:
        """The month a date or timestamp falls in."""
        return cls(day.year, day.month)

    @classmethod
    def recorded(cls, value: object, *, today: date | None = None) -> Month:
        """A month read back from a log row or lake object metadata.

        What was stored is outside input by the time it is read (any writer, any tool can put
        an object in a bucket), so it is parsed strictly before it drives anything: a
        ``YYYY-MM`` string or a date, from 2009-01 to next month (a month in progress may
        already be loaded; nothing later can be). A ValueError says what is wrong otherwise."""
        month = cls.of(value) if isinstance(value, date) else cls.parse(value)
        latest = cls.of(today or datetime.now(UTC).date()).next()
        if month < FIRST_MONTH:
            raise ValueError(f"month {month} is before 2009-01, the TLC's first month")
        if month > latest:
            raise ValueError(f"month {month} is after {latest} (next month)")
        return month

    @staticmethod
    def span(first: Month, last: Month) -> list[Month]:
        """Every month from ``first`` to ``last``, both included; empty if ``last`` is earlier."""
        count = last.index - first.index + 1
        return [first.shift(i) for i in range(max(count, 0))]

    @property
    def index(self) -> int:
        """Months since year 0: the difference of two indexes counts the months between."""
        return self.year * 12 + self.month - 1

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def suffix(self) -> str:
        """``YYYY_MM``: the month as it appears in table and partition names."""
        return f"{self.year:04d}_{self.month:02d}"

    def shift(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        year, month0 = divmod(self.index + months, 12)
        return Month(year, month0 + 1)

    def next(self) -> Month:
        return self.shift(1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


FIRST_MONTH = Month(2009, 1)
"""The first month the TLC published: no log or lake object can hold an earlier one."""
