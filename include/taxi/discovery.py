"""Which months are new or republished at the source, compared with the ingestion log.

One HEAD request per (service, month) in a look-back window: a month never loaded is *new*,
one whose size or ETag/Last-Modified differ from its last load is *republished*; anything
else needs no work. Months the source has not published (404) are simply not there yet.
"""

from __future__ import annotations

import logging
from datetime import date

from include.taxi import ingestion_log
from include.taxi.contract import contract_for
from include.taxi.errors import SourceNotPublished
from include.taxi.months import parse_month
from include.taxi.postgres_month import table_name
from include.taxi.source import probe, source_url

log = logging.getLogger(__name__)


def recent_months(today: date, lookback: int) -> list[str]:
    """The ``lookback`` months before ``today``'s month, newest first."""
    months, year, month = [], today.year, today.month
    for _ in range(lookback):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        months.append(f"{year:04d}-{month:02d}")
    return months


def changed_months(
    services: list[str], months: list[str], *, source_base: str, conninfo: str, schema: str
) -> list[dict[str, str]]:
    """(service, month, reason) for every month that needs loading."""
    found = []
    for service in services:
        table = table_name(contract_for(service))
        for month in months:
            url = source_url(source_base, service, month)
            try:
                current = probe(url)
            except SourceNotPublished:
                log.info("%s %s: not published yet", service, month)
                continue
            last = ingestion_log.read_last_load(conninfo, schema, table, parse_month(month))
            if last is None:
                reason = "new"
            elif current is not None and not current.same_as(
                last.bytes, last.etag, last.last_modified
            ):
                reason = "republished"
            else:
                log.info("%s %s: unchanged since its load at %s", service, month, last.finished_at)
                continue
            log.info("%s %s: %s at %s", service, month, reason, url)
            found.append({"service": service, "month": month, "reason": reason})
    return found
