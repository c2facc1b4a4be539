"""One unit of work, without Airflow: fetch a source file and replace its month in Postgres.

The file is streamed to a private temp directory (so a retry starts clean and two runs never
share a file), read against the contract in batches and loaded in one transaction.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from include.taxi.contract import ZONE_LOOKUP, ZONES, contract_for
from include.taxi.csv_reader import ContractReader
from include.taxi.months import parse_month
from include.taxi.postgres_month import check_schema_name, replace_month, replace_table
from include.taxi.source import download, file_name, source_url

log = logging.getLogger(__name__)


def month_to_postgres(
    service: str,
    month: str,
    *,
    source_base: str,
    conninfo: str,
    schema: str = "public",
    workdir: str | None = None,
) -> dict[str, Any]:
    """Replace ``service``'s ``month`` in Postgres with the source file; returns what moved."""
    contract = contract_for(service)
    first_day = parse_month(month)
    check_schema_name(schema)
    url = source_url(source_base, service, month)
    log.info("loading %s %s from %s into Postgres schema %s", service, month, url, schema)
    with tempfile.TemporaryDirectory(prefix="taxi-", dir=workdir) as tmp:
        fetched = download(url, Path(tmp) / file_name(service, month))
        reader = ContractReader(fetched.path, contract, first_day)
        result = replace_month(conninfo, schema, reader)
    return {
        "service": service,
        "month": month,
        "url": url,
        "bytes": fetched.bytes,
        **asdict(result),
    }


def zones_to_postgres(
    *, source_base: str, conninfo: str, schema: str = "public", workdir: str | None = None
) -> dict[str, Any]:
    """Replace the taxi-zone lookup table with the source's current file."""
    check_schema_name(schema)
    url = source_url(source_base, ZONES, "")
    with tempfile.TemporaryDirectory(prefix="taxi-", dir=workdir) as tmp:
        fetched = download(url, Path(tmp) / file_name(ZONES, ""))
        result = replace_table(conninfo, schema, ContractReader(fetched.path, ZONE_LOOKUP))
    return {"url": url, "bytes": fetched.bytes, **asdict(result)}
