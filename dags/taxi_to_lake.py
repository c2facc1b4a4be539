"""taxi_to_lake: one run per month partition writes yellow, green, fhv, fhvhv trips as lake parquet.

Partitioned by month: a run's ``partition_key`` (``YYYY-MM``) is the month it writes (the
``month`` Param of a manual run wins).

Each (service, month) is a mapped task: download the source csv.gz, hold it to the schema
contract (the same one taxi_to_postgres uses), write one parquet file with the declared schema
and put it in the lake (Variable ``taxi_lake_url``: a folder, or ``gs://bucket/prefix``)
atomically. Every month written emits an event on the asset ``taxi_lake_trip_months`` whose
partition key is the month (service, uri and rows in its extra), which schedules
``lake_to_bigquery``. A month unchanged at the source since
it was written is skipped (no event); ``force_reload`` rewrites it. The zone lookup is
rewritten to ``misc/taxi_zone_lookup.parquet`` with every run.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task, teardown

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import LAKE_TRIP_MONTHS, TABLES, table_assets
from include.taxi.orchestration.defaults import DEFAULT_ARGS, month_params
from include.taxi.orchestration.plan import Plan, plan_months
from include.taxi.results import LakeMonth, ZonesLoad


@dag(
    dag_id="taxi_to_lake",
    description="NYC TLC trips (yellow, green, fhv, fhvhv) as parquet in the lake, a month per run",
    schedule=schedule.MONTHLY_PARTITIONS,
    start_date=schedule.partition_start_date(),
    end_date=schedule.partition_end_date(),
    catchup=schedule.catchup(),
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "lake", "gcs", "ingest"],
    params=month_params(
        "the run's partition key (its month)",
        "Rewrite the lake object even if the source file is unchanged since it was written.",
    ),
    doc_md=__doc__,
)
def taxi_to_lake() -> None:
    @task
    def plan() -> Plan:
        """Validate the Params before any I/O; one entry per (service, month) to write."""
        return plan_months(get_current_context())

    @task(
        outlets=[LAKE_TRIP_MONTHS],
        inlets=table_assets("lake"),  # registered with this DAG: see table_assets
        map_index_template="{{ service_month }}",
    )
    def write_month(service: str, month: str) -> LakeMonth:
        """Source file → contract → parquet → lake; announce the month to lake_to_bigquery."""
        from include.taxi.orchestration import tasks

        return tasks.write_month_to_lake(service, month, get_current_context())

    @task
    def write_zones() -> ZonesLoad:
        """Replace the lake's taxi-zone lookup (small; rewritten with every month)."""
        from include.taxi.orchestration import tasks

        return tasks.write_zones_to_lake(get_current_context())

    @teardown  # after the loads whatever they did; the run's state stays theirs
    @task(outlets=[TABLES["lake"]], max_active_tis_per_dag=1)
    def announce_tables() -> list[str]:
        """An event on each table a write changed (taxi_lake_<service>_tripdata), through the
        alias; one at a time across runs (see tasks.announce_tables)."""
        from include.taxi.orchestration import tasks

        return tasks.announce_tables(get_current_context(), "lake")

    write_month.expand_kwargs(plan()) >> announce_tables()
    write_zones()


taxi_to_lake()
