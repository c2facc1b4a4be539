"""Data-aware scheduling end to end: a real scheduler runs lake_to_bigquery on taxi_to_lake's event.

A REST trigger of taxi_to_lake writes one green month to the lake (fake GCS); its asset event
must make the scheduler itself create a lake_to_bigquery run (run type ``asset_triggered``)
that loads exactly that month into BigQuery (local-bigquery). dag.test() cannot show this: it
never creates the asset-triggered run, and it runs tasks in-process instead of through the
executor and the execution API.

Both are partitioned by month: the event carries the month as its partition key, and
lake_to_bigquery's run has that key. taxi_to_lake has a monthly schedule: unpausing it may add a
scheduled run for the latest month, which finds no source file and skips. The test picks its
runs by id and run type and ignores those.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dev.airflow_stack import PARSE_TIMEOUT_S, TERMINAL, AirflowStack
from dev.emulators import Emulators
from dev.synthetic import write_month

pytestmark = pytest.mark.e2e

TO_LAKE = "taxi_to_lake"
TO_BQ = "lake_to_bigquery"
SERVICE = "green"
MONTH = "2019-03"
"""A month no other test writes: the source server is shared by the whole session."""
ROWS = 430
RUN_TIMEOUT_S = 90
LAKE_ASSET = "taxi_lake_trip_months"
LANDING_TOGETHER = ("2019-04", "2019-05")


def _bq_client(emulators: Emulators) -> Any:
    """The plain google-cloud-bigquery client, pointed at the emulator (no Airflow involved)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=emulators.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulators.bigquery.url},
    )


@pytest.fixture
def dataset(gcp_emulators: Emulators) -> Iterator[str]:
    """A dataset name for this test (lake_to_bigquery creates it); dropped afterwards."""
    name = f"e2e_lake_{uuid.uuid4().hex[:8]}"
    yield name
    client = _bq_client(gcp_emulators)
    try:
        client.delete_dataset(name, delete_contents=True, not_found_ok=True)
    finally:
        client.close()


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    gcp_emulators: Emulators,
    gcs_bucket: str,
    source_server: tuple[str, Path],
    dataset: str,
) -> Iterator[AirflowStack]:
    """Both lake DAGs parsed in a running stack wired to the emulators, the source and a lake.

    The emulators' variables go in explicitly: the stack drops the AIRFLOW_* ones (the GCP
    connection among them) that conftest exported into this process.
    """
    base, root = source_server
    name = f"{SERVICE}_tripdata_{MONTH}.csv.gz"
    write_month(root / SERVICE / name, SERVICE, date.fromisoformat(f"{MONTH}-01"), ROWS, seed=ROWS)
    env = {
        **gcp_emulators.env(),
        "TAXI_CATCHUP": "false",
        "TAXI_START_MONTH": "2019-01",
        "AIRFLOW_VAR_TAXI_SOURCE_URL": base,
        "AIRFLOW_VAR_TAXI_LAKE_URL": f"gs://{gcs_bucket}/lake",
        "AIRFLOW_VAR_TAXI_BQ_DATASET": dataset,
    }
    home = tmp_path_factory.mktemp("airflow-lake-e2e")
    with AirflowStack(home, TO_BQ, env) as stack:
        stack.wait_for(
            f"the dag-processor to parse {TO_LAKE}", lambda: stack.parsed(TO_LAKE), PARSE_TIMEOUT_S
        )
        yield stack


def _why(stack: AirflowStack, message: str, lake_run: str, bq_runs: Sequence[str] = ()) -> str:
    """The stack's explanation with the task logs of both DAGs' runs under test."""
    lake_logs = stack.task_logs([f"run_id={lake_run}/"], dag_id=TO_LAKE)
    bq_selectors = [f"run_id={r}/" for r in bq_runs] or None
    return (
        f"{stack.explain(message, bq_selectors, TO_BQ)}\n"
        f"=== task logs of {TO_LAKE} run {lake_run}\n{lake_logs}"
    )


def _runs_summary(stack: AirflowStack) -> str:
    return "; ".join(
        f"{dag_id} {r['dag_run_id']} ({r['run_type']}): {r['state']}"
        for dag_id in (TO_LAKE, TO_BQ)
        for r in stack.runs(dag_id)
    )


def _task_instances(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple, dict]:
    resp = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    resp.raise_for_status()
    return {(t["task_id"], t["map_index"]): t for t in resp.json()["task_instances"]}


