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
    unpaused = stack.write("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    assert unpaused.status_code == 200, stack.explain(f"unpause: {unpaused.text}")

    wanted = {f"{m}-01" for m in MONTHS}
    runs = stack.wait_for_backfill(wanted, RUNS_TIMEOUT_S)
    backfilled = sorted(r["logical_date"][:10] for r in stack.runs() if r["run_type"] == "backfill")
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
