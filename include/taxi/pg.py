"""Small helpers for talking to Postgres over ADBC: connect, run SQL files, lock, count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import adbc_driver_postgresql.dbapi as adbc
from psycopg import sql

from include.taxi.sql_files import statements

DDL_KEY = 0
"""Advisory-lock key for schema changes: concurrent CREATE TABLE IF NOT EXISTS can collide."""


@contextmanager
def connect(conninfo: str) -> Iterator[tuple[adbc.Connection, adbc.Cursor]]:
    """A connection in manual-commit mode: nothing is kept unless ``conn.commit()`` is called."""
    with adbc.connect(conninfo) as conn, conn.cursor() as cur:
        yield conn, cur


def run(cur: adbc.Cursor, name: str, **parts: sql.Composable) -> None:
    for statement in statements(name, **parts):
        cur.execute(statement)


def advisory_lock(cur: adbc.Cursor, name: str, key: int) -> None:
    """Wait for, then hold until the transaction ends, the lock on (``name``, ``key``)."""
    run(cur, "postgres/advisory_lock.sql", table_name=sql.Literal(name), key=sql.Literal(key))


def count(cur: adbc.Cursor, table: sql.Composable) -> int:
    run(cur, "postgres/count_rows.sql", table=table)
    return int(cur.fetchone()[0])
