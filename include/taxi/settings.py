"""The names of every Airflow Connection, Variable and default the project reads, defined once.

Plain constants (no Airflow import): the target packages take connection ids as arguments with
these defaults, and ``include.taxi.orchestration.config`` reads the Variables at run time.
"""

from __future__ import annotations

from pathlib import Path

POSTGRES_CONN_ID = "taxi_postgres"
GCP_CONN_ID = "google_cloud_default"
ALERTS_CONN_ID = "taxi_alerts"

VAR_SOURCE = "taxi_source"
VAR_SOURCE_URL = "taxi_source_url"
VAR_TLC_URL = "taxi_tlc_url"
VAR_POSTGRES_SCHEMA = "taxi_postgres_schema"
VAR_LAKE_URL = "taxi_lake_url"
VAR_BQ_DATASET = "taxi_bq_dataset"
VAR_DAILY_LOOKBACK = "taxi_daily_lookback_months"
VAR_DAILY_TARGETS = "taxi_daily_targets"

DEFAULT_SOURCE = "mirror"
"""``mirror``: the course's csv.gz files at taxi_source_url; ``tlc``: the TLC's parquet files at
taxi_tlc_url (sources/catalogue.py)."""
DEFAULT_SOURCE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"
DEFAULT_TLC_URL = "https://d37ci6vzurychx.cloudfront.net"
DEFAULT_POSTGRES_SCHEMA = "public"
DEFAULT_LAKE = Path(__file__).resolve().parents[2] / ".data" / "lake"
DEFAULT_BQ_DATASET = "nyc_taxi"
DEFAULT_DAILY_LOOKBACK = 3
DEFAULT_DAILY_TARGETS = "postgres"

POSTGRES_SWAP_LOCK_TIMEOUT = "500ms"
"""How long one attempt of a partition swap waits for its table lock. While it waits, every new
query of the table queues behind it, so this bounds how long a swap can stall readers."""
POSTGRES_SWAP_WAIT_SECONDS = 600.0
"""How long a swap keeps retrying its lock (with backoff) before the load fails as retryable."""
