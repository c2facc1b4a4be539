"""The ingestion log: per table and month, what was loaded from which source version.

A ``loaded`` row is written inside the load's own transaction, so it exists exactly when the
data does. ``failed`` rows are written afterwards, best effort, to say why a month was not
replaced; ``unchanged`` rows record a run that found nothing new to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from include.taxi import redact
from include.taxi.contract import SERVICES, contract_for, table_name
from include.taxi.load_record import (
    LoadRecord,
    Rejected,
    TargetLog,
    cut,
    parse_warnings,
    shown,
)
from include.taxi.months import Month
from include.taxi.postgres import session
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.sql import statements

log = logging.getLogger(__name__)

LOG_TABLE = "taxi_ingestion_log"
TARGET = "postgres"
LOG_COLUMNS = frozenset(
    {
        "id",
        "target",
        "table_name",
        "service",
        "source_month",
        "source_url",
        "source_bytes",
        "source_etag",
        "source_last_modified",
        "source_sha256",
        "rows_read",
        "rows_written",
        "rows_in_target",
        "started_at",
        "finished_at",
        "status",
        "error",
        "run_id",
        "contract_fingerprint",
        "source_kind",
        "source_format",
        "quality",
        "warnings",
    }
)
"""Every column the code writes: a log created by an older version gains the missing ones
(``ADD COLUMN IF NOT EXISTS`` in ensure_ingestion_log.sql) before the first write."""


@dataclass(frozen=True)
class Attempt:
    """One load attempt of a table's month (``month`` None for whole-table loads)."""

    table: str
    service: str
    month: date | None
    source: SourceVersion
    started_at: datetime
    run_id: str | None = None
    # id of the month's latest load when this attempt began (0: none yet, None: not known).
    # Under the month's lock, a newer load of the same file means a concurrent run just did
    # the work; comparing ids, not clocks, leaves no window between its insert and its commit.
    previous_load: int | None = None
    # the contract the rows were shaped by: a month loaded under another one is out of date
    contract_fingerprint: str | None = None
    source_kind: str | None = None
    """``mirror`` or ``tlc`` (sources/catalogue); None for a local file."""
    source_format: str | None = None
    """``csv.gz``, ``csv`` or ``parquet``: the format of the file that was read."""
    force: bool = False
    """A forced reload: an older-dated copy of the loaded file replaces it (a newer version
    committed by another run while this one downloaded still stays)."""


@dataclass(frozen=True)
class LastLoad:
    id: int
    bytes: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None
    rows_in_target: int
    finished_at: datetime
    contract_fingerprint: str | None
    source_url: str | None = None


def _log(schema: str) -> sql.Composable:
    return sql.Identifier(schema, LOG_TABLE)


def ensure(cur: session.Session, schema: str) -> None:
    """Create the log table, or add the columns a newer version writes (under the DDL lock)."""
    if session.existing_columns(cur, schema, LOG_TABLE) >= LOG_COLUMNS:
        return
    session.advisory_lock(cur, schema, session.DDL_KEY)
    if session.existing_columns(cur, schema, LOG_TABLE) >= LOG_COLUMNS:  # done while we waited
        return
    for statement in statements(
        "postgres/ensure_ingestion_log.sql",
        schema=sql.Identifier(schema),
        log=_log(schema),
        log_index=sql.Identifier(f"{LOG_TABLE}_month_idx"),
    ):
        cur.execute(statement)


def write(
    cur: session.Session,
    schema: str,
    attempt: Attempt,
    status: str,
    *,
    rows: tuple[int | None, int | None, int | None] = (None, None, None),
    error: str | None = None,
    quality: dict[str, Any] | None = None,
    warnings: list[dict[str, str]] | None = None,
) -> None:
    """Insert one log row on ``cur``'s transaction; every value is a bound parameter.

    ``quality`` is the month's profile and ``warnings`` the rules it broke
    (include/taxi/quality.py), stored as jsonb for the "Taxi months" page."""
    (statement,) = statements("postgres/insert_ingestion_log.sql", log=_log(schema))
    source = attempt.source
    cur.execute(
        statement,
        (
            TARGET,
            attempt.table,
            attempt.service,
            attempt.month,
            source.url,
            source.bytes,
            source.etag,
            source.last_modified,
            source.sha256,
            *rows,
            attempt.started_at,
            status,
            error,
            attempt.run_id,
            attempt.contract_fingerprint,
            attempt.source_kind,
            attempt.source_format,
            None if quality is None else Jsonb(quality),
            None if warnings is None else Jsonb(warnings),
        ),
    )


def last_load(cur: session.Session, schema: str, table: str, month: date | None) -> LastLoad | None:
    (statement,) = statements("postgres/last_load.sql", log=_log(schema))
    cur.execute(statement, (table, month))
    row = cur.fetchone()
    return LastLoad(*row) if row else None


