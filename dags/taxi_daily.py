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

from datetime import datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from include.taxi.notify import FailureNotifier

default_args = {
    "owner": "data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "on_failure_callback": FailureNotifier(),
}


@dag(
    dag_id="taxi_daily",
    description="Trigger the monthly DAGs for months new or republished at the source",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["taxi", "postgres", "lake", "discovery"],
    doc_md=__doc__,
)
def taxi_daily() -> None:
    @task
    def find_changed_months(**context) -> list[dict]:
        """HEAD each recent month; compare it with what each target holds."""
        from include.taxi.airflow_tasks import months_to_trigger

        today = context.get("logical_date") or context["dag_run"].run_after
        return months_to_trigger(today, context["run_id"])

    TriggerDagRunOperator.partial(
        task_id="load_month",
        skip_when_already_exists=True,
    ).expand_kwargs(find_changed_months())


taxi_daily()
