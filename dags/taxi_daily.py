"""taxi_daily: each day, find months new or republished at the source and have them loaded.

HEADs the source for the last few months (Variable ``taxi_daily_lookback_months``, default 3)
and compares size and ETag/Last-Modified with the ingestion log; each month that changed gets
its own ``taxi_to_postgres`` run (service and month passed as conf). A day with nothing new
finishes in seconds and triggers nothing. The monthly DAG keeps its own schedule and backfills.
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
    description="Trigger taxi_to_postgres for months new or republished at the source",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["taxi", "postgres", "discovery"],
    doc_md=__doc__,
)
def taxi_daily() -> None:
    @task
    def find_changed_months(**context) -> list[dict]:
        """HEAD each recent month and compare it with the ingestion log."""
        from include.taxi.airflow_tasks import months_to_trigger

        return months_to_trigger(context["dag_run"].run_after, context["run_id"])

    TriggerDagRunOperator.partial(
        task_id="load_month",
        trigger_dag_id="taxi_to_postgres",
        skip_when_already_exists=True,
    ).expand_kwargs(find_changed_months())


taxi_daily()
