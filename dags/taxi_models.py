"""taxi_models: the dbt transform layer (transform/) over a month that landed in Postgres.

Scheduled on taxi_to_postgres' asset event, partitioned by month (``PartitionedAssetTimetable``):
one run per month announced, its ``partition_key`` the month it builds and tests (the month
Param of a manual run wins). A partitioned event reaches only partitioned consumers, so this
DAG must be one while taxi_to_postgres is; every model and its tests are tasks rendered by
Cosmos (not the yearly mart: taxi_models_yearly builds it); ``announce`` emits the month on
``taxi_models_trip_months`` once they all passed (the yearly rollup counts it) and a last task
logs the month built (or failed) for the Taxi months page. Logic lives in include/taxi/transform.
"""

from __future__ import annotations

# Cosmos's operators import this (~2 s). Named here, it is one of the airflow.* imports the
# dag processor imports once in its parent before forking a parse (parsing_pre_import_modules),
# so a parse of this file pays only Cosmos itself (~0.2 s).
import airflow.providers.openlineage.extractors.base  # noqa: F401
from airflow.sdk import Param, PartitionedAssetTimetable, dag, get_current_context, task, teardown

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import MODELS_TRIP_MONTHS, POSTGRES_TRIP_MONTHS, table_assets
from include.taxi.orchestration.defaults import DEFAULT_ARGS, MONTH_PATTERN
from include.taxi.transform.cosmos_group import models_group


@dag(
    dag_id="taxi_models",
    description="dbt models (staging, zones, fct_trips, monthly zone revenue) for a loaded month",
    schedule=PartitionedAssetTimetable(assets=POSTGRES_TRIP_MONTHS),
    start_date=schedule.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "postgres", "dbt"],
    params={
        "month": Param(
            None,
            type=["null", "string"],
            pattern=MONTH_PATTERN,
            title="Month (YYYY-MM)",
            description="The source month to build. Empty: the run's partition key.",
        ),
    },
    doc_md=__doc__,
)
def taxi_models() -> None:
    @task(inlets=table_assets("postgres"))  # the raw tables dbt reads
    def plan() -> str:
        """The months to build, comma-separated (dbt's var month); fails without one."""
        from include.taxi.transform.months import models_months

        return models_months(get_current_context())

    @teardown
    def record() -> dict[str, dict[str, int]]:
        """Log the months built (or failed) for the Taxi months page; never decides the run."""
        from include.taxi.transform.built import record_models

        return record_models(get_current_context())

    @task(outlets=[MODELS_TRIP_MONTHS])
    def announce() -> list[str]:
        """Announce the months built, for the yearly rollup; not after a failed model or test."""
        from include.taxi.transform.years import announce_models_months

        return announce_models_months(get_current_context())

    models = plan() >> models_group("{{ ti.xcom_pull(task_ids='plan') }}")
    models >> announce()
    models >> record()


taxi_models()
