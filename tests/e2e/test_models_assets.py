"""taxi_models through the real scheduler: taxi_to_postgres' asset event starts it, and it builds
and tests the announced month with Cosmos's tasks running .venv-dbt's dbt.

Two REST-triggered taxi_to_postgres runs (2021-01 with yellow and green, then 2021-02 with
yellow) must each make the scheduler start an asset-triggered taxi_models run (dag.test()
never creates one) that builds exactly that month: fct_trips and the mart per month and
service are counted after each, the second adding its month without touching the first, and
the models log (the Taxi months page's Models column) names the run that built each month, and
each run announced its month on ``taxi_models_trip_months`` (partition key the month).
``TAXI_END_MONTH`` keeps the scheduler from adding a time-scheduled taxi_to_postgres run (and
with it an event for a month nobody published).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev.airflow_stack import PARSE_TIMEOUT_S, TERMINAL, AirflowStack, taxi_env
from include.taxi.postgres.models_log import ModelsLog
from tests.helpers.asset_events import asset_id
from tests.helpers.transform import served_folder, write_all_zones, write_source_month

pytestmark = pytest.mark.e2e

LOAD, MODELS = "taxi_to_postgres", "taxi_models"
MODELS_ASSET = "taxi_models_trip_months"
ROWS = {("2021-01", "yellow"): 900, ("2021-01", "green"): 250, ("2021-02", "yellow"): 600}
LOAD_TIMEOUT_S = 180
MODELS_TIMEOUT_S = 600
"""A taxi_models run is ~15 tasks, each a dbt start (10-30 s on 2 shared cores)."""


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    source_server: tuple[str, Path],
    postgres_url: str,
    pg_schema: str,
) -> Iterator[AirflowStack]:
    base, root = served_folder(source_server, "models_e2e")
    write_all_zones(root)
    for (month, service), rows in ROWS.items():
        write_source_month(root, service, month, rows)
    env: dict[str, str | None] = {
        **taxi_env(postgres_url, pg_schema, base),
        "TAXI_END_MONTH": "2021-03",
        "AIRFLOW__CORE__PARALLELISM": "4",
    }
    with AirflowStack(tmp_path_factory.mktemp("airflow-models-e2e"), MODELS, env) as stack:
        stack.wait_for(
            f"the dag-processor to parse {LOAD}", lambda: stack.parsed(LOAD), PARSE_TIMEOUT_S
        )
        yield stack


def _finished(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, Any] | None:
    stack.fail_on_task_trouble([run_id], dag_id=dag_id)
    resp = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    resp.raise_for_status()
    return resp.json() if resp.json()["state"] in TERMINAL else None


def _load_month(stack: AirflowStack, month: str, service: str) -> None:
    """Trigger taxi_to_postgres for a month over REST and wait for it to succeed."""
    run_id = f"e2e_models_{month.replace('-', '_')}"
    triggered = stack.write(
        "POST",
        f"/api/v2/dags/{LOAD}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {"service": service, "month": month}},
        created=f"/api/v2/dags/{LOAD}/dagRuns/{run_id}",
    )
    assert triggered.status_code == 200, stack.explain(f"trigger: {triggered.text}", dag_id=LOAD)
    run = stack.wait_for(f"{LOAD} {run_id}", lambda: _finished(stack, LOAD, run_id), LOAD_TIMEOUT_S)
    assert run["state"] == "success", stack.explain(f"{LOAD} run: {run}", dag_id=LOAD)


def _models_run(stack: AirflowStack, count: int) -> dict[str, Any]:
    """Wait for the ``count``-th asset-triggered taxi_models run to finish; returns it."""

    def done() -> dict[str, Any] | None:
        runs = [r for r in stack.runs(MODELS) if r["run_type"] == "asset_triggered"]
        stack.fail_on_task_trouble([r["dag_run_id"] for r in runs], dag_id=MODELS)
        finished = sorted((r for r in runs if r["state"] in TERMINAL), key=lambda r: r["run_after"])
        return finished[count - 1] if len(finished) >= count else None

    run = stack.wait_for(f"asset-triggered {MODELS} run {count}", done, MODELS_TIMEOUT_S)
    selectors = [f"run_id={run['dag_run_id']}/"]
    assert run["state"] == "success", stack.explain(f"{MODELS} run: {run}", selectors, MODELS)
    return run


def _counts(url: str, schema: str) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """fct_trips' rows and the mart's trips per (month, service)."""
    with psycopg.connect(url) as conn:
        fct = conn.execute(
            f'SELECT source_month, service, count(*) FROM "{schema}".fct_trips GROUP BY 1, 2'
        ).fetchall()
        mart = conn.execute(
            f'SELECT source_month, sum(trips) FROM "{schema}".mart_monthly_zone_revenue GROUP BY 1'
        ).fetchall()
    return (
        {(f"{m:%Y-%m}", s): n for m, s, n in fct},
        {f"{m:%Y-%m}": int(n) for m, n in mart},
    )


def test_a_loaded_month_schedules_its_models(
    stack: AirflowStack, postgres_url: str, pg_schema: str
) -> None:
    stack.unpause(LOAD, MODELS)

    _load_month(stack, "2021-01", "all")  # yellow and green published; fhv, fhvhv skip
    first = _models_run(stack, 1)
    fct, mart = _counts(postgres_url, pg_schema)
    january = {k: v for k, v in ROWS.items() if k[0] == "2021-01"}
    assert fct == january
    assert mart == {"2021-01": sum(january.values())}

    _load_month(stack, "2021-02", "yellow")
    second = _models_run(stack, 2)
    fct, mart = _counts(postgres_url, pg_schema)
    assert fct == ROWS  # February added; January's rows as they were
    assert mart == {"2021-01": 1_150, "2021-02": 600}

    built = ModelsLog(postgres_url, pg_schema).records().loads
    assert {(str(m), str(s)): (r.rows, r.run_id) for (s, m), r in built.items()} == {
        ("2021-01", "yellow"): (900, first["dag_run_id"]),
        ("2021-01", "green"): (250, first["dag_run_id"]),
        ("2021-02", "yellow"): (600, second["dag_run_id"]),
    }
    runs = [r for r in stack.runs(MODELS) if r["run_type"] == "asset_triggered"]
    assert len(runs) == 2, runs  # one event, one run: nothing else announced a month

    models_asset = asset_id(stack, MODELS_ASSET)
    announced = stack.api(
        "GET", "/api/v2/assets/events", params={"asset_id": models_asset, "limit": 100}
    )
    announced.raise_for_status()
    events = sorted(
        (e["partition_key"], e["source_dag_id"], e["source_task_id"])
        for e in announced.json()["asset_events"]
        if e["asset_id"] == models_asset
    )
    assert events == [  # each month built, for taxi_models_yearly
        ("2021-01", MODELS, "announce"),
        ("2021-02", MODELS, "announce"),
    ], announced.json()
