"""The numpy binary-COPY encoder against a real PostgreSQL: every value comes back as sent."""

from __future__ import annotations

from datetime import date, datetime

import psycopg
import pyarrow as pa
import pytest

from include.taxi.postgres import binary_copy
from include.taxi.postgres import session as pg_session

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("n", pa.int64()),
        ("x", pa.float64()),
        ("t", pa.timestamp("us")),
        ("d", pa.date32()),
        ("s", pa.string()),
    ]
)
PG_TYPES = {
    "id": "bigint",
    "n": "bigint",
    "x": "double precision",
    "t": "timestamp",
    "d": "date",
    "s": "text",
}
ROWS = [
    (0, 1, 0.2, datetime(2021, 1, 1, 0, 0, 1), date(2021, 1, 1), "N"),
    (1, None, None, None, None, None),
    (2, -(2**62), -1.5e300, datetime(1969, 12, 31, 23, 59, 59, 999999), date(1999, 12, 31), ""),
    (3, 2**62, float("inf"), datetime(3019, 2, 28, 7, 0), date(2000, 1, 1), "Y"),
    (4, 7, 1.25, datetime(2000, 1, 1), date(1970, 1, 1), "é – ü"),
    (5, None, 3.0, datetime(2021, 1, 31, 23, 59, 59), None, "B02510"),
    (6, 0, None, None, date(2021, 2, 1), "x" * 5000),  # longer than the packed key holds
]


def _batch(rows: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.record_batch(
        [pa.array(col, type=f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def _load(url: str, schema: str, batches: list[pa.RecordBatch]) -> tuple[int, list[tuple]]:
    table = "copy_round_trip"
    columns = ", ".join(f"{name} {type_}" for name, type_ in PG_TYPES.items())
    with pg_session.connect(url) as session:
        session.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        session.execute(f'DROP TABLE IF EXISTS "{schema}".{table}')
        session.execute(f'CREATE TABLE "{schema}".{table} ({columns})')
        written = session.ingest(schema, table, SCHEMA.names, batches)
        session.commit()
    with psycopg.connect(url) as conn:
        rows = conn.execute(f'SELECT * FROM "{schema}".{table} ORDER BY id').fetchall()
    return written, rows


def test_every_type_null_and_text_length_round_trips(postgres_url, pg_schema) -> None:
    written, rows = _load(postgres_url, pg_schema, [_batch(ROWS)])
    assert written == len(ROWS)
    assert rows == ROWS


def test_sliced_and_empty_batches(postgres_url, pg_schema) -> None:
    """Arrow slices share their parent's buffers at an offset; the encoder must honour it."""
    whole = _batch(ROWS)
    batches = [whole.slice(0, 0), whole.slice(1, 3), whole.slice(4), whole.slice(0, 1)]
    written, rows = _load(postgres_url, pg_schema, batches)
    assert written == len(ROWS)
    assert rows == ROWS


def test_many_rows_with_mixed_layouts(postgres_url, pg_schema) -> None:
    rows = [
        (
            i,
            i if i % 3 else None,
            i / 4 if i % 5 else None,
            datetime(2021, 1, 1 + i % 28),
            date(2021, 1, 1),
            None if i % 7 == 0 else "x" * (i % 4),
        )
        for i in range(10_000)
    ]
    written, back = _load(postgres_url, pg_schema, [_batch(rows[:6000]), _batch(rows[6000:])])
    assert written == 10_000
    assert back == rows


def test_an_unsupported_type_is_refused() -> None:
    batch = pa.record_batch([pa.array([1], pa.int32())], names=["a"])
    with pytest.raises(TypeError, match="int32"):
        list(binary_copy.encode(batch))


def test_columns_absent_from_the_source_are_all_null(postgres_url, pg_schema) -> None:
    """The reader fills a column the month's file lacks (e.g. airport_fee before 2021) with
    ``pa.nulls``; every such column must arrive as NULL."""
    n = 5
    batch = pa.record_batch(
        [pa.array(range(n), pa.int64()), *(pa.nulls(n, f.type) for f in list(SCHEMA)[1:])],
        schema=SCHEMA,
    )
    written, rows = _load(postgres_url, pg_schema, [batch])
    assert written == n
    assert rows == [(i, None, None, None, None, None) for i in range(n)]
