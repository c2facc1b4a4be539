"""End to end with a real api-server, scheduler and dag-processor: backfill, then a REST trigger.

Unit and DAG tests run tasks in-process; only a real scheduler shows that the schedule, the
mapped tasks, the Variables and Connection from the environment and the execution API work
together. Everything runs in a private Airflow home on a free port, against the session's
PostgreSQL and a local web server laid out like the real source.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from psycopg import sql

from dev.airflow_env import ADMIN_USER, admin_password, airflow_env
from dev.synthetic import write_month, write_zones

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "taxi_to_postgres"
MONTHS = {"2021-01": date(2021, 1, 1), "2021-02": date(2021, 2, 1), "2021-03": date(2021, 3, 1)}
ROWS = {
    "yellow": {"2021-01": 300, "2021-02": 240, "2021-03": 180},
    "green": {"2021-01": 210, "2021-02": 170, "2021-03": 260},
    "fhv": {"2021-01": 150, "2021-02": 320, "2021-03": 230},
}
"""Different counts per service and month, so a row landing in the wrong month shows."""
SERVICES_PROCESSES = ("api-server", "scheduler", "dag-processor")
STOP_ORDER = ("scheduler", "dag-processor", "api-server")
STOP_TIMEOUT_S = 10
TERMINAL = {"success", "failed"}
TROUBLE = ("failed", "up_for_retry")
HEALTH_TIMEOUT_S = 90
PARSE_TIMEOUT_S = 60
RUNS_TIMEOUT_S = 180
BACKFILL_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _task_log_tail(path: Path, lines: int) -> str:
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


def _connection_json(url: str) -> str:
    """The Airflow connection for the session's PostgreSQL URL, in Airflow's JSON form."""
    parts = urlsplit(url)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": parts.hostname,
            "port": parts.port,
            "login": parts.username or "postgres",
            "password": parts.password or "",
            "schema": parts.path.lstrip("/") or "postgres",
        }
    )


def _environment(home: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """airflow_env for ``home``, ignoring the AIRFLOW_*/TAXI_* values conftest exported.

    airflow_env lets the caller's os.environ win, and conftest already exported another
    test home into it, so the call sees an environment without those keys.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "TAXI_"))}
    with mock.patch.dict(os.environ, clean, clear=True):
        env = airflow_env(home, api_port=port)
    env.update(extra)
    return env


