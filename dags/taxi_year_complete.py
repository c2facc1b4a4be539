"""taxi_year_complete: once all twelve months of a year have landed in the lake, say so.

A yearly rollup of the lake's month partitions (``PartitionedAssetTimetable`` with a
``RollupMapper`` over ``YearWindow`` and ``WaitForAll``): every event on
``taxi_lake_trip_months`` counts towards its year (key ``2021-07`` → ``2021``), and the run for
``2021`` is created only when all of ``2021-01``..``2021-12`` have arrived, whichever service
wrote them and however long ago. The run lists, per service, the months the lake holds and
emits ``taxi_lake_trip_years`` (partition key the year) for yearly consumers.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import PartitionedAssetTimetable, dag, get_current_context, task

from include.taxi.orchestration import schedule
from include.taxi.orchestration.assets import LAKE_TRIP_MONTHS, LAKE_TRIP_YEARS
from include.taxi.orchestration.defaults import DEFAULT_ARGS


@dag(
    dag_id="taxi_year_complete",
    description="A year of lake months complete: once all twelve months of a year have landed",
    schedule=PartitionedAssetTimetable(
        assets=LAKE_TRIP_MONTHS, default_partition_mapper=schedule.year_of_months()
    ),
    start_date=schedule.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["taxi", "lake", "rollup"],
    doc_md=__doc__,
)
def taxi_year_complete() -> None:
    @task(outlets=[LAKE_TRIP_YEARS])
    def summarise() -> dict[str, Any]:
        """Per service, the year's months in the lake; announce the year."""
        from include.taxi.orchestration import tasks

        return tasks.lake_year(get_current_context())

    summarise()


taxi_year_complete()
