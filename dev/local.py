"""Local Airflow without Docker: what `make run`, `make month`, `make backfill` ... do.

    python -m dev.local run                                  # PostgreSQL + Airflow's services
    TAXI_CELERY_WORKERS=2 python -m dev.local run            # ... on Celery, 2 workers
    python -m dev.local month DAG SERVICE YYYY-MM            # one month, in-process
    python -m dev.local backfill DAG FROM TO [SERVICE] [--reprocess failed|completed]
        [--force-reload] [--newest-first] [--dry-run]        # through the running api-server
    python -m dev.local cloud-month SERVICE YYYY-MM          # web → GCS → BigQuery, emulated
    python -m dev.local report SERVICE YEAR                  # rows per month per target

The warehouse is the Postgres named by AIRFLOW_CONN_TAXI_POSTGRES or DATABASE_URL; with
neither, a project-local embedded PostgreSQL (data in TAXI_PG_DATA, default .data/postgres;
port TAXI_PG_PORT, default 5433). Airflow's own metadata: dev/metadata_db.py. Each command
starts only what it uses, and stops the embedded PostgreSQL only if it started it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from dev import local_postgres, metadata_db
from dev.airflow_env import (
    ADMIN_USER,
    CELERY_WORKER_CONCURRENCY,
    PORT_SETTING,
    PROJECT,
    WORKERS_SETTING,
    admin_password,
    airflow_env,
    celery_workers,
    dotenv,
    local_secrets,
    postgres_connection,
)
from dev.api_backfill import AirflowApi, BackfillRequest, backfill
from dev.pools import ensure_pools
from dev.supervisor import StopReport, StopRequest, Supervisor, listening
from include.taxi.months import Month
from include.taxi.settings import CELERY_CONFIG_OPTIONS

HOME = Path(os.environ.get("AIRFLOW_HOME", PROJECT / ".airflow")).resolve()
AIRFLOW = str(Path(sys.executable).parent / "airflow")
LOG_PORT_SETTING = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_WAIT_S = 180.0
GRACE_S = 30.0
"""How long each group of processes gets to exit on SIGTERM before it is SIGKILLed."""
STOP_GROUPS = 2
STOP_BOUND_S = GRACE_S * (STOP_GROUPS + 1) + 10
"""The longest a stop can take: each group's grace, the sweep, the wait for the ports."""
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def user_settings() -> dict[str, str]:
    """What the user set: .env, then the shell (which wins)."""
    return {**dotenv(PROJECT / ".env"), **os.environ}


class EmbeddedPostgres:
    """The project-local PostgreSQL, started on first use.

    Stopped at the end only by the command that started it, and only when no other client
    (another Airflow home, `make month`, a SQL client) still has a session on it.
    """

    def __init__(self, settings: dict[str, str]) -> None:
        self.data = Path(settings.get("TAXI_PG_DATA") or PROJECT / ".data" / "postgres")
        self.port = int(settings.get("TAXI_PG_PORT") or 5433)
        self.started = False
        self._url: str | None = None

    def url(self) -> str:
        """Its superuser URL, starting it if it is not running."""
        if self._url is None:
            self._adopt_older_password()
            self.started = not local_postgres.is_running(self.data)
            self._url = local_postgres.start(self.data, self.port)
            where = local_postgres.data_dir_for(self.data)
            print(
                f"embedded PostgreSQL: 127.0.0.1:{self.port}, user postgres (data and password "
                f"in {where}){'' if self.started else ', already running'}",
                flush=True,
            )
        return self._url

    def _adopt_older_password(self) -> None:
        """A cluster an older version created kept its password in this home's secrets.json."""
        if local_postgres.stored_password(self.data) is None:
            path = HOME / "secrets.json"
            older = json.loads(path.read_text()).get("postgres_password") if path.exists() else None
            if older:
                local_postgres.adopt_password(self.data, older)

    def release(self) -> None:
        if not self.started:
            return
        if others := local_postgres.client_sessions(self.data, self.port):
            print(
                f"embedded PostgreSQL left running: {others} other session(s) still use it "
                f"(`python -m dev.local_postgres stop {self.data}` stops it)"
            )
            return
        local_postgres.stop(self.data)