@dataclass
class Stack:
    """The running Airflow: its home, environment, API and how to explain a failure."""

    home: Path
    env: dict[str, str]
    base: str
    password: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str) -> None:
        with self.log(name).open("ab") as out:
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, name],
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Stop the scheduler first, the api-server last; SIGKILL whatever outlives SIGTERM.

        Running tasks report through the api-server: stopped first, it leaves the scheduler
        waiting on workers that cannot finish (seen: still alive 30 s after SIGTERM).
        """
        for name in STOP_ORDER:
            proc = self.processes.get(name)
            if proc is None:
                continue
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT_S)
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        self.session.close()

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
        return self.session.request(method, f"{self.base}{path}", timeout=30, **kwargs)

    def login(self) -> None:
        resp = self.api(
            "POST", "/auth/token", json={"username": ADMIN_USER, "password": self.password}
        )
        assert resp.status_code in (200, 201), self.explain(
            f"token: {resp.status_code} {resp.text}"
        )
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def task_logs(self, selectors: list[str] | None = None, lines: int = 15) -> str:
        """Tails of the task logs whose path contains one of ``selectors`` (all if None)."""
        root = self.home / "logs" / f"dag_id={DAG_ID}"
        parts = []
        for path in sorted(root.rglob("*.log")) if root.exists() else []:
            relative = f"{path.relative_to(root).parent}/"
            if selectors is None or any(s in relative for s in selectors):
                parts.append(f"--- {relative}\n{_task_log_tail(path, lines)}")
        return "\n".join(parts) or "(no task logs)"

    def explain(self, message: str, selectors: list[str] | None = None) -> str:
        """The failure plus what a reader needs to debug it without rerunning."""
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        return "\n".join(
            [
                message,
                f"exited processes: {dead or 'none'}",
                "=== scheduler.log (tail)",
                _tail(self.log("scheduler"), 40),
                "=== dag-processor.log (tail)",
                _tail(self.log("dag-processor"), 15),
                "=== api-server.log (tail)",
                _tail(self.log("api-server"), 15),
                "=== task logs",
                self.task_logs(selectors),
            ]
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll ``check`` until it returns something truthy; fail with diagnostics on timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                pytest.fail(self.explain(f"waiting for {what}: {dead} exited"))
            try:
                last = check()
            except requests.RequestException as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(1)
        pytest.fail(self.explain(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}"))


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@pytest.fixture
def source_files(source_server: tuple[str, Path]) -> tuple[str, int]:
    """Synthetic trips for three months of every service plus the zones; base URL, zone rows."""
    base, root = source_server
    for service, months in ROWS.items():
        for month, rows in months.items():
            path = root / service / f"{service}_tripdata_{month}.csv.gz"
            write_month(path, service, MONTHS[month], rows, seed=rows)
    zones = write_zones(root / "misc" / "taxi_zone_lookup.csv")
    return base, zones


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pg_schema: str,
    source_files: tuple[str, int],
) -> Iterator[Stack]:
    """A migrated home and the three Airflow processes, stopped whatever the test's outcome.

    Every port is free-picked (the scheduler's log server defaults to a fixed 8793), so the
    test runs beside a developer's Airflow.
    """
    home = tmp_path_factory.mktemp("airflow-e2e")
    port = _free_port()
    env = _environment(
        home,
        port,
        {
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "TAXI_CATCHUP": "false",
            "TAXI_START_MONTH": "2021-01",
            "AIRFLOW_CONN_TAXI_POSTGRES": _connection_json(postgres_url),
            "AIRFLOW_VAR_TAXI_SOURCE_URL": source_files[0],
            "AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA": pg_schema,
        },
    )
    stack = Stack(home, env, f"http://127.0.0.1:{port}", admin_password(home))
    migrated = stack.cli("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    try:
        for name in SERVICES_PROCESSES:
            stack.start(name)
        stack.wait_for(
            "the api-server's health endpoint",
            lambda: stack.api("GET", "/api/v2/monitor/health").status_code == 200,
            HEALTH_TIMEOUT_S,
        )
        stack.login()
        stack.wait_for(
            f"the dag-processor to parse {DAG_ID}",
            lambda: _parsed(stack),
            PARSE_TIMEOUT_S,
        )
        yield stack
    finally:
        stack.stop()


def _parsed(stack: Stack) -> bool:
    """True once the DAG is in the API; an import error in its file fails at once."""
    errors = [
        error
        for error in stack.api("GET", "/api/v2/importErrors").json().get("import_errors", [])
        if str(error.get("filename", "")).endswith(f"{DAG_ID}.py")
    ]
    if errors:
        pytest.fail(stack.explain(f"DAG import errors: {json.dumps(errors, indent=1)}"))
    return stack.api("GET", f"/api/v2/dags/{DAG_ID}").status_code == 200


def _create_backfill(stack: Stack) -> None:
    """``airflow backfill create`` for 2021-01..2021-03, retried when SQLite was locked.

    The CLI reads, then inserts the runs in one SQLite transaction; a concurrent writer (the
    scheduler, the dag-processor) makes the upgrade to a write lock fail at once with
    ``database is locked`` (the busy timeout cannot help there). Airflow then deletes the
    partial backfill, so trying again is safe. Done while the DAG is still paused, when the
    scheduler writes least.
    """
    args = ["backfill", "create", "--dag-id", DAG_ID]
    args += ["--from-date", "2021-01-01", "--to-date", "2021-03-31"]
    for _ in range(BACKFILL_ATTEMPTS):
        created = stack.cli(*args)
        if created.returncode == 0:
            return
        if "database is locked" not in created.stderr:
            break
        backfills = stack.api("GET", "/api/v2/backfills", params={"dag_id": DAG_ID}).json()
        if backfills["backfills"]:
            pytest.fail(stack.explain(f"a locked backfill create left {backfills}"))
        time.sleep(1)
    pytest.fail(stack.explain(f"backfill create: {created.stderr[-3000:]}"))


def _runs(stack: Stack) -> list[dict[str, Any]]:
    resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    resp.raise_for_status()
    return resp.json()["dag_runs"]


def _fail_on_task_trouble(stack: Stack, run_ids: list[str]) -> None:
    """Fail at once when a task of these runs failed or waits for a retry (30 s and up)."""
    resp = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances",
        params={"state": list(TROUBLE), "limit": 100},
    )
    resp.raise_for_status()
    bad = [t for t in resp.json()["task_instances"] if t["dag_run_id"] in run_ids]
    if bad:
        summary = [f"{t['dag_run_id']} {t['task_id']}[{t['map_index']}]: {t['state']}" for t in bad]
        pytest.fail(stack.explain(f"tasks in trouble: {summary}", [_selector(t) for t in bad]))


def _selector(ti: dict[str, Any]) -> str:
    """The log folder of a task instance, relative to the DAG's log folder."""
    mapped = f"map_index={ti['map_index']}/" if ti["map_index"] >= 0 else ""
    return f"run_id={ti['dag_run_id']}/task_id={ti['task_id']}/{mapped}"


def _month_counts(url: str, schema: str, table: str) -> dict[str, int]:
    query = sql.SQL("SELECT source_month, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(
        sql.Identifier(schema, table)
    )
    with psycopg.connect(url) as conn:
        return {f"{m:%Y-%m}": n for m, n in conn.execute(query).fetchall()}


def _count(url: str, schema: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        return conn.execute(query).fetchone()[0]


def test_backfill_then_rest_trigger(
    stack: Stack, postgres_url: str, pg_schema: str, source_files: tuple[str, int]
) -> None:
    """Backfill three months, then reload one (service, month) from a REST trigger."""
    _create_backfill(stack)
    unpaused = stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert unpaused.status_code == 200, stack.explain(f"unpause: {unpaused.text}")

    wanted = {f"{m}-01" for m in MONTHS}

    def backfill_done() -> dict[str, dict[str, Any]] | None:
        runs = {
            r["logical_date"][:10]: r
            for r in _runs(stack)
            if r["run_type"] == "backfill" and r["logical_date"]
        }
        _fail_on_task_trouble(stack, [r["dag_run_id"] for r in runs.values()])
        done = set(runs) >= wanted and all(runs[d]["state"] in TERMINAL for d in wanted)
        return {d: runs[d] for d in wanted} if done else None

    runs = stack.wait_for("the three backfill runs to finish", backfill_done, RUNS_TIMEOUT_S)
    backfilled = sorted(r["logical_date"][:10] for r in _runs(stack) if r["run_type"] == "backfill")
    assert backfilled == sorted(wanted), stack.explain(f"backfill created runs for {backfilled}")
    states = {d: r["state"] for d, r in runs.items()}
    backfill_runs = [f"run_id={r['dag_run_id']}/" for r in runs.values()]
    assert states == dict.fromkeys(wanted, "success"), stack.explain(
        f"states {states}", backfill_runs
    )

    for service, months in ROWS.items():
        counts = _month_counts(postgres_url, pg_schema, f"{service}_tripdata")
        assert counts == months, stack.explain(f"{service}: {counts} != {months}", backfill_runs)
    zones = _count(postgres_url, pg_schema, "taxi_zone_lookup")
    assert zones == source_files[1], stack.explain(f"zones: {zones}", backfill_runs)

    # No logical date: 2021-02-01 is taken by the backfill run (one run per logical date),
    # and the Params, not the data interval, say which month this run loads. force_reload:
    # the source is unchanged, so without it the task would (rightly) skip the reload.
    run_id = f"e2e_green_2021_02_{int(time.time())}"
    this_run = [f"run_id={run_id}/"]
    triggered = stack.api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": {"service": "green", "month": "2021-02", "force_reload": True},
        },
    )
    assert triggered.status_code == 200, stack.explain(f"trigger: {triggered.text}")

    def run_done() -> dict[str, Any] | None:
        _fail_on_task_trouble(stack, [run_id])
        resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        resp.raise_for_status()
        return resp.json() if resp.json()["state"] in TERMINAL else None

    run = stack.wait_for("the REST-triggered run to finish", run_done, RUNS_TIMEOUT_S)
    assert run["state"] == "success", stack.explain(f"triggered run: {run}", this_run)

    resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    resp.raise_for_status()
    tis = {(t["task_id"], t["map_index"]): t for t in resp.json()["task_instances"]}
    loads = {k: v for k, v in tis.items() if k[0] == "load_trips"}
    summary = {k: (v["state"], v.get("rendered_map_index")) for k, v in tis.items()}
    assert list(loads) == [("load_trips", 0)], stack.explain(f"tasks: {summary}", this_run)
    load = loads["load_trips", 0]
    assert load["state"] == "success", stack.explain(f"tasks: {summary}", this_run)
    assert load["rendered_map_index"] == "green 2021-02", stack.explain(f"{summary}", this_run)
    result = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load_trips/xcomEntries/return_value",
        params={"map_index": 0, "deserialize": True},
    ).json()
    value = result.get("value")
    status = value.get("status") if isinstance(value, dict) else None
    assert status == "loaded", stack.explain(f"load_trips returned {result}", this_run)

    green = _month_counts(postgres_url, pg_schema, "green_tripdata")
    assert green == ROWS["green"], stack.explain(f"green after reload: {green}", this_run)
