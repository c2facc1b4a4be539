"""Replace one month of one service in Postgres, atomically, at COPY speed.

Each trip table is LIST-partitioned by ``source_month``. A load writes the month into a fresh
stage table by binary COPY (Arrow batches encoded by ``binary_copy``: the server parses no
text; one stream, or several at once for a parquet file: ``parallel_copy``), then drops the
old partition and attaches the stage in its place, in one transaction that also writes the
month's ingestion-log row:

* a failed or killed load rolls back and leaves the previous month exactly as it was;
* readers see the old month until COMMIT and the new one after, never a mix or a gap;
* a rerun replaces rather than appends, so nothing is ever doubled;
* a transaction-scoped advisory lock per (table, month) serialises concurrent loads of a
  month, and a load that waited for another one of the same source file does not repeat it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from psycopg import sql

from include.taxi import redact, settings
from include.taxi.contract import SOURCE_MONTH, ZONE_LOOKUP, Contract, table_name
from include.taxi.errors import LoadMismatch, LockWaitTimeout
from include.taxi.months import Month
from include.taxi.postgres import ingestion_log, parallel_copy, session
from include.taxi.postgres.ingestion_log import Attempt, LastLoad
from include.taxi.quality import TRAILING_MONTHS, Profile, findings_json, zone_id_array
from include.taxi.results import SUPERSEDED, PostgresStatus
from include.taxi.source_version import SourceVersion
from include.taxi.sources.batches import SourceReader
from include.taxi.sources.reader import source_format, split

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

PG_TYPES = {
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.string(): "text",
    pa.timestamp("us"): "timestamp",
    pa.date32(): "date",
}


@dataclass(frozen=True)
class Replaced:
    table: str
    status: PostgresStatus
    """``loaded``, or ``unchanged`` when a concurrent run had just loaded the same file, or
    ``superseded`` when the month holds a newer version of it (kept)."""
    rows_read: int
    rows_written: int
    rows_in_target: int
    seconds: float
    quality: dict[str, Any] | None = None
    """The month's profile (include/taxi/quality.py), as stored in the log's ``quality``."""
    warnings: list[dict[str, str]] = dataclasses.field(default_factory=list)
    """The ``warn`` findings; the month was published with them."""


def check_schema_name(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"Postgres schema {name!r} is not a plain lower-case identifier "
            "(letters, digits, underscores)"
        )
    return name


def partition_name(contract: Contract, month: date) -> str:
    return f"{table_name(contract)}_{Month.of(month).suffix}"


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


def ensure_table(conninfo: str, schema: str, contract: Contract) -> None:
    """Create the table and the ingestion log if needed; add columns the contract gained."""
    table = sql.Identifier(check_schema_name(schema), table_name(contract))
    template = (
        "postgres/ensure_trip_table.sql" if contract.monthly else "postgres/ensure_zone_table.sql"
    )
    with session.connect(conninfo) as cur:
        ingestion_log.ensure(cur, schema)
        cur.commit()  # never hold the log's DDL locks while waiting for the table's

        def missing() -> list[pa.Field]:
            present = session.existing_columns(cur, schema, table_name(contract))
            return [f for f in contract.arrow_schema if f.name not in present]

        if missing():
            session.advisory_lock(cur, schema, session.DDL_KEY)
            if session.existing_columns(cur, schema, table_name(contract)):
                lock_briefly(cur, schema, table_name(contract), "adding a contract column")
            session.run(
                cur,
                template,
                schema=sql.Identifier(schema),
                table=table,
                columns=_column_defs(contract),
            )
            for field in missing():  # again, now under the lock: another run may have added them
                session.run(
                    cur,
                    "postgres/add_column.sql",
                    table=table,
                    column=sql.Identifier(field.name),
                    type=sql.SQL(PG_TYPES[field.type]),
                )
        cur.commit()


@dataclass(frozen=True)
class _Loaded:
    written: int
    present: int
    quality: dict[str, Any]
    warnings: list[dict[str, str]]

    def result(self, table: str, read: int, seconds: float) -> Replaced:
        return Replaced(
            table, "loaded", read, self.written, self.present, seconds, self.quality, self.warnings
        )


def _checked(
    cur: session.Session,
    schema: str,
    table: str,
    label: str,
    source: tuple[str, int],
    written: int,
    profile: Profile,
    attempt: Attempt,
) -> _Loaded:
    """Once ``table`` holds the load: apply the quality rules (a ``fail`` raises, and the
    transaction rolls back), reconcile read/written/present and log the load, uncommitted.
    ``source``: the file's name and the rows read from it."""
    file, read = source
    warnings = findings_json(profile.check(file))
    present = session.count(cur, sql.Identifier(schema, table))
    _reconcile(f"{schema}.{label}", read, written, present)
    quality = profile.as_dict()
    rows = (read, written, present)
    ingestion_log.write(
        cur, schema, attempt, "loaded", rows=rows, quality=quality, warnings=warnings
    )
    return _Loaded(written, present, quality, warnings)


