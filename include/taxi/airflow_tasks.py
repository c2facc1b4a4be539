"""The thin layer between Airflow and the pipeline: configuration in, outcomes out.

Reads Variables and Connections at run time (never at DAG parse time), validates Params before
any I/O, and maps the pipeline's errors to Airflow outcomes: a month the source has not
published is *skipped*, a bad file *fails without retries* (a retry cannot fix it), anything
else (network, database) fails and is retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.taxi.contract import SERVICES
from include.taxi.errors import BadSourceFile, SourceNotPublished
from include.taxi.months import month_name, parse_month
from include.taxi.source import DEFAULT_SOURCE_URL

POSTGRES_CONN_ID = "taxi_postgres"
ALL_SERVICES = "all"
T = TypeVar("T")


def source_base() -> str:
    return Variable.get("taxi_source_url", default=DEFAULT_SOURCE_URL)


def postgres_schema() -> str:
    return Variable.get("taxi_postgres_schema", default="public")


def postgres_conninfo(conn_id: str = POSTGRES_CONN_ID) -> str:
    """A libpq URI for the Airflow connection, keeping libpq options (sslmode, ...) from extra."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id, sqlalchemy_scheme="postgresql")
    uri = hook.get_uri()
    extras = {
        key: value
        for key, value in hook.connection.extra_dejson.items()
        if key not in hook.ignored_extra_options
    }
    return f"{uri}?{urlencode(extras)}" if extras else uri


def run_month(
    service: Any, month: Any, interval_start: datetime | None, run_after: datetime | None
) -> list[dict[str, str]]:
    """Validate the Params and say which (service, month) pairs this run loads.

    With no month given, the run loads its data-interval month; a manual run without a logical
    date loads the last complete month before it was triggered.
    """
    if service in (None, "", ALL_SERVICES):
        services = list(SERVICES)
    elif service in SERVICES:
        services = [service]
    else:
        raise AirflowFailException(
            f"service {service!r} is not one of {ALL_SERVICES}, {', '.join(SERVICES)}"
        )
    if month in (None, ""):
        if interval_start is not None:
            month = month_name(interval_start)
        else:
            reference = (run_after or datetime.now()).replace(day=1) - timedelta(days=1)
            month = month_name(reference)
    try:
        parse_month(month)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    return [{"service": s, "month": month} for s in services]


def outcome(work: Callable[[], T]) -> T:
    """Run ``work`` and turn the pipeline's errors into the Airflow outcome they deserve."""
    try:
        return work()
    except SourceNotPublished as exc:
        raise AirflowSkipException(str(exc)) from None
    except (BadSourceFile, ValueError) as exc:
        raise AirflowFailException(str(exc)) from None


def lookback_months() -> int:
    return int(Variable.get("taxi_daily_lookback_months", default="3"))


def months_to_trigger(today: datetime, run_id: str) -> list[dict[str, Any]]:
    """TriggerDagRunOperator kwargs, one per (service, month) new or republished at the source."""
    from include.taxi.discovery import changed_months, recent_months

    found = changed_months(
        list(SERVICES),
        recent_months(today.date(), lookback_months()),
        source_base=source_base(),
        conninfo=postgres_conninfo(),
        schema=postgres_schema(),
    )
    return [
        {
            "conf": {"service": m["service"], "month": m["month"]},
            "trigger_run_id": f"{run_id}__{m['service']}_{m['month']}",
        }
        for m in found
    ]
