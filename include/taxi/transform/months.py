"""Which source months a taxi_models run builds, and the event that names them.

``taxi_to_postgres`` announces its month once its loads are done (one event per run, with the
services it planned, partitioned by the month); ``taxi_models`` is partitioned the same way and
builds its run's partition (or the months of unpartitioned events, or the month Param).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.taxi.months import Month
from include.taxi.orchestration.assets import POSTGRES_TRIP_MONTHS


def event_months(events: Iterable[Any]) -> list[str]:
    """The valid months named by asset events' extras, once each, oldest first."""
    months = set()
    for event in events:
        month = (getattr(event, "extra", None) or {}).get("month")
        try:
            months.add(Month.parse(month))
        except ValueError:
            continue
    return [str(month) for month in sorted(months)]


def models_months(context: Mapping[str, Any]) -> str:
    """``plan`` of taxi_models: the month Param, else the run's partition key (the month of the
    event that triggered it), else the triggering events' months, as the comma-separated value
    of dbt's var month. No month at all fails for good: building every month is a deliberate
    `dbt build` without var month, not a run that lost its event."""
    if month := context["params"].get("month"):
        return str(Month.parse(month))
    if key := getattr(context.get("dag_run"), "partition_key", None):
        try:
            return str(Month.parse(key))
        except ValueError as exc:
            raise AirflowFailException(f"taxi_models: partition key: {exc}") from None
    triggering: Mapping[Any, Iterable[Any]] = context.get("triggering_asset_events") or {}
    months = event_months(event for asset in triggering for event in triggering[asset])
    if not months:
        raise AirflowFailException(
            "taxi_models: no month to build: the run has no month Param and no "
            f"{POSTGRES_TRIP_MONTHS.name} event naming one; trigger it with a month (YYYY-MM)"
        )
    return ",".join(months)


def announce_postgres_month(context: Mapping[str, Any]) -> str:
    """taxi_to_postgres' last task: one event on POSTGRES_TRIP_MONTHS for the run's month (from
    its ``plan``) with the services it planned, so taxi_models builds that month once, after
    every load."""
    plan: list[dict[str, str]] = context["ti"].xcom_pull(task_ids="plan") or []
    months = sorted({pair["month"] for pair in plan})
    if len(months) != 1:
        raise AirflowFailException(f"taxi_to_postgres planned months {months}: expected one")
    event = context["outlet_events"][POSTGRES_TRIP_MONTHS]
    event.extra = {"month": months[0], "services": sorted({pair["service"] for pair in plan})}
    # Partitioned events reach only partitioned consumers (taxi_models is one): the month is
    # the event's partition, also in a manual run whose own partition key is empty.
    event.add_partitions(months[0])
    return months[0]
