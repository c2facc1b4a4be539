"""taxi_to_postgres: one run per data month loads yellow, green and fhv trips into Postgres.

Each (service, month) is a mapped task that downloads the source csv.gz, checks it against
the schema contract and replaces that month's partition in one transaction, so reruns and
backfills never duplicate. Logic lives in include/taxi; this file only wires and schedules.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from include.taxi import schedule
from include.taxi.dag_defaults import DEFAULT_ARGS, month_params


@dag(
    dag_id="taxi_to_postgres",
    description="NYC TLC trips (yellow, green, fhv) and zones into Postgres, a month per run",
    schedule=schedule.MONTHLY,
    start_date=schedule.start_date(),
    end_date=schedule.end_date(),
    catchup=schedule.catchup(),
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "postgres", "ingest"],
    params=month_params(
        "the run's data-interval month",
        "Reload even if the source file is unchanged since its last load.",
    ),
    doc_md=__doc__,
)
def taxi_to_postgres() -> None:
    @task
    def plan(**context) -> list[dict[str, str]]:
        """Validate the Params before any I/O; one entry per (service, month) to load."""
        from include.taxi.airflow_tasks import plan_months

        return plan_months(context)

    @task(map_index_template="{{ service_month }}")
    def load_trips(service: str, month: str) -> dict:
        """Download one source file and replace its month in Postgres (unless unchanged)."""
        from include.taxi import airflow_tasks as at
        from include.taxi.ingest import month_to_postgres

        context = get_current_context()
        context["service_month"] = f"{service} {month}"
        return at.outcome(
            lambda: month_to_postgres(
                service,
                month,
                source_base=at.source_base(),
                conninfo=at.postgres_conninfo(),
                schema=at.postgres_schema(),
                force=bool(context["params"].get("force_reload")),
                run_id=context["run_id"],
            )
        )

    @task
    def load_zones() -> dict:
        """Replace the taxi-zone lookup table (small; reloaded with every month)."""
        from include.taxi import airflow_tasks as at
        from include.taxi.ingest import zones_to_postgres

        return at.outcome(
            lambda: zones_to_postgres(
                source_base=at.source_base(),
                conninfo=at.postgres_conninfo(),
                schema=at.postgres_schema(),
            )
        )

    load_trips.expand_kwargs(plan())
    load_zones()


taxi_to_postgres()