def warehouse(env: dict[str, str], pg: EmbeddedPostgres) -> None:
    """Point the connection taxi_postgres at the warehouse: yours, or the embedded one."""
    if env.get("AIRFLOW_CONN_TAXI_POSTGRES"):
        return
    if url := env.get("DATABASE_URL"):
        env["AIRFLOW_CONN_TAXI_POSTGRES"] = postgres_connection(url)
        return
    env["AIRFLOW_CONN_TAXI_POSTGRES"] = postgres_connection(pg.url())
    print("warehouse: database postgres in the embedded PostgreSQL", flush=True)


def metadata(env: dict[str, str], pg: EmbeddedPostgres) -> None:
    print(metadata_db.configure(env, HOME, user_settings(), pg.url), flush=True)


def check_ports(env: dict[str, str]) -> None:
    """Exit with a message naming the setting when a port Airflow needs has a listener.

    Without this, the api-server dies on the busy port and the only clue is a traceback in its
    log after the health wait. The connections a stopped server leaves (TIME_WAIT) are no
    listener: a restart right after a stop is not refused.
    """
    host = env.get("AIRFLOW__API__HOST") or "127.0.0.1"
    port = int(env[PORT_SETTING])
    if listening(host, port):
        raise SystemExit(
            f"make run: port {port} on {host} is already in use (another Airflow or web server?).\n"
            f"  Pick a free one with {PORT_SETTING}, in the shell or in .env, e.g.\n"
            f"    {PORT_SETTING}={port + 1} make run\n"
            f"  The UI, AIRFLOW__API__BASE_URL and the execution API URL all follow it."
        )
    log_port = int(env[LOG_PORT_SETTING])
    if listening(host, log_port):
        raise SystemExit(
            f"make run: port {log_port} (the scheduler's log server) is already in use.\n"
            f"  It follows {PORT_SETTING} (+713); or set {LOG_PORT_SETTING} to a free port."
        )


def _redis_answers(url: str) -> bool:
    import socket

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def celery_env(env: dict[str, str]) -> dict[str, str]:
    """The CeleryExecutor: a Redis broker, and the metadata DB as its result backend."""
    broker = env.setdefault("AIRFLOW__CELERY__BROKER_URL", DEFAULT_BROKER)
    if not _redis_answers(broker):
        raise SystemExit(
            f"make run: {WORKERS_SETTING} asks for Celery workers, but no Redis answers at "
            f"{broker}.\n  Start one (`make redis` installs Debian's redis-server; then "
            "`redis-server --save '' &`) or point AIRFLOW__CELERY__BROKER_URL at yours."
        )
    if env[metadata_db.CONN_SETTING].startswith("sqlite"):
        raise SystemExit(
            f"make run: Celery workers need a PostgreSQL metadata DB, not SQLite: unset "
            f"{metadata_db.CHOICE_SETTING}=sqlite (or set {metadata_db.CONN_SETTING})."
        )
    env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
    env.setdefault("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS", CELERY_CONFIG_OPTIONS)
    env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(CELERY_WORKER_CONCURRENCY))
    env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", f"db+{env[metadata_db.CONN_SETTING]}")
    return env


def _migrate(env: dict[str, str], stop: StopRequest | None = None) -> bool:
    """`airflow db migrate`; False if a stop signal (which reaches it too) cut it short."""
    result = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        if stop is not None and stop.requested:
            return False
        raise SystemExit(f"airflow db migrate failed:\n{result.stderr[-3000:]}")
    return True