def _bq_month_counts(emulators: Emulators, dataset: str) -> dict[str, int]:
    client = _bq_client(emulators)
    try:
        rows = client.query(
            f"SELECT CAST(source_month AS STRING) AS m, COUNT(*) AS n "
            f"FROM `{emulators.project}.{dataset}.{SERVICE}_tripdata` GROUP BY m ORDER BY m"
        ).result()
        return {r["m"][:7]: r["n"] for r in rows}
    finally:
        client.close()


def test_a_lake_month_event_schedules_its_bigquery_load(
    stack: AirflowStack, gcp_emulators: Emulators, dataset: str
) -> None:
    stack.unpause(TO_LAKE, TO_BQ)

    lake_run = f"e2e_lake_{SERVICE}_{MONTH.replace('-', '_')}_{int(time.time())}"
    triggered = stack.write(
        "POST",
        f"/api/v2/dags/{TO_LAKE}/dagRuns",
        {
            "dag_run_id": lake_run,
            "logical_date": None,
            "conf": {"service": SERVICE, "month": MONTH},
        },
        created=f"/api/v2/dags/{TO_LAKE}/dagRuns/{lake_run}",
    )
    assert triggered.status_code == 200, _why(stack, f"trigger: {triggered.text}", lake_run)

    def lake_done() -> dict[str, Any] | None:
        stack.fail_on_task_trouble([lake_run], dag_id=TO_LAKE)
        resp = stack.api("GET", f"/api/v2/dags/{TO_LAKE}/dagRuns/{lake_run}")
        resp.raise_for_status()
        return resp.json() if resp.json()["state"] in TERMINAL else None

    run = stack.wait_for(f"{TO_LAKE} run {lake_run} to finish", lake_done, RUN_TIMEOUT_S)
    assert run["state"] == "success", _why(stack, f"{TO_LAKE} run: {run}", lake_run)
    writes = {
        k: (t["state"], t.get("rendered_map_index"))
        for k, t in _task_instances(stack, TO_LAKE, lake_run).items()
        if k[0] == "write_month"
    }
    assert writes == {("write_month", 0): ("success", f"{SERVICE} {MONTH}")}, _why(
        stack, f"{TO_LAKE} write_month tasks: {writes}", lake_run
    )

    def asset_run_done() -> dict[str, Any] | None:
        asset_runs = [r for r in stack.runs(TO_BQ) if r["run_type"] == "asset_triggered"]
        stack.fail_on_task_trouble([r["dag_run_id"] for r in asset_runs], dag_id=TO_BQ)
        done = [r for r in asset_runs if r["state"] in TERMINAL]
        return done[0] if done else None

    bq_run = stack.wait_for(
        f"an asset-triggered {TO_BQ} run to finish", asset_run_done, RUN_TIMEOUT_S
    )
    bq_run_id = bq_run["dag_run_id"]

    def why(message: str) -> str:
        return _why(stack, f"{message}\nruns: {_runs_summary(stack)}", lake_run, [bq_run_id])

    assert bq_run["state"] == "success", why(f"{TO_BQ} run: {bq_run}")
    asset_runs = [r["dag_run_id"] for r in stack.runs(TO_BQ) if r["run_type"] == "asset_triggered"]
    assert asset_runs == [bq_run_id], why(f"one event, one run expected: {asset_runs}")
    assert bq_run["partition_key"] == MONTH, why(f"the run's partition: {bq_run}")

    # The run consumed exactly the event taxi_to_lake's write_month emitted for the month.
    resp = stack.api("GET", f"/api/v2/dags/{TO_BQ}/dagRuns/{bq_run_id}/upstreamAssetEvents")
    assert resp.status_code == 200, why(f"upstreamAssetEvents: {resp.status_code} {resp.text}")
    consumed = resp.json()["asset_events"]
    emitted = stack.api("GET", "/api/v2/assets/events", params={"source_run_id": lake_run}).json()
    assert [(e["source_dag_id"], e["source_run_id"], e["source_task_id"]) for e in consumed] == [
        (TO_LAKE, lake_run, "write_month")
    ], why(f"consumed events: {consumed}")
    assert consumed[0]["partition_key"] == MONTH, why(f"the event's partition: {consumed}")
    extra = consumed[0]["extra"] or {}
    assert {k: extra.get(k) for k in ("service", "month", "rows")} == {
        "service": SERVICE,
        "month": MONTH,
        "rows": ROWS,
    }, why(f"event extra: {extra}")
    assert str(extra.get("uri", "")).endswith(f"/{SERVICE}_tripdata_{MONTH}.parquet"), why(
        f"event extra: {extra}"
    )
    # Beside it, one event on the service's lake table (through the alias taxi_lake_tables),
    # which schedules nothing: the manual run has no partition key of its own to give it.
    by_asset = {e["name"]: e for e in emitted["asset_events"]}
    names = sorted(e["name"] for e in emitted["asset_events"])
    assert names == [f"taxi_lake_{SERVICE}_tripdata", "taxi_lake_trip_months"], why(
        f"events emitted by {lake_run}: {emitted}"
    )
    assert by_asset["taxi_lake_trip_months"]["id"] == consumed[0]["id"], why(f"{emitted}")
    table_event = by_asset[f"taxi_lake_{SERVICE}_tripdata"]
    assert (table_event["partition_key"], table_event["extra"]) == (
        None,
        {"month": MONTH, "rows": ROWS},
    ), why(f"{emitted}")
    loaded_tables = stack.api(
        "GET", "/api/v2/assets/events", params={"source_run_id": bq_run_id}
    ).json()["asset_events"]
    assert [(e["name"], e["partition_key"], e["extra"]) for e in loaded_tables] == [
        (f"taxi_bigquery_{SERVICE}_tripdata", MONTH, {"month": MONTH, "rows": ROWS})
    ], why(f"events emitted by {bq_run_id}: {loaded_tables}")

    # One month named, one mapped load: map index 0 only, for green 2019-03, loaded.
    tis = _task_instances(stack, TO_BQ, bq_run_id)
    summary = {f"{k[0]}[{k[1]}]": (t["state"], t.get("rendered_map_index")) for k, t in tis.items()}
    load_task = f"load_{SERVICE}"  # a load task (and pool) per BigQuery table
    loads = sorted(k[1] for k in tis if k[0] == load_task)
    assert loads == [0], why(f"{load_task} map indexes {loads}: {summary}")
    assert summary[f"{load_task}[0]"] == ("success", f"{SERVICE} {MONTH}"), why(f"tasks {summary}")
    result = stack.api(
        "GET",
        f"/api/v2/dags/{TO_BQ}/dagRuns/{bq_run_id}/taskInstances/{load_task}/xcomEntries/return_value",
        params={"map_index": 0, "deserialize": True},
    ).json()
    value = result.get("value") if isinstance(result.get("value"), dict) else {}
    loaded = {k: value.get(k) for k in ("status", "rows_loaded")}
    assert loaded == {"status": "loaded", "rows_loaded": ROWS}, why(f"{load_task}: {result}")

    counts = _bq_month_counts(gcp_emulators, dataset)
    assert counts == {MONTH: ROWS}, why(f"{dataset}.{SERVICE}_tripdata months: {counts}")

    _two_months_landing_together_are_two_runs(stack, why)


