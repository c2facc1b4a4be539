"""The "Taxi months" view over a real Postgres log and a real lake folder (include/taxi/status/).

Log rows are written by the real load code (``month_to_postgres``, ``month_to_lake``) from
generated files served over HTTP; the failed row and the warnings are inserted by hand, as the
loader writes them, because no generated file makes the loader fail *after* a download in a
way this test needs, and part A's quality profile may not be on this branch.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi.lake.ingestion_log import LakeLog
from include.taxi.lake.load import month_to_lake
from include.taxi.lake.store import open_lake
from include.taxi.months import Month
from include.taxi.postgres.ingestion_log import PostgresLog
from include.taxi.postgres.load import month_to_postgres
from include.taxi.status.grid import (
    FAILED,
    LOADED,
    MISSING,
    NOT_PUBLISHED,
    STALE,
    UNCHANGED,
    MonthsView,
)
from include.taxi.status.page import render
from include.taxi.status.targets import collect

JAN, FEB, MAR, APR = (date(2021, m, 1) for m in (1, 2, 3, 4))
WARNING = {"rule": "dropoff_before_pickup", "level": "warn", "message": "12 trips end first"}


@pytest.fixture
def publish(source_server):
    """Put a generated month at the source, under a folder of this test's own."""
    base, root = source_server
    folder = f"months-{uuid.uuid4().hex[:8]}"

    def _publish(service: str, month: date, rows: int, seed: int = 0) -> None:
        path = root / folder / service / f"{service}_tripdata_{month:%Y-%m}.csv.gz"
        write_month(path, service, month, rows, seed=seed)
        stamp = path.stat().st_mtime + rows + seed  # a republished file: new Last-Modified
        os.utime(path, (stamp, stamp))

    return f"{base}/{folder}", _publish


def _insert_failed(url: str, schema: str, service: str, month: date, run_id: str) -> None:
    """A failed attempt as postgres/ingestion_log.record writes one."""
    with psycopg.connect(url) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".taxi_ingestion_log (target, table_name, service, '
            "source_month, source_url, source_bytes, started_at, status, error, run_id) "
            "VALUES ('postgres', %s, %s, %s, 'http://x/f.csv.gz', 10, now(), 'failed', "
            "'BadSourceFile: line 7, column fare_amount: value ''x''', %s)",
            (f"{service}_tripdata", service, month, run_id),
        )


def _add_warnings(url: str, schema: str, service: str, month: date) -> None:
    """The columns part A adds to the log, and one warning on the month's loaded row."""
    with psycopg.connect(url) as conn:
        log = f'"{schema}".taxi_ingestion_log'
        conn.execute(f"ALTER TABLE {log} ADD COLUMN IF NOT EXISTS quality jsonb")
        conn.execute(f"ALTER TABLE {log} ADD COLUMN IF NOT EXISTS warnings jsonb")
        conn.execute(
            f"UPDATE {log} SET warnings = %s WHERE service = %s AND source_month = %s "
            "AND status = 'loaded'",
            (json.dumps([WARNING]), service, month),
        )


def _cells(view: MonthsView, service: str, target: str) -> dict[str, tuple]:
    (found,) = [s for s in view.services if s.service == service]
    return {row.month: (row.cells[target].state, row.cells[target].rows) for row in found.months}


def test_the_postgres_log_becomes_a_month_grid(publish, postgres_url, pg_schema):
    base, put = publish
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    put("green", JAN, 500)
    put("green", MAR, 700)
    put("yellow", JAN, 300)
    month_to_postgres("green", Month(2021, 1), run_id="manual__jan", **load)
    month_to_postgres("green", Month(2021, 3), run_id="manual__mar", **load)
    month_to_postgres("yellow", Month(2021, 1), run_id="manual__y", **load)
    assert month_to_postgres("yellow", Month(2021, 1), **load)["status"] == "unchanged"
    _insert_failed(postgres_url, pg_schema, "green", APR, "manual__apr")
    _insert_failed(postgres_url, pg_schema, "green", MAR, "manual__mar2")

    view = collect({"postgres": PostgresLog(postgres_url, pg_schema)})

    assert view.targets == ["postgres"]
    assert view.problems == {}
    assert _cells(view, "green", "postgres") == {
        "2021-01": (LOADED, 500),
        "2021-02": (MISSING, None),
        "2021-03": (FAILED, 700),  # the failed reload keeps the 700 rows it did not replace
        "2021-04": (FAILED, None),
    }
    # yellow shares the axis: months no log knows are "not published", not "missing"
    assert _cells(view, "yellow", "postgres") == {
        "2021-01": (UNCHANGED, 300),
        "2021-02": (NOT_PUBLISHED, None),
        "2021-03": (NOT_PUBLISHED, None),
        "2021-04": (NOT_PUBLISHED, None),
    }
    green = view.services[[s.service for s in view.services].index("green")]
    jan, _, mar, apr = green.months
    assert (jan.cells["postgres"].run_id, jan.cells["postgres"].dag_id) == (
        "manual__jan",
        "taxi_to_postgres",
    )
    assert apr.cells["postgres"].run_id == "manual__apr"
    assert "line 7, column fare_amount" in mar.cells["postgres"].detail
    assert "700 rows) is kept" in mar.cells["postgres"].detail
    assert all(not c.warnings for row in green.months for c in row.cells.values())


