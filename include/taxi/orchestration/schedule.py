"""When the monthly DAGs run: one run per data month, from a configurable first month.

Read at DAG parse time, so it only touches the environment (no Variables, no database).
``TAXI_START_MONTH`` (default 2019-01) and ``TAXI_END_MONTH`` (default: open) bound the runs
catchup creates; ``TAXI_CATCHUP=false`` turns catchup off (month ranges then come from
``airflow backfill create``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import CronDataIntervalTimetable

MONTHLY = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
"""Interval [1st of M, 1st of M+1): the run for month M has logical date M-01 and starts after M."""


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


def catchup() -> bool:
    return os.environ.get("TAXI_CATCHUP", "true").strip().lower() not in ("false", "0", "no")


DAILY = "@daily"
"""taxi_daily: discovery once a day, no catchup (a missed day is covered by the next one's
look-back)."""
DAILY_START = datetime(2026, 1, 1, tzinfo=UTC)
