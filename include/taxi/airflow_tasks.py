"""The thin layer between Airflow and the pipeline: configuration in, outcomes out.

Reads Variables and Connections at run time (never at DAG parse time), validates Params before
any I/O, and maps the pipeline's errors to Airflow outcomes: a month the source has not
published is *skipped*, a bad file *fails without retries* (a retry cannot fix it), anything
else (network, database) fails and is retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.taxi.contract import SERVICES
from include.taxi.errors import BadSourceFile, LakeSchemaMismatch, NotInLake, SourceNotPublished
from include.taxi.months import month_name, parse_month
from include.taxi.source import DEFAULT_SOURCE_URL

POSTGRES_CONN_ID = "taxi_postgres"
GCP_CONN_ID = "google_cloud_default"
DAILY_TARGETS = {"postgres": "taxi_to_postgres", "lake": "taxi_to_lake"}
DEFAULT_LAKE = Path(__file__).resolve().parents[2] / ".data" / "lake"
ALL_SERVICES = "all"
T = TypeVar("T")


def source_base() -> str:
    return Variable.get("taxi_source_url", default=DEFAULT_SOURCE_URL)


def postgres_schema() -> str:
    return Variable.get("taxi_postgres_schema", default="public")


def lake_url() -> str:
    """Variable ``taxi_lake_url``: ``gs://bucket/prefix``, or a folder (default .data/lake)."""
    return Variable.get("taxi_lake_url", default=DEFAULT_LAKE.as_uri())


def bigquery_dataset() -> str:
    return Variable.get("taxi_bq_dataset", default="nyc_taxi")


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


def services_for(service: Any) -> list[str]:
    """The services the ``service`` Param names, validated against the allow-list."""
    if service in (None, "", ALL_SERVICES):
        return list(SERVICES)
    if service in SERVICES:
        return [service]
    raise AirflowFailException(
        f"service {service!r} is not one of {ALL_SERVICES}, {', '.join(SERVICES)}"
    )


def run_month(
    service: Any, month: Any, interval_start: datetime | None, run_after: datetime | None
) -> list[dict[str, str]]:
    """Validate the Params and say which (service, month) pairs this run loads.

    With no month given, the run loads its data-interval month; a manual run without a logical
    date loads the last complete month before it was triggered.
    """
    services = services_for(service)
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


def plan_months(context: Any) -> list[dict[str, str]]:
    """``run_month`` for a task's context: its Params, data interval and trigger time."""
    return run_month(
        context["params"].get("service"),
        context["params"].get("month"),
        context.get("data_interval_start"),
        context["dag_run"].run_after,
    )


def outcome(work: Callable[[], T]) -> T:
    """Run ``work`` and turn the pipeline's errors into the Airflow outcome they deserve."""
    try:
        return work()
    except (SourceNotPublished, NotInLake) as exc:
        raise AirflowSkipException(str(exc)) from None
    except (BadSourceFile, LakeSchemaMismatch, ValueError) as exc:
        raise AirflowFailException(str(exc)) from None


def event_months(service: Any, events: Any) -> list[dict[str, str]]:
    """(service, month) pairs named by the lake's asset events, once each, oldest first.

    Several events can reach one run (the scheduler batches them); the ``service`` Param, if
    not "all", keeps only that service.
    """
    services = services_for(service)
    pairs: set[tuple[str, str]] = set()
    for event in events:
        extra = getattr(event, "extra", None) or {}
        if extra.get("service") in services:
            month = extra.get("month")
            try:
                parse_month(month)
            except ValueError:
                continue
            pairs.add((extra["service"], month))
    return [{"service": s, "month": m} for s, m in sorted(pairs, key=lambda p: (p[1], p[0]))]


def plan_lake_loads(context: Any) -> list[dict[str, str]]:
    """lake_to_bigquery's months: the ``month`` Param if given, else the months named by the
    triggering asset events, else the data interval's (a scheduled or backfill run)."""
    triggering = context["triggering_asset_events"]
    events = [event for asset in triggering for event in triggering[asset]]
    params = context["params"]
    if not params.get("month") and events:
        return event_months(params.get("service"), events)
    return plan_months(context)


def lookback_months() -> int:
    return int(Variable.get("taxi_daily_lookback_months", default="3"))


def daily_targets() -> list[str]:
    """Variable ``taxi_daily_targets``: which monthly DAGs taxi_daily feeds (comma-separated)."""
    value = Variable.get("taxi_daily_targets", default="postgres")
    targets = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in targets if t not in DAILY_TARGETS]
    if unknown:
        raise AirflowFailException(
            f"taxi_daily_targets names {', '.join(unknown)}: use {', '.join(DAILY_TARGETS)}"
        )
    return targets


def months_to_trigger(today: datetime, run_id: str) -> list[dict[str, Any]]:
    """TriggerDagRunOperator kwargs, one per (target DAG, service, month) new or republished at
    the source since that target last took it."""
    from include.taxi import discovery

    found = []
    for target in daily_targets():
        held = (
            discovery.postgres_versions(postgres_conninfo(), postgres_schema())
            if target == "postgres"
            else discovery.lake_versions(lake_url())
        )
        months = discovery.changed_months(
            list(SERVICES),
            discovery.recent_months(today.date(), lookback_months()),
            source_base=source_base(),
            held=held,
        )
        found += [
            {
                "trigger_dag_id": DAILY_TARGETS[target],
                "conf": {"service": m["service"], "month": m["month"]},
                "trigger_run_id": f"{run_id}__{target}_{m['service']}_{m['month']}",
            }
            for m in months
        ]
    return found
