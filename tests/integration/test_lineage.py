"""OpenLineage events of a real month load, sent by the provider's HTTP transport to a local
receiver on 127.0.0.1: START then COMPLETE with the source file as input and the Postgres table
as output (row count, source SHA-256, schema), and FAIL for a failed load.

The run is `python -m dev.local month` (`airflow dags test` in a fresh Airflow home) in a
subprocess: OpenLineage reads its transport once per process, when its plugin loads."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from urllib.parse import urlsplit

from dev.airflow_env import PROJECT, postgres_connection
from dev.synthetic import write_month
from tests.helpers.scripted_http import ScriptedServer


def _run(
    tmp_path,
    metadata_url: str,
    receiver_url: str,
    postgres_url: str,
    schema: str,
    base: str,
    service: str,
    month: str,
    dag_id: str = "taxi_to_postgres",
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
        AIRFLOW_CONN_TAXI_POSTGRES=postgres_connection(postgres_url),
        AIRFLOW_VAR_TAXI_SOURCE_URL=base,
        AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA=schema,
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "http", "url": receiver_url}),
        AIRFLOW__OPENLINEAGE__NAMESPACE="taxi-test",
        **(extra or {}),
    )
    out = subprocess.run(
        [sys.executable, "-m", "dev.local", "month", dag_id, service, month],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out


def _events(receiver: ScriptedServer, task_id: str) -> list[dict]:
    events = [json.loads(body) for _, body in receiver.posted]
    return [e for e in events if e.get("job", {}).get("name", "").endswith(f".{task_id}")]


def test_a_month_load_emits_start_and_complete_with_datasets_and_facets(
    tmp_path, source_server, postgres_url, pg_schema, metadata_url
) -> None:
    base, root = source_server
    path = root / "green" / "green_tripdata_2020-05.csv.gz"
    write_month(path, "green", date(2020, 5, 1), 432)
    with ScriptedServer() as receiver:
        out = _run(
            tmp_path, metadata_url, receiver.url, postgres_url, pg_schema, base, "green", "2020-05"
        )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert {p for p, _ in receiver.posted} == {"/api/v1/lineage"}
    events = _events(receiver, "load_trips")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"], events
    complete = events[-1]
    (source,) = complete["inputs"]
    assert source["namespace"] == base.rstrip("/")
    assert source["name"] == "/green/green_tripdata_2020-05.csv.gz"
    assert (
        source["facets"]["taxi_source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert source["facets"]["taxi_source"]["bytes"] == path.stat().st_size
    (table,) = complete["outputs"]
    parts = urlsplit(postgres_url)
    assert table["namespace"] == f"postgres://{parts.hostname}:{parts.port}"
    assert table["name"] == f"{parts.path.lstrip('/')}.{pg_schema}.green_tripdata"
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 432
    fields = {f["name"]: f["type"] for f in table["facets"]["schema"]["fields"]}
    assert fields["lpep_pickup_datetime"] == "timestamp"
    assert fields["source_month"] == "date"
    start = events[0]  # named before the load ran, from the task's expanded arguments
    assert [(d["namespace"], d["name"]) for d in start["inputs"]] == [
        (source["namespace"], source["name"])
    ]
    assert [(d["namespace"], d["name"]) for d in start["outputs"]] == [
        (table["namespace"], table["name"])
    ]


def test_a_failed_load_emits_fail_naming_its_datasets(
    tmp_path, source_server, postgres_url, pg_schema, metadata_url
) -> None:
    base, root = source_server
    (root / "fhv").mkdir(exist_ok=True)
    (root / "fhv" / "fhv_tripdata_2020-05.csv.gz").write_text("<html>moved</html>")
    with ScriptedServer() as receiver:
        out = _run(
            tmp_path, metadata_url, receiver.url, postgres_url, pg_schema, base, "fhv", "2020-05"
        )
    assert out.returncode == 1
    events = _events(receiver, "load_trips")
    assert [e["eventType"] for e in events] == ["START", "FAIL"], events
    fail = events[-1]
    assert [d["name"] for d in fail["inputs"]] == ["/fhv/fhv_tripdata_2020-05.csv.gz"]
    assert [d["name"].rsplit(".", 1)[-1] for d in fail["outputs"]] == ["fhv_tripdata"]
    assert "not a gzip file" in json.dumps(fail["run"]["facets"])


def test_a_lake_write_names_the_lake_object(
    tmp_path, source_server, postgres_url, pg_schema, metadata_url
):
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2020-06.csv.gz", "green", date(2020, 6, 1), 250)
    lake = tmp_path / "lake"
    with ScriptedServer() as receiver:
        out = _run(
            tmp_path,
            metadata_url,
            receiver.url,
            postgres_url,
            pg_schema,
            base,
            "green",
            "2020-06",
            dag_id="taxi_to_lake",
            extra={"AIRFLOW_VAR_TAXI_LAKE_URL": lake.as_uri()},
        )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    events = _events(receiver, "write_month")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"], events
    (source,), (target,) = events[-1]["inputs"], events[-1]["outputs"]
    assert source["name"] == "/green/green_tripdata_2020-06.csv.gz"
    assert target["namespace"] == "file"
    assert target["name"] == str(lake / "green" / "2020" / "green_tripdata_2020-06.parquet")
    assert target["outputFacets"]["outputStatistics"]["rowCount"] == 250
    assert target["outputFacets"]["outputStatistics"]["size"] > 0
    assert [d["name"] for d in events[0]["outputs"]] == [target["name"]]
    fields = {f["name"]: f["type"] for f in target["facets"]["schema"]["fields"]}
    assert fields["lpep_pickup_datetime"] == "timestamp[us]"


def test_bigquery_tables_and_gcs_objects_are_named_per_the_conventions() -> None:
    """The extractor on a recorded BigQuery load (no Airflow run: the BigQuery DAG needs the
    emulators in the subprocess; tests/integration/test_gcs_bigquery.py covers the load)."""
    from types import SimpleNamespace

    from openlineage.client.serde import Serde

    from include.taxi.orchestration import lineage
    from include.taxi.orchestration.lineage_extractor import TaxiLoadExtractor

    ti = SimpleNamespace(dag_id="lake_to_bigquery", task_id="load_green", run_id="r", map_index=0)
    source = lineage.from_uri("gs://taxi-lake/lake/green/2021/green_tripdata_2021-01.parquet")
    source.source = {"sha256": "ab" * 32}
    target = lineage.bigquery_table("proj", "nyc_taxi", "green_tripdata", [("vendorid", "INTEGER")])
    target.rows = 76_518
    lineage.record({"ti": ti}, lineage.LoadLineage([source], [target]))
    got = TaxiLoadExtractor(SimpleNamespace(task_id="load_green")).extract_on_complete(ti)
    (inp,), (out,) = got.inputs, got.outputs
    assert (inp.namespace, inp.name) == (
        "gs://taxi-lake",
        "lake/green/2021/green_tripdata_2021-01.parquet",
    )
    assert (out.namespace, out.name) == ("bigquery", "proj.nyc_taxi.green_tripdata")
    body = json.loads(Serde.to_json(out))
    assert body["outputFacets"]["outputStatistics"]["rowCount"] == 76_518
    fields = body["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [("vendorid", "INTEGER")]
    assert json.loads(Serde.to_json(inp))["facets"]["taxi_source"]["sha256"] == "ab" * 32
