"""A real Airflow (api-server, scheduler, dag-processor) in a private home, for e2e tests and
`make bench-backfill`.

Shared by the e2e tests, the browser tests and the backfill benchmark so all start, wait for
and stop Airflow the same way, and explain a failure with the same log tails. Every port is
free-picked (the scheduler's log server defaults to a fixed 8793), so a stack runs beside a
developer's Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from unittest import mock

import psycopg
import requests
from psycopg import sql
from sqlalchemy.engine import URL

from dev.airflow_env import (
    ADMIN_USER,
    CONNECT_ARGS,
    admin_password,
    airflow_env,
    postgres_connection,
)
from dev.pools import ensure_pools

AIRFLOW = str(Path(sys.executable).parent / "airflow")
METADATA_SETTING = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
SERVICES_PROCESSES = ("api-server", "scheduler", "dag-processor")
STOP_ORDER = ("scheduler", "workers", "dag-processor", "api-server")
"""``workers``: every Celery worker (processes named ``worker-<hostname>``)."""
WORKER_PREFIX = "worker-"
STOP_TIMEOUT_S = 10
TERMINAL = {"success", "failed"}
TROUBLE = ("failed", "up_for_retry")
HEALTH_TIMEOUT_S = 90
PARSE_TIMEOUT_S = 60
API_TIMEOUT_S = 90
"""Longer than SQLite's 30 s busy timeout (dev/airflow_settings.py): a write that waited for
the metadata DB's lock gets its answer (done, or 'database is locked') instead of a client
timeout. CI saw a dag-run POST time out at 30 s right after a backfill finished."""
WRITE_ATTEMPTS = 3
BACKFILL_ATTEMPTS = 3
EXECUTION_API_TIMEOUT_S = "30"
"""How long a task process waits for the execution API (Airflow's default: 5 s). On 2 shared
cores at load 14-17 the api-server answered task state updates after more than 5 s and tasks
failed with httpx.ReadTimeout before doing anything (seen in the Celery and scheduler tests)."""


class StackFailure(AssertionError):
    """The stack did not do what its caller waited for; the message carries the log tails.

    An ``AssertionError`` so a test that meets it fails (not errors) and pytest shows it whole."""


def fail(message: str) -> NoReturn:
    raise StackFailure(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def task_log_tail(path: Path, lines: int) -> str:
    """Task logs are JSON lines: show time, level, message and any exception, one per line."""
    shown = []
    for line in path.read_text(errors="replace").splitlines()[-lines:]:
        try:
            entry = json.loads(line)
        except ValueError:
            shown.append(line)
            continue
        text = f"{entry.get('timestamp', '')[11:19]} {entry.get('level', '')} {entry.get('event')}"
        for error in entry.get("error_detail") or []:
            frame = (error.get("frames") or [{}])[-1]
            text += (
                f"\n    {error.get('exc_type')}: {error.get('exc_value')}"
                f" at {frame.get('filename')}:{frame.get('lineno')}"
            )
        shown.append(text)
    return "\n".join(shown)


def environment(home: Path, port: int, extra: dict[str, str | None]) -> dict[str, str]:
    """airflow_env for ``home``, ignoring the AIRFLOW_*/TAXI_* values conftest exported.

    airflow_env lets the caller's os.environ win, and conftest already exported another
    test home into it, so the call sees an environment without those keys. A None in
    ``extra`` removes that key (e.g. SQLite's connect args on a PostgreSQL metadata DB).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "TAXI_"))}
    with mock.patch.dict(os.environ, clean, clear=True):
        env = airflow_env(home, api_port=port)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def taxi_env(postgres_url: str, pg_schema: str, source_url: str) -> dict[str, str]:
    """The project's Connection and Variables from the environment, catchup off."""
    return {
        "TAXI_CATCHUP": "false",
        "TAXI_START_MONTH": "2021-01",
        "AIRFLOW_CONN_TAXI_POSTGRES": postgres_connection(postgres_url),
        "AIRFLOW_VAR_TAXI_SOURCE_URL": source_url,
        "AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA": pg_schema,
    }


@contextlib.contextmanager
def metadata_database(postgres_url: str) -> Iterator[str]:
    """A fresh database on ``postgres_url``'s server, as a SQLAlchemy URL for Airflow; dropped
    afterwards."""
    name = f"airflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = URL.create(
            "postgresql+psycopg2",
            username=conn.info.user,
            password=conn.info.password or None,
            host=conn.info.host,
            port=conn.info.port,
            database=name,
        ).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


class AirflowStack:
    """The running Airflow: its home, environment, API and how to explain a failure.

    Use as a context manager: entering migrates the home, creates the project's pools, starts
    the processes and waits for the API and for ``dag_id`` to be parsed; leaving stops them
    whatever the outcome. ``workers``: hostnames of ``airflow celery worker`` processes to
    start too (with a CeleryExecutor in ``extra_env``).
    """

    def __init__(
        self,
        home: Path,
        dag_id: str,
        extra_env: dict[str, str | None],
        workers: tuple[str, ...] = (),
        worker_concurrency: int = 2,
    ) -> None:
        self.home = home
        self.dag_id = dag_id
        self.port = free_port()
        self.env = environment(
            home,
            self.port,
            {
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": EXECUTION_API_TIMEOUT_S,
                **extra_env,
            },
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = admin_password(home)
        self.processes: dict[str, subprocess.Popen] = {}
        self.session = requests.Session()
        self.workers = workers
        self.worker_concurrency = worker_concurrency
        self.resources = contextlib.ExitStack()

    def __enter__(self) -> AirflowStack:
        self._metadata_on_postgres()
        migrated = self.cli("db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        self.pools = ensure_pools(self.env)
        try:
            for name in SERVICES_PROCESSES:
                self.start(name)
            for hostname in self.workers:
                self.start_worker(hostname)
            self.wait_for(
                "the api-server's health endpoint",
                lambda: self.api("GET", "/api/v2/monitor/health").status_code == 200,
                HEALTH_TIMEOUT_S,
            )
            self.login()
            self.wait_for(f"the dag-processor to parse {self.dag_id}", self.parsed, PARSE_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _metadata_on_postgres(self) -> None:
        """A fresh metadata database on the warehouse's server, as `make run` keeps it (SQLite's
        one writer stalls the UI and `backfill create`), unless the caller chose one."""
        conn = self.env.get("AIRFLOW_CONN_TAXI_POSTGRES")
        if not conn or not self.env[METADATA_SETTING].startswith("sqlite"):
            return
        fields = json.loads(conn)
        server = psycopg.conninfo.make_conninfo(
            host=fields["host"],
            port=fields["port"],
            user=fields["login"],
            password=fields.get("password") or None,
            dbname=fields["schema"],
        )
        self.env[METADATA_SETTING] = self.resources.enter_context(metadata_database(server))
        self.env.pop(CONNECT_ARGS, None)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(
        self, name: str, argv: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        with self.log(name).open("ab") as out:
            self.processes[name] = subprocess.Popen(
                argv or [AIRFLOW, name],
                env=env or self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_worker(self, hostname: str) -> None:
        """``airflow celery worker`` named ``hostname``; its tasks report that hostname too.

        Both workers run on this one machine, so Airflow's default hostname (the FQDN) would
        be the same for both: TAXI_WORKER_HOSTNAME and dev.airflow_settings.worker_hostname
        give each its own, as separate machines would have. Logs are files in the shared home,
        so the workers serve none (two would fight over one log-server port).
        """
        env = {
            **self.env,
            "TAXI_WORKER_HOSTNAME": hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dev.airflow_settings.worker_hostname",
        }
        argv = [AIRFLOW, "celery", "worker", "--celery-hostname", hostname]
        argv += ["--concurrency", str(self.worker_concurrency), "--skip-serve-logs"]
        self.start(f"{WORKER_PREFIX}{hostname}", argv, env)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a process and everything it started (a worker and its task processes)."""
        proc = self.processes.pop(name)
        _signal_group(proc, sig)
        proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the scheduler first, the api-server last; SIGKILL whatever outlives SIGTERM.

        Running tasks report through the api-server: stopped first, it leaves the scheduler
        waiting on workers that cannot finish (seen: still alive 30 s after SIGTERM).
        """
        for group in STOP_ORDER:
            names = (
                [n for n in self.processes if n.startswith(WORKER_PREFIX)]
                if group == "workers"
                else [group]
            )
            stopping = [(n, p) for n in names if (p := self.processes.pop(n, None)) is not None]
            for _, proc in stopping:
                _signal_group(proc, signal.SIGTERM)
            for _, proc in stopping:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=STOP_TIMEOUT_S)
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        self.session.close()
        self.resources.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}", timeout=API_TIMEOUT_S, **kwargs)

    def write(
        self, method: str, path: str, payload: dict[str, Any], *, created: str | None = None
    ) -> requests.Response:
        """A state-changing call, tried again if the metadata DB stayed locked (a 5xx or no
        answer). ``created``: where a POST's resource lives, fetched when a retry gets 409
        because the earlier attempt went through after all."""
        outcome: object = None
        for attempt in range(WRITE_ATTEMPTS):
            try:
                resp = self.api(method, path, json=payload)
            except requests.Timeout as exc:
                outcome = exc
                continue
            if resp.status_code == 409 and attempt and created:
                return self.api("GET", created)
            if resp.status_code < 500:
                return resp
            outcome = f"{resp.status_code} {resp.text[:500]}"
        fail(self.explain(f"{method} {path}: {WRITE_ATTEMPTS} attempts, last: {outcome}"))

    def unpause(self, *dag_ids: str) -> None:
        """Unpause the DAGs (new DAGs start paused), failing the test with the stack's story."""
        for dag_id in dag_ids or (self.dag_id,):
            resp = self.write("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            if resp.status_code != 200:
                fail(self.explain(f"unpause {dag_id}: {resp.status_code} {resp.text}"))

    def login(self) -> None:
        resp = self.api(
            "POST", "/auth/token", json={"username": ADMIN_USER, "password": self.password}
        )
        assert resp.status_code in (200, 201), self.explain(
            f"token: {resp.status_code} {resp.text}"
        )
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def parsed(self, dag_id: str | None = None) -> bool:
        """True once the DAG is in the API; an import error in its file fails at once."""
        dag_id = dag_id or self.dag_id
        errors = [
            error
            for error in self.api("GET", "/api/v2/importErrors").json().get("import_errors", [])
            if str(error.get("filename", "")).endswith(f"{dag_id}.py")
        ]
        if errors:
            fail(self.explain(f"DAG import errors: {json.dumps(errors, indent=1)}"))
        return self.api("GET", f"/api/v2/dags/{dag_id}").status_code == 200

    def runs(self, dag_id: str | None = None) -> list[dict[str, Any]]:
        dag_id = dag_id or self.dag_id
        resp = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
        resp.raise_for_status()
        return resp.json()["dag_runs"]

    def fail_on_task_trouble(self, run_ids: list[str], dag_id: str | None = None) -> None:
        """Fail at once when a task of these runs failed or waits for a retry (30 s and up)."""
        dag_id = dag_id or self.dag_id
        resp = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances",
            params={"state": list(TROUBLE), "limit": 100},
        )
        resp.raise_for_status()
        bad = [t for t in resp.json()["task_instances"] if t["dag_run_id"] in run_ids]
        if bad:
            summary = [
                f"{t['dag_run_id']} {t['task_id']}[{t['map_index']}]: {t['state']}" for t in bad
            ]
            selectors = [selector(t) for t in bad]
            fail(self.explain(f"tasks in trouble: {summary}", selectors, dag_id))

    def create_backfill(self, from_date: str, to_date: str, *options: str) -> None:
        """``airflow backfill create`` of the stack's DAG, tried again when SQLite was locked.

        The CLI reads, then inserts the runs in one SQLite transaction; a concurrent writer (the
        scheduler, the dag-processor) makes the upgrade to a write lock fail at once with
        ``database is locked`` (the busy timeout cannot help there). Airflow then deletes the
        partial backfill, so trying again is safe. Best done while the DAG is still paused,
        when the scheduler writes least.
        """
        args = ["backfill", "create", "--dag-id", self.dag_id, "--from-date", from_date]
        args += ["--to-date", to_date, *options]
        for _ in range(BACKFILL_ATTEMPTS):
            created = self.cli(*args)
            if created.returncode == 0:
                return
            if "database is locked" not in created.stderr:
                break
            backfills = self.api("GET", "/api/v2/backfills", params={"dag_id": self.dag_id})
            if backfills.json()["backfills"]:
                fail(self.explain(f"a locked backfill create left {backfills.json()}"))
            time.sleep(1)
        fail(self.explain(f"backfill create: {created.stderr[-3000:]}"))

    def wait_for_backfill(self, dates: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The backfill runs of these months (``YYYY-MM``, or a ``YYYY-MM-DD`` of that month)
        once all have ended and the backfill is completed; fails at once when a task fails or
        waits for a retry. A run's month is its partition key (partitioned DAGs), else its
        logical date's month."""

        def done() -> dict[str, dict[str, Any]] | None:
            runs = {run_month(r): r for r in self.runs() if r["run_type"] == "backfill"}
            runs.pop("", None)
            self.fail_on_task_trouble([r["dag_run_id"] for r in runs.values()])
            if {d[:7] for d in dates} <= set(runs) and all(
                runs[d[:7]]["state"] in TERMINAL for d in dates
            ):
                return {d: runs[d[:7]] for d in dates}
            return None

        runs = self.wait_for(f"the backfill runs of {sorted(dates)}", done, timeout)

        def completed() -> bool:
            resp = self.api("GET", "/api/v2/backfills", params={"dag_id": self.dag_id})
            resp.raise_for_status()
            return all(b["completed_at"] for b in resp.json()["backfills"])

        # the scheduler marks the backfill completed a loop later; until then another one for
        # this DAG is refused (AlreadyRunningBackfill)
        self.wait_for("the backfill to be marked completed", completed, timeout)
        return runs

    def task_logs(
        self, selectors: list[str] | None = None, lines: int = 15, dag_id: str | None = None
    ) -> str:
        """Tails of the task logs whose path contains one of ``selectors`` (all if None)."""
        root = self.home / "logs" / f"dag_id={dag_id or self.dag_id}"
        parts = []
        for path in sorted(root.rglob("*.log")) if root.exists() else []:
            relative = f"{path.relative_to(root).parent}/"
            if selectors is None or any(s in relative for s in selectors):
                parts.append(f"--- {relative}\n{task_log_tail(path, lines)}")
        return "\n".join(parts) or "(no task logs)"

    def explain(
        self, message: str, selectors: list[str] | None = None, dag_id: str | None = None
    ) -> str:
        """The failure plus what a reader needs to debug it without rerunning.

        Task logs are ``dag_id``'s (the stack's DAG if None) that match ``selectors``.
        """
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        return "\n".join(
            [
                message,
                f"exited processes: {dead or 'none'}",
                "=== scheduler.log (tail)",
                tail(self.log("scheduler"), 40),
                "=== dag-processor.log (tail)",
                tail(self.log("dag-processor"), 15),
                "=== api-server.log (tail)",
                tail(self.log("api-server"), 15),
                *[
                    f"=== {path.name} (tail)\n{tail(path, 25)}"
                    for path in sorted(self.home.glob(f"{WORKER_PREFIX}*.log"))
                ],
                f"=== task logs of {dag_id or self.dag_id}",
                self.task_logs(selectors, dag_id=dag_id),
            ]
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll ``check`` until it returns something truthy; fail with diagnostics on timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                fail(self.explain(f"waiting for {what}: {dead} exited"))
            try:
                last = check()
            except requests.RequestException as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(1)
        fail(self.explain(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}"))


def run_month(run: dict[str, Any]) -> str:
    """The month a run loads: its partition key, else its logical date's month, else ''."""
    return str(run.get("partition_key") or (run.get("logical_date") or "")[:7])


def selector(ti: dict[str, Any]) -> str:
    """The log folder of a task instance, relative to the DAG's log folder."""
    mapped = f"map_index={ti['map_index']}/" if ti["map_index"] >= 0 else ""
    return f"run_id={ti['dag_run_id']}/task_id={ti['task_id']}/{mapped}"
