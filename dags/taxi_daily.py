"""taxi_daily: each day, find months new or republished at the source and have them loaded.

HEADs the source for the last few months (Variable ``taxi_daily_lookback_months``, default 3)
and compares size and ETag/Last-Modified with what each target holds: the Postgres ingestion
log for ``taxi_to_postgres``, the lake objects' metadata for ``taxi_to_lake`` (Variable
``taxi_daily_targets``: ``postgres`` by default, ``postgres,lake`` or ``lake``). Each month that
changed gets its own run of that DAG (service and month passed as conf); a month written to
the lake then reaches BigQuery through its asset event. A day with nothing new finishes in
seconds and triggers nothing. The monthly DAGs keep their own schedules and backfills.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, get_current_context, task

from include.taxi.orchestration import schedule
from include.taxi.orchestration.defaults import DAILY_ARGS


@dag(
    dag_id="taxi_daily",
    description="Trigger the monthly DAGs for months new or republished at the source",
    schedule=schedule.DAILY,
    start_date=schedule.DAILY_START,
    catchup=False,
    max_active_runs=1,
    default_args=DAILY_ARGS,
    tags=["taxi", "postgres", "lake", "discovery"],
    doc_md=__doc__,
)
def taxi_daily() -> None:
    @task
    def find_changed_months() -> list[dict[str, Any]]:
        """HEAD each recent month; compare it with what each target holds."""
        from include.taxi.orchestration import tasks

        return tasks.find_changed_months(get_current_context())

    TriggerDagRunOperator.partial(
        task_id="load_month",
        skip_when_already_exists=True,
    ).expand_kwargs(find_changed_months())


taxi_daily()
