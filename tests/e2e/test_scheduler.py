"""End to end with a real api-server, scheduler and dag-processor: backfill, then a REST trigger.

Unit and DAG tests run tasks in-process; only a real scheduler shows that the schedule, the
mapped tasks, the Variables and Connection from the environment and the execution API work
together. Everything runs in a private Airflow home on a free port, against the session's
PostgreSQL and a local web server laid out like the real source.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dev.airflow_stack import TERMINAL, AirflowStack, taxi_env
from dev.synthetic import write_month, write_zones

pytestmark = pytest.mark.e2e

DAG_ID = "taxi_to_postgres"
MONTHS = {"2021-01": date(2021, 1, 1), "2021-02": date(2021, 2, 1), "2021-03": date(2021, 3, 1)}
ROWS = {
    "yellow": {"2021-01": 300, "2021-02": 240, "2021-03": 180},
    "green": {"2021-01": 210, "2021-02": 170, "2021-03": 260},
    "fhv": {"2021-01": 150, "2021-02": 320, "2021-03": 230},
}
"""Different counts per service and month, so a row landing in the wrong month shows."""
RUNS_TIMEOUT_S = 180


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
) -> Iterator[AirflowStack]:
    """A migrated home and the three Airflow processes, stopped whatever the test's outcome."""
    home = tmp_path_factory.mktemp("airflow-e2e")
    with AirflowStack(home, DAG_ID, taxi_env(postgres_url, pg_schema, source_files[0])) as stack:
        yield stack


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
    stack: AirflowStack, postgres_url: str, pg_schema: str, source_files: tuple[str, int]
) -> None:
    """Backfill three months, then reload one (service, month) from a REST trigger."""
    stack.create_backfill("2021-01-01", "2021-03-31")
    stack.unpause(DAG_ID)

    wanted = set(MONTHS)
    runs = stack.wait_for_backfill(wanted, RUNS_TIMEOUT_S)
    backfilled = [
        (r["partition_key"], r["logical_date"]) for r in stack.runs() if r["run_type"] == "backfill"
    ]
    assert sorted(backfilled) == [(m, None) for m in sorted(wanted)], stack.explain(
        f"backfill created runs for {backfilled}"
    )
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
    # Each month announced once to taxi_models, the month as the event's partition key.
    events = stack.api(
        "GET", "/api/v2/assets/events", params={"source_dag_id": DAG_ID, "limit": 100}
    ).json()["asset_events"]
    backfilled_events = [e for e in events if e["source_run_id"].startswith("backfill__")]
    announced = sorted(  # not the latest month's scheduled run
        (e["partition_key"], (e["extra"] or {}).get("month"))
        for e in backfilled_events
        if e["name"] == "taxi_postgres_trip_months"
    )
    assert announced == [(m, m) for m in sorted(MONTHS)], stack.explain(f"events {events}")
    # and each service's table asset got an event per month, keyed by it, with its rows
    tables = sorted(
        (e["name"], e["partition_key"], (e["extra"] or {}).get("rows"))
        for e in backfilled_events
        if e["name"] != "taxi_postgres_trip_months"
    )
    assert tables == sorted(
        (f"taxi_postgres_{service}_tripdata", month, rows)
        for service, months in ROWS.items()
        for month, rows in months.items()
    ), stack.explain(f"events {events}")

    # No logical date and no partition key: the Params, not the partition, say which month
    # this run loads. force_reload:
    # the source is unchanged, so without it the task would (rightly) skip the reload.
    run_id = f"e2e_green_2021_02_{int(time.time())}"
    this_run = [f"run_id={run_id}/"]
    triggered = stack.write(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": {"service": "green", "month": "2021-02", "force_reload": True},
        },
        created=f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}",
    )
    assert triggered.status_code == 200, stack.explain(f"trigger: {triggered.text}")

    def run_done() -> dict[str, Any] | None:
        stack.fail_on_task_trouble([run_id])
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


@pytest.fixture
def catchup_stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pg_schema: str,
    source_files: tuple[str, int],
) -> Iterator[AirflowStack]:
    """The stack with catchup on over TAXI_START_MONTH..TAXI_END_MONTH = 2021-01..2021-03."""
    home = tmp_path_factory.mktemp("airflow-e2e-catchup")
    env = taxi_env(postgres_url, pg_schema, source_files[0])
    env |= {"TAXI_CATCHUP": "true", "TAXI_END_MONTH": "2021-03"}
    with AirflowStack(home, DAG_ID, env) as stack:
        yield stack


def _tries(stack: AirflowStack, run_id: str) -> dict[str, int]:
    resp = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    resp.raise_for_status()
    return {
        f"{t['task_id']}[{t['map_index']}]": t["try_number"] for t in resp.json()["task_instances"]
    }


def test_catchup_runs_a_partition_per_month_and_clear_reruns_one(
    catchup_stack: AirflowStack, postgres_url: str, pg_schema: str
) -> None:
    """Catchup over three months: three scheduled runs keyed 2021-01..2021-03 (no logical
    date), every month loaded; ``airflow dags clear --partition-key 2021-02`` reruns that
    month's run only."""
    stack = catchup_stack
    stack.unpause(DAG_ID)

    def scheduled_done() -> dict[str, dict[str, Any]] | None:
        runs = {r["partition_key"]: r for r in stack.runs() if r["run_type"] == "scheduled"}
        stack.fail_on_task_trouble([r["dag_run_id"] for r in runs.values()])
        if set(runs) == set(MONTHS) and all(r["state"] in TERMINAL for r in runs.values()):
            return runs
        return None

    runs = stack.wait_for("the catchup runs of 2021-01..2021-03", scheduled_done, RUNS_TIMEOUT_S)
    assert {k: (r["state"], r["logical_date"]) for k, r in runs.items()} == dict.fromkeys(
        MONTHS, ("success", None)
    ), stack.explain(f"catchup runs {runs}")
    for service, months in ROWS.items():
        counts = _month_counts(postgres_url, pg_schema, f"{service}_tripdata")
        assert counts == months, stack.explain(f"{service}: {counts} != {months}")

    before = {key: _tries(stack, r["dag_run_id"]) for key, r in runs.items()}
    cleared = stack.cli("dags", "clear", DAG_ID, "--partition-key", "2021-02", "--yes")
    assert cleared.returncode == 0, stack.explain(f"clear: {cleared.stdout}{cleared.stderr}")
    assert "across 1 Dag run(s)" in cleared.stdout, cleared.stdout

    def rerun_done() -> dict[str, Any] | None:
        stack.fail_on_task_trouble([runs["2021-02"]["dag_run_id"]])
        run = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{runs['2021-02']['dag_run_id']}")
        tries = _tries(stack, runs["2021-02"]["dag_run_id"])
        done = run.json()["state"] in TERMINAL and set(tries.values()) == {2}
        return run.json() if done else None

    rerun = stack.wait_for("the cleared 2021-02 run to run again", rerun_done, RUNS_TIMEOUT_S)
    assert rerun["state"] == "success", stack.explain(f"rerun: {rerun}")
    after = {key: _tries(stack, r["dag_run_id"]) for key, r in runs.items()}
    assert after["2021-02"] == dict.fromkeys(before["2021-02"], 2)
    assert {k: v for k, v in after.items() if k != "2021-02"} == {
        k: v for k, v in before.items() if k != "2021-02"
    }, "clear --partition-key touched another month"
    assert len(stack.runs()) == 3, "clear reruns the run in place: no new run"