def _profile(cur: session.Session, schema: str, contract: Contract, month: date | None) -> Profile:
    """A profile for a load, with the zone lookup's ids and the trailing months' row counts
    read on the load's own transaction."""
    if not contract.monthly:
        return Profile(contract)
    assert month is not None
    zones = table_name(ZONE_LOOKUP)
    ids = None
    if "locationid" in session.existing_columns(cur, schema, zones):
        session.run(cur, "postgres/zone_ids.sql", zones=sql.Identifier(schema, zones))
        ids = zone_id_array(int(n) for (n,) in cur.fetchall())
    table = table_name(contract)
    trailing = ingestion_log.trailing_rows(cur, schema, table, month, TRAILING_MONTHS)
    return Profile(
        contract, month, zone_ids=ids, trailing_rows=trailing, zone_source=f"{schema}.{zones}"
    )


def _reconcile(table: str, read: int, written: int, present: int) -> None:
    if not read == written == present:
        raise LoadMismatch(
            f"{table}: read {read} rows from the source, wrote {written}, found {present} "
            "after the load; rolled back, the previous data is unchanged"
        )


def _loaded_meanwhile(cur: session.Session, schema: str, attempt: Attempt) -> int | None:
    """Rows of a load of this very file that committed while we waited for the lock."""
    if attempt.previous_load is None or not attempt.source.sha256:
        return None
    last = ingestion_log.last_load(cur, schema, attempt.table, attempt.month)
    if last is None or last.id == attempt.previous_load or last.sha256 != attempt.source.sha256:
        return None
    if last.contract_fingerprint != attempt.contract_fingerprint:
        return None
    return last.rows_in_target


def _newer_loaded(cur: session.Session, schema: str, attempt: Attempt) -> LastLoad | None:
    """The month's load, if its source is newer (by Last-Modified) than the attempt's and it
    was either committed while the attempt downloaded (not the load it began from) or read
    from the same file (a lagging mirror or CDN edge served an older copy; unless forced): it
    must stay. A load of another file before the attempt began (the source was switched) is
    replaced."""
    last = ingestion_log.last_load(cur, schema, attempt.table, attempt.month)
    if last is None or not attempt.source.older_than(last.last_modified):
        return None
    meanwhile = attempt.previous_load is None or last.id != attempt.previous_load
    stale_copy = not attempt.force and attempt.source.same_file(last.source_url)
    return last if meanwhile or stale_copy else None


def lock_briefly(cur: session.Session, schema: str, parent: str, what: str) -> None:
    """Take the table's ACCESS EXCLUSIVE lock for ``what`` (a swap, the load's last step, or
    a column the contract gained).

    Each try waits at most ``POSTGRES_SWAP_LOCK_TIMEOUT``: a waiting request queues every new
    reader of the table behind it, so a long wait would stall them all. Between tries (backoff,
    up to ``POSTGRES_SWAP_WAIT_SECONDS`` in all) readers go on; then the load fails as
    retryable, naming who holds the table, with nothing changed.
    """
    wait = settings.POSTGRES_SWAP_WAIT_SECONDS
    deadline = time.monotonic() + wait
    pause, tries = 0.1, 0
    while True:
        tries += 1
        try:
            with cur.savepoint():
                session.run(
                    cur,
                    "postgres/lock_for_swap.sql",
                    table=sql.Identifier(schema, parent),
                    timeout=sql.Literal(settings.POSTGRES_SWAP_LOCK_TIMEOUT),
                )
            return
        except session.LockNotAvailable:
            if time.monotonic() + pause > deadline:
                holders = session.lock_holders(cur, schema, parent)
                raise LockWaitTimeout(
                    f"{schema}.{parent}: {what} could not get the table's lock in "
                    f"{wait:.0f} s ({tries} tries of {settings.POSTGRES_SWAP_LOCK_TIMEOUT}); "
                    "held by "
                    f"{'; '.join(holders) or 'sessions that ended meanwhile'}. Nothing was "
                    "changed; Airflow will retry. A session idle in a transaction (e.g. a "
                    "pgAdmin tab) blocks it: end it (COMMIT, or pg_terminate_backend(pid))."
                ) from None
            log.info(
                "%s.%s busy (try %d): %s retries its lock in %.1f s",
                schema,
                parent,
                tries,
                what,
                pause,
            )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def _local_attempt(reader: SourceReader) -> Attempt:
    """How the log describes a load of a local file that was not downloaded by the pipeline."""
    source = SourceVersion(reader.path.resolve().as_uri(), reader.path.stat().st_size, None, None)
    contract = reader.contract
    return Attempt(
        table_name(contract),
        contract.name,
        reader.month,
        source,
        datetime.now(UTC),
        contract_fingerprint=contract.fingerprint,
        source_format=source_format(reader.path.name),
    )


