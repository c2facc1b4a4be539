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
from include.taxi.postgres import session
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
