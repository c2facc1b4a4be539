"""`make run` and `make backfill` as a user runs them: the real runner, from the Makefile.

A harness that starts Airflow its own way can pass while the user's path is broken, so these
tests start `make run` itself (its own embedded PostgreSQL for the metadata and the warehouse,
in a temp folder, on free ports), call `make backfill` from a second "terminal", and stop it
the ways it is stopped in real life: SIGTERM to its process group (a service manager, a closed
terminal pane: make forwards it, so the runner gets it twice), Ctrl+C twice. After each stop
no process of that Airflow home is left, its port is free, and the next start succeeds at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import psutil
import psycopg
import pytest

from dev import local_postgres
from dev.airflow_env import ADMIN_USER, PROJECT, local_secrets
from dev.airflow_stack import free_port
from dev.api_backfill import AirflowApi
from dev.supervisor import listening
from dev.synthetic import write_month, write_zones

pytestmark = pytest.mark.e2e

SERVICE = "green"
ROWS = {"2022-01": 120, "2022-02": 90, "2022-03": 150, "2022-04": 60, "2022-05": 110, "2022-06": 80}
"""Six months with different counts, so a row in the wrong month or a duplicate shows."""
READY_TIMEOUT_S = 240
RUNS_TIMEOUT_S = 420
STOP_TIMEOUT_S = 150
LOCKED = "database is locked"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, source_server: tuple[str, Path]) -> str:
    """Six green months (mirror layout) and the zones on the session's web server."""
    base, root = source_server
    for month, rows in ROWS.items():
        path = root / SERVICE / f"{SERVICE}_tripdata_{month}.csv.gz"
        write_month(path, SERVICE, date.fromisoformat(f"{month}-01"), rows, seed=rows)
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    return base


@pytest.fixture(scope="module")
def pg_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where `make run` keeps its embedded PostgreSQL; stopped afterwards if a test failed
    before the runner could stop it."""
    data = tmp_path_factory.mktemp("local-stack") / "postgres"
    yield data
    local_postgres.stop(data)


@pytest.fixture(scope="module")
def pg_port() -> int:
    return free_port()


class LocalRun:
    """One `make run` in a process group of its own (as in a terminal), output in a file."""

    def __init__(self, home: Path, env: dict[str, str], command: list[str]) -> None:
        self.home = home
        self.env = env
        self.command = command
        self.output_path = home.parent / f"{home.name}-{time.monotonic_ns()}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.env["AIRFLOW__API__PORT"])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def start(self) -> LocalRun:
        with self.output_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=PROJECT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "Airflow UI:" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not start:\n{self.output()[-4000:]}\n{self.logs()}")
            time.sleep(1)
        return self

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} from make run within {timeout:.0f} s:\n{self.output()}")
            time.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def wait(self) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"make run still running {STOP_TIMEOUT_S} s after the signal:\n{self.output()}"
            )

    def stop_quietly(self) -> None:
        """Teardown after a failed test: SIGTERM once and wait (the runner stops everything)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)

    def logs(self) -> str:
        parts = []
        for name in ("scheduler", "api-server", "dag-processor"):
            path = self.home / f"{name}.log"
            if path.exists():
                parts.append(f"=== {name}.log\n" + "\n".join(path.read_text().splitlines()[-20:]))
        return "\n".join(parts)

    def api(self) -> AirflowApi:
        api = AirflowApi(self.base)
        api.login(ADMIN_USER, local_secrets(self.home)["admin_password"])
        return api


