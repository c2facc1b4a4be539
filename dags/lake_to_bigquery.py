"""lake_to_bigquery: load months from the lake (GCS) into partitioned BigQuery tables.

Scheduled by data, partitioned by month (``PartitionedAssetTimetable``): taxi_to_lake's events
on the asset ``taxi_lake_trip_months`` carry the month written as their partition key, and each
key gets one run of this DAG, its ``partition_key`` that month (services written together are
one run; the services come from the events). A manual run takes the same Params form as the
other monthly DAGs, or a partition key. Airflow 3.3.2 cannot backfill an asset-scheduled DAG
(its timetable is not periodic, and ``AssetOrTimeSchedule`` drops ``partitioned``): reload a
range with one manual run per month (``make month``) or rewrite it with taxi_to_lake.

Per service, ``plan_<service>`` → ``load_<service>`` (one mapped task per month, in the pool of
that service's table): check the parquet footer against the contract, load it into a staging
table with an explicit schema, then replace the month in ``{dataset}.{service}_tripdata`` in
one transaction (see include/taxi/bigquery/month.py). A month not in the lake is skipped.
``load_zones`` replaces ``taxi_zone_lookup`` from the lake's zone file with every run.
"""

from __future__ import annotations

from airflow.sdk import PartitionedAssetTimetable, dag, get_current_context, task, teardown

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import LAKE_TRIP_MONTHS, TABLES, table_asset
from include.taxi.orchestration.defaults import DEFAULT_ARGS, month_params
from include.taxi.orchestration.plan import Plan, plan_lake_loads
from include.taxi.results import BigQueryMonth, ZonesLoad
from include.taxi.settings import SERVICES, bigquery_pool


@dag(
    dag_id="lake_to_bigquery",
    description="Months of the lake (GCS parquet) into BigQuery, when taxi_to_lake writes them",
    schedule=PartitionedAssetTimetable(assets=LAKE_TRIP_MONTHS),
    start_date=schedule.start_date(),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "bigquery", "gcs", "warehouse"],
    params=month_params(
        "the run's partition key (the lake month that triggered it)",
        "Reload even if the ingestion log shows this lake file already loaded.",
    ),
    doc_md=__doc__,
)
def lake_to_bigquery() -> None:
    @task
    def plan(service: str) -> Plan:
        """This service's month: the Param, else the run's partition key (the lake month)."""
        return plan_lake_loads(get_current_context(), service)

    @task(map_index_template="{{ service_month }}")
    def load_month(service: str, month: str) -> BigQueryMonth:
        """Replace one month of {dataset}.{service}_tripdata from its lake object."""
        from include.taxi.orchestration import tasks

        return tasks.load_month_to_bigquery(service, month, get_current_context())

    @task(pool=bigquery_pool("zones"))
    def load_zones() -> ZonesLoad:
        """Replace {dataset}.taxi_zone_lookup from the lake (skipped until it is there)."""
        from include.taxi.orchestration import tasks

        return tasks.load_zones_to_bigquery(get_current_context())

    @teardown  # after the loads whatever they did; the run's state stays theirs
    @task(outlets=[TABLES["bigquery"]], max_active_tis_per_dag=1)
    def announce_tables() -> list[str]:
        """An event on each table a load changed (taxi_bigquery_<service>_tripdata), through
        the alias; one at a time across runs (see tasks.announce_tables)."""
        from include.taxi.orchestration import tasks

        return tasks.announce_tables(get_current_context(), "bigquery")

    # A task and a pool per table: one month transaction at a time on each table, the tables
    # in parallel (a mapped task's pool is fixed at parse time, not per service).
    tables = announce_tables()
    for service in SERVICES:
        months = plan.override(task_id=f"plan_{service}")(service)
        load = load_month.override(
            task_id=f"load_{service}",
            pool=bigquery_pool(service),
            inlets=[table_asset("lake", service), table_asset("bigquery", service)],
        )
        load.expand_kwargs(months) >> tables
    load_zones()


lake_to_bigquery()
