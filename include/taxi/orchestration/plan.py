"""Which (service, month) pairs a run handles: the Params, the partition key or the events.

Planning is the boundary where a month arrives as text (a Param, the run's partition key, an
asset event's extra, the run's interval): it is checked here, before any I/O, and handed to
the mapped load tasks as a ``ServiceMonth`` (an XCom, so text), which each task parses back
with ``parse_pair``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.sdk.exceptions import AirflowFailException

from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.settings import SERVICES

if TYPE_CHECKING:
    from airflow.sdk import Context

ALL_SERVICES = "all"


class ServiceMonth(TypedDict):
    """One (service, month) a run loads, as ``plan`` hands it to a mapped task (an XCom, so
    text); the task parses it back into a ``Service`` and a ``Month`` first thing."""

    service: str
    month: str


Plan = list[ServiceMonth]


def parse_pair(service: str, month: str) -> tuple[Service, Month]:
    """A mapped task's arguments, checked: the only place a task reads its month's text."""
    return Service.parse(service), Month.parse(month)


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
    service: Any,
    month: Any,
    interval_start: datetime | None,
    run_after: datetime | None,
    partition_key: str | None = None,
) -> Plan:
    """Validate the Params and say which (service, month) pairs this run loads.

    The ``month`` Param wins; else the run's partition key (a scheduled, catchup or backfill
    run of a partitioned DAG); else its data-interval month; a manual run with neither loads
    the last complete month before it was triggered.
    """
    services = services_for(service)
    if month not in (None, ""):
        chosen = _parse(month, "month")
    elif partition_key:
        chosen = _parse(partition_key, "partition key")
    elif interval_start is not None:
        chosen = Month.of(interval_start)
    else:
        chosen = Month.of(run_after or datetime.now()).shift(-1)
    return [{"service": s, "month": str(chosen)} for s in services]


def _parse(text: Any, what: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise AirflowFailException(f"{what}: {exc}") from None


def year_months(key: Any) -> list[Month]:
    """The twelve months of a year partition's key (``YYYY``), checked."""
    first = _parse(f"{key}-01", "year partition key")
    return Month.span(first, first.shift(11))


def plan_months(context: Context) -> Plan:
    """``plan`` of the monthly DAGs: the Params, else the partition key, else the data interval,
    else the trigger time."""
    dag_run = context["dag_run"]
    return run_month(
        context["params"].get("service"),
        context["params"].get("month"),
        context.get("data_interval_start"),
        dag_run.run_after,
        getattr(dag_run, "partition_key", None),
    )


def event_months(service: Any, events: Iterable[Any]) -> Plan:
    """(service, month) pairs named by the lake's asset events, once each, oldest first.

    Several events can reach one run (the scheduler batches them); the ``service`` Param, if
    not "all", keeps only that service.
    """
    services = services_for(service)
    pairs: set[tuple[Month, str]] = set()
    for event in events:
        extra = getattr(event, "extra", None) or {}
        if extra.get("service") in services:
            try:
                pairs.add((Month.parse(extra.get("month")), str(extra["service"])))
            except ValueError:
                continue
    return [{"service": s, "month": str(m)} for m, s in sorted(pairs)]


def plan_lake_loads(context: Context, service: str) -> Plan:
    """lake_to_bigquery's ``plan_<service>``: that service's months to load.

    The ``month`` Param if given; else the run's partition key (the lake month that triggered
    it, or the key of a manual run), for the services its events name (all four without
    events); else, for unpartitioned events, the months they name.
    """
    triggering: Mapping[Any, Iterable[Any]] = context["triggering_asset_events"]
    events = [event for asset in triggering for event in triggering[asset]]
    params = context["params"]
    key = getattr(context["dag_run"], "partition_key", None)
    if params.get("month") or not events:
        planned = plan_months(context)
    elif key:
        month = str(_parse(key, "partition key"))
        named = {(getattr(event, "extra", None) or {}).get("service") for event in events}
        planned = [
            {"service": s, "month": month}
            for s in services_for(params.get("service"))
            if s in named
        ]
    else:
        planned = event_months(params.get("service"), events)
    return [pair for pair in planned if pair["service"] == service]
