"""The names of every Airflow Connection, Variable and default the project reads, defined once.

Plain constants (no Airflow import): the target packages take connection ids as arguments with
these defaults, and ``include.taxi.orchestration.config`` reads the Variables at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from include.taxi.services import Service

SERVICES: tuple[str, ...] = tuple(service.value for service in Service)
"""The TLC's trip services' names. Declared here, not in contract.py, so that the DAG files'
Params can list them without importing pyarrow at parse time (contract.py re-exports them)."""

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

DBT_EXECUTABLE_ENV = "TAXI_DBT_EXECUTABLE"
"""The ``dbt`` taxi_models runs (default .venv-dbt/bin/dbt, built by `make dbt`)."""

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

CELERY_CONFIG_OPTIONS = "include.taxi.orchestration.celery_worker.CELERY_CONFIG"
"""``[celery] celery_config_options`` for every Celery stack: Airflow's Celery config plus a
worker preload (include/taxi/orchestration/celery_worker.py)."""

# --- pools: created by the tooling (dev/local.py, the test stack, compose's airflow-init) ----
# Airflow picks a task's pool when the DAG is parsed, so the names are fixed here; the sizes
# are read only where the pools are created (`airflow pools set`), from these variables.
POOL_POSTGRES_COPY = "taxi_postgres_copy"
"""taxi_to_postgres' month COPYs (load_trips): they compete for one warehouse server."""
BIGQUERY_TABLES: dict[str, str] = {
    **{service: f"{service}_tripdata" for service in SERVICES},
    "zones": "taxi_zone_lookup",
}
"""Each service's warehouse table, as ``contract.table_name`` names it (checked by a test)."""


def bigquery_pool(service: str) -> str:
    """The pool of one BigQuery table's month transactions (lake_to_bigquery's ``load_<service>``
    and ``load_zones``). BigQuery aborts concurrent transactions on one table; Airflow picks a
    pool per task at parse time, so each table has its own task and its own pool, and months of
    different tables load in parallel."""
    return f"taxi_bigquery_{BIGQUERY_TABLES[service]}"


ENV_POSTGRES_COPY_SLOTS = "TAXI_POSTGRES_COPY_SLOTS"
ENV_BIGQUERY_MONTH_SLOTS = "TAXI_BIGQUERY_MONTH_SLOTS"
DEFAULT_POSTGRES_COPY_SLOTS = 2
"""A COPY stream keeps one server backend busy writing (~1 core, see FACTS): two at a time fill
a 2-core warehouse; raise it with the warehouse's cores. A month load takes one slot per COPY
stream (``postgres_copy_streams``)."""
DEFAULT_BIGQUERY_MONTH_SLOTS = 1
"""One month transaction at a time per table: never two on one table (see bigquery_pool)."""


ENV_POSTGRES_COPY_STREAMS = "TAXI_POSTGRES_COPY_STREAMS"
"""Binary COPY streams per month load (parquet: each reads its own row groups)."""


DEFAULT_POSTGRES_COPY_STREAMS = 1
"""One stream unless asked for more: on 2 cores with the server beside the load, 2 streams did not
beat 1 (docs/performance.md, "Parallel COPY of one month"), and a csv.gz month (the mirror's)
is one stream whatever the setting, yet takes that many pool slots: a default above 1 would
halve how many mirror months load at once."""


def postgres_copy_streams(env: dict[str, str] | None = None) -> int:
    """COPY streams per month: ``TAXI_POSTGRES_COPY_STREAMS`` or the default, clamped to the
    COPY pool's size. Each load takes that many pool slots (``load_trips``' ``pool_slots``); a
    task asking for more slots than its pool has would never be scheduled."""
    env = dict(os.environ) if env is None else env
    raw = (env.get(ENV_POSTGRES_COPY_STREAMS) or "").strip() or str(DEFAULT_POSTGRES_COPY_STREAMS)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{ENV_POSTGRES_COPY_STREAMS}={raw!r}: expected a whole number of streams, at least 1"
        )
    slots, _ = pool_sizes(env)[POOL_POSTGRES_COPY]
    return min(int(raw), slots)


def pool_sizes(env: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Each pool the DAGs use: (slots, description), slots from the environment if set."""
    env = dict(os.environ) if env is None else env
    specs = {
        POOL_POSTGRES_COPY: (
            ENV_POSTGRES_COPY_SLOTS,
            DEFAULT_POSTGRES_COPY_SLOTS,
            "concurrent COPY streams into the warehouse Postgres (taxi_to_postgres)",
        ),
        **{
            bigquery_pool(service): (
                ENV_BIGQUERY_MONTH_SLOTS,
                DEFAULT_BIGQUERY_MONTH_SLOTS,
                f"concurrent month transactions on BigQuery {table} (lake_to_bigquery)",
            )
            for service, table in BIGQUERY_TABLES.items()
        },
    }
    sizes = {}
    for pool, (variable, default, description) in specs.items():
        raw = (env.get(variable) or "").strip() or str(default)
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{variable}={raw!r}: expected a whole number of slots, at least 1")
        sizes[pool] = (int(raw), description)
    return sizes


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

# Limits on what a parquet source file may declare: checked on its footer before a row is
# read, so a file of a few KB cannot make the load decode gigabytes or copy rows until the disk
# is full. Each value's length is bounded by the contract (``Column.max_length``).
VAR_MAX_PARQUET_ROWS = "taxi_max_parquet_rows"
VAR_MAX_ROW_GROUP_BYTES = "taxi_max_parquet_row_group_bytes"
DEFAULT_MAX_PARQUET_ROWS = 100_000_000
"""Rows a parquet file may declare: ~4× the largest real month (fhvhv, ~24 M rows)."""
DEFAULT_MAX_ROW_GROUP_BYTES = 1 << 30
"""Uncompressed bytes one row group may declare (its pages are decoded one at a time, so this
also bounds one page): 1 GiB, several times a real TLC row group (~1 M rows)."""

VAR_MONTHS_PAGE_TIMEOUT = "taxi_months_page_timeout_seconds"
DEFAULT_MONTHS_PAGE_TIMEOUT = 5.0
"""Seconds each read of the Taxi months page may take (Postgres statement, BigQuery job, GCS
listing request): the page runs in the api-server, whose threads also serve the Execution API,
so a locked or slow warehouse shows as a problem on the page instead of holding a thread. The
page's reads answer in well under a second (see postgres.ingestion_log.PostgresLog.records)."""
