"""One unit of work, without Airflow: fetch a source file and replace its month in Postgres.

Unless forced, a month whose source is unchanged since its last successful load (same size and
ETag/Last-Modified, by a HEAD request) and whose rows still match the ingestion log is left
alone. Otherwise the file is streamed to a private temp directory (a retry starts clean and
two runs never share a file), read against the contract in batches and loaded in one
transaction.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from include.taxi.contract import ZONE_LOOKUP, ZONES, contract_for, table_name
from include.taxi.errors import InsufficientSpace, SourceNotPublished
from include.taxi.months import Month
from include.taxi.postgres import ingestion_log
from include.taxi.postgres.ingestion_log import Attempt, LastLoad
from include.taxi.postgres.month import (
    Replaced,
    check_schema_name,
    month_rows,
    replace_month,
    replace_zones,
)
from include.taxi.results import PostgresMonth, ZonesLoad
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.sources.batches import SourceReader
from include.taxi.sources.catalogue import MIRROR, Source
from include.taxi.sources.http import DEFAULT_LIMITS, Download, DownloadLimits
from include.taxi.sources.reader import open_source
from include.taxi.workdir import month_workdir

log = logging.getLogger(__name__)


def _unchanged(
    conninfo: str,
    schema: str,
    service: Service,
    month: Month,
    source: Source,
    started: datetime,
    last: LastLoad | None,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> int | None:
    """Rows of the month if the source and the warehouse both still match the last load (and
    it says so in the log)."""
    if last is None:
        return None
    contract = contract_for(service)
    current = source.probe(service, month, limits=limits)
    if current is None:
        return None
    table = table_name(contract)
    if not current.same_as(last.bytes, last.etag, last.last_modified):
        return None
    if last.contract_fingerprint != contract.fingerprint:
        log.info(
            "%s %s: loaded under contract %s, the contract is %s now; reloading",
            table,
            month,
            last.contract_fingerprint,
            contract.fingerprint,
        )
        return None
    present = month_rows(conninfo, schema, contract, month.first_day)
    if present != last.rows_in_target:
        log.warning(
            "%s %s: the log says %d rows were loaded but %s are there now; reloading",
            table,
            month,
            last.rows_in_target,
            present,
        )
        return None
    attempt = Attempt(
        table,
        contract.name,
        month.first_day,
        current,
        started,
        contract_fingerprint=contract.fingerprint,
        source_kind=source.kind,
        source_format=source.format,
    )
    ingestion_log.record(conninfo, schema, attempt, "unchanged", rows_in_target=present)
    log.info(
        "%s %s unchanged at the source since its last load (%d rows present): nothing to "
        "do; trigger with force_reload to reload anyway",
        service,
        month,
        present,
    )
    return present


def _replace_month(conninfo: str, schema: str, reader: SourceReader, attempt: Attempt) -> Replaced:
    """``replace_month``, with a full server disk said in words: one transaction, so nothing
    was committed, but the fix is on the server, not in the file."""
    try:
        return replace_month(conninfo, schema, reader, attempt)
    except psycopg.errors.DiskFull as exc:
        raise InsufficientSpace(
            f"PostgreSQL ran out of disk space loading {attempt.table} "
            f"{Month.of(attempt.month) if attempt.month else ''}: nothing was committed "
            f"and the month is as it was. Free space on the server's data/WAL disk, then retry "
            f"({exc.diag.message_primary})"
        ) from None


def month_to_postgres(
    service: Service,
    month: Month,
    *,
    source_base: str,
    conninfo: str,
    schema: str = "public",
    force: bool = False,
    run_id: str | None = None,
    workdir: str | None = None,
    source_kind: str = MIRROR,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> PostgresMonth:
    """Replace ``service``'s ``month`` in Postgres with the source file; returns what moved.

    ``source_kind``: ``mirror`` (csv.gz at ``source_base``) or ``tlc`` (parquet)."""
    contract = contract_for(service)
    check_schema_name(schema)
    source = Source(source_kind, source_base)
    url = source.url(service, month)
    source.check_month(service, month)
    started = datetime.now(UTC)
    summary = PostgresMonth(
        service=service,
        month=str(month),
        url=url,
        source=source.kind,
        status="unchanged",
        rows_in_target=0,
    )
    last = ingestion_log.read_last_load(conninfo, schema, table_name(contract), month.first_day)
    if not force and (
        rows := _unchanged(conninfo, schema, service, month, source, started, last, limits)
    ):
        return summary | {"rows_in_target": rows}
    log.info("loading %s %s from %s into Postgres schema %s", service, month, url, schema)
    attempt = Attempt(
        table_name(contract),
        service,
        month.first_day,
        SourceVersion(url, None, None, None),  # until the download says more
        started,
        run_id,
        previous_load=last.id if last else 0,
        contract_fingerprint=contract.fingerprint,
        source_kind=source.kind,
        source_format=source.format,
        force=force,
    )
    fetched, result = _download_and_replace(
        conninfo, schema, source, (service, month), attempt, workdir, limits
    )
    return _loaded(summary, fetched, result)


def _loaded(summary: PostgresMonth, fetched: Download, result: Replaced) -> PostgresMonth:
    """What a load returns (its XCom): the month, the source version read, the rows moved."""
    version = fetched.version
    return summary | {
        "status": result.status,
        "rows_in_target": result.rows_in_target,
        "table": result.table,
        "bytes": fetched.bytes,
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        "seconds": result.seconds,
        "quality": result.quality,
        "warnings": result.warnings,
        "source_bytes": fetched.bytes,
        "source_sha256": version.sha256,
        "source_etag": version.etag,
        "source_last_modified": version.last_modified,
    }


def _download_and_replace(
    conninfo: str,
    schema: str,
    source: Source,
    service_month: tuple[Service, Month],
    attempt: Attempt,
    workdir: str | None,
    limits: DownloadLimits,
) -> tuple[Download, Replaced]:
    """Download the month, read it through the contract and swap it in; a failure (a refused
    file too, not a month the source has not published) is logged as a failed attempt."""
    service, month = service_month
    contract = contract_for(service)
    with month_workdir("pg", service, month, workdir) as tmp:
        try:
            fetched = source.download(service, month, Path(tmp), limits=limits)
            attempt = replace(attempt, source=fetched.version)
            reader = open_source(
                fetched.path,
                contract,
                month.first_day,
                max_csv_bytes=limits.max_csv_bytes,
                max_parquet_rows=limits.max_parquet_rows,
                max_row_group_bytes=limits.max_row_group_bytes,
            )
            return fetched, _replace_month(conninfo, schema, reader, attempt)
        except SourceNotPublished:
            raise  # a skip, not a failure: nothing to record
        except Exception as exc:  # every failed attempt is on the record, refused files too
            ingestion_log.record(conninfo, schema, attempt, "failed", error=exc)
            raise


def zones_to_postgres(
    *,
    source_base: str,
    conninfo: str,
    schema: str = "public",
    workdir: str | None = None,
    source_kind: str = MIRROR,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> ZonesLoad:
    """Replace the taxi-zone lookup table with the source's current file."""
    check_schema_name(schema)
    source = Source(source_kind, source_base)
    url = source.zones_url()
    started = datetime.now(UTC)
    with month_workdir("pg", ZONES, None, workdir) as tmp:
        fetched = source.download_zones(Path(tmp), limits=limits)
        attempt = Attempt(
            table_name(ZONE_LOOKUP),
            ZONES,
            None,
            fetched.version,
            started,
            contract_fingerprint=ZONE_LOOKUP.fingerprint,
            source_kind=source.kind,
            source_format="csv",
        )
        reader = open_source(fetched.path, ZONE_LOOKUP, max_csv_bytes=limits.max_csv_bytes)
        result = replace_zones(conninfo, schema, reader, attempt)
    return ZonesLoad(
        url=url,
        bytes=fetched.bytes,
        table=result.table,
        status=result.status,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        rows_in_target=result.rows_in_target,
        seconds=result.seconds,
        quality=result.quality,
        warnings=result.warnings,
    )
