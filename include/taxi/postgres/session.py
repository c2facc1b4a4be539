"""A Postgres session: SQL with bound parameters, and binary COPY of Arrow batches.

psycopg carries the session; ``binary_copy`` encodes the batches. Statements in include/sql/
bind values as ``$1, $2, ...`` (the server's own notation), never formatted into the SQL text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from include.taxi.postgres import binary_copy
from include.taxi.sql import statements

DDL_KEY = 0
"""Advisory-lock key for schema changes: concurrent CREATE TABLE IF NOT EXISTS can collide."""

CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "5",
}
"""libpq options a conninfo does not set itself: a warehouse that stops answering (a dropped
NAT entry, a failed-over host) is noticed in ~80 s instead of the kernel's two hours, and a
dead host fails the connect in 10 s."""
STATEMENT_TIMEOUT = "30min"
"""No statement of a load runs anywhere near this (a 4x yellow month's COPY: ~10 s); a stuck
one ends, and the task is retried, instead of holding its locks for hours."""
IDLE_IN_TRANSACTION_TIMEOUT = "10min"
"""The load's own transaction is never idle for long; if its client hangs, the server ends the
transaction and releases what it held."""

Error = psycopg.Error
ProgrammingError = psycopg.ProgrammingError
LockNotAvailable = psycopg.errors.LockNotAvailable

_DOLLAR = re.compile(r"\$(\d+)")


class Session:
    """One connection in manual-commit mode: nothing is kept unless ``commit()`` is called."""

    def __init__(self, conninfo: str, *, timeout: float | None = None) -> None:
        """``timeout`` (seconds), for a reader that must answer quickly (the Taxi months page):
        bounds the connect and every statement, lock waits included, instead of the load's
        defaults."""
        given = conninfo_to_dict(conninfo)
        options = {key: value for key, value in CONNECT_DEFAULTS.items() if key not in given}
        if timeout is not None:
            options["connect_timeout"] = str(max(2, math.ceil(timeout)))  # libpq's minimum: 2
        self._conn = psycopg.connect(make_conninfo(conninfo, **options), autocommit=False)
        self._cur = self._conn.cursor()
        self._rows: list[tuple] = []
        statement_timeout = f"{int(timeout * 1000)}ms" if timeout is not None else STATEMENT_TIMEOUT
        run(
            self,
            "postgres/session_settings.sql",
            statement_timeout=sql.Literal(statement_timeout),
            idle_timeout=sql.Literal(IDLE_IN_TRANSACTION_TIMEOUT),
        )
        self.commit()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run one statement; ``params`` bind to $1, $2, ... (never formatted into the SQL)."""
        if params:
            query = _DOLLAR.sub(r"%(p\1)s", statement.replace("%", "%%"))
            self._cur.execute(query, {f"p{i}": v for i, v in enumerate(params, start=1)})
        else:
            self._cur.execute(statement)
        self._rows = self._cur.fetchall() if self._cur.description else []

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def ingest(
        self,
        schema: str,
        table: str,
        columns: Sequence[str],
        batches: Iterable[pa.RecordBatch],
        *,
        freeze: bool = False,
    ) -> int:
        """Append the batches (``columns``, in order) to a table by binary COPY; returns rows
        written. An exception from ``batches`` ends the COPY and with it the transaction.

        ``freeze`` (only for a table created in this transaction) writes the rows frozen: the
        first query after the load does not rewrite every page to set hint bits (0.19 → 0.10 s
        for a yellow month) and autovacuum never has to freeze the month later."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary{})").format(
            sql.Identifier(schema, table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", FREEZE" if freeze else ""),
        )
        with self._cur.copy(statement) as copy:
            for data in binary_copy.copy_data(batches):
                copy.write(data)
        return self._cur.rowcount

    def autocommit(self) -> None:
        """Run each statement on its own from now on (VACUUM refuses a transaction block)."""
        self._conn.autocommit = True

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside rolls back to here, not the whole load."""
        with self._conn.transaction():
            yield

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


@contextmanager
def connect(conninfo: str, *, timeout: float | None = None) -> Iterator[Session]:
    session = Session(conninfo, timeout=timeout)
    try:
        yield session
    finally:
        session.close()


def run(session: Session, name: str, **parts: sql.Composable) -> None:
    for statement in statements(name, **parts):
        session.execute(statement)


def advisory_lock(session: Session, name: str, key: int) -> None:
    """Wait for, then hold until the transaction ends, the lock on (``name``, ``key``)."""
    run(session, "postgres/advisory_lock.sql", table_name=sql.Literal(name), key=sql.Literal(key))


def existing_columns(session: Session, schema: str, table: str) -> set[str]:
    """The columns ``schema.table`` has; empty if it does not exist."""
    (statement,) = statements("postgres/existing_columns.sql")
    session.execute(statement, (schema, table))
    return {name for (name,) in session.fetchall()}


def count(session: Session, table: sql.Composable) -> int:
    run(session, "postgres/count_rows.sql", table=table)
    return int(session.fetchone()[0])  # type: ignore[index]


def lock_holders(session: Session, schema: str, table: str) -> list[str]:
    """Who holds a lock on ``schema.table`` now: pid, state, since when, what it ran last."""
    (statement,) = statements("postgres/lock_holders.sql")
    session.execute(statement, (schema, table))
    return [
        f"pid {pid} ({state}, transaction open since "
        f"{since.isoformat(timespec='seconds') if since else '?'}, last query {query!r})"
        for pid, state, since, query in session.fetchall()
    ]
