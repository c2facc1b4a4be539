"""Local Airflow without Docker: what `make run`, `make month` and `make backfill` do.

    python -m dev.local run                                  # Postgres + airflow standalone
    python -m dev.local month DAG SERVICE YYYY-MM            # one month, in-process
    python -m dev.local backfill DAG FROM TO [SERVICE]       # airflow backfill create
    python -m dev.local cloud-month SERVICE YYYY-MM          # web → GCS → BigQuery, emulated
    python -m dev.local report SERVICE YEAR                  # rows per month per target

The warehouse is the Postgres named by AIRFLOW_CONN_TAXI_POSTGRES or DATABASE_URL; with
neither, a project-local embedded PostgreSQL under .data/postgres on port 5433 (TAXI_PG_PORT).
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from dev import local_postgres
from dev.airflow_env import ADMIN_USER, PROJECT, admin_password, airflow_env

HOME = Path(os.environ.get("AIRFLOW_HOME", PROJECT / ".airflow"))
PG_DATA = PROJECT / ".data" / "postgres"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _connection_json(url: str) -> str:
    """An Airflow connection (JSON form) for a postgresql:// URL."""
    parts = urlsplit(url)
    conn = {
        "conn_type": "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "login": parts.username or "postgres",
        "password": parts.password or "",
        "schema": parts.path.lstrip("/") or "postgres",
    }
    return json.dumps(conn)


def warehouse_env(env: dict[str, str]) -> tuple[dict[str, str], bool]:
    """Point taxi_postgres somewhere; returns the env and whether we started Postgres."""
    if env.get("AIRFLOW_CONN_TAXI_POSTGRES"):
        return env, False
    if url := env.get("DATABASE_URL"):
        env["AIRFLOW_CONN_TAXI_POSTGRES"] = _connection_json(url)
        return env, False
    started = not local_postgres.is_running(PG_DATA)
    url = local_postgres.start(PG_DATA, int(env.get("TAXI_PG_PORT") or 5433))
    print(f"warehouse: embedded PostgreSQL at {url} (data in {PG_DATA})", flush=True)
    env["AIRFLOW_CONN_TAXI_POSTGRES"] = _connection_json(url)
    return env, started


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"Airflow did not become healthy at {url}; see {HOME}/standalone.log")


def run() -> int:
    """Start Postgres (if needed) and `airflow standalone`; Ctrl+C stops what was started."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    env, started_pg = warehouse_env(airflow_env(HOME))
    password = admin_password(HOME)
    _migrate(env)
    url = env["AIRFLOW__API__BASE_URL"]
    log = (HOME / "standalone.log").open("ab")
    process = subprocess.Popen(
        [AIRFLOW, "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, process)
        print(f"\nAirflow UI: {url}   login: {ADMIN_USER} / {password}", flush=True)
        print(f"logs: {HOME}/standalone.log   Ctrl+C stops Airflow and the embedded Postgres\n")
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if started_pg:
            local_postgres.stop(PG_DATA)
        print("stopped")
    return 0


def month(dag_id: str, service: str, month_name: str) -> int:
    """`airflow dags test` for one month; exit 0 only if the run succeeded."""
    env, started_pg = warehouse_env(airflow_env(HOME))
    try:
        _migrate(env)
        conf = json.dumps({"service": service, "month": month_name})
        result = subprocess.run(
            [AIRFLOW, "dags", "test", dag_id, f"{month_name}-01", "-c", conf],
            env=env,
            capture_output=True,
            text=True,
        )
        output = result.stdout + result.stderr
        print(output)
        ok = result.returncode == 0 and "state=success" in output
        print(f"{dag_id} {service} {month_name}: {'success' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        if started_pg:
            local_postgres.stop(PG_DATA)


def backfill(dag_id: str, first: str, last: str, service: str | None = None) -> int:
    """`airflow backfill create` over whole months, for the running local Airflow."""
    env = airflow_env(HOME)
    end = date.fromisoformat(f"{last}-01")
    end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    subprocess.run([AIRFLOW, "dags", "unpause", dag_id], env=env, check=True)
    args = [
        AIRFLOW,
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        f"{first}-01",
        "--to-date",
        end.isoformat(),
        "--max-active-runs",
        "2",
    ]
    if service:
        args += ["--dag-run-conf", json.dumps({"service": service})]
    return subprocess.run(args, env=env).returncode


def cloud_month(service: str, month_name: str) -> int:
    """taxi_to_lake then lake_to_bigquery for one month, on the local GCS and BigQuery emulators.

    The emulators keep their data under .data/emulators (``TAXI_EMULATOR_DIR``), so a second
    run shows the skips. The bucket is ``TAXI_DEMO_BUCKET`` (default taxi-lake), created if
    missing.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, storage

    from dev.emulators import running_emulators

    bucket = os.environ.get("TAXI_DEMO_BUCKET", "taxi-lake")
    dataset = os.environ.get("AIRFLOW_VAR_TAXI_BQ_DATASET", "nyc_taxi")
    workdir = Path(os.environ.get("TAXI_EMULATOR_DIR") or PROJECT / ".data" / "emulators")
    with running_emulators(workdir) as emulators:
        os.environ.update(emulators.env())
        os.environ["AIRFLOW_VAR_TAXI_LAKE_URL"] = f"gs://{bucket}/lake"
        os.environ["AIRFLOW_VAR_TAXI_BQ_DATASET"] = dataset
        gcs = storage.Client(project=emulators.project, credentials=AnonymousCredentials())
        if gcs.lookup_bucket(bucket) is None:
            gcs.create_bucket(bucket)
        print(f"emulators: GCS {emulators.gcs.url}, BigQuery {emulators.bigquery.url}")
        for dag_id in ("taxi_to_lake", "lake_to_bigquery"):
            if status := month(dag_id, service, month_name):
                return status
        bq = bigquery.Client(project=emulators.project, credentials=AnonymousCredentials())
        table = f"{emulators.project}.{dataset}.{service}_tripdata"
        rows = bq.query(
            f"SELECT CAST(source_month AS STRING) AS m, COUNT(*) AS n FROM `{table}` "
            "GROUP BY m ORDER BY m"
        ).result()
        print(f"\n{table} (BigQuery emulator), rows per source month:")
        for row in rows:
            print(f"  {row['m'][:7]}  {row['n']:>10,}")
    return 0


def report(service: str, year: str) -> int:
    """Rows per month of ``service`` in ``year`` per target, from the ingestion logs
    (include/taxi/report.py), with the same connection and Variables as `make month`."""
    env, started_pg = warehouse_env(airflow_env(HOME))
    try:
        command = [sys.executable, "-m", "include.taxi.report", service, year]
        return subprocess.run(command, env=env, cwd=PROJECT).returncode
    finally:
        if started_pg:
            local_postgres.stop(PG_DATA)


def main(argv: list[str]) -> int:
    commands = {
        "run": (run, 0),
        "month": (month, 3),
        "backfill": (backfill, 3),
        "cloud-month": (cloud_month, 2),
        "report": (report, 2),
    }
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    command, arity = commands[argv[0]]
    args = [a for a in argv[1:] if a]
    if len(args) < arity:
        print(__doc__, file=sys.stderr)
        return 2
    return command(*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
