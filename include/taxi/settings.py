"""The names of every Airflow Connection, Variable and default the project reads, defined once.

Plain constants (no Airflow import): the target packages take connection ids as arguments with
these defaults, and ``include.taxi.orchestration.config`` reads the Variables at run time.
"""

from __future__ import annotations

from pathlib import Path

POSTGRES_CONN_ID = "taxi_postgres"
GCP_CONN_ID = "google_cloud_default"
ALERTS_CONN_ID = "taxi_alerts"

VAR_SOURCE_URL = "taxi_source_url"
VAR_POSTGRES_SCHEMA = "taxi_postgres_schema"
VAR_LAKE_URL = "taxi_lake_url"
VAR_BQ_DATASET = "taxi_bq_dataset"
VAR_DAILY_LOOKBACK = "taxi_daily_lookback_months"
VAR_DAILY_TARGETS = "taxi_daily_targets"

DEFAULT_SOURCE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"
DEFAULT_POSTGRES_SCHEMA = "public"
DEFAULT_LAKE = Path(__file__).resolve().parents[2] / ".data" / "lake"
DEFAULT_BQ_DATASET = "nyc_taxi"
DEFAULT_DAILY_LOOKBACK = 3
DEFAULT_DAILY_TARGETS = "postgres"

# Limits on what one source file may cost (issue 13). Generous: scaled to the largest real
# month, so only a hostile or broken source reaches them. The largest csv.gz of the course's
# mirror is yellow 2019-01 (~130 MB, ~690 MB of CSV); the TLC's largest parquet months
# (fhvhv, yellow 2009-2015) are ~0.5 GB and their CSVs held ~2.5 GB.
VAR_MAX_DOWNLOAD_BYTES = "taxi_max_download_bytes"
VAR_MAX_CSV_BYTES = "taxi_max_csv_bytes"
VAR_DOWNLOAD_DEADLINE = "taxi_download_deadline_seconds"
VAR_REDIRECT_HOSTS = "taxi_allowed_redirect_hosts"
DEFAULT_MAX_DOWNLOAD_BYTES = 4 << 30
"""4 GiB: ~8× the largest real source file."""
DEFAULT_MAX_CSV_BYTES = 16 << 30
"""16 GiB of decompressed CSV: ~6× the largest real month; a gzip bomb stops here."""
DEFAULT_DOWNLOAD_DEADLINE = 1800.0
"""Seconds for a whole download: 4 GiB at ~2.4 MB/s; a yellow month takes ~2 s here."""
DEFAULT_REDIRECT_HOSTS = ".githubusercontent.com"
"""Hosts a source may redirect to (comma-separated; a leading dot allows every subdomain):
GitHub release downloads redirect to objects/release-assets.githubusercontent.com."""
MIN_FREE_BYTES = 512 << 20
"""Free space a download must leave in its temp folder (besides its own announced size)."""
HEAD_DEADLINE = 60.0
"""Seconds one HEAD of taxi_daily's discovery may take, retries included."""
DISCOVERY_DEADLINE = 600.0
"""Seconds all HEADs for one target may take together (9 HEADs answer in ~2 s here);
taxi_daily's tasks have an hour (execution_timeout), so two targets fit with retries."""
