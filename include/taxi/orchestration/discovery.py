"""Which months are new or republished at the source, compared with what a target holds.

One HEAD request per (service, month) in a look-back window: a month never loaded is *new*,
one whose size or ETag/Last-Modified differ from its last load is *republished*; anything
else needs no work. Months the source has not published (404) are simply not there yet.
What a target holds comes from the Postgres ingestion log, or from the lake object's metadata.

The HEADs of one target share a total deadline (``settings.DISCOVERY_DEADLINE``), each HEAD its
own (``settings.HEAD_DEADLINE``), however slowly a server answers: a source trickling its
headers used to hold ``taxi_daily`` for as long as it liked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date

from include.taxi import settings
from include.taxi.contract import contract_for, table_name
from include.taxi.errors import IncompleteDownload, SourceNotPublished
from include.taxi.lake.ingestion_log import held_source
from include.taxi.lake.store import object_name, open_lake
from include.taxi.months import parse_month
from include.taxi.postgres import ingestion_log
from include.taxi.sources.http import DEFAULT_LIMITS, DownloadLimits, probe, source_url

Held = tuple[int | None, str | None, str | None]
"""Size, ETag and Last-Modified of the source version a target holds."""
LastVersion = Callable[[str, str], Held | None]

log = logging.getLogger(__name__)


def recent_months(today: date, lookback: int) -> list[str]:
    """The ``lookback`` months before ``today``'s month, newest first."""
    months, year, month = [], today.year, today.month
    for _ in range(lookback):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        months.append(f"{year:04d}-{month:02d}")
    return months


def postgres_versions(conninfo: str, schema: str) -> LastVersion:
    """The source version of each month's last load, from the Postgres ingestion log."""

    def last(service: str, month: str) -> Held | None:
        table = table_name(contract_for(service))
        found = ingestion_log.read_last_load(conninfo, schema, table, parse_month(month))
        return None if found is None else (found.bytes, found.etag, found.last_modified)

    return last


def lake_versions(lake_url: str) -> LastVersion:
    """The source version each lake object was written from, from its metadata."""
    lake = open_lake(lake_url)

    def last(service: str, month: str) -> Held | None:
        stored = lake.stat(object_name(service, parse_month(month)))
        return None if stored is None else held_source(stored.metadata)

    return last


def changed_months(
    services: list[str],
    months: list[str],
    *,
    source_base: str,
    held: LastVersion,
    deadline: float = settings.DISCOVERY_DEADLINE,
    head_deadline: float = settings.HEAD_DEADLINE,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> list[dict[str, str]]:
    """(service, month, reason) for every month the target needs.

    Past ``deadline`` seconds, IncompleteDownload (retried) names what was not probed."""
    found = []
    started = time.monotonic()
    pairs = [(service, month) for service in services for month in months]
    for done, (service, month) in enumerate(pairs):
        left = deadline - (time.monotonic() - started)
        rest = ", ".join(f"{s} {m}" for s, m in pairs[done:])
        late = f"discovery took longer than its deadline of {deadline:.0f} s; not probed: {rest}"
        if left <= 0:
            raise IncompleteDownload(late)
        url = source_url(source_base, service, month)
        try:
            current = probe(url, deadline=min(head_deadline, left), limits=limits)
        except IncompleteDownload:
            if left < head_deadline:  # the total deadline cut this HEAD short
                raise IncompleteDownload(late) from None
            raise
        except SourceNotPublished:
            log.info("%s %s: not published yet", service, month)
            continue
        last = held(service, month)
        if last is None:
            reason = "new"
        elif current is not None and not current.same_as(*last):
            reason = "republished"
        else:
            log.info("%s %s: unchanged since it was loaded", service, month)
            continue
        log.info("%s %s: %s at %s", service, month, reason, url)
        found.append({"service": service, "month": month, "reason": reason})
    return found