def _two_months_landing_together_are_two_runs(stack: AirflowStack, why: Any) -> None:
    """Two lake months announced at once (as two write_month tasks of one run do): one
    lake_to_bigquery run per month key, each planning its month only (not in the lake: its
    load skips)."""
    before = {r["dag_run_id"] for r in stack.runs(TO_BQ)}
    assets = stack.api("GET", "/api/v2/assets", params={"name_pattern": LAKE_ASSET}).json()
    (asset_id,) = [a["id"] for a in assets["assets"] if a["name"] == LAKE_ASSET]
    for month in LANDING_TOGETHER:
        body = {"asset_id": asset_id, "partition_key": month, "extra": {"service": SERVICE}}
        posted = stack.write("POST", "/api/v2/assets/events", body)
        assert posted.status_code == 200, why(f"asset event {month}: {posted.text}")

    def new_runs_done() -> list[dict[str, Any]] | None:
        runs = [r for r in stack.runs(TO_BQ) if r["dag_run_id"] not in before]
        stack.fail_on_task_trouble([r["dag_run_id"] for r in runs], dag_id=TO_BQ)
        done = len(runs) >= len(LANDING_TOGETHER) and all(r["state"] in TERMINAL for r in runs)
        return runs if done else None

    runs = stack.wait_for("a run per month landed together", new_runs_done, RUN_TIMEOUT_S)
    time.sleep(5)  # and no third one
    runs = [r for r in stack.runs(TO_BQ) if r["dag_run_id"] not in before]
    assert sorted((r["partition_key"], r["state"]) for r in runs) == [
        (m, "success") for m in LANDING_TOGETHER
    ], why(f"runs for {LANDING_TOGETHER}: {runs}")
    for run in runs:
        tis = _task_instances(stack, TO_BQ, run["dag_run_id"])
        planned = {
            k: t.get("rendered_map_index") for k, t in tis.items() if k[0] == f"load_{SERVICE}"
        }
        assert list(planned.values()) == [f"{SERVICE} {run['partition_key']}"], why(f"{planned}")