def left_behind(home: Path) -> list[str]:
    """Processes whose environment names this Airflow home (the runner's included)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("AIRFLOW_HOME") == str(home) and proc.pid != os.getpid():
                found.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
    return found


@pytest.fixture
def local_run(
    tmp_path: Path, source: str, pg_data: Path, pg_port: int
) -> Iterator[Callable[..., LocalRun]]:
    """A factory of `make run`s: each its own Airflow home (unless given) and ports, the
    module's embedded PostgreSQL; every one still running at the end is stopped."""
    runs: list[LocalRun] = []

    def make(home: Path | None = None, *, command: list[str] | None = None) -> LocalRun:
        home = home or tmp_path / f"home-{len(runs)}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "TAXI_"))}
        env.pop("DATABASE_URL", None)
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__API__PORT=str(free_port()),
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="30",
            TAXI_PG_DATA=str(pg_data),
            TAXI_PG_PORT=str(pg_port),
            TAXI_CATCHUP="false",
            TAXI_START_MONTH="2022-01",
            TAXI_RETRY_DELAY_SECONDS="2",
            AIRFLOW_VAR_TAXI_SOURCE_URL=source,
            AIRFLOW_VAR_TAXI_LAKE_URL=f"file://{tmp_path / 'lake'}",
        )
        run = LocalRun(home, env, command or ["make", "run"])
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop_quietly()


def make_backfill(run: LocalRun, *args: str) -> str:
    """`make backfill ...` from a second terminal: the same home and port as the run."""
    result = subprocess.run(
        ["make", "backfill", *args],
        cwd=PROJECT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for_backfill(run: LocalRun, dag_id: str, ident: int) -> None:
    """Until backfill ``ident`` is completed with every run successful."""
    api = run.api()
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while time.monotonic() < deadline:
        backfill = api.call("GET", f"/api/v2/backfills/{ident}").json()
        runs = api.call(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "run_type": "backfill"}
        ).json()["dag_runs"]
        failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
        assert not failed, f"failed runs {failed}\n{run.logs()}"
        if backfill["completed_at"]:
            return
        time.sleep(2)
    pytest.fail(f"backfill {ident} of {dag_id} not completed in {RUNS_TIMEOUT_S} s\n{run.logs()}")