def trailing_rows(
    cur: session.Session, schema: str, table: str, month: date, months: int
) -> list[int]:
    """Rows of the ``months`` loaded months before ``month``, newest first."""
    (statement,) = statements("postgres/trailing_rows.sql", log=_log(schema))
    cur.execute(statement, (table, month, months))
    return [int(n) for (n,) in cur.fetchall() if n is not None]


def read_last_load(conninfo: str, schema: str, table: str, month: date | None) -> LastLoad | None:
    with session.connect(conninfo) as cur:
        try:
            return last_load(cur, schema, table, month)
        except session.ProgrammingError:  # no log yet: nothing was ever loaded here
            return None


def record(
    conninfo: str,
    schema: str,
    attempt: Attempt,
    status: str,
    *,
    rows_in_target: int | None = None,
    error: BaseException | None = None,
) -> None:
    """Log an attempt that changed no data (unchanged, failed); best effort, never raises.

    A month refused by a quality rule keeps its profile and findings on the failed row."""
    message = redact.text(f"{type(error).__name__}: {error}", 2000) if error else None
    quality = getattr(error, "profile", None)
    findings = getattr(error, "findings", None)
    warnings = [f.as_dict() for f in findings] if findings else None
    try:
        with session.connect(conninfo) as cur:
            ensure(cur, schema)
            write(
                cur,
                schema,
                attempt,
                status,
                rows=(None, None, rows_in_target),
                error=message,
                quality=quality,
                warnings=warnings,
            )
            cur.commit()
    except Exception as exc:  # the warehouse may be what failed
        log.warning("could not write to the ingestion log: %s", exc)


_OPTIONAL = {
    "source_url": "NULL::text",
    "contract_fingerprint": "NULL::text",
    "warnings": "NULL::jsonb",
}
"""Columns the reader selects that a log from an older version may not have yet."""


class PostgresLog:
    """The Postgres log, read: what ``taxi_to_postgres`` loaded, for the Taxi months page,
    ``make report``, ``taxi_daily``'s discovery."""

    target = TARGET

    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo, self.schema = conninfo, schema

    def last_load(self, service: Service, month: Month) -> LoadRecord | None:
        """The month's last successful load (the row the loader's "unchanged?" reads too)."""
        table = table_name(contract_for(service))
        found = read_last_load(self.conninfo, self.schema, table, month.first_day)
        if found is None:
            return None
        version = SourceVersion(
            found.source_url or "", found.bytes, found.etag, found.last_modified, found.sha256
        )
        return LoadRecord(
            TARGET,
            service,
            month,
            "loaded",
            found.rows_in_target,
            at=found.finished_at,
            source=version,
            contract=found.contract_fingerprint,
        )

    def records(self, *, timeout: float | None = None) -> TargetLog:
        """The latest attempt and latest load per table-month.

        Measured (a shared 2-core machine under load): a 24,480-row log (3 services × 204
        months × 40 attempts) takes 0.5-0.8 s, ~0.3 s of it sorting the log for DISTINCT ON.
        ``timeout`` bounds the connect and the query (a load or a migration holding the log's
        lock ends it)."""
        with session.connect(self.conninfo, timeout=timeout) as cur:
            columns = session.existing_columns(cur, self.schema, LOG_TABLE)
            if not columns:
                return TargetLog(problem=f"no {self.schema}.{LOG_TABLE} yet: nothing was loaded")
            optional = {
                name: sql.Identifier(name) if name in columns else sql.SQL(null)
                for name, null in _OPTIONAL.items()
            }
            (statement,) = statements("postgres/log_records.sql", log=_log(self.schema), **optional)
            cur.execute(statement)
            rows = cur.fetchall()
        latest: dict[tuple[Service, Month], LoadRecord] = {}
        loads: dict[tuple[Service, Month], LoadRecord] = {}
        rejected: dict[str, Rejected] = {}
        for kind, *row in rows:
            try:
                record = self._record(row)
            except ValueError as exc:
                where = f"{self.schema}.{LOG_TABLE}, {row[0]} rows of source_month {row[1]}"
                rejected[where] = Rejected(TARGET, where, shown(row[1]), cut(str(exc)))
                continue
            if record is not None:
                (latest if kind == "latest" else loads)[(record.service, record.month)] = record
        return TargetLog(latest, loads, rejected=tuple(rejected.values()))

    @staticmethod
    def _record(row: list[Any]) -> LoadRecord | None:
        """A row of log_records.sql; None for a table that is no trip table, a ValueError
        for a month that is not one (the log is outside input by the time it is read)."""
        service, month, status, rows, run_id, at, error, url, size, etag, modified, sha256 = row[
            :12
        ]
        if service not in SERVICES:
            return None
        version = SourceVersion(url or "", size, etag, modified, sha256)
        return LoadRecord(
            TARGET,
            Service.parse(service),
            Month.recorded(month),
            status,
            rows,
            run_id,
            at,
            error,
            version,
            parse_warnings(row[13]),
            row[12],
        )
