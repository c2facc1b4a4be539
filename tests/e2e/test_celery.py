"""taxi_to_postgres on the CeleryExecutor: two real workers, a real Redis, a PostgreSQL metadata DB.

The stack: api-server, scheduler, dag-processor and two ``airflow celery worker`` processes
(hostnames celery-a and celery-b, two slots each), a Redis broker private to this run
(dev/celery_stack.py), a fresh metadata database on the session's PostgreSQL and a
local web server laid out like the source that can trickle a file (a slow mirror). The project
creates its pools at startup (dev/pools.py), with the COPY pool at 2 slots.

Nothing is mocked. One concession to a single machine: both workers run here, so each reports
its own hostname through ``[core] hostname_callable`` (dev.airflow_settings.worker_hostname),
as two machines would. The tests share one stack (module scope) and run in file order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dev.airflow_stack import (
    TERMINAL,
    WORKER_PREFIX,
    AirflowStack,
    metadata_database,
    taxi_env,
)
from dev.celery_stack import celery_env, redis_broker
from dev.synthetic import write_month, write_zones
from include.taxi.contract import SERVICES
from include.taxi.postgres.ingestion_log import LOG_TABLE
from include.taxi.settings import ENV_POSTGRES_COPY_SLOTS, POOL_POSTGRES_COPY
from tests.helpers.scripted_http import TricklingFileServer

pytestmark = pytest.mark.e2e

DAG_ID = "taxi_to_postgres"
WORKERS = ("celery-a", "celery-b")
COPY_SLOTS = 2
"""Below the workers' 4 slots, so the pool, not the workers, is what limits the COPYs."""
MONTHS = [date(2021, m, 1) for m in range(1, 7)]
ROWS = {
    service: {f"{m:%Y-%m}": base + 13 * i for i, m in enumerate(MONTHS)}
    for service, base in (("yellow", 140), ("green", 90), ("fhv", 60))
}
"""Small months with different counts, so a row landing in the wrong month shows."""
KILLED = ("yellow", "2021-03")
REPUBLISHED_ROWS = 333
TRICKLE_S = 30.0
"""Long enough to kill the worker mid-download; the trickle is lifted right after the kill."""
RUNS_TIMEOUT_S = 300
RETRY_TIMEOUT_S = 180


def _path(service: str, month: str) -> str:
    return f"/{service}/{service}_tripdata_{month}.csv.gz"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TricklingFileServer]:
    root = tmp_path_factory.mktemp("celery-source")
    for service, months in ROWS.items():
        for month, rows in months.items():
            write_month(
                root / _path(service, month)[1:],
                service,
                date.fromisoformat(f"{month}-01"),
                rows,
                seed=rows,
            )
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    with TricklingFileServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def schema(postgres_url: str) -> Iterator[str]:
    name = f"celery_{int(time.time())}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    schema: str,
    source: TricklingFileServer,
) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow-celery")
    with redis_broker(home) as broker, metadata_database(postgres_url) as database:
        env = {
            **taxi_env(postgres_url, schema, source.url),
            **celery_env(broker, database),
            ENV_POSTGRES_COPY_SLOTS: str(COPY_SLOTS),
            "TAXI_RETRY_DELAY_SECONDS": "2",
        }
        with AirflowStack(home, DAG_ID, env, workers=WORKERS) as stack:
            yield stack


def _month_counts(url: str, schema: str, table: str) -> dict[str, int]:
    query = sql.SQL("SELECT source_month, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(
        sql.Identifier(schema, table)
    )
    with psycopg.connect(url) as conn:
        return {f"{m:%Y-%m}": n for m, n in conn.execute(query).fetchall()}


def _log_rows(url: str, schema: str) -> list[dict[str, Any]]:
    query = sql.SQL(
        "SELECT id, table_name, service, source_month, status, rows_in_target, started_at,"
        " finished_at, run_id FROM {} ORDER BY id"
    ).format(sql.Identifier(schema, LOG_TABLE))
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query).fetchall()


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one moment (an end at t closes before a start at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_most_at_once_counts_overlaps() -> None:
    """The pool assertion's arithmetic can fail: three overlapping loads count as three."""
    t = [datetime(2021, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(10)]
    assert most_at_once([(t[0], t[5]), (t[1], t[6]), (t[2], t[3])]) == 3
    assert most_at_once([(t[0], t[1]), (t[1], t[2]), (t[2], t[3])]) == 1


def _task_instances(stack: AirflowStack, run_ids: list[str]) -> list[dict[str, Any]]:
    resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 500})
    resp.raise_for_status()
    return [t for t in resp.json()["task_instances"] if t["dag_run_id"] in run_ids]


