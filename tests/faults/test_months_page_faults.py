"""One odd lake object or a locked log must not hang the Taxi months page.

The page runs in the api-server, which also serves the Execution API: a month axis built from
a lake object saying ``taxi.month='garbage'`` looped forever, one saying ``'9999-12'`` built
~95,000 months per service, and a log table locked by another session held the request (and
its thread) for as long as the lock. Each view here is built in a child process with a
deadline, so a regression fails the test instead of hanging it; the parent builds a view
first, so the child's time is the view's and not the first import of Airflow and its Google
provider (10-30 s on a loaded 2-core machine; an api-server has them imported already).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import queue
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.synthetic import write_month
from include.taxi.lake.ingestion_log import LakeLog
from include.taxi.lake.store import open_lake
from include.taxi.load_record import LOADED
from include.taxi.months import Month
from include.taxi.postgres.ingestion_log import PostgresLog
from include.taxi.postgres.load import month_to_postgres
from include.taxi.status.grid import MonthsView
from include.taxi.status.page import render
from include.taxi.status.targets import collect, collect_configured

DEADLINE = 20.0
"""Seconds a child may take before the view counts as hung (the views take well under one)."""
GOOD = "green/2021/green_tripdata_2021-03.parquet"
FUTURE = "yellow/2021/yellow_tripdata_2021-01.parquet"
GARBAGE = "green/2021/green_tripdata_2021-02.parquet"


def warm_imports() -> None:
    """What an api-server has imported before a page view (see the module's docstring)."""
    for module in (
        "airflow.providers.google.cloud.hooks.bigquery",
        "airflow.providers.google.cloud.hooks.gcs",
        "google.cloud.bigquery",
        "google.cloud.storage",
    ):
        importlib.import_module(module)


def _child(build: Callable[[], MonthsView], out: multiprocessing.Queue) -> None:
    started = time.perf_counter()
    view = build()
    out.put((time.perf_counter() - started, view))


def built_within(build: Callable[[], MonthsView]) -> tuple[float, MonthsView]:
    """``build()`` in a forked child: (its seconds, its view), or the test fails at DEADLINE."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_child, args=(build, out), daemon=True)
    child.start()
    try:
        return out.get(timeout=DEADLINE)
    except queue.Empty:
        pytest.fail(f"the months view did not build within {DEADLINE:g} s (a loop or a wait)")
    finally:
        child.kill()
        child.join()


def lake_object(root: Path, name: str, metadata: dict[str, str]) -> None:
    """A small parquet object with ``metadata`` in its footer, as the lake writer stores it."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"x": [1, 2, 3]}).replace_schema_metadata(metadata)
    pq.write_table(table, path)


def good_metadata(service: str, month: str, rows: int) -> dict[str, str]:
    return {
        "taxi.service": service,
        "taxi.month": month,
        "taxi.rows": str(rows),
        "taxi.run_id": f"manual__{month}",
    }


def hostile_lake(root: Path) -> None:
    """One good month, one object from the far future, one whose month is no month."""
    lake_object(root, GOOD, good_metadata("green", "2021-03", 700))
    lake_object(root, FUTURE, {**good_metadata("yellow", "2021-01", 5), "taxi.month": "9999-12"})
    lake_object(root, GARBAGE, {**good_metadata("green", "2021-02", 5), "taxi.month": "garbage"})


def assert_hostile_objects_listed(view: MonthsView, *also: str) -> None:
    rejected = {r.where: r for r in view.rejected}
    assert set(rejected) == {FUTURE, GARBAGE, *also}, view.rejected
    assert rejected[FUTURE].value == "'9999-12'"
    assert "after" in rejected[FUTURE].reason
    assert rejected[GARBAGE].value == "'garbage'"
    assert "not a month" in rejected[GARBAGE].reason
    (green,) = [s for s in view.services if s.service == "green"]
    assert [(m.month, m.cells["lake"].state, m.cells["lake"].rows) for m in green.months] == [
        ("2021-03", LOADED, 700)
    ]
    html = render(view, base_url="")
    assert "Left off the grid" in html
    for shown in (FUTURE, "9999-12", GARBAGE, "garbage"):
        assert shown in html


def test_odd_objects_in_a_folder_lake_are_listed_not_looped_over(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    hostile_lake(root)
    html_page = "fhv/2021/fhv_tripdata_2021-04.parquet"
    (root / html_page).parent.mkdir(parents=True)
    (root / html_page).write_bytes(b"<html>not parquet</html>")
    lake = open_lake(str(root))

    seconds, view = built_within(lambda: collect({"lake": LakeLog(lake)}))

    assert seconds < 1.0, f"{seconds:.2f} s"
    assert_hostile_objects_listed(view, html_page)
    (not_parquet,) = [r for r in view.rejected if r.where == html_page]
    assert "footer cannot be read" in not_parquet.reason


def test_odd_objects_in_gcs_are_listed_not_looped_over(gcs_bucket: str, tmp_path: Path) -> None:
    """The same objects in fake-gcs-server: their metadata is the GCS object metadata."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    folder = tmp_path / "local"
    hostile_lake(folder)
    client = storage.Client(credentials=AnonymousCredentials(), project="test")
    for path in folder.rglob("*.parquet"):
        name = path.relative_to(folder).as_posix()
        blob = client.bucket(gcs_bucket).blob(f"lake/{name}")
        blob.metadata = dict(open_lake(str(folder)).stat(name).metadata)  # type: ignore[union-attr]
        blob.upload_from_filename(str(path))
    client.close()

    lake = f"gs://{gcs_bucket}/lake"
    collect({"lake": LakeLog(open_lake(f"gs://{gcs_bucket}/empty"))})  # imports
    seconds, view = built_within(lambda: collect({"lake": LakeLog(open_lake(lake))}))

    assert seconds < 1.0, f"{seconds:.2f} s"
    assert_hostile_objects_listed(view)


@contextmanager
def locked(postgres_url: str, table: str) -> Iterator[None]:
    """Another session holding ACCESS EXCLUSIVE on ``table`` (as a migration or a stuck DDL
    would) while the block runs."""
    with psycopg.connect(postgres_url) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


def test_a_locked_log_answers_within_the_timeout_without_hosts(
    taxi_postgres: str,
    postgres_url: str,
    source_server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the configured path the plugin uses (connection, Variables): Postgres is a
    problem after the timeout, naming no host or port; the lake still shows its month."""
    base, source_root = source_server
    folder = f"locked-{uuid.uuid4().hex[:8]}"
    csv = source_root / folder / "green" / "green_tripdata_2021-01.csv.gz"
    write_month(csv, "green", date(2021, 1, 1), 50)
    load = {"source_base": f"{base}/{folder}", "conninfo": postgres_url, "schema": taxi_postgres}
    month_to_postgres("green", Month(2021, 1), **load)
    root = tmp_path / "lake"
    lake_object(root, GOOD, good_metadata("green", "2021-03", 700))
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", root.as_uri())
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MONTHS_PAGE_TIMEOUT_SECONDS", "1")
    assert collect_configured().problems == {}  # unlocked: both show (and all is imported)

    with locked(postgres_url, f'"{taxi_postgres}".taxi_ingestion_log'):
        seconds, view = built_within(collect_configured)

    assert seconds < 3.0, f"{seconds:.2f} s"
    problem = view.problems["postgres"]
    assert "did not answer within 1 s" in problem, problem
    conninfo = psycopg.conninfo.conninfo_to_dict(postgres_url)
    for secret in (str(conninfo["host"]), str(conninfo["port"]), str(conninfo["user"])):
        assert secret not in problem
    (green,) = view.services
    assert [(m.month, m.cells["lake"].state) for m in green.months][-1] == ("2021-03", LOADED)


def test_an_unreachable_server_is_named_without_its_host(postgres_url: str) -> None:
    conninfo = psycopg.conninfo.conninfo_to_dict(postgres_url)
    refused = psycopg.conninfo.make_conninfo(postgres_url, port=1)

    view = collect({"postgres": PostgresLog(refused, "public")})

    problem = view.problems["postgres"]
    assert problem.startswith("OperationalError: cannot read the postgres log"), problem
    assert str(conninfo["host"]) not in problem
    assert "port" not in problem


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers: a hung
    GCS or BigQuery endpoint, or a firewall that drops replies."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_silent_gcs_and_bigquery_answer_within_the_timeout_without_hosts(
    silent_server: str,
    taxi_postgres: str,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lake's listing and BigQuery's log each end after the timeout (no retries) and show
    a host-free problem; Postgres, which answers, still shows."""
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"project": "p", "is_anonymous": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", silent_server)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", silent_server)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_LAKE_URL", "gs://silent-bucket/lake")
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MONTHS_PAGE_TIMEOUT_SECONDS", "1")
    warm_imports()

    seconds, view = built_within(collect_configured)

    assert seconds < 5.0, f"{seconds:.2f} s"
    assert view.targets == ["postgres", "lake", "bigquery", "models"]  # models: in Postgres
    assert "nothing was loaded" in view.problems["postgres"]  # it answered: no log yet
    for target, name in (("lake", "The lake"), ("bigquery", "BigQuery")):
        problem = view.problems[target]
        assert problem.startswith(f"{name} did not answer within 1 s"), problem
        assert "127.0.0.1" not in problem
        assert silent_server.rsplit(":", 1)[1] not in problem
