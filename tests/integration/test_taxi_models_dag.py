"""taxi_to_postgres announces its month; taxi_models (Cosmos) builds that month from it and
announces it for the yearly rollup; taxi_models_yearly builds the yearly mart of a year.

Both DAGs run in-process (dag.test) against the real PostgreSQL; dbt runs as .venv-dbt's
subprocess with the profile Cosmos builds from the taxi_postgres connection.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest

from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres
from include.taxi.postgres.models_log import ModelsLog
from include.taxi.services import Service
from tests.helpers.dag_runs import run_month, task_states
from tests.helpers.scripted_http import ScriptedServer
from tests.helpers.transform import (
    break_zone_id,
    served_folder,
    write_all_zones,
    write_source_month,
)

PICKUP_ZONE_TEST = (
    "models.relationships_fct_trips_pickup_location_id__location_id__ref_dim_zones__test"
)
"""A test of two models (fct_trips, dim_zones) is a task of its own, after both."""


@pytest.fixture
def loaded(monkeypatch, dag_bag, source_server, taxi_postgres):
    """2021-01 of yellow and green loaded by taxi_to_postgres; returns that run."""
    base, root = served_folder(source_server, "models_dag")
    write_all_zones(root)
    write_source_month(root, "yellow", "2021-01", 1_200)
    write_source_month(root, "green", "2021-01", 300)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
    return run_month(dag_bag.dags["taxi_to_postgres"], "2021-01", service="all")


def test_a_loaded_month_is_announced_and_its_models_built(
    loaded, dag_bag, postgres_url, taxi_postgres
) -> None:
    assert task_states(loaded)["announce[-1]"] == "success"
    events = [
        event.extra
        for ti in loaded.get_task_instances()
        if ti.task_id == "announce"
        for event in _events(ti)
    ]
    assert events == [{"month": "2021-01", "services": ["fhv", "fhvhv", "green", "yellow"]}]

    run = run_month(dag_bag.dags["taxi_models"], "2021-01")
    assert run.state == "success", task_states(run)
    states = task_states(run)
    assert states["models.fct_trips.test[-1]"] == "success"
    with psycopg.connect(postgres_url) as conn:
        counts = dict(
            conn.execute(
                f'SELECT service, count(*) FROM "{taxi_postgres}".fct_trips GROUP BY 1'
            ).fetchall()
        )
    assert counts == {"yellow": 1_200, "green": 300}
    assert states["record[-1]"] == "success"  # the Models column of the Taxi months page
    built = ModelsLog(postgres_url, taxi_postgres).records().loads
    assert {(str(s), str(m)): (r.rows, r.run_id) for (s, m), r in built.items()} == {
        ("yellow", "2021-01"): (1_200, run.run_id),
        ("green", "2021-01"): (300, run.run_id),
    }
    assert _announced(run) == [("2021-01", {"months": ["2021-01"]})]  # the yearly rollup's

    yearly = dag_bag.dags["taxi_models_yearly"].test(
        logical_date=datetime(2022, 1, 1, tzinfo=UTC), run_conf={"year": "2021"}
    )
    assert yearly.state == "success", task_states(yearly)
    with psycopg.connect(postgres_url) as conn:
        by_year = conn.execute(
            f'SELECT source_year, service, sum(trips) FROM "{taxi_postgres}".'
            "mart_yearly_zone_revenue GROUP BY 1, 2 ORDER BY 2"
        ).fetchall()
    assert by_year == [(2021, "green", 300), (2021, "yellow", 1_200)]


def _announced(run) -> list[tuple[str | None, dict]]:
    """taxi_models' events for the yearly rollup: (partition key, extra)."""
    return [
        (event.partition_key, event.extra)
        for ti in run.get_task_instances()
        if ti.task_id == "announce"
        for event in _events(ti)
    ]


def _events(ti):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent).filter_by(
            source_dag_id=ti.dag_id, source_run_id=ti.run_id, source_task_id=ti.task_id
        )
        return list(rows)


def test_a_broken_month_fails_its_test_task_and_alerts(
    monkeypatch, dag_bag, source_server, postgres_url, taxi_postgres
) -> None:
    base, root = served_folder(source_server, "models_broken")
    write_all_zones(root)
    break_zone_id(write_source_month(root, "yellow", "2021-03", 500), column=7)
    zones_to_postgres(source_base=base, conninfo=postgres_url, schema=taxi_postgres)
    month_to_postgres(
        "yellow", Month(2021, 3), source_base=base, conninfo=postgres_url, schema=taxi_postgres
    )
    dag = dag_bag.dags["taxi_models"]
    for task in dag.tasks:  # the retries stay (the alert comes after them); their waits go
        task.retry_delay, task.retry_exponential_backoff = timedelta(0), False
    with ScriptedServer() as receiver:
        hook = urlsplit(receiver.url)
        connection = {"conn_type": "http", "host": hook.hostname, "port": hook.port}
        connection |= {"schema": "http", "extra": {"path": "/alerts"}}
        monkeypatch.setenv("AIRFLOW_CONN_TAXI_ALERTS", json.dumps(connection))
        run = run_month(dag, "2021-03")
    states = task_states(run)
    assert run.state == "failed", states
    assert states["models.fct_trips.test[-1]"] == "success", states
    assert states[f"{PICKUP_ZONE_TEST}[-1]"] == "failed", states
    assert states[f"{PICKUP_ZONE_TEST.replace('pickup', 'dropoff')}[-1]"] == "success", states
    latest = (
        ModelsLog(postgres_url, taxi_postgres).records().latest[(Service.YELLOW, Month(2021, 3))]
    )
    assert (latest.status, latest.run_id) == ("failed", run.run_id)  # a teardown: run stays failed
    assert PICKUP_ZONE_TEST in (latest.error or "")
    assert states["announce[-1]"] == "upstream_failed", states  # no month for the yearly mart
    assert _announced(run) == []
    alerts = [json.loads(body) for _, body in receiver.posted]
    assert [(a["dag_id"], a["task_id"]) for a in alerts] == [("taxi_models", PICKUP_ZONE_TEST)]
