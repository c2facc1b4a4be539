"""taxi_to_postgres: one run per month partition loads yellow, green, fhv, fhvhv trips to Postgres.

Partitioned by month: a run's ``partition_key`` (``YYYY-MM``) is the month it loads (the
``month`` Param of a manual run wins). ``airflow dags clear taxi_to_postgres --partition-key
2021-01`` reruns one month; ``airflow backfill create`` walks a range of months.

Each (service, month) is a mapped task that downloads the source csv.gz, checks it against
the schema contract and replaces that month's partition in one transaction, so reruns and
backfills never duplicate. Logic lives in include/taxi; this file only wires and schedules.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task, teardown

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import POSTGRES_TRIP_MONTHS, TABLES, table_assets
from include.taxi.orchestration.defaults import DEFAULT_ARGS, month_params
from include.taxi.orchestration.plan import Plan, plan_months
from include.taxi.results import PostgresMonth, ZonesLoad
from include.taxi.settings import POOL_POSTGRES_COPY, postgres_copy_streams


@dag(
    dag_id="taxi_to_postgres",
    description="NYC TLC trips (yellow, green, fhv, fhvhv) and zones to Postgres, a month per run",
    schedule=schedule.MONTHLY_PARTITIONS,
    start_date=schedule.partition_start_date(),
    end_date=schedule.partition_end_date(),
    catchup=schedule.catchup(),
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "postgres", "ingest"],
    params=month_params(
        "the run's partition key (its month)",
        "Reload even if the source file is unchanged since its last load.",
    ),
    doc_md=__doc__,
)
def taxi_to_postgres() -> None:
    @task
    def plan() -> Plan:
        """Validate the Params before any I/O; one entry per (service, month) to load."""
        return plan_months(get_current_context())

    # One pool slot per COPY stream: two months loading at once never run more streams than the
    # pool has slots (the stream count is clamped to the pool's size: a task asking for more
    # slots than its pool has would never be scheduled).
    @task(
        map_index_template="{{ service_month }}",
        pool=POOL_POSTGRES_COPY,
        pool_slots=postgres_copy_streams(),
        inlets=table_assets("postgres"),  # registered with this DAG: see table_assets
    )
    def load_trips(service: str, month: str) -> PostgresMonth:
        """Download one source file and replace its month in Postgres (unless unchanged)."""
        from include.taxi.orchestration import tasks

        return tasks.load_trips_to_postgres(service, month, get_current_context())

    @task  # 265 rows: not worth a turn of the COPY pool, which the months' loads queue for
    def load_zones() -> ZonesLoad:
        """Replace the taxi-zone lookup table (small; reloaded with every month)."""
        from include.taxi.orchestration import tasks

        return tasks.load_zones_to_postgres(get_current_context())

    @task(outlets=[POSTGRES_TRIP_MONTHS], trigger_rule="none_failed")
    def announce() -> str:
        """The month is in Postgres: one asset event for it, which schedules taxi_models."""
        from include.taxi.transform.months import announce_postgres_month

        return announce_postgres_month(get_current_context())

    @teardown  # after the loads whatever they did; the run's state stays theirs
    @task(outlets=[TABLES["postgres"]], max_active_tis_per_dag=1)
    def announce_tables() -> list[str]:
        """An event on each table a load changed (taxi_postgres_<service>_tripdata), through
        the alias; one at a time across runs (see tasks.announce_tables)."""
        from include.taxi.orchestration import tasks

        return tasks.announce_tables(get_current_context(), "postgres")

    loads = load_trips.expand_kwargs(plan())
    [loads, load_zones()] >> announce()
    loads >> announce_tables()


taxi_to_postgres()
