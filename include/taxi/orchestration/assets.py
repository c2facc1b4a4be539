"""The Airflow Assets that connect the DAGs (data-aware scheduling), partitioned by month.

``taxi_to_lake`` emits an event on ``LAKE_TRIP_MONTHS`` for every service-month it writes: its
partition key is the month, ``{"service", "month", "uri", "rows"}`` its extra;
``lake_to_bigquery`` (``PartitionedAssetTimetable``) gets one run per month key and loads the
services its events name.

One asset with the service in the extra, not one asset per service: Airflow 3.3.2 registers an
event on every outlet a task declares, with or without a payload, so per-service assets would
need a task per service in taxi_to_lake instead of one mapped task; and a month's services
landing together are one lake_to_bigquery run either way.

The tables are assets too, one per service and target (``taxi_postgres_yellow_tripdata``,
``taxi_lake_…``, ``taxi_bigquery_…``), so the asset graph shows each service's path. Each
loading DAG ends with ``announce_tables``, which declares its target's ``AssetAlias`` and adds an
event through it on the table of every service whose month a load of the run changed
(``announce_table``): only those assets get an event, with the run's partition key (the month),
so one mapped load task serves all services. An alias resolves to its assets when they first
get an event; until then the graph shows the alias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from airflow.sdk import Context

    from include.taxi.months import Month
    from include.taxi.services import Service

LAKE_TRIP_MONTHS = Asset(name="taxi_lake_trip_months")
"""Named, without a URI: a URI scheme makes Airflow load every provider's asset handlers at
parse time (the google one imports GCSHook: 0.5 s per DAG file)."""

POSTGRES_TRIP_MONTHS = Asset(name="taxi_postgres_trip_months")
"""``taxi_to_postgres`` emits an event when a run's month is in Postgres, with ``{"month",
"services"}`` in the extra; ``taxi_models`` is scheduled on it and builds that month's models."""

LAKE_TRIP_YEARS = Asset(name="taxi_lake_trip_years")
"""``taxi_year_complete`` emits an event once all twelve months of a year are in the lake,
partitioned by the year (``YYYY``), with the services complete for that year in its extra."""

MODELS_TRIP_MONTHS = Asset(name="taxi_models_trip_months")
"""``taxi_models`` emits an event per month once every model and test of the month passed (not
after a failed one), partitioned by the month, ``{"months"}`` the run built in its extra;
``taxi_models_yearly`` rolls the months up into years and builds a year's yearly mart once all
twelve have had one."""

Target = Literal["postgres", "lake", "bigquery"]

TABLES: dict[Target, AssetAlias] = {
    "postgres": AssetAlias(name="taxi_postgres_tables"),
    "lake": AssetAlias(name="taxi_lake_tables"),
    "bigquery": AssetAlias(name="taxi_bigquery_tables"),
}
"""Each target's alias: the outlet of its DAG's ``announce_tables``, through which the tables
get their events."""


def table_asset(target: Target, service: Service | str) -> Asset:
    """The asset of one service's trip table in a target, e.g. ``taxi_lake_green_tripdata``."""
    return Asset(name=f"taxi_{target}_{service}_tripdata")


def table_assets(target: Target) -> list[Asset]:
    """Every service's table asset in a target: inlets of the tasks that read them, and of the
    load that writes them (it reads the month it replaces), so they exist once its DAG is parsed.

    Declared as inlets, the dag processor registers them up front, before any event names them
    through an alias (the api-server would create them then, and Airflow 3.3.2 races there too:
    ``UniqueViolation ... idx_asset_name_uri_unique``, see tasks.announce_tables)."""
    from include.taxi.services import Service

    return [table_asset(target, service) for service in Service]


def announce_table(
    context: Context, target: Target, service: Service, month: Month, rows: int
) -> None:
    """An event on the service's table asset, through the target's alias (the task's outlet):
    Airflow gives it the run's partition key; the extra names the month and its rows."""
    context["outlet_events"][TABLES[target]].add(
        table_asset(target, service), extra={"month": str(month), "rows": rows}
    )
