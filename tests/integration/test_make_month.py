"""`make month` (python -m dev.local month): one month in-process, exit status tells the outcome.

Runs the real command in a fresh Airflow home, with the caller's connection and Variables
exported, as a user would; checks that they win and that a failed run exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import psycopg

from dev.airflow_env import PROJECT, postgres_connection
from dev.synthetic import ZONES_CSV, write_month
from dev.tlc_parquet import write_era


def _month(env: dict[str, str], service: str, month: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dev.local", "month", "taxi_to_postgres", service, month],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_month_loads_with_the_callers_settings_and_reports_failure(
    tmp_path, source_server, postgres_url, pg_schema, metadata_url
) -> None:
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2020-11.csv.gz", "green", date(2020, 11, 1), 321)
    (root / "fhv").mkdir(exist_ok=True)
    (root / "fhv" / "fhv_tripdata_2020-11.csv.gz").write_text("<html>moved</html>")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW_CONN_TAXI_POSTGRES=postgres_connection(postgres_url),
        AIRFLOW_VAR_TAXI_SOURCE_URL=base,
        AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA=pg_schema,
    )
    ok = _month(env, "green", "2020-11")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "taxi_to_postgres green 2020-11: success" in ok.stdout
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            f"SELECT count(*) FROM \"{pg_schema}\".green_tripdata WHERE source_month = '2020-11-01'"
        ).fetchone()[0]
    assert rows == 321

    bad = _month(env, "fhv", "2020-11")
    assert bad.returncode == 1
    assert "not a gzip file" in bad.stdout + bad.stderr
    assert "taxi_to_postgres fhv 2020-11: FAILED" in bad.stdout


def test_make_cloud_month_runs_a_month_web_to_gcs_to_bigquery(
    tmp_path, source_server, metadata_url
) -> None:
    """The one command for the cloud path, on the emulators it starts itself; it starts no
    warehouse (lake and BigQuery only) and no embedded PostgreSQL when the metadata DB is
    named."""
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2020-12.csv.gz", "green", date(2020, 12, 1), 456)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "STORAGE_EMULATOR", "BIGQUERY_EMULATOR"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW_VAR_TAXI_SOURCE_URL=base,
        TAXI_EMULATOR_DIR=str(tmp_path / "emulators"),
        TAXI_PG_DATA=str(tmp_path / "must-not-exist"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "dev.local", "cloud-month", "green", "2020-12"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "taxi_to_lake green 2020-12: success" in done.stdout
    assert "lake_to_bigquery green 2020-12: success" in done.stdout
    assert "  2020-12         456" in done.stdout
    assert "embedded PostgreSQL" not in done.stdout
    assert not (tmp_path / "must-not-exist").exists()
    lake = tmp_path / "emulators" / "gcs" / "objects" / "taxi-lake" / "lake" / "green" / "2020"
    assert (lake / "green_tripdata_2020-12.parquet").exists()


def test_make_month_loads_fhvhv_from_a_tlc_laid_out_server(
    tmp_path, source_server, postgres_url, pg_schema, metadata_url
) -> None:
    """taxi_source=tlc: `make month DAG=taxi_to_postgres SERVICE=fhvhv MONTH=2024-01` reads
    {taxi_tlc_url}/trip-data/fhvhv_tripdata_2024-01.parquet (flat) and misc/ zones."""
    base, root = source_server
    tlc = root / "tlc-layout"
    write_era(
        tlc / "trip-data" / "fhvhv_tripdata_2024-01.parquet",
        "fhvhv-2024",
        date(2024, 1, 1),
        4_321,
        row_group_rows=1_000,
    )
    (tlc / "misc").mkdir()
    (tlc / "misc" / "taxi_zone_lookup.csv").write_text(ZONES_CSV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW_CONN_TAXI_POSTGRES=postgres_connection(postgres_url),
        AIRFLOW_VAR_TAXI_SOURCE="tlc",
        AIRFLOW_VAR_TAXI_TLC_URL=f"{base}/tlc-layout",
        AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA=pg_schema,
    )
    done = subprocess.run(
        ["make", "month", "DAG=taxi_to_postgres", "SERVICE=fhvhv", "MONTH=2024-01"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "taxi_to_postgres fhvhv 2024-01: success" in done.stdout
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            f'SELECT count(*), sum(trip_time) FROM "{pg_schema}".fhvhv_tripdata '
            "WHERE source_month = '2024-01-01'"
        ).fetchone()
        logged = db.execute(
            f'SELECT source_kind, source_format, source_url FROM "{pg_schema}".taxi_ingestion_log '
            "WHERE service = 'fhvhv'"
        ).fetchall()
    assert rows == (4_321, sum(600 + i % 300 for i in range(4_321)))
    assert logged == [
        ("tlc", "parquet", f"{base}/tlc-layout/trip-data/fhvhv_tripdata_2024-01.parquet")
    ]
