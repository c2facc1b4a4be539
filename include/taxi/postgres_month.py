"""Replace one month of one service in Postgres, atomically, at COPY speed.

Each trip table is LIST-partitioned by ``source_month``. A load writes the month into a fresh
stage table with ADBC's binary COPY (Arrow batches in, no text round trip), then drops the old
partition and attaches the stage in its place, all in one transaction:

* a failed or killed load rolls back and leaves the previous month exactly as it was;
* readers see the old month until COMMIT and the new one after, never a mix or a gap;
* a rerun replaces rather than appends, so nothing is ever doubled;
* a transaction-scoped advisory lock per (table, month) serialises concurrent loads of a month.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
from psycopg import sql

from include.taxi.contract import SOURCE_MONTH, Contract
from include.taxi.csv_reader import ContractReader
from include.taxi.months import partition_suffix
from include.taxi.sql_files import statements

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

PG_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.string(): "text",
    pa.timestamp("us"): "timestamp",
    pa.date32(): "date",
}


class LoadMismatch(Exception):
    """Rows read, written and present after the load disagree; the load was rolled back."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows_read: int
    rows_written: int
    rows_in_target: int
    seconds: float


def check_schema_name(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"Postgres schema {name!r} is not a plain lower-case identifier "
            "(letters, digits, underscores)"
        )
    return name


def table_name(contract: Contract) -> str:
    return "taxi_zone_lookup" if not contract.monthly else f"{contract.name}_tripdata"


def _column_defs(contract: Contract) -> sql.Composable:
    defs = []
    for field in contract.arrow_schema:
        not_null = " NOT NULL" if field.name == SOURCE_MONTH else ""
        defs.append(
            sql.SQL("{} {}{}").format(
                sql.Identifier(field.name), sql.SQL(PG_TYPES[field.type]), sql.SQL(not_null)
            )
        )
    return sql.SQL(",\n    ").join(defs)


@contextmanager
def _connect(conninfo: str) -> Iterator[tuple[adbc.Connection, adbc.Cursor]]:
    with adbc.connect(conninfo) as conn, conn.cursor() as cur:
        yield conn, cur


def _run(cur: adbc.Cursor, name: str, **parts: sql.Composable) -> None:
    for statement in statements(name, **parts):
        cur.execute(statement)


def _count(cur: adbc.Cursor, table: sql.Composable) -> int:
    _run(cur, "postgres/count_rows.sql", table=table)
    return int(cur.fetchone()[0])


def ensure_table(conninfo: str, schema: str, contract: Contract) -> None:
    """Create the table if needed and add columns the contract gained since."""
    name = table_name(contract)
    table = sql.Identifier(check_schema_name(schema), name)
    template = (
        "postgres/ensure_trip_table.sql" if contract.monthly else "postgres/ensure_zone_table.sql"
    )
    with _connect(conninfo) as (conn, cur):
        _run(
            cur,
            "postgres/advisory_lock.sql",
            table_name=sql.Literal(f"{schema}.{name}"),
            key=sql.Literal(0),
        )
        _run(
            cur,
            template,
            schema=sql.Identifier(schema),
            table=table,
            columns=_column_defs(contract),
        )
        for field in contract.arrow_schema:
            _run(
                cur,
                "postgres/add_column.sql",
                table=table,
                column=sql.Identifier(field.name),
                type=sql.SQL(PG_TYPES[field.type]),
            )
        conn.commit()


def _ingest(cur: adbc.Cursor, reader: ContractReader, schema: str, table: str) -> int:
    """Binary COPY of the reader's batches; a contract violation comes back as itself."""
    try:
        written = cur.adbc_ingest(
            table, reader.record_batch_reader(), mode="append", db_schema_name=schema
        )
    except Exception:
        if reader.error is not None:
            raise reader.error from None
        raise
    return int(written)


def _reconcile(table: str, read: int, written: int, present: int) -> None:
    if not read == written == present:
        raise LoadMismatch(
            f"{table}: read {read} rows from the source, wrote {written}, found {present} "
            "after the load; rolled back, the previous data is unchanged"
        )


def replace_month(conninfo: str, schema: str, reader: ContractReader) -> LoadResult:
    """Load the reader's month into its partition, replacing what was there, in one transaction."""
    contract, month = reader.contract, reader.month
    if month is None:
        raise ValueError(f"{contract.name} is not a monthly table; use replace_table")
    started = time.monotonic()
    ensure_table(conninfo, schema, contract)
    parent = table_name(contract)
    partition = f"{parent}_{partition_suffix(month)}"
    stage = f"{partition}_load"
    with _connect(conninfo) as (conn, cur):
        _run(
            cur,
            "postgres/advisory_lock.sql",
            table_name=sql.Literal(f"{schema}.{parent}"),
            key=sql.Literal(month.year * 100 + month.month),
        )
        _run(
            cur,
            "postgres/create_month_stage.sql",
            stage=sql.Identifier(schema, stage),
            table=sql.Identifier(schema, parent),
            check_name=sql.Identifier(f"{partition}_month"),
            month=sql.Literal(month),
        )
        written = _ingest(cur, reader, schema, stage)
        _run(
            cur,
            "postgres/swap_month_partition.sql",
            partition=sql.Identifier(schema, partition),
            partition_name=sql.Identifier(partition),
            stage=sql.Identifier(schema, stage),
            table=sql.Identifier(schema, parent),
            month=sql.Literal(month),
        )
        present = _count(cur, sql.Identifier(schema, partition))
        _reconcile(f"{schema}.{partition}", reader.rows, written, present)
        conn.commit()
    result = LoadResult(
        f"{schema}.{parent}", reader.rows, written, present, time.monotonic() - started
    )
    log.info(
        "replaced %s month %s: %d rows read, %d written, %d in the month now, %.1f s",
        result.table,
        month.isoformat()[:7],
        result.rows_read,
        result.rows_written,
        result.rows_in_target,
        result.seconds,
    )
    return result


def replace_table(conninfo: str, schema: str, reader: ContractReader) -> LoadResult:
    """Replace a small lookup table whole (DELETE + COPY in one transaction)."""
    contract = reader.contract
    started = time.monotonic()
    ensure_table(conninfo, schema, contract)
    name = table_name(contract)
    table = sql.Identifier(schema, name)
    with _connect(conninfo) as (conn, cur):
        _run(
            cur,
            "postgres/advisory_lock.sql",
            table_name=sql.Literal(f"{schema}.{name}"),
            key=sql.Literal(1),
        )
        _run(cur, "postgres/clear_table.sql", table=table)
        written = _ingest(cur, reader, schema, name)
        present = _count(cur, table)
        _reconcile(f"{schema}.{name}", reader.rows, written, present)
        conn.commit()
    result = LoadResult(
        f"{schema}.{name}", reader.rows, written, present, time.monotonic() - started
    )
    log.info("replaced %s: %d rows, %.1f s", result.table, result.rows_in_target, result.seconds)
    return result
