"""Which source months a taxi_models run builds, and the event that names them.

``taxi_to_postgres`` announces its month once its loads are done (one event per run, with the
services it planned); ``taxi_models`` builds the months of the events that triggered it, several
at once when the scheduler batches them, or the month Param of a manual run.
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
    """``plan`` of taxi_models: the month Param, else the triggering events' months, as the
    comma-separated value of dbt's var month. No month at all fails for good: building every
    month is a deliberate `dbt build` without var month, not a run that lost its event."""
    if month := context["params"].get("month"):
        return str(Month.parse(month))
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
    context["outlet_events"][POSTGRES_TRIP_MONTHS].extra = {
        "month": months[0],
        "services": sorted({pair["service"] for pair in plan}),
    }
    return months[0]
