"""taxi_to_lake and lake_to_bigquery run by dag.test() against the emulators.

Checks the Airflow wiring the pipeline tests cannot: Params, mapped tasks, the asset event
that carries the month from taxi_to_lake to lake_to_bigquery, and skip outcomes.
"""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest

from dev.synthetic import write_month, write_zones
from include.taxi.settings import SERVICES
from tests.helpers.dag_runs import asset_events, lake_month_events, run_month, task_states

JULY = date(2019, 7, 1)


@pytest.fixture(scope="module")
def dags(dag_bag):
    return dag_bag.dags


@pytest.fixture
def settings(monkeypatch, source_server, gcs_bucket):
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-07.csv.gz", "green", JULY, 900)
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    dataset = f"dag_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", f"gs://{gcs_bucket}/lake")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_BQ_DATASET", dataset)
    return dataset


def _bq_count(dataset: str, service: str) -> int:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    (row,) = client.query(
        f"SELECT COUNT(*) AS n FROM `{hook.project_id}.{dataset}.{service}_tripdata`"
    ).result()
    return row["n"]


def test_a_lake_month_emits_an_asset_event_naming_it_and_loads_into_bigquery(dags, settings):
    run = run_month(dags["taxi_to_lake"], "2019-07", service="green")
    assert run.state == "success", task_states(run)
    assert task_states(run) == {
        "plan[-1]": "success",
        "write_month[0]": "success",
        "write_zones[-1]": "success",
        "announce_tables[-1]": "success",
    }
    events = lake_month_events(run.run_id)
    assert len(events) == 1
    assert {k: events[0][k] for k in ("service", "month", "rows")} == {
        "service": "green",
        "month": "2019-07",
        "rows": 900,
    }
    assert events[0]["uri"].endswith("/lake/green/2019/green_tripdata_2019-07.parquet")
    tables = [e for e in asset_events(run.run_id) if e[0] != "taxi_lake_trip_months"]
    assert tables == [("taxi_lake_green_tripdata", {"month": "2019-07", "rows": 900})]

    rerun = run_month(dags["taxi_to_lake"], "2019-07", service="green")
    assert task_states(rerun)["write_month[0]"] == "success", "unchanged, but not in BigQuery yet"
    assert [e["month"] for e in lake_month_events(rerun.run_id)] == ["2019-07"]

    load = run_month(dags["lake_to_bigquery"], "2019-07", service="green")
    assert load.state == "success", task_states(load)
    # a plan and a load per service (each table its own pool); only green has a month here
    assert task_states(load) == {
        **{f"plan_{s}[-1]": "success" for s in SERVICES},
        **{f"load_{s}[-1]": "skipped" for s in SERVICES if s != "green"},
        "load_green[0]": "success",
        "load_zones[-1]": "success",
        "announce_tables[-1]": "success",
    }
    assert _bq_count(settings, "green") == 900
    assert asset_events(load.run_id) == [
        ("taxi_bigquery_green_tripdata", {"month": "2019-07", "rows": 900})
    ], "an event on the loaded service's table only"

    third = run_month(dags["taxi_to_lake"], "2019-07", service="green")
    assert task_states(third)["write_month[0]"] == "skipped", "in the lake and BigQuery: no event"
    assert asset_events(third.run_id) == [], "nothing changed: no event on any asset"


def test_lake_to_bigquery_skips_a_month_that_is_not_in_the_lake(dags, settings):
    run = run_month(dags["lake_to_bigquery"], "2019-08", service="yellow")
    assert run.state == "success"
    assert task_states(run)["load_yellow[0]"] == "skipped"


def test_event_months_are_deduplicated_and_filtered_by_the_service_param():
    """Plain objects stand in for the scheduler's AssetEvent results (only ``.extra`` is read);
    the real events are covered above and by the end-to-end scheduler test."""
    from types import SimpleNamespace

    from include.taxi.orchestration.plan import event_months

    events = [
        SimpleNamespace(extra={"service": "green", "month": "2019-08"}),
        SimpleNamespace(extra={"service": "yellow", "month": "2019-07"}),
        SimpleNamespace(extra={"service": "green", "month": "2019-08"}),
        SimpleNamespace(extra={"service": "green", "month": "../../etc"}),
        SimpleNamespace(extra={"service": "purple", "month": "2019-07"}),
        SimpleNamespace(extra=None),
    ]
    assert event_months("all", events) == [
        {"service": "yellow", "month": "2019-07"},
        {"service": "green", "month": "2019-08"},
    ]
    assert event_months("green", events) == [{"service": "green", "month": "2019-08"}]
    assert json.dumps(event_months(None, [])) == "[]"