def _wait_healthy(url: str, supervisor: Supervisor, stop: StopRequest) -> bool:
    """True once the api-server answers; False if a stop was asked for first."""
    deadline = time.monotonic() + HEALTH_WAIT_S
    while not stop.requested:
        if exited := supervisor.exited():
            raise SystemExit(f"Airflow did not start: {_exited(exited)}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                return True
        except OSError:
            if time.monotonic() > deadline:
                message = f"Airflow did not become healthy at {url}; logs in {HOME}"
                raise SystemExit(message) from None
            time.sleep(1)
    return False


def _exited(codes: dict[str, int]) -> str:
    names = ", ".join(f"{name} (exit status {code})" for name, code in codes.items())
    return f"{names} exited; see {HOME}/<name>.log"


def _serve(
    env: dict[str, str], pg: EmbeddedPostgres, supervisor: Supervisor, stop: StopRequest
) -> bool:
    """Start everything and wait for a stop; True when the user asked for it."""
    workers = celery_workers(env)
    warehouse(env, pg)
    metadata(env, pg)
    if workers:
        env = celery_env(env)
    password = admin_password(HOME)
    if not _migrate(env, stop) or stop.requested:
        return True
    print(f"pools: {ensure_pools(env)}", flush=True)
    for name in SERVICES:
        supervisor.start(name, [AIRFLOW, name], env)
    for n in range(1, workers + 1):
        name = f"worker-{n}"
        worker_env = {
            **env,
            "TAXI_WORKER_HOSTNAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dev.airflow_settings.worker_hostname",
        }
        argv = [AIRFLOW, "celery", "worker", "--celery-hostname", name, "--skip-serve-logs"]
        supervisor.start(name, argv, worker_env)
    url = env["AIRFLOW__API__BASE_URL"]
    if not _wait_healthy(url, supervisor, stop):
        return True
    executor = f"CeleryExecutor, {workers} worker(s)" if workers else "LocalExecutor"
    print(f"\nAirflow UI: {url}   login: {ADMIN_USER} / {password}   ({executor})", flush=True)
    names = ",".join([*SERVICES, *(["worker-N"] if workers else [])])
    print(f"logs: {HOME}/{{{names}}}.log   Ctrl+C stops everything make run started\n", flush=True)
    while not stop.requested:
        if exited := supervisor.exited():
            print(f"an Airflow process ended: {_exited(exited)}; stopping the others", flush=True)
            return False
        time.sleep(0.5)
    return True


def _stop_order(supervisor: Supervisor) -> list[list[str]]:
    """Everything but the api-server first, the api-server last: running tasks (in the
    scheduler's LocalExecutor or in Celery workers) report their end through it."""
    return [[name for name in supervisor.processes if name != "api-server"], ["api-server"]]


def _say_stopped(report: StopReport, port: int) -> None:
    if report.clean:
        print(f"stopped in {report.took_s:.0f} s: every process exited; port {port} is free")
        return
    lines = [f"stopped in {report.took_s:.0f} s, not cleanly:"]
    lines += [f"  killed after {GRACE_S:.0f} s or left behind: {name}" for name in report.killed]
    lines += [f"  port {p} still has a listener" for p in report.busy_ports]
    print("\n".join(lines), file=sys.stderr, flush=True)


def run() -> int:
    """Start PostgreSQL (if needed) and Airflow; SIGINT or SIGTERM stops all of it, once.

    Airflow's services run as separate processes (api-server, scheduler, dag-processor,
    triggerer; with TAXI_CELERY_WORKERS=N also N Celery workers), as in the compose stack.
    Exit status 0 when the stop was asked for and clean; 1 otherwise.
    """
    stop = StopRequest(STOP_BOUND_S)
    env = airflow_env(HOME)
    check_ports(env)
    pg = EmbeddedPostgres(user_settings())
    supervisor = Supervisor(HOME)
    asked = False
    try:
        asked = _serve(env, pg, supervisor, stop)
    finally:
        host = env.get("AIRFLOW__API__HOST") or "127.0.0.1"
        ports = [(host, int(env[PORT_SETTING])), (host, int(env[LOG_PORT_SETTING]))]
        report = supervisor.stop(_stop_order(supervisor), GRACE_S, ports)
        pg.release()
        _say_stopped(report, int(env[PORT_SETTING]))
    return 0 if asked and report.clean else 1


def _dags_test(env: dict[str, str], dag_id: str, service: str, month_name: str) -> int:
    """`airflow dags test` of one month; 0 only if the run succeeded. The month Param says
    which month; the logical date is the day its partition run is due (the 1st of the next
    month), inside the DAG's start_date..end_date, or Airflow runs no task at all."""
    conf = json.dumps({"service": service, "month": month_name})
    due = Month.parse(month_name).next().first_day.isoformat()
    result = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, due, "-c", conf],
        env=env,
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    print(output)
    ok = result.returncode == 0 and "state=success" in output
    print(f"{dag_id} {service} {month_name}: {'success' if ok else 'FAILED'}")
    return 0 if ok else 1


