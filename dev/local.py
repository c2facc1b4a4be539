"""Local Airflow without Docker: what `make run`, `make month` and `make backfill` do.

    python -m dev.local run                                  # Postgres + airflow standalone
    TAXI_CELERY_WORKERS=2 python -m dev.local run            # ... on Celery, 2 workers
    python -m dev.local month DAG SERVICE YYYY-MM            # one month, in-process
    python -m dev.local backfill DAG FROM TO [SERVICE]       # airflow backfill create
    python -m dev.local cloud-month SERVICE YYYY-MM          # web → GCS → BigQuery, emulated
    python -m dev.local report SERVICE YEAR                  # rows per month per target

The warehouse is the Postgres named by AIRFLOW_CONN_TAXI_POSTGRES or DATABASE_URL; with
neither, a project-local embedded PostgreSQL under .data/postgres on port 5433 (TAXI_PG_PORT).
"""

from __future__ import annotations

import calendar
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dev import local_postgres
from dev.airflow_env import (
    ADMIN_USER,
    CELERY_WORKER_CONCURRENCY,
    PORT_SETTING,
    PROJECT,
    WORKERS_SETTING,
    admin_password,
    airflow_env,
    celery_workers,
    local_secrets,
)
from dev.pools import ensure_pools
from include.taxi.settings import CELERY_CONFIG_OPTIONS

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
        "login": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
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
    port = int(env.get("TAXI_PG_PORT") or 5433)
    password = local_secrets(HOME)["postgres_password"]
    url = local_postgres.start(PG_DATA, port, password=password)
    print(
        f"warehouse: embedded PostgreSQL at postgresql://postgres@127.0.0.1:{port}/postgres "
        f"(password: postgres_password in {HOME}/secrets.json; data in {PG_DATA})",
        flush=True,
    )
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
    raise SystemExit(f"Airflow did not become healthy at {url}; see the logs in {HOME}")


LOG_PORT_SETTING = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_ports(env: dict[str, str]) -> None:
    """Exit with a message naming the setting when a port Airflow needs is already taken.

    Without this, `airflow standalone` starts, its api-server dies on the busy port, and the
    only clue is a traceback in standalone.log after a 2-minute health wait.
    """
    host = env.get("AIRFLOW__API__HOST") or "127.0.0.1"
    port = int(env[PORT_SETTING])
    if _port_taken(host, port):
        raise SystemExit(
            f"make run: port {port} on {host} is already in use (another Airflow or web server?).\n"
            f"  Pick a free one with {PORT_SETTING}, in the shell or in .env, e.g.\n"
            f"    {PORT_SETTING}={port + 1} make run\n"
            f"  The UI, AIRFLOW__API__BASE_URL and the execution API URL all follow it."
        )
    log_port = int(env[LOG_PORT_SETTING])
    if _port_taken(host, log_port):
        raise SystemExit(
            f"make run: port {log_port} (the scheduler's log server) is already in use.\n"
            f"  It follows {PORT_SETTING} (+713); or set {LOG_PORT_SETTING} to a free port."
        )


CELERY_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def celery_env(env: dict[str, str]) -> dict[str, str]:
    """The CeleryExecutor: Redis broker, and a PostgreSQL metadata DB on the warehouse server.

    SQLite's single writer cannot serve a scheduler and several workers, so unless
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN already names a server, the database ``airflow`` is
    created on the warehouse's PostgreSQL (the embedded one by default).
    """
    import psycopg

    broker = env.setdefault("AIRFLOW__CELERY__BROKER_URL", DEFAULT_BROKER)
    if not _redis_answers(broker):
        raise SystemExit(
            f"make run: {WORKERS_SETTING} asks for Celery workers, but no Redis answers at "
            f"{broker}.\n  Start one (`make redis` installs Debian's redis-server; then "
            "`redis-server --save '' &`) or point AIRFLOW__CELERY__BROKER_URL at yours."
        )
    if env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):
        from sqlalchemy.engine import URL

        conn = json.loads(env["AIRFLOW_CONN_TAXI_POSTGRES"])
        server = {
            "host": conn["host"],
            "port": int(conn["port"]),
            "user": conn["login"],
            "password": conn.get("password") or None,
        }
        with psycopg.connect(**server, dbname=conn["schema"], autocommit=True) as pg:
            if not pg.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'").fetchone():
                pg.execute("CREATE DATABASE airflow")
        url = URL.create(
            "postgresql+psycopg2",
            username=server["user"],
            password=server["password"],
            host=server["host"],
            port=server["port"],
            database="airflow",
        )
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url.render_as_string(hide_password=False)
        env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", None)
    env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
    env.setdefault("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS", CELERY_CONFIG_OPTIONS)
    env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(CELERY_WORKER_CONCURRENCY))
    env.setdefault(
        "AIRFLOW__CELERY__RESULT_BACKEND", f"db+{env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}"
    )
    return env


def _start(argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen:
    with (HOME / f"{log_name}.log").open("ab") as log:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def run() -> int:
    """Start Postgres (if needed) and Airflow; Ctrl+C stops what was started.

    Default: `airflow standalone` (LocalExecutor). With TAXI_CELERY_WORKERS=N: the
    CeleryExecutor, the four Airflow services as separate processes and N
    `airflow celery worker` processes (standalone always forces the LocalExecutor).
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    check_ports(airflow_env(HOME))
    env, started_pg = warehouse_env(airflow_env(HOME))
    processes: list[subprocess.Popen] = []
    try:
        workers = celery_workers(env)
        if workers:
            env = celery_env(env)
        password = admin_password(HOME)
        _migrate(env)
        print(f"pools: {ensure_pools(env)}", flush=True)
        url = env["AIRFLOW__API__BASE_URL"]
        if workers:
            processes = [_start([AIRFLOW, name], env, name) for name in CELERY_PROCESSES]
            for n in range(1, workers + 1):
                name = f"worker-{n}"
                worker_env = {
                    **env,
                    "TAXI_WORKER_HOSTNAME": name,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dev.airflow_settings.worker_hostname",
                }
                argv = [AIRFLOW, "celery", "worker", "--celery-hostname", name]
                processes.append(_start([*argv, "--skip-serve-logs"], worker_env, name))
            logs = f"{HOME}/{{api-server,scheduler,dag-processor,triggerer,worker-N}}.log"
        else:
            processes = [_start([AIRFLOW, "standalone"], env, "standalone")]
            logs = f"{HOME}/standalone.log"
        _wait_healthy(url, processes[0])
        executor = f"CeleryExecutor, {workers} worker(s)" if workers else "LocalExecutor"
        print(f"\nAirflow UI: {url}   login: {ADMIN_USER} / {password}   ({executor})", flush=True)
        print(f"logs: {logs}   Ctrl+C stops Airflow and the embedded Postgres\n")
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        print("an Airflow process exited; stopping the others (see the logs)")
    except KeyboardInterrupt:
        pass
    finally:
        _stop(processes)
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
    if celery_workers(env):  # `make run` on Celery keeps its metadata in PostgreSQL, not SQLite
        env = celery_env(warehouse_env(env)[0])
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
    commands: dict[str, tuple[Callable[..., int], int]] = {
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