def warehouse_counts(pg_data: Path, pg_port: int) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per source month in green_tripdata, and `loaded` log rows per month."""
    password = local_postgres.stored_password(pg_data)
    assert password, "the embedded PostgreSQL keeps its password with its data"
    with psycopg.connect(local_postgres.url(pg_port, password)) as conn:
        rows = conn.execute(
            "SELECT to_char(source_month, 'YYYY-MM'), count(*) FROM public.green_tripdata "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        loads = conn.execute(
            "SELECT to_char(source_month, 'YYYY-MM'), count(*) FROM public.taxi_ingestion_log "
            "WHERE service = 'green' AND status = 'loaded' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return dict(rows), dict(loads)


def backfill_id(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("backfill "))
    return int(line.split()[1])


@pytest.mark.timeout(1800)  # four backfills of six months: ~8 min idle, 2-3x on a busy machine
def test_make_backfill_beside_a_running_make_run(
    local_run: Callable[..., LocalRun], pg_data: Path, pg_port: int
) -> None:
    """Three backfills of six months in a row through the running api-server, the scheduler
    busy with a lake backfill meanwhile: each lands every month exactly, no lock error."""
    run = local_run().start()
    assert "database airflow_" in run.output()
    assert "embedded PostgreSQL" in run.output()

    args = ["DAG=taxi_to_postgres", "FROM=2022-01", "TO=2022-06", f"SERVICE={SERVICE}"]
    dry = make_backfill(run, *args, "DRY_RUN=1")
    assert f"would create 6 runs of taxi_to_postgres (service {SERVICE}): 2022-01 " in dry, dry

    first = make_backfill(run, *args)
    assert f"months: {' '.join(ROWS)}" in first, first
    lake = make_backfill(run, "DAG=taxi_to_lake", *args[1:])  # the scheduler gets busier
    wait_for_backfill(run, "taxi_to_postgres", backfill_id(first))
    rows, loads = warehouse_counts(pg_data, pg_port)
    assert rows == ROWS
    assert loads == dict.fromkeys(ROWS, 1)

    again = make_backfill(run, *args)
    assert "nothing to create" in again, again
    assert "REPROCESS=" in again, again
    reloads = (
        ["REPROCESS=completed", "FORCE=1"],
        ["REPROCESS=completed", "FORCE=1", "NEWEST_FIRST=1"],
    )
    for attempt, extra in enumerate(reloads, 2):
        out = make_backfill(run, *args, *extra)
        wait_for_backfill(run, "taxi_to_postgres", backfill_id(out))
        rows, loads = warehouse_counts(pg_data, pg_port)
        assert rows == ROWS, f"backfill {attempt}: {rows}"
        assert loads == dict.fromkeys(ROWS, attempt), f"backfill {attempt}: {loads}"
    # Airflow 3.3.2: a reprocessing backfill of a partitioned DAG adds a run beside the month's
    # run instead of clearing it (docs/partitions.md): three runs per month, keyed by it.
    runs = (
        run.api()
        .call("GET", "/api/v2/dags/taxi_to_postgres/dagRuns", params={"limit": 100})
        .json()["dag_runs"]
    )
    per_month = Counter(r["partition_key"] for r in runs if r["run_type"] == "backfill")
    assert per_month == dict.fromkeys(ROWS, 3), per_month
    wait_for_backfill(run, "taxi_to_lake", backfill_id(lake))
    logs = "\n".join(p.read_text(errors="replace") for p in run.home.rglob("*.log"))
    assert LOCKED not in logs + run.output()


def test_sigterm_to_the_group_stops_everything_once(
    local_run: Callable[..., LocalRun], pg_data: Path
) -> None:
    """SIGTERM to make's process group, and again once the stop is under way (a service
    manager's repeat; make also forwards the first, but two signals that land before Python
    runs its handler count once): every process gone, the port free, PostgreSQL stopped, and
    an immediate restart starts."""
    run = local_run().start()
    run.api().call("GET", "/api/v2/dags")  # a connection the server closes: TIME_WAIT after
    run.signal(signal.SIGTERM)
    run.wait_for_output("stopping Airflow")
    run.signal(signal.SIGTERM)
    run.wait()
    out = run.output()
    assert "SIGTERM: stopping Airflow" in out, out
    assert "already stopping" in out, out
    assert "every process exited" in out, out
    assert left_behind(run.home) == []
    assert not listening("127.0.0.1", run.port)
    assert not local_postgres.is_running(pg_data), "the runner started it, so it stops it"

    again = local_run(run.home).start()  # same home and a new port; the old one would do too
    again.signal(signal.SIGTERM)
    again.wait()
    assert left_behind(run.home) == []


def test_ctrl_c_twice_stops_once_with_a_clean_exit_status(
    local_run: Callable[..., LocalRun],
) -> None:
    """Two Ctrl+C (SIGINT to the runner's group, the second while it stops): the runner
    exits 0 (asked and clean) and leaves nothing; the same port starts again at once."""
    runner = [sys.executable, "-m", "dev.local", "run"]
    run = local_run(command=runner).start()
    run.signal(signal.SIGINT)
    run.wait_for_output("stopping Airflow")
    run.signal(signal.SIGINT)
    assert run.wait() == 0, run.output()
    assert "SIGINT: already stopping" in run.output()
    assert left_behind(run.home) == []
    assert not listening("127.0.0.1", run.port)

    again = LocalRun(run.home, run.env, runner)  # the very same port, right away
    try:
        again.start()
    finally:
        again.stop_quietly()
    assert again.proc is not None
    assert again.proc.returncode == 0, again.output()


def test_two_airflow_homes_share_the_embedded_postgres(
    local_run: Callable[..., LocalRun], pg_data: Path
) -> None:
    """Two homes against one checkout at once: both start (the password lives with the
    cluster), each with its own metadata database; the one that started PostgreSQL leaves it
    running while the other still uses it."""
    first = local_run().start()
    second = local_run().start()
    assert "already running" in second.output()
    databases = {
        line for r in (first, second) for line in r.output().splitlines() if "metadata" in line
    }
    assert len(databases) == 2, databases
    first.signal(signal.SIGTERM)
    first.wait()
    assert "left running" in first.output()
    assert local_postgres.is_running(pg_data)
    second.api().call("GET", "/api/v2/dags").raise_for_status()  # still served
    second.signal(signal.SIGTERM)
    second.wait()
    assert local_postgres.is_running(pg_data), "the second home did not start it: not its to stop"
    local_postgres.stop(pg_data)  # (its processes carry the first home's environment)
    assert left_behind(first.home) == []
    assert left_behind(second.home) == []