def month(dag_id: str, service: str, month_name: str) -> int:
    """One month in-process: the warehouse only for taxi_to_postgres, always the metadata DB."""
    env = airflow_env(HOME)
    pg = EmbeddedPostgres(user_settings())
    try:
        if dag_id == "taxi_to_postgres":
            warehouse(env, pg)
        metadata(env, pg)
        _migrate(env)
        return _dags_test(env, dag_id, service, month_name)
    finally:
        pg.release()


def backfill_command(args: argparse.Namespace) -> int:
    """A backfill through the running api-server (dev/api_backfill.py)."""
    env = airflow_env(HOME)
    api = AirflowApi(env["AIRFLOW__API__BASE_URL"])
    api.login(ADMIN_USER, local_secrets(HOME)["admin_password"])
    request = BackfillRequest(
        dag_id=args.dag_id,
        first=args.first,
        last=args.last,
        service=args.service or None,
        reprocess=args.reprocess,
        newest_first=args.newest_first,
        force_reload=args.force_reload,
    )
    return backfill(api, request, dry_run=args.dry_run)


def cloud_month(service: str, month_name: str) -> int:
    """taxi_to_lake then lake_to_bigquery for one month, on the local GCS and BigQuery emulators.

    The emulators keep their data under .data/emulators (``TAXI_EMULATOR_DIR``), so a second
    run shows the skips. The bucket is ``TAXI_DEMO_BUCKET`` (default taxi-lake), created if
    missing. No warehouse PostgreSQL: only Airflow's metadata DB.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery, storage

    from dev.emulators import running_emulators

    bucket = os.environ.get("TAXI_DEMO_BUCKET", "taxi-lake")
    dataset = os.environ.get("AIRFLOW_VAR_TAXI_BQ_DATASET", "nyc_taxi")
    workdir = Path(os.environ.get("TAXI_EMULATOR_DIR") or PROJECT / ".data" / "emulators")
    env = airflow_env(HOME)
    pg = EmbeddedPostgres(user_settings())
    with running_emulators(workdir) as emulators:
        try:
            metadata(env, pg)
            _migrate(env)
            os.environ.update(emulators.env())  # this process's clients, and the DAG runs'
            env.update(emulators.env())
            env["AIRFLOW_VAR_TAXI_LAKE_URL"] = f"gs://{bucket}/lake"
            env["AIRFLOW_VAR_TAXI_BQ_DATASET"] = dataset
            gcs = storage.Client(project=emulators.project, credentials=AnonymousCredentials())
            if gcs.lookup_bucket(bucket) is None:
                gcs.create_bucket(bucket)
            print(f"emulators: GCS {emulators.gcs.url}, BigQuery {emulators.bigquery.url}")
            for dag_id in ("taxi_to_lake", "lake_to_bigquery"):
                if status := _dags_test(env, dag_id, service, month_name):
                    return status
        finally:
            pg.release()
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
    """Rows of ``service`` per month of ``year`` per target, from the ingestion logs
    (include/taxi/status/report.py): the warehouse only, no Airflow metadata DB."""
    env = airflow_env(HOME)
    pg = EmbeddedPostgres(user_settings())
    try:
        warehouse(env, pg)
        command = [sys.executable, "-m", "include.taxi.status.report", service, year]
        return subprocess.run(command, env=env, cwd=PROJECT).returncode
    finally:
        pg.release()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dev.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run")
    sub = commands.add_parser("month")
    sub.add_argument("dag_id")
    sub.add_argument("service")
    sub.add_argument("month")
    sub = commands.add_parser("backfill")
    sub.add_argument("dag_id")
    sub.add_argument("first", metavar="FROM")
    sub.add_argument("last", metavar="TO")
    sub.add_argument("service", nargs="?", default="")
    sub.add_argument("--reprocess", default="none", help="none, failed or completed")
    sub.add_argument("--newest-first", action="store_true")
    sub.add_argument("--dry-run", action="store_true")
    sub.add_argument("--force-reload", action="store_true")
    sub = commands.add_parser("cloud-month")
    sub.add_argument("service")
    sub.add_argument("month")
    sub = commands.add_parser("report")
    sub.add_argument("service")
    sub.add_argument("year")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args([a for a in argv if a])
    commands: dict[str, Callable[[], int]] = {
        "run": run,
        "month": lambda: month(args.dag_id, args.service, args.month),
        "backfill": lambda: backfill_command(args),
        "cloud-month": lambda: cloud_month(args.service, args.month),
        "report": lambda: report(args.service, args.year),
    }
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
