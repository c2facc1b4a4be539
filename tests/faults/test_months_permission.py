"""Who sees which column of the Taxi months page, with an auth manager that has DAG-level
permissions (tests/helpers/dag_auth_manager.py), through Airflow's own api-server app.

The page used to check the DAG id the caller put in ``?dag_id=``: a user who may read only some
other DAG read every month by naming it. Now each target's column is shown only to users who
may read the runs of the DAG that writes it, and the query string changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from dev.airflow_env import postgres_connection
from dev.synthetic import write_month
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres
from tests.helpers import dag_auth_manager

PG_ROWS, LAKE_ROWS = 120, 7_321
ENDPOINTS = ("/taxi-months/api/months", "/taxi-months/")


@pytest.fixture(scope="module")
def api(
    airflow_db: Path,
    postgres_url: str,
    source_server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """Airflow's api-server app (core API, plugins, the auth manager) with a Postgres log of
    green 2021-01 and a folder lake holding green 2021-02; built once (it takes seconds)."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    base, root = source_server
    csv = root / "perm" / "green" / "green_tripdata_2021-01.csv.gz"
    write_month(csv, "green", date(2021, 1, 1), PG_ROWS)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    month_to_postgres(
        "green", Month(2021, 1), source_base=f"{base}/perm", conninfo=postgres_url, schema=schema
    )
    lake = tmp_path_factory.mktemp("perm") / "lake"
    obj = lake / "green" / "2021" / "green_tripdata_2021-02.parquet"
    obj.parent.mkdir(parents=True)
    meta = {"taxi.service": "green", "taxi.month": "2021-02", "taxi.rows": str(LAKE_ROWS)}
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata(meta), obj)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_TAXI_POSTGRES", postgres_connection(postgres_url))
        env.setenv("AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA", schema)
        env.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", lake.as_uri())
        env.setenv("AIRFLOW__CORE__AUTH_MANAGER", dag_auth_manager.PATH)
        purge_cached_app()
        try:
            yield TestClient(create_app("core"))
        finally:
            purge_cached_app()
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def token(user: str) -> dict[str, str]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="viewer"))
    return {"Authorization": f"Bearer {jwt}"}


def test_a_reader_of_another_dag_gets_403_whatever_dag_id_it_names(api: TestClient) -> None:
    for path in ENDPOINTS:
        for query in ("", "?dag_id=other_dag", "?dag_id=taxi_to_postgres", "?dag_id=~"):
            answer = api.get(f"{path}{query}", headers=token("other_reader"))
            assert answer.status_code == 403, (path, query, answer.text)
            assert "green" not in answer.text


def test_a_reader_of_taxi_to_postgres_sees_only_the_postgres_column(api: TestClient) -> None:
    for query in ("", "?dag_id=taxi_to_lake", "?dag_id=other_dag"):
        answer = api.get(f"/taxi-months/api/months{query}", headers=token("postgres_reader"))
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["targets"] == ["postgres"]
        (green,) = data["services"]
        assert [(m["month"], list(m["cells"])) for m in green["months"]] == [
            ("2021-01", ["postgres"])
        ]
        assert green["months"][0]["cells"]["postgres"]["rows"] == PG_ROWS
        assert str(LAKE_ROWS) not in answer.text
    page = api.get("/taxi-months/?dag_id=taxi_to_lake", headers=token("postgres_reader"))
    assert page.status_code == 200, page.text
    assert 'data-target="postgres"' in page.text
    assert 'data-target="lake"' not in page.text
    assert f"{LAKE_ROWS:,}" not in page.text


def test_a_reader_of_every_taxi_dag_sees_every_target(api: TestClient) -> None:
    answer = api.get("/taxi-months/api/months?dag_id=other_dag", headers=token("taxi_reader"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["targets"] == ["postgres", "lake"]
    (green,) = data["services"]
    rows = {
        m["month"]: (m["cells"]["postgres"]["rows"], m["cells"]["lake"]["rows"])
        for m in green["months"]
    }
    assert rows == {"2021-01": (PG_ROWS, None), "2021-02": (None, LAKE_ROWS)}


def test_no_login_no_page(api: TestClient) -> None:
    assert api.get("/taxi-months/api/months").status_code == 401
    unknown = api.get("/taxi-months/api/months", headers=token("nobody"))
    assert unknown.status_code == 403
