"""The Models column of the Taxi months page over a real PostgreSQL: months loaded by the
pipeline, built by dbt (.venv-dbt, as taxi_models runs it), logged by the code taxi_models'
last task calls (postgres/models_log.py), read back through the page's own reader and grid."""

from __future__ import annotations

import psycopg

from include.taxi.load_record import FAILED, LOADED
from include.taxi.months import Month
from include.taxi.postgres.ingestion_log import PostgresLog
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres
from include.taxi.postgres.models_log import LOG_TABLE, ModelsLog, record_build
from include.taxi.services import Service
from include.taxi.status.grid import MISSING, STALE
from include.taxi.status.page import render
from include.taxi.status.targets import collect
from include.taxi.transform.built import failed_tasks
from include.taxi.transform.project import month_vars, run_dbt
from tests.helpers.transform import (
    postgres_profile_env,
    served_folder,
    write_all_zones,
    write_source_month,
)

JAN, FEB = Month(2021, 1), Month(2021, 2)


def test_failed_tasks_are_the_groups_tasks_that_did_not_pass() -> None:
    states = {
        "plan": "success",
        "record": None,
        "models.fct_trips.run": "success",
        "models.fct_trips.test": "failed",
        "models.mart_monthly_zone_revenue.run": "upstream_failed",
        "models.stg_zones_run": "skipped",
    }
    assert failed_tasks(states) == [
        "models.fct_trips.test",
        "models.mart_monthly_zone_revenue.run",
    ]


def test_the_models_column_says_built_failed_stale_and_missing(
    source_server, postgres_url, pg_schema
) -> None:
    base, root = served_folder(source_server, "models_log")
    write_all_zones(root)
    zones_to_postgres(source_base=base, conninfo=postgres_url, schema=pg_schema)
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema, "force": True}

    def publish_and_load(service: str, month: Month, rows: int, seed: int = 0) -> None:
        write_source_month(root, service, str(month), rows, seed)
        month_to_postgres(service, month, **load)

    logs = {
        "postgres": PostgresLog(postgres_url, pg_schema),
        "models": ModelsLog(postgres_url, pg_schema),
    }
    assert logs["models"].records().latest == {}  # no taxi_models run yet: no table, no error

    publish_and_load("yellow", JAN, 1_200)
    publish_and_load("green", JAN, 300)
    publish_and_load("yellow", FEB, 800)
    env = postgres_profile_env(postgres_url, pg_schema)
    run_dbt(["build", "--vars", month_vars("2021-01")], target="postgres", env=env)
    built = record_build(postgres_url, pg_schema, [JAN], "manual__jan", [])
    assert built == {"2021-01": {"yellow": 1_200, "green": 300}}

    view = collect(logs)
    assert view.targets == ["postgres", "models"]
    cells = {s.service: {r.month: r.cells["models"] for r in s.months} for s in view.services}
    assert (cells["yellow"]["2021-01"].state, cells["yellow"]["2021-01"].rows) == (LOADED, 1_200)
    assert (cells["green"]["2021-01"].state, cells["green"]["2021-01"].rows) == (LOADED, 300)
    assert cells["yellow"]["2021-01"].dag_id == "taxi_models"
    assert cells["yellow"]["2021-01"].run_id == "manual__jan"
    assert cells["yellow"]["2021-02"].state == MISSING  # loaded in Postgres, never built
    assert "no taxi_models run built" in cells["yellow"]["2021-02"].detail

    # February's build fails a test: every service Postgres holds for it is failed, naming it
    record_build(postgres_url, pg_schema, [FEB], "manual__feb", ["models.fct_trips.test"])
    # January is reloaded in Postgres after its models were built: stale until rebuilt
    publish_and_load("yellow", JAN, 1_000, seed=3)
    cells = {
        s.service: {r.month: r.cells["models"] for r in s.months} for s in collect(logs).services
    }
    feb = cells["yellow"]["2021-02"]
    assert (feb.state, feb.run_id) == (FAILED, "manual__feb")
    assert "models.fct_trips.test" in feb.detail
    assert cells["yellow"]["2021-01"].state == STALE
    assert "Postgres reloaded the month" in cells["yellow"]["2021-01"].detail
    assert cells["green"]["2021-01"].state == LOADED

    run_dbt(["build", "--vars", month_vars("2021-01")], target="postgres", env=env)
    record_build(postgres_url, pg_schema, [JAN], "manual__jan2", [])
    view = collect(logs)
    jan = {s.service: s.months[0].cells["models"] for s in view.services}["yellow"]
    assert (jan.state, jan.rows, jan.run_id) == (LOADED, 1_000, "manual__jan2")
    html = render(view, base_url="http://airflow")
    assert "<th>Models</th>" in html
    assert 'href="http://airflow/dags/taxi_models/runs/manual__jan2"' in html

    with psycopg.connect(postgres_url) as conn:  # one row per service-month and run
        (rows,) = conn.execute(f'SELECT count(*) FROM "{pg_schema}".{LOG_TABLE}').fetchone()
    assert rows == 2 + 1 + 2  # January (yellow, green), February (yellow), January again


def test_last_load_is_the_latest_successful_build(postgres_url, pg_schema) -> None:
    models = ModelsLog(postgres_url, pg_schema)
    record_build(postgres_url, pg_schema, [JAN], "manual__none", [])  # nothing loaded: no rows
    assert models.last_load(Service.YELLOW, JAN) is None