def replace_month(
    conninfo: str,
    schema: str,
    reader: SourceReader,
    attempt: Attempt | None = None,
    *,
    streams: int | None = None,
) -> Replaced:
    """Load the reader's month into its partition, replacing what was there, in one transaction.

    ``streams``: COPY streams (default ``settings.postgres_copy_streams()``); a parquet file is
    split into that many runs of row groups, a csv.gz is always one stream."""
    contract, month = reader.contract, reader.month
    if month is None:
        raise ValueError(f"{contract.name} is not a monthly table; use replace_zones")
    attempt = attempt or _local_attempt(reader)
    started = time.monotonic()
    ensure_table(conninfo, schema, contract)
    parts = split(reader, streams or settings.postgres_copy_streams())
    stage = _Stage(conninfo, schema, contract, month, len(parts))
    with session.connect(conninfo) as cur:
        session.advisory_lock(cur, f"{schema}.{stage.parent}", month.year * 100 + month.month)
        if (done := _kept(cur, schema, attempt, stage.parent, month)) is not None:
            cur.rollback()
            return done
        profile = _profile(cur, schema, contract, month)
        try:
            with cur.savepoint():
                written = stage.fill(cur, parts, profile)
                read = reader.rows = sum(part.rows for part in parts)  # the file's, as one reader
                # Counted and logged before the swap: the stage becomes the partition as it is.
                loaded = _checked(
                    cur, schema, stage.name, stage.partition, (reader.file, read), written,
                    profile, attempt,
                )  # fmt: skip
                stage.swap(cur)
        except BaseException:
            stage.drop(cur)
            raise
        cur.commit()
    result = loaded.result(f"{schema}.{stage.parent}", read, time.monotonic() - started)
    _log_replaced(result, stage.parent, month, loaded.warnings)
    return result


class _Stage:
    """The month's stage table: created in the load's transaction and filled with FREEZE by one
    stream, or committed first, filled by several, then vacuumed (parallel_copy)."""

    def __init__(
        self, conninfo: str, schema: str, contract: Contract, month: date, streams: int
    ) -> None:
        self.conninfo, self.schema, self.contract, self.month = conninfo, schema, contract, month
        self.parent = table_name(contract)
        self.partition = partition_name(contract, month)
        self.name = f"{self.partition}_load"
        self.committed = streams > 1

    def _create(self, cur: session.Session) -> None:
        session.run(
            cur,
            "postgres/create_month_stage.sql",
            stage=sql.Identifier(self.schema, self.name),
            columns=_column_defs(self.contract),
            check_name=sql.Identifier(f"{self.partition}_month"),
            month=sql.Literal(self.month),
        )

    def fill(self, cur: session.Session, parts: list[SourceReader], profile: Profile) -> int:
        """COPY the parts into the stage; rows written."""
        if not self.committed:
            self._create(cur)  # FREEZE: the stage was created just above, in this transaction
            return parallel_copy.ingest(cur, parts[0], self.schema, self.name, profile, freeze=True)
        with session.connect(self.conninfo) as other:  # committed: the streams' sessions see it
            self._create(other)
            other.commit()
        timeout = sql.Literal(session.STATEMENT_TIMEOUT)
        session.run(cur, "postgres/await_streams.sql", timeout=timeout)
        written = parallel_copy.copy_streams(self.conninfo, self.schema, self.name, parts, profile)
        parallel_copy.vacuum(self.conninfo, self.schema, self.name)
        return written

    def swap(self, cur: session.Session) -> None:
        """The stage becomes the month's partition, under the parent's lock, taken briefly."""
        lock_briefly(cur, self.schema, self.parent, f"the partition swap of {self.month:%Y-%m}")
        session.run(
            cur,
            "postgres/swap_month_partition.sql",
            partition=sql.Identifier(self.schema, self.partition),
            partition_name=sql.Identifier(self.partition),
            stage=sql.Identifier(self.schema, self.name),
            table=sql.Identifier(self.schema, self.parent),
            month=sql.Literal(self.month),
        )

    def drop(self, cur: session.Session) -> None:
        """After a failure (the savepoint rolled back): a committed stage is dropped and the drop
        committed, still under the month's lock. A dead session leaves it to the next load."""
        if not self.committed:
            return
        try:
            session.run(
                cur, "postgres/drop_stage.sql", stage=sql.Identifier(self.schema, self.name)
            )
            cur.commit()
        except session.Error:
            log.warning(
                "%s.%s: not dropped, the next load of the month drops it", self.schema, self.name
            )


