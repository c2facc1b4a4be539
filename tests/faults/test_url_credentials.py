"""A source URL with ``user:password@``: the download uses the credentials (HTTP Basic auth),
and no place a value can land repeats the password: Postgres' ingestion log, the lake's
objects (metadata, parquet footer) and failure records, task return values (XCom), the
task logs, the OpenLineage datasets and the error messages of a refused and a skipped month.

Both monthly DAGs run by ``dag.test()`` against real PostgreSQL and a folder lake; the source
is the scripted test server, which records each request's Authorization header.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest

from dev.synthetic import write_month, write_zones
from include.taxi.orchestration import lineage
from tests.conftest import AIRFLOW_HOME
from tests.helpers.dag_runs import run_month, task_states
from tests.helpers.scripted_http import Answer, ScriptedServer

USER = "taxi-reader"
PASSWORD = "Pw-" + uuid.uuid4().hex
MAY, JUNE = date(2021, 5, 1), date(2021, 6, 1)
ROWS = 250


@pytest.fixture
def source(tmp_path: Path):
    """The scripted server: green May (good), green June (an HTML page), zones; the rest 404."""
    files = tmp_path / "files"
    may = files / "may.csv.gz"
    write_month(may, "green", MAY, ROWS)
    write_zones(files / "zones.csv")
    with ScriptedServer() as server:
        server.answer("/green/green_tripdata_2021-05.csv.gz", Answer(body=may.read_bytes()))
        server.answer(
            "/green/green_tripdata_2021-06.csv.gz",
            Answer(body=b"<!DOCTYPE html><html>Sign in to continue</html>"),
        )
        server.answer("/misc/taxi_zone_lookup.csv", Answer(body=(files / "zones.csv").read_bytes()))
        yield server


@pytest.fixture
def configured(monkeypatch, source, taxi_postgres, tmp_path: Path):
    secret_base = source.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", secret_base)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", (tmp_path / "lake").as_uri())
    return taxi_postgres


def _xcom_values(run_ids: list[str]) -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [
            repr(value)
            for value in session.scalars(
                select(XComModel.value).where(XComModel.run_id.in_(run_ids))
            )
        ]


def _log_rows(url: str, schema: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            str(row)
            for row in conn.execute(f'SELECT t::text, status FROM "{schema}".taxi_ingestion_log t')
        ]


def test_the_password_is_used_to_download_and_never_stored_or_shown(
    dag_bag, configured, source, postgres_url, tmp_path: Path, caplog, capfd
) -> None:
    schema = configured
    runs = []
    with caplog.at_level(logging.DEBUG):
        for dag_id in ("taxi_to_postgres", "taxi_to_lake"):
            dag = dag_bag.dags[dag_id]
            good = run_month(dag, "2021-05", service="green")
            assert good.state == "success", task_states(good)
            refused = run_month(dag, "2021-06", service="green")  # an HTML page: failed
            assert refused.state == "failed", task_states(refused)
            skipped = run_month(dag, "2021-07", service="green")  # 404: skipped
            assert "skipped" in task_states(skipped).values()
            runs += [good, refused, skipped]
    printed = capfd.readouterr()

    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    may_gets = [
        auth
        for path, auth in zip(source.requests, source.authorizations, strict=True)
        if path.endswith("2021-05.csv.gz")
    ]
    assert may_gets
    assert set(may_gets) == {expected}, "the download sends the URL's credentials"

    rows = _log_rows(postgres_url, schema)
    places: dict[str, list[str]] = {
        "Postgres ingestion log": rows,
        "task logs (caplog)": [caplog.text],
        "task logs (stdout/stderr)": [printed.out, printed.err],
        "XCom / return values": _xcom_values([run.run_id for run in runs]),
        "OpenLineage datasets": [repr(record) for record in lineage._RECORDED.values()],
        "lake files": [
            path.read_bytes().decode("latin-1")
            for path in (tmp_path / "lake").rglob("*")
            if path.is_file()
        ],
        "Airflow task log files": [
            path.read_bytes().decode("latin-1")
            for path in (AIRFLOW_HOME / "logs").rglob("*")
            if path.is_file()
        ],
    }
    assert places["XCom / return values"], "the good runs returned what they moved"
    assert any("taxi.source_url" in text for text in places["lake files"])
    assert any("127.0.0.1" in repr(r.inputs) for r in lineage._RECORDED.values())
    for place, texts in places.items():
        for text in texts:
            assert PASSWORD not in text, f"the password is in the {place}"
            assert f"{USER}:" not in text, f"the user name is in the {place}"
    assert any("failed" in row and "not a gzip file" in row for row in rows), "refusal logged"
