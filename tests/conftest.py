"""Shared fixtures: a private Airflow home, a real PostgreSQL, a local source web server and
local GCS + BigQuery emulators (real clients over HTTP, nothing mocked).

Airflow reads its configuration when first imported, so the test home is set up here, at
import time, before any test module imports airflow.
"""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dev import local_postgres
from dev.airflow_env import PROJECT, airflow_env, postgres_connection
from dev.emulators import Emulators, running_emulators

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="taxi-airflow-test-"))
os.environ.update(airflow_env(AIRFLOW_HOME, use_dotenv=False))
os.environ.pop("AIRFLOW_CONN_TAXI_POSTGRES", None)


MARKERS_BY_FOLDER = {
    "integration": "integration",
    "faults": "integration",
    "bench": "integration",
    "e2e": "e2e",
    "ui": "ui",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder, so ``-m "not integration and not e2e and not ui"`` (make
    test-fast) selects the unit, DAG and static tests without a list to keep up to date."""
    tests = Path(__file__).parent
    for item in items:
        folder = Path(item.fspath).relative_to(tests).parts[0]
        if marker := MARKERS_BY_FOLDER.get(folder):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the test home (needed by dag.test and the CLI)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ,
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DATABASE_URL if given, otherwise an embedded PostgreSQL started for this session."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    data = tmp_path_factory.mktemp("pgdata")
    password = secrets.token_urlsafe(16)  # the cluster is password-only, like make run's
    url = local_postgres.start(data, local_postgres.free_port(), password=password, durable=False)
    try:
        yield url
    finally:
        local_postgres.stop(data)


@pytest.fixture
def metadata_url(postgres_url: str) -> Iterator[str]:
    """A fresh Airflow metadata database on the session's PostgreSQL (SQLAlchemy URL) for a
    command that runs Airflow in a subprocess (`make month`): the server a user names with
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, instead of the project's own embedded one."""
    from dev.airflow_stack import metadata_database

    with metadata_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="module")
def dag_bag(airflow_db: Path) -> Any:
    """Every DAG of dags/, parsed once per test module (``dag_bag.dags[dag_id]``).

    Not once per session: ``dag.test()`` leaves state on the DAG object, and a run of one
    service made a later run of all services on the same object map a single task."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.file import iter_airflow_imports

    for dag_file in (PROJECT / "dags").glob("*.py"):  # as the dag processor does before a parse
        for module in iter_airflow_imports(str(dag_file)):
            importlib.import_module(module)
    return DagBag(dag_folder=str(PROJECT / "dags"))


@pytest.fixture
def taxi_postgres(monkeypatch: pytest.MonkeyPatch, postgres_url: str, pg_schema: str) -> str:
    """The connection ``taxi_postgres`` and the Variable ``taxi_postgres_schema`` pointing at
    the session's PostgreSQL and this test's schema; returns the schema."""
    monkeypatch.setenv("AIRFLOW_CONN_TAXI_POSTGRES", postgres_connection(postgres_url))
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA", pg_schema)
    return pg_schema


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema per test, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def source_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A web server on 127.0.0.1 serving a folder laid out like the real source."""
    root = tmp_path_factory.mktemp("source")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def gcp_emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """fake-gcs-server + local-bigquery for the session, with their variables in os.environ
    (the google clients and Airflow's google_cloud_default read them); restored afterwards."""
    with running_emulators(tmp_path_factory.mktemp("emulators")) as emulators:
        saved = {key: os.environ.get(key) for key in emulators.env()}
        os.environ.update(emulators.env())
        try:
            yield emulators
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def gcs_bucket(gcp_emulators: Emulators) -> Iterator[str]:
    """A fresh, empty bucket per test in the fake GCS (deleted with its objects afterwards)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=gcp_emulators.project, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield bucket.name
    finally:
        for blob in client.list_blobs(bucket.name):
            blob.delete()
        bucket.delete()
        client.close()
