"""One unit of work, without Airflow: fetch a source file and replace its month in Postgres.

Unless forced, a month whose source is unchanged since its last successful load (same size and
ETag/Last-Modified, by a HEAD request) and whose rows still match the ingestion log is left
alone. Otherwise the file is streamed to a private temp directory (a retry starts clean and
two runs never share a file), read against the contract in batches and loaded in one
transaction.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from include.taxi.contract import ZONE_LOOKUP, ZONES, Contract, contract_for, table_name
from include.taxi.months import parse_month
from include.taxi.postgres import ingestion_log
from include.taxi.postgres.ingestion_log import Attempt, LastLoad
from include.taxi.postgres.month import (
    check_schema_name,
    month_rows,
    replace_month,
    replace_table,
)
from include.taxi.sources.csv import ContractReader
from include.taxi.sources.http import download, file_name, probe, source_url

log = logging.getLogger(__name__)


def _unchanged(
    conninfo: str,
    schema: str,
    contract: Contract,
    month: date,
    url: str,
    started: datetime,
    last: LastLoad | None,
) -> int | None:
    """Rows of the month if the source and the warehouse both still match the last load."""
    if last is None or (current := probe(url)) is None:
        return None
    table = table_name(contract)
    if not current.same_as(last.bytes, last.etag, last.last_modified):
        return None
    present = month_rows(conninfo, schema, contract, month)
    if present != last.rows_in_target:
        log.warning(
            "%s %s: the log says %d rows were loaded but %s are there now; reloading",
            table, month.isoformat()[:7], last.rows_in_target, present,
        )  # fmt: skip
        return None
    attempt = Attempt(table, contract.name, month, current, started)
    ingestion_log.record(conninfo, schema, attempt, "unchanged", rows_in_target=present)
    return present


def month_to_postgres(
    service: str,
    month: str,
    *,
    source_base: str,
    conninfo: str,
    schema: str = "public",
    force: bool = False,
    run_id: str | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Replace ``service``'s ``month`` in Postgres with the source file; returns what moved."""
    contract = contract_for(service)
    first_day = parse_month(month)
    check_schema_name(schema)
    url = source_url(source_base, service, month)
    started = datetime.now(UTC)
    summary = {"service": service, "month": month, "url": url}
    last = ingestion_log.read_last_load(conninfo, schema, table_name(contract), first_day)
    if not force and (
        rows := _unchanged(conninfo, schema, contract, first_day, url, started, last)
    ):
        log.info(
            "%s %s unchanged at the source since its last load (%d rows present): nothing to "
            "do; trigger with force_reload to reload anyway", service, month, rows,
        )  # fmt: skip
        return {**summary, "status": "unchanged", "rows_in_target": rows}
    log.info("loading %s %s from %s into Postgres schema %s", service, month, url, schema)
    with tempfile.TemporaryDirectory(prefix="taxi-", dir=workdir) as tmp:
        fetched = download(url, Path(tmp) / file_name(service, month))
        attempt = Attempt(
            table_name(contract), service, first_day, fetched.version, started, run_id,
            previous_load=last.id if last else 0,
        )  # fmt: skip
        try:
            reader = ContractReader(fetched.path, contract, first_day)
            result = replace_month(conninfo, schema, reader, attempt)
        except Exception as exc:
            ingestion_log.record(conninfo, schema, attempt, "failed", error=exc)
            raise
    version = fetched.version
    return {
        **summary, "bytes": fetched.bytes, **asdict(result), "source_bytes": fetched.bytes,
        "source_sha256": version.sha256, "source_etag": version.etag,
        "source_last_modified": version.last_modified,
    }  # fmt: skip


def zones_to_postgres(
    *, source_base: str, conninfo: str, schema: str = "public", workdir: str | None = None
) -> dict[str, Any]:
    """Replace the taxi-zone lookup table with the source's current file."""
    check_schema_name(schema)
    url = source_url(source_base, ZONES, "")
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="taxi-", dir=workdir) as tmp:
        fetched = download(url, Path(tmp) / file_name(ZONES, ""))
        attempt = Attempt(table_name(ZONE_LOOKUP), ZONES, None, fetched.version, started)
        result = replace_table(conninfo, schema, ContractReader(fetched.path, ZONE_LOOKUP), attempt)
    return {"url": url, "bytes": fetched.bytes, **asdict(result)}
