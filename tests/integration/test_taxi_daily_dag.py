"""taxi_daily run in-process: new and republished months are triggered, unchanged ones not."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import pytest

from dev.synthetic import write_month
from include.taxi.months import Month
from include.taxi.orchestration.discovery import recent_months
from include.taxi.postgres.load import month_to_postgres

TODAY = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def test_recent_months_are_the_complete_months_before_today() -> None:
    assert recent_months(date(2026, 1, 5), 3) == [Month(2025, 12), Month(2025, 11), Month(2025, 10)]


@pytest.fixture(scope="module")
def dags(dag_bag):
    return dag_bag


def _publish(root, service: str, month: str, rows: int, seed: int = 0) -> None:
    path = root / service / f"{service}_tripdata_{month}.csv.gz"
    write_month(path, service, date.fromisoformat(f"{month}-01"), rows, seed=seed)
    os.utime(path, (path.stat().st_mtime + rows, path.stat().st_mtime + rows))


def test_daily_triggers_new_and_republished_months_only(
    dags, monkeypatch, source_server, postgres_url, taxi_postgres
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    base, root = source_server
    load = {"source_base": base, "conninfo": postgres_url, "schema": taxi_postgres}
    _publish(root, "green", "2026-10", 300)  # new: never loaded
    _publish(root, "yellow", "2026-09", 200)  # unchanged: loaded, same file
    month_to_postgres("yellow", Month(2026, 9), **load)
    _publish(root, "fhv", "2026-08", 100)  # republished after its load
    month_to_postgres("fhv", Month(2026, 8), **load)
    _publish(root, "fhv", "2026-08", 150, seed=1)

    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DAILY_LOOKBACK_MONTHS", "3")
    dags.dags["taxi_to_postgres"].test(  # registers the triggered DAG in the test metadata DB
        logical_date=datetime(2019, 1, 1, tzinfo=UTC), run_conf={"month": "2030-01"}
    )
    run = dags.dags["taxi_daily"].test(logical_date=TODAY)
    assert run.state == "success"
    with create_session() as session:
        triggered = session.query(DagRun).filter(
            DagRun.dag_id == "taxi_to_postgres", DagRun.run_id.startswith(run.run_id)
        )
        confs = sorted((r.conf["service"], r.conf["month"]) for r in triggered)
    assert confs == [("fhv", "2026-08"), ("green", "2026-10")]


def test_a_day_with_nothing_new_triggers_nothing(dags, monkeypatch, source_server, pg_schema):
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", source_server[0] + "/nothing-here")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA", pg_schema)
    monkeypatch.setenv("AIRFLOW_CONN_TAXI_POSTGRES", "postgresql://nobody@127.0.0.1:1/none")
    run = dags.dags["taxi_daily"].test(logical_date=datetime(2026, 11, 23, tzinfo=UTC))
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"find_changed_months": "success", "load_month": "skipped"}


def test_daily_feeds_the_lake_from_the_lake_objects_metadata(
    dags, monkeypatch, source_server, tmp_path
) -> None:
    """Target ``lake``: compared with what the lake objects were written from, and the
    triggered DAG is taxi_to_lake (whose asset events then feed BigQuery)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from include.taxi.lake.load import month_to_lake

    base, root = source_server
    lake = tmp_path.as_uri()
    _publish(root, "green", "2027-02", 300)  # new: not in the lake
    _publish(root, "yellow", "2027-01", 200)  # unchanged: in the lake, same file
    month_to_lake("yellow", Month(2027, 1), source_base=base, lake_url=lake)
    _publish(root, "fhv", "2026-12", 100)  # republished after it was written
    month_to_lake("fhv", Month(2026, 12), source_base=base, lake_url=lake)
    _publish(root, "fhv", "2026-12", 150, seed=1)

    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", lake)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DAILY_TARGETS", "lake")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DAILY_LOOKBACK_MONTHS", "3")
    dags.dags["taxi_to_lake"].test(  # registers the triggered DAG in the test metadata DB
        logical_date=datetime(2019, 1, 1, tzinfo=UTC), run_conf={"month": "2030-01"}
    )
    run = dags.dags["taxi_daily"].test(logical_date=datetime(2027, 3, 22, 6, tzinfo=UTC))
    assert run.state == "success"
    with create_session() as session:
        triggered = session.query(DagRun).filter(
            DagRun.dag_id != "taxi_daily", DagRun.run_id.startswith(run.run_id)
        )
        confs = sorted((r.dag_id, r.conf["service"], r.conf["month"]) for r in triggered)
    assert confs == [("taxi_to_lake", "fhv", "2026-12"), ("taxi_to_lake", "green", "2027-02")]


def test_an_unknown_daily_target_fails_with_the_allowed_names(monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from include.taxi.orchestration.config import daily_targets

    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DAILY_TARGETS", "postgres,snowflake")
    with pytest.raises(AirflowFailException, match="snowflake: use postgres, lake"):
        daily_targets()
