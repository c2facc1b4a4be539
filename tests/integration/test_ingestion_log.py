"""The ingestion log and skipping unchanged sources, end to end over HTTP into Postgres."""

from __future__ import annotations

import os
from datetime import date

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi.errors import BadSourceFile
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres

MAR = date(2021, 3, 1)


@pytest.fixture
def publish(source_server):
    base, root = source_server

    def _publish(service: str, month: date, rows: int, **quirks) -> None:
        name = f"{service}_tripdata_{month:%Y-%m}.csv.gz"
        path = root / service / name
        write_month(path, service, month, rows, **quirks)
        stamp = path.stat().st_mtime + rows  # a republished file gets a new Last-Modified
        os.utime(path, (stamp, stamp))

    return base, _publish


def _log(url: str, schema: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT status, rows_read, rows_written, rows_in_target, source_bytes > 0, "
            f'source_sha256 IS NOT NULL, error FROM "{schema}".taxi_ingestion_log ORDER BY id'
        ).fetchall()


def _count(url: str, schema: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]


def test_loads_are_logged_and_unchanged_sources_skipped(publish, postgres_url, pg_schema):
    base, put = publish
    put("green", MAR, 900)
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    first = month_to_postgres("green", Month(2021, 3), **load)
    assert first["status"] == "loaded"
    second = month_to_postgres("green", Month(2021, 3), **load)
    assert second == {**second, "status": "unchanged", "rows_in_target": 900}
    forced = month_to_postgres("green", Month(2021, 3), force=True, **load)
    assert forced["status"] == "loaded"
    assert _log(postgres_url, pg_schema) == [
        ("loaded", 900, 900, 900, True, True, None),
        ("unchanged", None, None, 900, True, False, None),
        ("loaded", 900, 900, 900, True, True, None),
    ]
    assert _count(postgres_url, pg_schema, "green_tripdata") == 900


def test_a_republished_month_is_reloaded(publish, postgres_url, pg_schema):
    base, put = publish
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    put("fhv", MAR, 500)
    month_to_postgres("fhv", Month(2021, 3), **load)
    put("fhv", MAR, 650, seed=4)
    assert month_to_postgres("fhv", Month(2021, 3), **load)["status"] == "loaded"
    assert _count(postgres_url, pg_schema, "fhv_tripdata") == 650


def test_rows_that_no_longer_match_the_log_are_reloaded(publish, postgres_url, pg_schema):
    base, put = publish
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    put("yellow", MAR, 700)
    month_to_postgres("yellow", Month(2021, 3), **load)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f'DELETE FROM "{pg_schema}".yellow_tripdata WHERE vendorid = 1')
    assert month_to_postgres("yellow", Month(2021, 3), **load)["status"] == "loaded"
    assert _count(postgres_url, pg_schema, "yellow_tripdata") == 700


def test_a_failed_load_is_logged_and_changes_nothing(
    publish, postgres_url, pg_schema, source_server
):
    base, put = publish
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    put("green", MAR, 300)
    month_to_postgres("green", Month(2021, 3), **load)
    path = source_server[1] / "green" / "green_tripdata_2021-03.csv.gz"
    path.write_bytes(path.read_bytes()[:-40])
    stamp = path.stat().st_mtime + 1_000  # republished (damaged): a newer Last-Modified
    os.utime(path, (stamp, stamp))
    with pytest.raises(BadSourceFile, match="damaged"):
        month_to_postgres("green", Month(2021, 3), **load)
    statuses = [row[0] for row in _log(postgres_url, pg_schema)]
    assert statuses == ["loaded", "failed"]
    assert "BadSourceFile" in _log(postgres_url, pg_schema)[-1][-1]
    assert _count(postgres_url, pg_schema, "green_tripdata") == 300
