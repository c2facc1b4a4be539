"""A run that downloaded an older version of a month must not replace a newer one (Postgres
and the lake): one committed meanwhile, or one of the same file (a stale copy).

Two real HTTP sources serve the same month: a slow one with version A (Last-Modified a day
earlier: a lagging mirror or CDN edge) and a fast one with version B. Run A starts first and
is still downloading when run B commits; A then ends without replacing B and says why. On main
A's swap replaced B. A source switched on purpose (another URL, before the run began) still
replaces the month whatever its date.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi.lake.load import month_to_lake
from include.taxi.lake.store import object_name, open_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres
from tests.helpers.scripted_http import TricklingFileServer

MONTH = date(2021, 3, 1)
FILE = "yellow/yellow_tripdata_2021-03.csv.gz"
ROWS_A, ROWS_B = 3_000, 5_000
DAY = 86_400


@pytest.fixture
def sources(tmp_path: Path):
    """(slow server with version A, fast server with version B), A one day older than B."""
    folders = {name: tmp_path / name for name in ("a", "b")}
    for name, rows in (("a", ROWS_A), ("b", ROWS_B)):
        path = folders[name] / FILE
        path.parent.mkdir(parents=True)
        write_month(path, "yellow", MONTH, rows, seed=len(name) + rows)
    now = time.time()
    os.utime(folders["a"] / FILE, (now - DAY, now - DAY))
    os.utime(folders["b"] / FILE, (now, now))
    with TricklingFileServer(folders["a"]) as slow, TricklingFileServer(folders["b"]) as fast:
        slow.slow[f"/{FILE}"] = 3.0
        yield slow, fast


def _in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = work()
        except BaseException as exc:  # reported by the test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _wait_until_downloading(server: TricklingFileServer) -> None:
    deadline = time.monotonic() + 30
    while not server.started(f"/{FILE}"):
        assert time.monotonic() < deadline, "run A never started its download"
        time.sleep(0.05)


def test_postgres_keeps_the_newer_version_committed_meanwhile(
    sources, postgres_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    slow, fast = sources

    def load(base: str) -> dict[str, Any]:
        return month_to_postgres(
            "yellow", Month(2021, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
        )

    with caplog.at_level(logging.WARNING):
        thread, a = _in_thread(lambda: load(slow.url))
        _wait_until_downloading(slow)
        b = load(fast.url)
        thread.join(timeout=120)
    assert "error" not in a, a
    assert b["status"] == "loaded"
    assert a["result"]["status"] == "superseded", a
    with psycopg.connect(postgres_url) as conn:
        (rows,) = conn.execute(f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata').fetchone()
        log = conn.execute(
            f'SELECT status, rows_in_target FROM "{pg_schema}".taxi_ingestion_log ORDER BY id'
        ).fetchall()
    assert rows == ROWS_B
    assert log == [("loaded", ROWS_B)]
    assert "it holds a newer version of the source" in caplog.text


def test_postgres_takes_a_newer_version_over_an_older_one(sources, postgres_url, pg_schema):
    """The check keeps the newer, whichever run comes second: B after A replaces A."""
    slow, fast = sources
    slow.slow.clear()
    for base in (slow.url, fast.url):
        result = month_to_postgres(
            "yellow", Month(2021, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
        )
        assert result["status"] == "loaded"
    with psycopg.connect(postgres_url) as conn:
        (rows,) = conn.execute(f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata').fetchone()
    assert rows == ROWS_B


def test_the_lake_keeps_the_newer_version_written_meanwhile(
    sources, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slow, fast = sources
    lake_url = (tmp_path / "lake").as_uri()

    def write(base: str) -> dict[str, Any]:
        return month_to_lake("yellow", Month(2021, 3), source_base=base, lake_url=lake_url)

    with caplog.at_level(logging.WARNING):
        thread, a = _in_thread(lambda: write(slow.url))
        _wait_until_downloading(slow)
        b = write(fast.url)
        thread.join(timeout=120)
    assert "error" not in a, a
    assert b["status"] == "written"
    assert a["result"]["status"] == "superseded", a
    stored = open_lake(lake_url).stat(object_name("yellow", Month.of(MONTH)))
    assert stored is not None
    assert stored.metadata["taxi.rows"] == str(ROWS_B)
    assert "holds a newer version of the source" in caplog.text


def _serve_a_stale_copy(fast: TricklingFileServer, slow: TricklingFileServer) -> None:
    """The fast server's file (B, already loaded) becomes A's older bytes and date: the same
    URL now serves a stale copy."""
    a, b = slow.root / FILE, fast.root / FILE
    b.write_bytes(a.read_bytes())
    stamp = a.stat().st_mtime
    os.utime(b, (stamp, stamp))


def test_postgres_keeps_the_newer_version_of_the_same_file(sources, postgres_url, pg_schema):
    """B loaded, then the same URL serves the older A (a lagging CDN edge): B stays."""
    slow, fast = sources
    first = month_to_postgres(
        "yellow", Month(2021, 3), source_base=fast.url, conninfo=postgres_url, schema=pg_schema
    )
    assert first["status"] == "loaded"
    _serve_a_stale_copy(fast, slow)
    again = month_to_postgres(
        "yellow", Month(2021, 3), source_base=fast.url, conninfo=postgres_url, schema=pg_schema
    )
    assert again["status"] == "superseded"
    with psycopg.connect(postgres_url) as conn:
        (rows,) = conn.execute(f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata').fetchone()
    assert rows == ROWS_B
    forced = month_to_postgres(
        "yellow",
        Month(2021, 3),
        source_base=fast.url,
        conninfo=postgres_url,
        schema=pg_schema,
        force=True,
    )
    assert (forced["status"], forced["rows_in_target"]) == ("loaded", ROWS_A)


def test_postgres_takes_another_source_whatever_its_date(sources, postgres_url, pg_schema):
    """The source switched on purpose (another URL) before the run: its older file loads."""
    slow, fast = sources
    slow.slow.clear()
    for base, rows in ((fast.url, ROWS_B), (slow.url, ROWS_A)):
        result = month_to_postgres(
            "yellow", Month(2021, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
        )
        assert result["status"] == "loaded"
        assert result["rows_in_target"] == rows


def test_the_lake_keeps_the_newer_version_of_the_same_file(sources, tmp_path: Path) -> None:
    slow, fast = sources
    lake_url = (tmp_path / "lake").as_uri()
    first = month_to_lake("yellow", Month(2021, 3), source_base=fast.url, lake_url=lake_url)
    assert first["status"] == "written"
    _serve_a_stale_copy(fast, slow)
    again = month_to_lake("yellow", Month(2021, 3), source_base=fast.url, lake_url=lake_url)
    assert again["status"] == "superseded"
    stored = open_lake(lake_url).stat(object_name("yellow", Month.of(MONTH)))
    assert stored is not None
    assert stored.metadata["taxi.rows"] == str(ROWS_B)
    forced = month_to_lake(
        "yellow", Month(2021, 3), source_base=fast.url, lake_url=lake_url, force=True
    )
    assert (forced["status"], forced["rows"]) == ("written", ROWS_A)
