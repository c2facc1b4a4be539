"""When the monthly DAGs run: one run per month partition, from a configurable first month.

Read at DAG parse time, so it only touches the environment (no Variables, no database).
``TAXI_START_MONTH`` (default 2019-01) and ``TAXI_END_MONTH`` (default: open) bound the runs
catchup creates, both inclusive; ``TAXI_CATCHUP=false`` turns catchup off (month ranges then
come from ``airflow backfill create``).

The ingest DAGs are partitioned (Airflow 3.2+): each run has a ``partition_key`` ``YYYY-MM``,
the month it loads, and no logical date or data interval. The run for month M is due on the
first of M+1 (``run_offset=-1``: the month must be over before it is published), so the DAG's
``start_date``/``end_date`` are one month after the first/last month (``partition_bounds``).
A backfill walks partition dates instead (its ``from_date``..``to_date`` are the months
themselves).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import (
    CronPartitionTimetable,
    RollupMapper,
    StartOfYearMapper,
    WaitForAll,
    YearWindow,
)

MONTH_KEY_FORMAT = "%Y-%m"
"""A month partition's key: ``str(Month)``, which ``Month.parse`` reads back."""

MONTHLY_PARTITIONS = CronPartitionTimetable(
    "0 0 1 * *", timezone="UTC", run_offset=-1, key_format=MONTH_KEY_FORMAT
)
"""One run per month partition: the run due on 2021-02-01 has the key ``2021-01``."""


def year_of_months() -> RollupMapper:
    """Month keys ``2021-01``..``2021-12`` roll up into the year key ``2021``: the run waits
    until every one of the twelve has had an event (``WaitForAll``)."""
    return RollupMapper(
        upstream_mapper=StartOfYearMapper(input_format=MONTH_KEY_FORMAT),
        window=YearWindow(),
        wait_policy=WaitForAll(),
    )


def _month_start(variable: str, default: str | None) -> datetime | None:
    value = os.environ.get(variable) or default
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{variable}={value!r}: expected YYYY-MM, e.g. 2019-01") from None


def start_date() -> datetime:
    start = _month_start("TAXI_START_MONTH", "2019-01")
    assert start is not None  # the default is a month
    return start


def end_date() -> datetime | None:
    return _month_start("TAXI_END_MONTH", None)


def _next_month(day: datetime) -> datetime:
    return day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)


def partition_start_date() -> datetime:
    """A partitioned DAG's ``start_date``: the day the run for TAXI_START_MONTH is due."""
    return _next_month(start_date())


def partition_end_date() -> datetime | None:
    """A partitioned DAG's ``end_date``: the day the run for TAXI_END_MONTH is due."""
    end = end_date()
    return None if end is None else _next_month(end)


def catchup() -> bool:
    return os.environ.get("TAXI_CATCHUP", "true").strip().lower() not in ("false", "0", "no")


DAILY = "@daily"
"""taxi_daily: discovery once a day, no catchup (a missed day is covered by the next one's
look-back)."""
DAILY_START = datetime(2026, 1, 1, tzinfo=UTC)
