"""Real processes against real Postgres: a load killed mid-COPY, and two loads of one month."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import psycopg
import pytest

from dev.airflow_env import PROJECT
from dev.synthetic import write_month

LOAD = """
import json, sys
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres
base, url, schema, service, month = sys.argv[1:6]
result = month_to_postgres(
    service, Month.parse(month), source_base=base, conninfo=url, schema=schema
)
print(json.dumps(result, default=str))
"""


def _start_load(base: str, url: str, schema: str, service: str, month: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", LOAD, base, url, schema, service, month],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count(url: str, schema: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]


def _wait_for_copy(url: str, schema: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            copying = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND query LIKE %s",
                ("COPY %", f"%{schema}%_load%FROM STDIN%"),
            ).fetchone()[0]
            if copying:
                return
            time.sleep(0.02)
    raise AssertionError("the load never reached its COPY")


@pytest.fixture
def big_month(source_server):
    """Two versions of yellow 2021-04: the loaded one, and a larger one being loaded."""
    base, root = source_server
    path = root / "yellow" / "yellow_tripdata_2021-04.csv.gz"
    write_month(path, "yellow", date(2021, 4, 1), 50_000)
    return base, path


def test_killed_load_leaves_the_month_intact_and_a_rerun_is_exact(
    big_month, postgres_url, pg_schema
) -> None:
    base, path = big_month
    first = _start_load(base, postgres_url, pg_schema, "yellow", "2021-04")
    assert first.wait(120) == 0, first.stderr
    write_month(path, "yellow", date(2021, 4, 1), 400_000, seed=5)

    seen: set[int] = set()
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            seen.add(_count(postgres_url, pg_schema, "yellow_tripdata"))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        doomed = _start_load(base, postgres_url, pg_schema, "yellow", "2021-04")
        _wait_for_copy(postgres_url, pg_schema)
        os.kill(doomed.pid, signal.SIGKILL)
        assert doomed.wait(30) == -signal.SIGKILL
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join()
    assert seen == {50_000}, "a reader saw a partial month"
    assert _count(postgres_url, pg_schema, "yellow_tripdata") == 50_000

    rerun = _start_load(base, postgres_url, pg_schema, "yellow", "2021-04")
    out, err = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, err
    assert json.loads(out)["status"] == "loaded"
    assert _count(postgres_url, pg_schema, "yellow_tripdata") == 400_000
    with psycopg.connect(postgres_url) as conn:
        leftovers = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (pg_schema, "%\\_load"),
        ).fetchall()
    assert leftovers == []


def test_two_concurrent_loads_of_a_month_load_it_once(big_month, postgres_url, pg_schema) -> None:
    base, path = big_month
    write_month(path, "yellow", date(2021, 4, 1), 200_000, seed=6)
    runs = [_start_load(base, postgres_url, pg_schema, "yellow", "2021-04") for _ in range(2)]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        results.append(json.loads(out)["status"])
    assert sorted(results) == ["loaded", "unchanged"]
    assert _count(postgres_url, pg_schema, "yellow_tripdata") == 200_000
    with psycopg.connect(postgres_url) as conn:
        statuses = conn.execute(
            f'SELECT status FROM "{pg_schema}".taxi_ingestion_log ORDER BY id'
        ).fetchall()
    assert [s for (s,) in statuses].count("loaded") == 1


def test_two_months_of_one_service_load_at_once(source_server, postgres_url, pg_schema) -> None:
    """Both replace a partition of one parent table: they must queue, not deadlock."""
    base, root = source_server
    rows = {"2021-06": 150_000, "2021-07": 120_000}
    for seed in (0, 1):  # a first load of each month, then both reloaded at once
        for month, n in rows.items():
            path = root / "green" / f"green_tripdata_{month}.csv.gz"
            write_month(path, "green", date.fromisoformat(f"{month}-01"), n - seed, seed=seed)
        if seed == 0:
            for month in rows:
                assert _start_load(base, postgres_url, pg_schema, "green", month).wait(300) == 0
    rows = {month: n - 1 for month, n in rows.items()}
    runs = [_start_load(base, postgres_url, pg_schema, "green", m) for m in rows]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    with psycopg.connect(postgres_url) as conn:
        counts = dict(
            conn.execute(
                f"SELECT to_char(source_month, 'YYYY-MM'), count(*) "
                f'FROM "{pg_schema}".green_tripdata GROUP BY 1'
            ).fetchall()
        )
    assert counts == rows
