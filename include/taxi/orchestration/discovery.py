"""Which months are new or republished at the source, compared with what a target holds.

One HEAD request per (service, month) in a look-back window: a month never loaded is *new*,
one whose size or ETag/Last-Modified differ from its last load is *republished*; one loaded
under another schema contract counts as new; anything else needs no work. Months the source
has not published (404) are simply not there yet. What a target holds is its log's last load
(``last_load`` of the target's reader, the one the Taxi months page reads); a lake month
BigQuery's ingestion log does not hold is owed a load into BigQuery.

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
from include.taxi.contract import contract_for
from include.taxi.errors import IncompleteDownload, SourceNotPublished
from include.taxi.lake.ingestion_log import LakeLog
from include.taxi.lake.store import object_name, open_lake
from include.taxi.load_record import IngestionLog
from include.taxi.months import Month
from include.taxi.postgres.ingestion_log import PostgresLog
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.sources.catalogue import MIRROR, TLC, TLC_FIRST_MONTH, Source
from include.taxi.sources.http import DEFAULT_LIMITS, DownloadLimits

LastVersion = Callable[[Service, Month], SourceVersion | None]
"""The source version a target holds of a (service, month), None if it is owed a load."""

log = logging.getLogger(__name__)


def recent_months(today: date, lookback: int) -> list[Month]:
    """The ``lookback`` months before ``today``'s month, newest first."""
    return [Month.of(today).shift(-back) for back in range(1, lookback + 1)]


def held_versions(target: IngestionLog) -> LastVersion:
    """The source version of each month's last load in ``target``'s log; None when it was
    never loaded, or loaded under another contract: the month is owed a load."""

    def last(service: Service, month: Month) -> SourceVersion | None:
        try:
            found = target.last_load(service, month)
        except ValueError as exc:  # e.g. a foreign object at the month's name: rewrite it
            log.warning(
                "%s %s: %s log unreadable (%s): owed a load", service, month, target.target, exc
            )
            return None
        if found is None or found.contract != contract_for(service).fingerprint:
            return None
        return found.source

    return last


def postgres_versions(conninfo: str, schema: str) -> LastVersion:
    """The source version of each month's last load, from the Postgres ingestion log."""
    return held_versions(PostgresLog(conninfo, schema))


def lake_versions(lake_url: str) -> LastVersion:
    """The source version each lake object was written from, from its metadata."""
    return held_versions(LakeLog(open_lake(lake_url)))


def in_bigquery(service: Service, month: Month, *, lake_url: str, dataset: str) -> bool:
    """Whether nothing more is owed downstream of a lake month: a folder lake feeds nothing;
    a GCS month is done once BigQuery's ingestion log holds its current object under the
    current contract. If BigQuery cannot be asked, the month counts as not loaded: loading it
    again is harmless, never loading it is not."""
    if not lake_url.startswith("gs://"):
        return True
    from include.taxi.bigquery.load import in_bigquery as logged

    try:
        return logged(service, month, lake_url=lake_url, dataset=dataset)
    except Exception as exc:
        log.warning(
            "%s %s: could not read BigQuery's ingestion log (%s); treating the month as not loaded",
            service,
            month,
            exc,
        )
        return False


def missing_in_bigquery(
    services: list[Service], months: list[Month], *, lake_url: str, dataset: str
) -> list[dict[str, str]]:
    """(service, month) of every lake month BigQuery does not hold: its write's asset event
    was lost (the task died after the put, with no retry left)."""
    if not lake_url.startswith("gs://"):
        return []
    lake = open_lake(lake_url)
    found = []
    for service in services:
        for month in months:
            if lake.stat(object_name(service, month)) is None:
                continue
            if not in_bigquery(service, month, lake_url=lake_url, dataset=dataset):
                log.info("%s %s: in the lake but not in BigQuery", service, month)
                found.append({"service": str(service), "month": str(month)})
    return found


def changed_months(
    services: list[Service],
    months: list[Month],
    *,
    source_base: str,
    held: LastVersion,
    source_kind: str = MIRROR,
    deadline: float = settings.DISCOVERY_DEADLINE,
    head_deadline: float = settings.HEAD_DEADLINE,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> list[dict[str, str]]:
    """(service, month, reason) for every month the target needs.

    With the TLC as source, the newest months 404 (or 403) until published, about two months
    late: the look-back window (taxi_daily_lookback_months, default 3) spans that lag, so a
    month is found on the first day it appears. Months before a service's first TLC month are
    not asked for. Past ``deadline`` seconds, IncompleteDownload (retried) names what was not
    probed."""
    source = Source(source_kind, source_base)
    found = []
    started = time.monotonic()
    pairs = [
        (service, month)
        for service in services
        for month in months
        if source.kind != TLC or month >= TLC_FIRST_MONTH[service]
    ]
    for done, (service, month) in enumerate(pairs):
        left = deadline - (time.monotonic() - started)
        rest = ", ".join(f"{s} {m}" for s, m in pairs[done:])
        late = f"discovery took longer than its deadline of {deadline:.0f} s; not probed: {rest}"
        if left <= 0:
            raise IncompleteDownload(late)
        url = source.url(service, month)
        try:
            current = source.probe(service, month, deadline=min(head_deadline, left), limits=limits)
        except IncompleteDownload:
            if left < head_deadline:  # the total deadline cut this HEAD short
                raise IncompleteDownload(late) from None
            raise
        except SourceNotPublished:
            log.info("%s %s: not published yet at %s", service, month, url)
            continue
        last = held(service, month)
        if last is None:
            reason = "new"
        elif current is not None and not current.same_as(last.bytes, last.etag, last.last_modified):
            reason = "republished"
        else:
            log.info("%s %s: unchanged since it was loaded", service, month)
            continue
        log.info("%s %s: %s at %s", service, month, reason, url)
        found.append({"service": str(service), "month": str(month), "reason": reason})
    return found
