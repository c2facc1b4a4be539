"""The yearly models: the event taxi_models emits for each month it built, and which year a
taxi_models_yearly run rebuilds.

The yearly mart rolls up the monthly mart, so a year is ready when all twelve of its months'
models were built, not when they were loaded: taxi_models announces a month only after its
models and tests passed, and taxi_models_yearly's timetable (a rollup of the month keys into
years, schedule.year_of_months) waits for all twelve.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.taxi.months import Month
from include.taxi.orchestration.assets import MODELS_TRIP_MONTHS

YEAR_PATTERN = r"^\d{4}$"
"""A year: a taxi_models_yearly partition key (the rollup of ``YYYY-MM``) and its Param."""


def announce_models_months(context: Mapping[str, Any]) -> list[str]:
    """taxi_models' ``announce``: one event on MODELS_TRIP_MONTHS per month its ``plan`` chose,
    partitioned by the month (a manual run's too, whose own partition key is empty), so the
    rollup counts exactly the months whose models were built."""
    planned = str(context["ti"].xcom_pull(task_ids="plan") or "")
    months = sorted(str(Month.parse(month)) for month in planned.split(",") if month)
    if not months:
        raise AirflowFailException("taxi_models planned no month: nothing to announce")
    event = context["outlet_events"][MODELS_TRIP_MONTHS]
    event.extra = {"months": months}
    event.add_partitions(months)
    return months


def models_year(context: Mapping[str, Any]) -> str:
    """``plan`` of taxi_models_yearly: the year Param, else the run's partition key (the year
    the rollup completed), as dbt's var year. No year fails for good: rebuilding every year is
    a deliberate `dbt build --select tag:yearly` without var year, not a run that lost its key."""
    year = context["params"].get("year") or getattr(context.get("dag_run"), "partition_key", None)
    if not year:
        raise AirflowFailException(
            "taxi_models_yearly: no year to build: the run has no year Param and no partition "
            "key; trigger it with a year (YYYY)"
        )
    if not re.match(YEAR_PATTERN, str(year)):
        raise AirflowFailException(f"taxi_models_yearly: year {year!r}: expected YYYY")
    return str(year)