def _log_replaced(
    result: Replaced, parent: str, month: date, warnings: list[dict[str, str]]
) -> None:
    for warning in warnings:
        log.warning("%s %s: %s", parent, Month.of(month), warning["message"])
    log.info(
        "replaced %s month %s: %d rows read, %d written, %d in the month now, %.1f s",
        result.table,
        Month.of(month),
        result.rows_read,
        result.rows_written,
        result.rows_in_target,
        result.seconds,
    )


def _kept(
    cur: session.Session, schema: str, attempt: Attempt, parent: str, month: date
) -> Replaced | None:
    """What the month keeps, under its lock, when this run must not replace it: the same file
    a concurrent run just loaded, or a newer version of the source (None: replace it)."""
    if (rows := _loaded_meanwhile(cur, schema, attempt)) is not None:
        log.info(
            "%s %s: a concurrent run just loaded this same file; nothing to do",
            parent,
            Month.of(month),
        )
        return Replaced(f"{schema}.{parent}", "unchanged", 0, 0, rows, 0.0)
    if (newer := _newer_loaded(cur, schema, attempt)) is not None:
        log.warning(
            "%s %s: not replaced: it holds a newer version of the source (Last-Modified %s) "
            "than this run downloaded from %s (Last-Modified %s); the newer stays",
            parent,
            Month.of(month),
            newer.last_modified,
            redact.source(attempt.source.url),
            attempt.source.last_modified,
        )
        return Replaced(f"{schema}.{parent}", SUPERSEDED, 0, 0, newer.rows_in_target, 0.0)
    return None


def replace_zones(
    conninfo: str, schema: str, reader: SourceReader, attempt: Attempt | None = None
) -> Replaced:
    """Replace a small lookup table whole (DELETE + COPY in one transaction)."""
    contract = reader.contract
    attempt = attempt or _local_attempt(reader)
    started = time.monotonic()
    ensure_table(conninfo, schema, contract)
    name = table_name(contract)
    table = sql.Identifier(schema, name)
    with session.connect(conninfo) as cur:
        session.advisory_lock(cur, f"{schema}.{name}", 1)
        session.run(cur, "postgres/clear_table.sql", table=table)
        profile = _profile(cur, schema, contract, None)
        written = parallel_copy.ingest(cur, reader, schema, name, profile)
        loaded = _checked(
            cur, schema, name, name, (reader.file, reader.rows), written, profile, attempt
        )
        cur.commit()
    result = loaded.result(f"{schema}.{name}", reader.rows, time.monotonic() - started)
    log.info("replaced %s: %d rows, %.1f s", result.table, result.rows_in_target, result.seconds)
    return result


def month_rows(conninfo: str, schema: str, contract: Contract, month: date) -> int | None:
    """Rows now in a month's partition; None if the month was never loaded."""
    with session.connect(conninfo) as cur:
        try:
            return session.count(cur, sql.Identifier(schema, partition_name(contract, month)))
        except session.ProgrammingError:
            return None