def test_warnings_show_once_the_log_has_the_column(publish, postgres_url, pg_schema):
    base, put = publish
    put("green", FEB, 400)
    month_to_postgres(
        "green", Month(2021, 2), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    before = PostgresLog(postgres_url, pg_schema).records()
    assert before.loads[("green", Month(2021, 2))].warnings == ()

    _add_warnings(postgres_url, pg_schema, "green", FEB)
    view = collect({"postgres": PostgresLog(postgres_url, pg_schema)})

    (row,) = view.services[0].months
    (warning,) = row.cells["postgres"].warnings
    assert (warning.rule, warning.level, warning.message) == tuple(WARNING.values())
    html = render(view, base_url="http://airflow.example")
    assert "dropoff_before_pickup" in html
    assert "12 trips end first" in html
    assert view.as_json()["services"][0]["months"][0]["cells"]["postgres"]["warnings"] == [WARNING]


def test_the_lake_and_postgres_compared(publish, postgres_url, pg_schema, tmp_path: Path):
    """A month republished and rewritten in the lake shows Postgres stale; a month only
    Postgres has shows the lake missing it."""
    base, put = publish
    lake_url = (tmp_path / "lake").as_uri()
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    put("green", JAN, 500)
    put("green", FEB, 600)
    month_to_postgres("green", Month(2021, 1), run_id="pg_jan", **load)
    month_to_postgres("green", Month(2021, 2), run_id="pg_feb", **load)
    month_to_lake("green", Month(2021, 2), source_base=base, lake_url=lake_url, run_id="lake_feb")
    put("green", JAN, 550, seed=3)  # republished after Postgres loaded it
    month_to_lake("green", Month(2021, 1), source_base=base, lake_url=lake_url)

    view = collect(
        {"postgres": PostgresLog(postgres_url, pg_schema), "lake": LakeLog(open_lake(lake_url))}
    )

    assert view.targets == ["postgres", "lake"]
    assert _cells(view, "green", "postgres") == {"2021-01": (STALE, 500), "2021-02": (LOADED, 600)}
    assert _cells(view, "green", "lake") == {"2021-01": (LOADED, 550), "2021-02": (LOADED, 600)}
    (jan, feb) = view.services[0].months
    assert "newer source version" in jan.cells["postgres"].detail
    assert (feb.cells["lake"].dag_id, feb.cells["lake"].run_id) == ("taxi_to_lake", "lake_feb")


def test_gcs_lake_and_bigquery_log(publish, gcs_bucket, gcp_emulators):
    """Through fake-gcs-server and local-bigquery: the lake listed with its GCS metadata,
    BigQuery's log read; a month rewritten in the lake after BigQuery loaded it is stale."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.taxi.bigquery.ingestion_log import BigQueryLog
    from include.taxi.bigquery.load import month_to_bigquery

    base, put = publish
    lake_url = f"gs://{gcs_bucket}/lake"
    dataset = f"months_{uuid.uuid4().hex[:8]}"
    put("yellow", JAN, 300)
    put("yellow", MAR, 200)
    for month in ("2021-01", "2021-03"):
        month_to_lake(
            "yellow", Month.parse(month), source_base=base, lake_url=lake_url, run_id=f"l{month}"
        )
        month_to_bigquery(
            "yellow", Month.parse(month), lake_url=lake_url, dataset=dataset, run_id=f"b{month}"
        )
    put("yellow", MAR, 250, seed=5)
    month_to_lake("yellow", Month(2021, 3), source_base=base, lake_url=lake_url, run_id="l2")
    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    try:
        view = collect(
            {
                "lake": LakeLog(open_lake(lake_url)),
                "bigquery": BigQueryLog(client, hook.project_id, dataset),
            },
            timeout=10.0,  # as the page reads: bounded requests and job, no retries
        )
    finally:
        client.close()

    assert view.targets == ["lake", "bigquery"]
    assert view.problems == {}
    assert _cells(view, "yellow", "lake") == {
        "2021-01": (LOADED, 300),
        "2021-02": (MISSING, None),
        "2021-03": (LOADED, 250),
    }
    assert _cells(view, "yellow", "bigquery") == {
        "2021-01": (LOADED, 300),
        "2021-02": (MISSING, None),
        "2021-03": (STALE, 200),
    }
    jan = view.services[0].months[0]
    assert (jan.cells["bigquery"].dag_id, jan.cells["bigquery"].run_id) == (
        "lake_to_bigquery",
        "b2021-01",
    )
    assert jan.cells["lake"].run_id == "l2021-01"


def test_an_unreadable_target_is_a_problem_not_an_error(publish, postgres_url, pg_schema):
    base, put = publish
    put("fhv", JAN, 200)
    month_to_postgres(
        "fhv", Month(2021, 1), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    broken = postgres_url.rsplit("/", 1)[0] + "/no_such_database"

    assert (
        collect({"postgres": PostgresLog(broken, pg_schema)})
        .problems["postgres"]
        .startswith("OperationalError")
    )
    empty = collect({"postgres": PostgresLog(postgres_url, f"{pg_schema}_none")})
    assert empty.services == []
    assert "nothing was loaded" in empty.problems["postgres"]
    assert "No month is in any log yet" in render(empty, base_url="")
