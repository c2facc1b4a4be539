"""taxi_to_lake: one run per data month writes yellow, green and fhv trips to the lake as parquet.

Each (service, month) is a mapped task: download the source csv.gz, hold it to the schema
contract (the same one taxi_to_postgres uses), write one parquet file with the declared schema
and put it in the lake (Variable ``taxi_lake_url``: a folder, or ``gs://bucket/prefix``)
atomically. Every month written emits an event on the asset ``taxi_lake_trip_months`` that
names the month, which schedules ``lake_to_bigquery``. A month unchanged at the source since
it was written is skipped (no event); ``force_reload`` rewrites it. The zone lookup is
rewritten to ``misc/taxi_zone_lookup.parquet`` with every run.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from include.taxi import schedule
from include.taxi.assets import LAKE_TRIP_MONTHS
from include.taxi.dag_defaults import DEFAULT_ARGS, month_params


@dag(
    dag_id="taxi_to_lake",
    description="NYC TLC trips (yellow, green, fhv) as parquet in the lake, a month per run",
    schedule=schedule.MONTHLY,
    start_date=schedule.start_date(),
    end_date=schedule.end_date(),
    catchup=schedule.catchup(),
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "lake", "gcs", "ingest"],
    params=month_params(
        "the run's data-interval month",
        "Rewrite the lake object even if the source file is unchanged since it was written.",
    ),
    doc_md=__doc__,
)
def taxi_to_lake() -> None:
    @task
    def plan(**context) -> list[dict[str, str]]:
        """Validate the Params before any I/O; one entry per (service, month) to write."""
        from include.taxi.airflow_tasks import plan_months

        return plan_months(context)

    @task(outlets=[LAKE_TRIP_MONTHS], map_index_template="{{ service_month }}")
    def write_month(service: str, month: str) -> dict:
        """Source file → contract → parquet → lake; announce the month to lake_to_bigquery."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.taxi import airflow_tasks as at
        from include.taxi.lake_month import month_to_lake

        context = get_current_context()
        context["service_month"] = f"{service} {month}"
        result = at.outcome(
            lambda: month_to_lake(
                service,
                month,
                source_base=at.source_base(),
                lake_url=at.lake_url(),
                force=bool(context["params"].get("force_reload")),
            )
        )
        if result["status"] == "unchanged":
            raise AirflowSkipException(
                f"{service} {month} unchanged at the source; {result['uri']} already holds it"
            )
        context["outlet_events"][LAKE_TRIP_MONTHS].extra = {
            key: result[key] for key in ("service", "month", "uri", "rows")
        }
        return result

    @task
    def write_zones() -> dict:
        """Replace the lake's taxi-zone lookup (small; rewritten with every month)."""
        from include.taxi import airflow_tasks as at
        from include.taxi.lake_month import zones_to_lake

        return at.outcome(
            lambda: zones_to_lake(source_base=at.source_base(), lake_url=at.lake_url())
        )

    write_month.expand_kwargs(plan())
    write_zones()


taxi_to_lake()
