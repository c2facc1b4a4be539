"""A month's partition swap must never stall the readers of its table.

Dropping and attaching a partition needs an ACCESS EXCLUSIVE lock on the parent table, and a
request for it queues every later query of *any* month behind it. One session left idle in a
transaction that read the table (a pgAdmin tab) holds that request back for as long as it
stays open. The swap asks for the lock with a short ``lock_timeout`` and retries: readers of
other months wait at most that long, and the reload either finishes once the blocker ends or
fails with a retryable error that names the lock wait. Real PostgreSQL, real sessions.
"""

from __future__ import annotations

import threading
import time
from datetime import date

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi import settings
from include.taxi.errors import LockWaitTimeout
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres

JANUARY, FEBRUARY = date(2021, 1, 1), date(2021, 2, 1)


def _count(url: str, schema: str, month: date) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f'SELECT count(*) FROM "{schema}".yellow_tripdata WHERE source_month = %s', (month,)
        ).fetchone()[0]


@pytest.fixture
def two_months(source_server, postgres_url, pg_schema):
    """yellow 2021-01 and 2021-02 loaded; 2021-01 then republished with 3,000 rows."""
    base, root = source_server
    for month in (JANUARY, FEBRUARY):
        path = root / "yellow" / f"yellow_tripdata_{month:%Y-%m}.csv.gz"
        write_month(path, "yellow", month, 2_000, seed=1)
        month_to_postgres(
            "yellow",
            Month.parse(f"{month:%Y-%m}"),
            source_base=base,
            conninfo=postgres_url,
            schema=pg_schema,
        )
    write_month(
        root / "yellow" / "yellow_tripdata_2021-01.csv.gz", "yellow", JANUARY, 3_000, seed=2
    )
    return base


def _start_reload(base: str, url: str, schema: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def reload() -> None:
        try:
            outcome.append(
                month_to_postgres(
                    "yellow", Month(2021, 1), source_base=base, conninfo=url, schema=schema
                )
            )
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reload)
    thread.start()
    return thread, outcome


def _wait_for_the_swap(url: str, schema: str, timeout: float = 120) -> None:
    """Until the reload asks for the table's lock (LOCK TABLE now; DROP TABLE before the fix)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            asking = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s "
                "AND (query LIKE 'LOCK TABLE%%' OR query LIKE 'DROP TABLE%%')",
                (f"%{schema}%",),
            ).fetchone()[0]
            if asking:
                return
            time.sleep(0.05)
    raise AssertionError("the reload never reached its partition swap")


def _read_other_month_for(url: str, schema: str, seconds: float) -> tuple[int, list[str]]:
    """Query February with a 2 s statement timeout for ``seconds``: (queries, failures)."""
    done, failures = 0, []
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '2s'")
        while time.monotonic() < deadline:
            try:
                conn.execute(
                    f'SELECT count(*) FROM "{schema}".yellow_tripdata WHERE source_month = %s',
                    (FEBRUARY,),
                ).fetchone()
                done += 1
            except psycopg.errors.QueryCanceled as exc:
                failures.append(str(exc))
            time.sleep(0.1)
    return done, failures


def test_an_idle_reader_transaction_does_not_stall_other_readers_during_a_reload(
    two_months, postgres_url, pg_schema
):
    blocker = psycopg.connect(postgres_url)  # BEGIN; SELECT ...; and then left idle
    try:
        blocker.execute(
            f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata WHERE source_month = %s',
            (JANUARY,),
        ).fetchone()
        reload, outcome = _start_reload(two_months, postgres_url, pg_schema)
        _wait_for_the_swap(postgres_url, pg_schema)
        done, failures = _read_other_month_for(postgres_url, pg_schema, 6.0)
        assert failures == [], f"{len(failures)} of {done + len(failures)} reads timed out"
        assert done > 5
        assert reload.is_alive(), "the swap cannot happen while the blocker holds its lock"
        assert _count(postgres_url, pg_schema, JANUARY) == 2_000
    finally:
        blocker.rollback()
        blocker.close()
    reload.join(timeout=60)
    assert not reload.is_alive()
    (result,) = outcome
    assert isinstance(result, dict), result
    assert result["status"] == "loaded", result
    assert _count(postgres_url, pg_schema, JANUARY) == 3_000
    assert _count(postgres_url, pg_schema, FEBRUARY) == 2_000


def test_a_reload_that_cannot_get_the_lock_fails_clearly_and_leaves_the_month(
    two_months, postgres_url, pg_schema, monkeypatch
):
    monkeypatch.setattr(settings, "POSTGRES_SWAP_WAIT_SECONDS", 3.0)
    blocker = psycopg.connect(postgres_url)
    try:
        blocker.execute(f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata').fetchone()
        started = time.monotonic()
        reload, outcome = _start_reload(two_months, postgres_url, pg_schema)
        reload.join(timeout=30)
        assert not reload.is_alive()
        assert time.monotonic() - started < 15
    finally:
        blocker.rollback()
        blocker.close()
    (error,) = outcome
    assert isinstance(error, LockWaitTimeout), error
    message = str(error)
    assert f"{pg_schema}.yellow_tripdata" in message
    assert "lock" in message
    assert "pid" in message
    assert "retry" in message
    assert _count(postgres_url, pg_schema, JANUARY) == 2_000
    with psycopg.connect(postgres_url) as conn:
        (status, logged), *_ = conn.execute(
            f'SELECT status, error FROM "{pg_schema}".taxi_ingestion_log ORDER BY id DESC'
        ).fetchall()
        stages = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (pg_schema, "%\\_load"),
        ).fetchone()[0]
    assert status == "failed"
    assert "LockWaitTimeout" in logged
    assert stages == 0
