"""A month put in the lake always reaches BigQuery, even if its task died after the put.

The dangerous window: ``taxi_to_lake`` puts the month's object, then dies (SIGKILL, timeout,
lost heartbeat) before it reports success, so no asset event is emitted. Its retry finds the
object unchanged and, before, skipped without an event: nothing ever loaded the month. Now
"unchanged" in the lake is not enough to skip: the month must also be in BigQuery's ingestion
log, else the event is emitted again; and ``taxi_daily`` (lake target) triggers
``lake_to_bigquery`` for lake months BigQuery's log does not hold.

Real DAGs run by ``dag.test()`` (which runs Airflow's retries for real), fake-gcs-server and
local-bigquery. The death after the put is simulated by a put that succeeds and then raises:
a real SIGKILL cannot be aimed at that instant from inside ``dag.test()``.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from dev.airflow_env import PROJECT
from dev.synthetic import write_month, write_zones
from include.taxi.months import Month
from tests.helpers.dag_runs import asset_events, lake_month_events

OCTOBER = date(2019, 10, 1)


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT / "dags")).dags


@pytest.fixture
def settings(monkeypatch, source_server, gcs_bucket) -> str:
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-10.csv.gz", "green", OCTOBER, 800)
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    dataset = f"left_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", f"gs://{gcs_bucket}/lake")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_BQ_DATASET", dataset)
    return dataset


@pytest.fixture
def put_then_die(monkeypatch) -> list[str]:
    """The first put of a trip month succeeds, then its task dies before reporting success."""
    from include.taxi.lake.store import GcsLake

    real_put = GcsLake.put
    died: list[str] = []

    def put(self, local, name, metadata, **kwargs):
        stored = real_put(self, local, name, metadata, **kwargs)
        if not died and name.endswith("_tripdata_2019-10.parquet"):
            died.append(name)
            raise RuntimeError("worker lost right after the put")
        return stored

    monkeypatch.setattr(GcsLake, "put", put)
    return died


def _run(dag, month: str, **conf):
    logical = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
    return dag.test(logical_date=logical, run_conf={"month": month, **conf})


def _tis(run) -> dict[str, object]:
    return {f"{ti.task_id}[{ti.map_index}]": ti for ti in run.get_task_instances()}


def _bq_rows(dataset: str) -> int:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.api_core.exceptions import NotFound

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    try:
        (row,) = client.query(
            f"SELECT COUNT(*) AS n FROM `{hook.project_id}.{dataset}.green_tripdata`"
        ).result()
    except NotFound:
        return 0
    return row["n"]


def test_a_put_that_succeeds_then_dies_still_announces_the_month(dags, settings, put_then_die):
    dag = dags["taxi_to_lake"]
    task = dag.task_dict["write_month"]
    task.retry_delay, task.retry_exponential_backoff = timedelta(seconds=1), False
    run = _run(dag, "2019-10", service="green")
    assert put_then_die, "the put never died: the test did not test anything"
    write = _tis(run)["write_month[0]"]
    assert (write.state, write.try_number) == ("success", 2), "the retry must not skip"
    events = lake_month_events(run.run_id)
    assert [(e["service"], e["month"]) for e in events] == [("green", "2019-10")]
    assert ("taxi_lake_green_tripdata", {"month": "2019-10", "rows": 800}) in asset_events(
        run.run_id
    ), "the table the dead try wrote is announced by the retry"

    # what the scheduler does with that event: lake_to_bigquery loads the month it names
    load = _run(dags["lake_to_bigquery"], events[0]["month"], service=events[0]["service"])
    assert _tis(load)[f"load_{events[0]['service']}[0]"].state == "success"
    assert _bq_rows(settings) == 800

    again = _run(dag, "2019-10", service="green")
    assert _tis(again)["write_month[0]"].state == "skipped", "in the lake and in BigQuery"
    assert lake_month_events(again.run_id) == []


def test_taxi_daily_has_a_lake_month_missing_from_bigquery_loaded(settings, monkeypatch):
    """A month whose put succeeded on its last try (no retry left to announce it)."""
    from include.taxi.lake.load import month_to_lake
    from include.taxi.orchestration.tasks import months_to_trigger

    base = os.environ["AIRFLOW_VAR_TAXI_SOURCE_URL"]
    lake = os.environ["AIRFLOW_VAR_TAXI_LAKE_URL"]
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DAILY_TARGETS", "lake")
    month_to_lake("green", Month(2019, 10), source_base=base, lake_url=lake)
    today = datetime(2019, 11, 15, tzinfo=UTC)
    october = {"service": "green", "month": "2019-10"}

    def triggered(run_id: str) -> list[tuple[str, dict]]:
        found = months_to_trigger(today, run_id)
        return [(t["trigger_dag_id"], t["conf"]) for t in found if t["conf"] == october]

    assert triggered("daily_1") == [("lake_to_bigquery", october)]

    from include.taxi.bigquery.load import month_to_bigquery

    month_to_bigquery("green", Month(2019, 10), lake_url=lake, dataset=settings)
    assert triggered("daily_2") == []