def test_backfill_spreads_over_both_workers_within_the_pool(
    stack: AirflowStack, postgres_url: str, schema: str
) -> None:
    """Six months backfilled: tasks on both workers, every month exact, never > 2 COPYs."""
    pools = stack.api("GET", f"/api/v2/pools/{POOL_POSTGRES_COPY}").json()
    assert pools.get("slots") == COPY_SLOTS, stack.explain(f"pool: {pools}")
    stack.create_backfill(f"{MONTHS[0]}", "2021-06-30", "--max-active-runs", "3")
    stack.unpause(DAG_ID)

    wanted = {f"{m}" for m in MONTHS}
    started = time.monotonic()
    runs = stack.wait_for_backfill(wanted, RUNS_TIMEOUT_S)
    print(f"six months × 3 services on 2 Celery workers: {time.monotonic() - started:.0f} s")
    states = {d: r["state"] for d, r in runs.items()}
    assert states == dict.fromkeys(wanted, "success"), stack.explain(f"states {states}")

    tis = _task_instances(stack, [r["dag_run_id"] for r in runs.values()])
    loads = [t for t in tis if t["task_id"] == "load_trips"]
    # one per service and month; fhvhv's are skipped (the course mirror has none)
    expected = len(MONTHS) * len(SERVICES)
    assert len(loads) == expected, stack.explain(f"{len(loads)} load_trips, not {expected}")
    by_host: dict[str, int] = {}
    for ti in tis:
        by_host[ti["hostname"]] = by_host.get(ti["hostname"], 0) + 1
    print(f"task instances per worker: {by_host}")
    assert set(by_host) == set(WORKERS), stack.explain(f"hostnames {by_host}")
    for worker in WORKERS:  # the project's Celery config reached the workers (celery_worker.py)
        worker_log = stack.log(f"{WORKER_PREFIX}{worker}").read_text()
        assert "preloaded Airflow's listeners" in worker_log, stack.explain(f"{worker}: no preload")

    for service, months in ROWS.items():
        counts = _month_counts(postgres_url, schema, f"{service}_tripdata")
        assert counts == months, stack.explain(f"{service}: {counts} != {months}")

    log = _log_rows(postgres_url, schema)
    months_loaded = [r for r in log if r["status"] == "loaded" and r["source_month"]]
    assert len(months_loaded) == 18, f"18 month loads expected in the log: {log}"
    # the months' COPYs: the zone lookup's (265 rows) takes no turn of the pool
    peak = most_at_once([(r["started_at"], r["finished_at"]) for r in log if r["source_month"]])
    print(f"most warehouse loads at once (ingestion log): {peak} (pool: {COPY_SLOTS})")
    assert peak <= COPY_SLOTS, f"{peak} loads overlapped; the pool allows {COPY_SLOTS}: {log}"


def test_killed_worker_loses_nothing(
    stack: AirflowStack, postgres_url: str, schema: str, source: TricklingFileServer
) -> None:
    """A worker SIGKILLed mid-download: the task is retried on the other worker and the
    republished month ends with exactly its new rows; the log shows the one committed load."""
    service, month = KILLED
    path = _path(service, month)
    root = source.root
    write_month(
        root / path[1:], service, date.fromisoformat(f"{month}-01"), REPUBLISHED_ROWS, seed=7
    )
    source.slow[path] = TRICKLE_S
    gets_before = len(source.gets)

    run_id = f"celery_kill_{int(time.time())}"
    triggered = stack.write(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {"service": service, "month": month}},
        created=f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
    )
    assert triggered.status_code == 200, stack.explain(f"trigger: {triggered.text}")
    this_run = [f"run_id={run_id}/"]

    def downloading() -> dict[str, Any] | None:
        if not any(p == path for p, _ in source.gets[gets_before:]):
            return None
        load = [t for t in _task_instances(stack, [run_id]) if t["task_id"] == "load_trips"]
        return load[0] if load and load[0]["state"] == "running" and load[0]["hostname"] else None

    victim = stack.wait_for(f"load_trips to download {month} slowly", downloading, 120)
    killed_host = victim["hostname"]
    assert killed_host in WORKERS, stack.explain(f"running on {killed_host!r}")
    stack.kill(f"worker-{killed_host}")
    killed_at = datetime.now(UTC)
    source.slow.pop(path)
    print(
        f"killed {killed_host} while it downloaded {service} {month} (try {victim['try_number']})"
    )

    def run_done() -> dict[str, Any] | None:
        resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        resp.raise_for_status()
        return resp.json() if resp.json()["state"] in TERMINAL else None

    started = time.monotonic()
    run = stack.wait_for("the run to recover from the killed worker", run_done, RETRY_TIMEOUT_S)
    print(f"recovered in {time.monotonic() - started:.0f} s after the kill")
    assert run["state"] == "success", stack.explain(f"run after the kill: {run}", this_run)

    load = next(t for t in _task_instances(stack, [run_id]) if t["task_id"] == "load_trips")
    survivor = next(w for w in WORKERS if w != killed_host)
    assert load["try_number"] == victim["try_number"] + 1, stack.explain(f"{load}", this_run)
    assert load["hostname"] == survivor, stack.explain(f"retried on {load['hostname']}", this_run)

    expected = {**ROWS[service], month: REPUBLISHED_ROWS}
    counts = _month_counts(postgres_url, schema, f"{service}_tripdata")
    assert counts == expected, stack.explain(f"{service}: {counts} != {expected}", this_run)

    story = [
        r
        for r in _log_rows(postgres_url, schema)
        if r["table_name"] == f"{service}_tripdata" and f"{r['source_month']:%Y-%m}" == month
    ]
    summary = [(r["status"], r["rows_in_target"], r["run_id"], r["started_at"]) for r in story]
    # the backfill's load, then the retry's: the killed attempt committed nothing, logged nothing
    assert [s[:2] for s in summary] == [
        ("loaded", ROWS[service][month]),
        ("loaded", REPUBLISHED_ROWS),
    ], f"{service} {month} in the ingestion log: {summary}"
    assert story[-1]["run_id"] == run_id, summary
    assert story[-1]["started_at"] > killed_at, f"the load began before the kill: {summary}"
