"""taxi_models_yearly: the yearly dbt mart, once all twelve months' models of a year are built.

A yearly rollup of taxi_models' month events (``PartitionedAssetTimetable`` with the
``RollupMapper`` of taxi_year_complete): ``taxi_models`` announces a month on
``taxi_models_trip_months`` only after all its models and tests passed, and the run for ``2021``
is created once all of ``2021-01``..``2021-12`` have been announced. It rebuilds that year only
(dbt's var year; the year Param of a manual run wins) with the models tagged ``yearly``, each
model and its tests a task rendered by Cosmos. Logic lives in include/taxi/transform.
"""

from __future__ import annotations

# As in taxi_models: imported once by the dag processor before forking a parse.
import airflow.providers.openlineage.extractors.base  # noqa: F401
from airflow.sdk import Param, PartitionedAssetTimetable, dag, get_current_context, task

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import MODELS_TRIP_MONTHS
from include.taxi.orchestration.defaults import DEFAULT_ARGS
from include.taxi.transform.cosmos_group import YEARLY, models_group
from include.taxi.transform.years import YEAR_PATTERN


@dag(
    dag_id="taxi_models_yearly",
    description="Yearly dbt mart (zone revenue per year) once all twelve months' models are built",
    schedule=PartitionedAssetTimetable(
        assets=MODELS_TRIP_MONTHS, default_partition_mapper=schedule.year_of_months()
    ),
    start_date=schedule.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "postgres", "dbt", "rollup"],
    params={
        "year": Param(
            None,
            type=["null", "string"],
            pattern=YEAR_PATTERN,
            title="Year (YYYY)",
            description="The year to rebuild. Empty: the run's partition key.",
        ),
    },
    doc_md=__doc__,
)
def taxi_models_yearly() -> None:
    @task
    def plan() -> str:
        """The year to build (dbt's var year); fails without one."""
        from include.taxi.transform.years import models_year

        return models_year(get_current_context())

    plan() >> models_group("{{ ti.xcom_pull(task_ids='plan') }}", YEARLY)


taxi_models_yearly()
