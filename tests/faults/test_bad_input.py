"""Bad input and an unavailable warehouse: the message a user sees and the rows left behind.

Every case first loads a good month, then serves a bad version of the same file and checks
that the load fails (or is skipped) with a message naming the problem, that Airflow gets the
right outcome (fail without retries, skip, or retry), and that the month is exactly as before.
"""

from __future__ import annotations

import gzip
import secrets
from datetime import date
from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from dev import local_postgres
from dev.synthetic import HEADERS, write_month
from include.taxi.months import Month
from include.taxi.orchestration import config
from include.taxi.orchestration.tasks import outcome
from include.taxi.postgres.load import month_to_postgres

MAY = date(2021, 5, 1)
GOOD_ROWS = 400
FILE = "green_tripdata_2021-05.csv.gz"
GOOD_ROW = (
    "2,2021-05-01 10:00:00,2021-05-01 10:20:00,N,1,74,75,1,2.5,10,0.5,0.5,0,0,,0.3,11.3,2,1,0"
)


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode())


def _rows(*lines: str) -> bytes:
    return _gz("\n".join([HEADERS["green"], *lines]) + "\n")


BAD_FILES = {
    "html page": (
        b"<!DOCTYPE html><html><body>Not Found</body></html>",
        ["not a gzip file", "taxi_source_url"],
    ),
    "truncated gzip": (None, ["damaged", "truncated"]),
    "empty file": (b"", ["empty"]),
    "missing column": (
        _gz(HEADERS["green"].replace("lpep_dropoff_datetime,", "") + "\n1,2,3\n"),
        ["lpep_dropoff_datetime", "missing"],
    ),
    "unknown column": (
        _gz(HEADERS["green"] + ",surprise\n" + GOOD_ROW + ",1\n"),
        ["unknown column", "surprise", "contract.py"],
    ),
    "unparseable value": (
        _rows(GOOD_ROW, GOOD_ROW, GOOD_ROW.replace(",2.5,", ",two,")),
        ["line 4", "column trip_distance", "'two'"],
    ),
    "header only": (_gz(HEADERS["green"] + "\n"), ["no data rows"]),
    # issue 13: malformed CSV fails at once (no retries), located, in bounded memory
    "unterminated quote": (
        _rows(GOOD_ROW, GOOD_ROW.replace(",N,", ',"N,'), GOOD_ROW),
        ["line 3", "column store_and_fwd_flag", "unterminated quote"],
    ),
    "nul byte in text": (
        _rows(GOOD_ROW, GOOD_ROW, GOOD_ROW.replace(",N,", ",N\x00,")),
        ["line 4", "column store_and_fwd_flag", "NUL"],
    ),
    "line without newline": (
        _gz(HEADERS["green"] + "\n" + GOOD_ROW + "\n" + "7" * (8 << 20)),
        ["line 3", "column vendorid", "longer than"],
    ),
}


