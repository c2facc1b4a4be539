"""Run a DAG in-process (``dag.test``) and read what happened: one helper for every DAG test."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from include.taxi.months import Month


def run_month(dag: Any, month: str, **conf: Any) -> Any:
    """A manual run for ``month``; the month is passed as a Param, as `make month` does. The
    logical date is the day the month's partition run is due (the 1st of the next month): a
    date before the DAG's start_date would make a run without tasks."""
    due = datetime.combine(Month.parse(month).next().first_day, time(), tzinfo=UTC)
    return dag.test(logical_date=due, run_conf={"month": month, **conf})


def task_states(run: Any) -> dict[str, str]:
    """``{"task_id[map_index]": state}`` of a finished run."""
    return {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in run.get_task_instances()}


def asset_events(run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(asset name, extra)`` of every asset event the run emitted, in the order emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.id)
        )
        return [(name, dict(extra)) for name, extra in rows]


def lake_month_events(run_id: str) -> list[dict[str, Any]]:
    """The extras of the run's events on the lake's month asset (what lake_to_bigquery reads)."""
    return [extra for name, extra in asset_events(run_id) if name == "taxi_lake_trip_months"]
