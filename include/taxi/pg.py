"""A Postgres session over ADBC's low-level API: SQL, bound parameters, binary COPY of Arrow.

Not ADBC's DB-API module: that one imports ``pyarrow.dataset`` and with it pandas, which
costs a task about 60 MB of memory and a second of start-up for nothing it uses here. For the
same reason parameters and result rows are converted here, not by ``pa.array([value])`` or
``to_pylist()`` of a time-zone-aware timestamp: both import pandas (pyarrow checks whether a
Python value is a pandas object), ~35 MB of a load's peak memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import adbc_driver_manager as adbc
import adbc_driver_postgresql
import pyarrow as pa
from psycopg import sql

from include.taxi.sql_files import statements

DDL_KEY = 0
"""Advisory-lock key for schema changes: concurrent CREATE TABLE IF NOT EXISTS can collide."""

ProgrammingError = adbc.ProgrammingError

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _fixed(type_: pa.DataType, fmt: str, value: Any) -> pa.Array:
    return pa.Array.from_buffers(type_, 1, [None, pa.py_buffer(struct.pack(fmt, value))])


def param_array(value: Any) -> pa.Array:
    """One bound parameter as a one-row Arrow array, typed as ``pa.array([value])`` would be."""
    if value is None:
        return pa.nulls(1)
    if isinstance(value, bool):
        return pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(bytes([value]))])
    if isinstance(value, int):
        return _fixed(pa.int64(), "<q", value)
    if isinstance(value, float):
        return _fixed(pa.float64(), "<d", value)
    if isinstance(value, str):
        data = value.encode()
        offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
        return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return _fixed(pa.timestamp("us"), "<q", (value - _EPOCH) // _MICROSECOND)
        utc = value.astimezone(UTC).replace(tzinfo=None)
        return _fixed(pa.timestamp("us", tz="UTC"), "<q", (utc - _EPOCH) // _MICROSECOND)
    if isinstance(value, date):
        return _fixed(pa.date32(), "<i", (value - _EPOCH_DATE).days)
    raise TypeError(f"cannot bind a {type(value).__name__} parameter")


def _python_rows(table: pa.Table) -> list[tuple]:
    """The rows as tuples; time-zone-aware timestamps come back as UTC datetimes."""
    columns = []
    for column in table.itercolumns():
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            naive = column.cast(pa.timestamp(column.type.unit)).to_pylist()
            columns.append([v if v is None else v.replace(tzinfo=UTC) for v in naive])
        else:
            columns.append(column.to_pylist())
    return list(zip(*columns, strict=True))


class Session:
    """One connection in manual-commit mode: nothing is kept unless ``commit()`` is called."""

    def __init__(self, conninfo: str) -> None:
        self._db = adbc_driver_postgresql.connect(conninfo)
        self._conn = adbc.AdbcConnection(self._db)
        self._conn.set_autocommit(False)
        self._rows: list[tuple] = []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run one statement; ``params`` bind to $1, $2, ... (never formatted into the SQL)."""
        with adbc.AdbcStatement(self._conn) as stmt:
            stmt.set_sql_query(statement)
            if params:
                arrays = [param_array(p) for p in params]
                stmt.bind(pa.record_batch(arrays, names=[f"p{i}" for i in range(len(arrays))]))
            handle, _ = stmt.execute_query()
            table = pa.RecordBatchReader._import_from_c(handle.address).read_all()
        self._rows = _python_rows(table)

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def ingest(self, schema: str, table: str, batches: pa.RecordBatchReader) -> int:
        """Append the batches to an existing table by binary COPY; returns rows written."""
        with adbc.AdbcStatement(self._conn) as stmt:
            stmt.set_options(
                **{
                    adbc.INGEST_OPTION_TARGET_TABLE: table,
                    adbc.INGEST_OPTION_MODE: adbc.INGEST_OPTION_MODE_APPEND,
                    adbc.StatementOptions.INGEST_TARGET_DB_SCHEMA.value: schema,
                }
            )
            stmt.bind_stream(batches)
            return int(stmt.execute_update())

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()
        self._db.close()


@contextmanager
def connect(conninfo: str) -> Iterator[Session]:
    session = Session(conninfo)
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