@pytest.fixture
def loaded_month(source_server, postgres_url, pg_schema):
    base, root = source_server
    path = root / "green" / FILE
    write_month(path, "green", MAY, GOOD_ROWS)
    month_to_postgres(
        "green", Month(2021, 5), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    return base, path


def _count(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}".green_tripdata').fetchone()[0]


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_fails_clearly_and_keeps_the_month(
    case, loaded_month, postgres_url, pg_schema
) -> None:
    base, path = loaded_month
    content, expected = BAD_FILES[case]
    if content is None:
        good = path.read_bytes()
        content = good[: len(good) * 2 // 3]
    path.write_bytes(content)
    with pytest.raises(AirflowFailException) as failure:
        outcome(
            lambda: month_to_postgres(
                "green", Month(2021, 5), source_base=base, conninfo=postgres_url, schema=pg_schema
            )
        )()
    message = str(failure.value)
    assert FILE in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_year_3019_is_loaded_not_rejected(source_server, postgres_url, pg_schema) -> None:
    base, root = source_server
    write_month(root / "fhv" / "fhv_tripdata_2021-05.csv.gz", "fhv", MAY, 300, year_3019=True)
    month_to_postgres(
        "fhv", Month(2021, 5), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    with psycopg.connect(postgres_url) as conn:
        latest = conn.execute(
            f'SELECT max(dropoff_datetime) FROM "{pg_schema}".fhv_tripdata'
        ).fetchone()[0]
    assert latest.year == 3019


def test_unpublished_month_is_skipped_and_writes_nothing(
    source_server, postgres_url, pg_schema
) -> None:
    base, _ = source_server
    with pytest.raises(AirflowSkipException, match="not published"):
        outcome(
            lambda: month_to_postgres(
                "yellow", Month(2030, 1), source_base=base, conninfo=postgres_url, schema=pg_schema
            )
        )()
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (pg_schema,)
        ).fetchone()[0]
    assert tables == 0


@pytest.mark.parametrize("schema", ['public"; DROP TABLE x; --', "../../etc", "Public"])
def test_hostile_schema_variable_is_rejected_before_io(schema, source_server) -> None:
    with pytest.raises(AirflowFailException, match="not a plain lower-case identifier"):
        outcome(
            lambda: month_to_postgres(
                "yellow",
                Month(2021, 1),
                source_base=source_server[0],
                conninfo="postgresql://nobody@127.0.0.1:1/none",
                schema=schema,
            )
        )()


def test_warehouse_down_then_back_is_retried_then_loaded_once(
    source_server, tmp_path: Path
) -> None:
    """The first attempt fails with a retryable error (not AirflowFail), the retry loads once."""
    base, root = source_server
    write_month(root / "green" / FILE, "green", MAY, GOOD_ROWS)
    data, port = tmp_path / "pg", local_postgres.free_port()
    password = secrets.token_urlsafe(16)
    url = local_postgres.start(data, port, password=password, durable=False)
    local_postgres.stop(data)

    def load() -> dict:
        return outcome(
            lambda: month_to_postgres(
                "green", Month(2021, 5), source_base=base, conninfo=url, schema="public"
            )
        )()

    with pytest.raises(Exception) as down:  # noqa: PT011 - any retryable error will do
        load()
    assert not isinstance(down.value, AirflowFailException | AirflowSkipException)
    local_postgres.start(data, port, password=password, durable=False)
    try:
        assert load()["status"] == "loaded"
        assert load()["status"] == "unchanged"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM green_tripdata").fetchone()[0] == GOOD_ROWS
    finally:
        local_postgres.stop(data)


# --- bounded downloads and decompression, through the task's outcome (issue 13, must-fix 4)


def _load(base: str, url: str, schema: str) -> dict:
    """The Postgres task's call, with the limits read from the Variables as the task does;
    forced, so the unchanged source (same HEAD answer) is downloaded again."""
    limits = config.download_limits()
    return outcome(
        lambda: month_to_postgres(
            "green",
            Month(2021, 5),
            source_base=base,
            conninfo=url,
            schema=schema,
            force=True,
            limits=limits,
        )
    )()


def test_gzip_bomb_fails_without_retry_and_keeps_the_month(
    loaded_month, postgres_url, pg_schema, monkeypatch
) -> None:
    """~40 MB of rows in a small gzip against a 4 MiB limit set by its Variable."""
    base, path = loaded_month
    with gzip.open(path, "wb") as f:
        f.write((HEADERS["green"] + "\n").encode())
        block = (GOOD_ROW + "\n").encode() * 10_000
        for _ in range(40):
            f.write(block)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MAX_CSV_BYTES", str(4 << 20))
    with pytest.raises(
        AirflowFailException, match=rf"{FILE}: it decompresses to more than 4,194,304"
    ):
        _load(base, postgres_url, pg_schema)
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_oversized_download_fails_without_retry_and_keeps_the_month(
    loaded_month, postgres_url, pg_schema, monkeypatch
) -> None:
    base, _ = loaded_month
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MAX_DOWNLOAD_BYTES", "1000")
    with pytest.raises(
        AirflowFailException, match=r"more than 1,000 bytes.*taxi_max_download_bytes"
    ):
        _load(base, postgres_url, pg_schema)
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_bad_limit_variable_fails_naming_it(
    loaded_month, postgres_url, pg_schema, monkeypatch
) -> None:
    base, _ = loaded_month
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_DOWNLOAD_DEADLINE_SECONDS", "soon")
    with pytest.raises(AirflowFailException, match="taxi_download_deadline_seconds is 'soon'"):
        _load(base, postgres_url, pg_schema)
