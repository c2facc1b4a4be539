"""The Airflow Assets that connect the DAGs (data-aware scheduling).

``taxi_to_lake`` emits an event on ``LAKE_TRIP_MONTHS`` for every service-month it writes,
with ``{"service", "month", "uri", "rows"}`` in the event's extra; ``lake_to_bigquery`` is
scheduled on it and loads exactly the months the events name.
"""

from __future__ import annotations

from airflow.sdk import Asset

LAKE_TRIP_MONTHS = Asset(name="taxi_lake_trip_months")
"""Named, without a URI: a URI scheme makes Airflow load every provider's asset handlers at
parse time (the google one imports GCSHook: 0.5 s per DAG file)."""

POSTGRES_TRIP_MONTHS = Asset(name="taxi_postgres_trip_months")
"""``taxi_to_postgres`` emits an event when a run's month is in Postgres, with ``{"month",
"services"}`` in the extra; ``taxi_models`` is scheduled on it and builds that month's models."""
