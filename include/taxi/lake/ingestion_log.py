"""The lake's ingestion log: what each object says about itself, in its metadata.

A parquet footer (and, on GCS, the object's metadata) records the source version it was
written from, the contract's fingerprint and the row count, so a later run can tell without
downloading that the lake already holds this exact source under this contract.

A failed write leaves the month's object as it was, so the object cannot say it failed: the
attempt is recorded in a small JSON object of its own under ``_failed/`` (readers of the lake
skip names starting with ``_``), removed by the month's next successful write.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.taxi import redact
from include.taxi.contract import Contract
from include.taxi.lake.parquet import ROWS_KEY
from include.taxi.lake.store import ZONES_OBJECT, Lake, LakeObject, object_name
from include.taxi.load_record import (
    FAILED,
    LOADED,
    LoadRecord,
    Rejected,
    TargetLog,
    after,
    cut,
    parse_warnings,
    shown,
)
from include.taxi.months import Month
from include.taxi.quality import QUALITY_KEY, TRAILING_MONTHS, WARNINGS_KEY, to_json
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion

__all__ = [
    "FAILED_PREFIX",
    "MONTH_KEY",
    "QUALITY_KEY",
    "ROWS_KEY",
    "RUN_ID_KEY",
    "SCHEMA_KEY",
    "SERVICE_KEY",
    "SOURCE_BYTES_KEY",
    "SOURCE_ETAG_KEY",
    "SOURCE_FORMAT_KEY",
    "SOURCE_KIND_KEY",
    "SOURCE_LAST_MODIFIED_KEY",
    "SOURCE_SHA256_KEY",
    "SOURCE_URL_KEY",
    "WARNINGS_KEY",
    "Failure",
    "LakeLog",
    "clear_failure",
    "failures",
    "held_version",
    "lake_metadata",
    "profile_summary",
    "quality_metadata",
    "record_failure",
    "stored_quality",
    "trailing_rows",
    "zone_ids",
]


SERVICE_KEY = "taxi.service"
MONTH_KEY = "taxi.month"
SCHEMA_KEY = "taxi.schema"
"""The fingerprint of the contract the object was written under."""
SOURCE_URL_KEY = "taxi.source_url"
SOURCE_BYTES_KEY = "taxi.source_bytes"
SOURCE_ETAG_KEY = "taxi.source_etag"
SOURCE_LAST_MODIFIED_KEY = "taxi.source_last_modified"
SOURCE_SHA256_KEY = "taxi.source_sha256"
SOURCE_KIND_KEY = "taxi.source_kind"
SOURCE_FORMAT_KEY = "taxi.source_format"
RUN_ID_KEY = "taxi.run_id"
"""The keys of a lake object's metadata, here only (``taxi.rows`` is the parquet writer's,
``taxi.quality`` and ``taxi.warnings`` the quality module's)."""


def lake_metadata(
    contract: Contract,
    month: Month | None,
    version: SourceVersion,
    run_id: str = "",
    *,
    source_kind: str = "",
    source_format: str = "",
) -> dict[str, str]:
    """What the lake object says about itself (the writer adds ``taxi.rows``): ``run_id`` is
    the Airflow run that wrote it (the Taxi months page links to it); the source kind
    (``mirror``/``tlc``) and format travel on to BigQuery's ingestion log."""
    return {
        SERVICE_KEY: contract.name,
        MONTH_KEY: str(month or ""),
        SCHEMA_KEY: contract.fingerprint,
        SOURCE_URL_KEY: version.url,
        SOURCE_BYTES_KEY: str(version.bytes or ""),
        SOURCE_ETAG_KEY: version.etag or "",
        SOURCE_LAST_MODIFIED_KEY: version.last_modified or "",
        SOURCE_SHA256_KEY: version.sha256 or "",
        RUN_ID_KEY: run_id,
        SOURCE_KIND_KEY: source_kind,
        SOURCE_FORMAT_KEY: source_format,
    }


def held_version(meta: dict[str, str]) -> SourceVersion:
    """The source version a lake object was written from; a ValueError if its size is not a
    whole number (the metadata is outside input by the time it is read)."""
    size = meta.get(SOURCE_BYTES_KEY)
    if size and not size.isdigit():
        raise ValueError(f"{SOURCE_BYTES_KEY} {shown(size)} is not a whole number")
    return SourceVersion(
        meta.get(SOURCE_URL_KEY) or "",
        int(size) if size else None,
        meta.get(SOURCE_ETAG_KEY) or None,
        meta.get(SOURCE_LAST_MODIFIED_KEY) or None,
        meta.get(SOURCE_SHA256_KEY) or None,
    )


def quality_metadata(
    quality: dict[str, Any] | None, warnings: list[dict[str, str]]
) -> dict[str, str]:
    """``taxi.quality`` (the month's profile) and ``taxi.warnings`` (its findings), JSON text."""
    return {QUALITY_KEY: to_json(quality), WARNINGS_KEY: to_json(warnings)}


def stored_quality(meta: dict[str, str]) -> tuple[str | None, str | None]:
    """The JSON text of a lake object's profile and warnings (None if written before them)."""
    return meta.get(QUALITY_KEY) or None, meta.get(WARNINGS_KEY) or None


def trailing_rows(lake: Lake, service: Service, month: Month) -> list[int]:
    """Rows of the lake's (up to 12) months before ``month``, newest first, from metadata."""
    rows = []
    for back in range(1, TRAILING_MONTHS + 1):
        stored = lake.stat(object_name(service, month.shift(-back)))
        if stored is not None and (n := stored.metadata.get(ROWS_KEY)):
            rows.append(int(n))
    return rows


def zone_ids(lake: Lake, workdir: Path) -> pa.Array | None:
    """The zone ids of the lake's zone lookup (a small object), None if it has none yet."""
    if lake.stat(ZONES_OBJECT) is None:
        return None
    path = lake.fetch(ZONES_OBJECT, workdir / "zones.parquet")
    ids = pq.read_table(path, columns=["locationid"]).column("locationid").combine_chunks()
    return pc.drop_null(ids)


def profile_summary(meta: dict[str, str]) -> dict[str, Any]:
    """The stored profile and warnings of a lake object, parsed (empty if it has none)."""
    quality, warnings = stored_quality(meta)
    return {
        "quality": json.loads(quality) if quality else None,
        "warnings": json.loads(warnings) if warnings else [],
    }


log = logging.getLogger(__name__)

FAILED_PREFIX = "_failed/"


def failure_name(service: Service, month: Month) -> str:
    """``_failed/yellow/yellow_tripdata_2021-02.json``: one record per service-month."""
    return f"{FAILED_PREFIX}{service}/{service}_tripdata_{month}.json"


@dataclass(frozen=True)
class Failure:
    """The latest failed write of a service-month, as recorded in the lake."""

    service: str
    month: str
    error: str
    source_url: str
    run_id: str
    at: datetime | None


def record_failure(
    lake: Lake,
    service: Service,
    month: Month,
    *,
    error: BaseException,
    source_url: str,
    run_id: str,
) -> None:
    """Record a failed write of the month (error redacted); best effort, never raises: the
    lake may be what failed, and the task's own error is the one to show."""
    note = {
        "service": str(service),
        "month": str(month),
        "status": "failed",
        "error": redact.text(f"{type(error).__name__}: {error}", 2000),
        "source_url": redact.public_url(source_url),
        "run_id": run_id,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    try:
        lake.put_note(failure_name(service, month), json.dumps(note))
    except Exception as exc:
        log.warning("could not record the failed attempt in the lake: %s", redact.text(str(exc)))


def clear_failure(lake: Lake, service: Service, month: Month) -> None:
    """Forget the month's failed attempt once a write succeeded; best effort."""
    try:
        lake.remove(failure_name(service, month))
    except Exception as exc:
        log.warning("could not clear a failed attempt in the lake: %s", redact.text(str(exc)))


def failures(lake: Lake) -> list[Failure]:
    """Every recorded failed write; a record that cannot be read is skipped (and logged)."""
    found = []
    for name, (text, updated) in lake.notes(FAILED_PREFIX).items():
        try:
            note = json.loads(text)
            month = str(note["month"])
            date.fromisoformat(f"{month}-01")
            at = datetime.fromisoformat(note["failed_at"]) if note.get("failed_at") else updated
            found.append(
                Failure(
                    str(note["service"]),
                    month,
                    str(note.get("error", ""))[:2000],
                    str(note.get("source_url", "")),
                    str(note.get("run_id", "")),
                    at,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("lake: unreadable failure record %s: %s", name, exc)
    return found


_OBJECT_MONTH = re.compile(r"_tripdata_(\d{4}-\d{2})\.parquet$")
Key = tuple[Service, Month]


def load_record(service: Service, name: str, obj: LakeObject) -> LoadRecord | None:
    """The load an object records; None if it is no month of ``service``; a ValueError naming
    the value if what it says about itself is unreadable."""
    if obj.unreadable:
        raise ValueError(obj.unreadable)
    meta = obj.metadata
    match = _OBJECT_MONTH.search(name)
    named = match.group(1) if match else None
    stored = meta.get(MONTH_KEY) or None
    if (stored is None and named is None) or meta.get(SERVICE_KEY, service) != service:
        return None
    month = Month.recorded(stored if stored is not None else named)
    if named is not None and str(month) != named:
        raise ValueError(f"{MONTH_KEY} {shown(stored)} differs from the month in its name")
    rows = meta.get(ROWS_KEY)
    if rows and not rows.isdigit():
        raise ValueError(f"{ROWS_KEY} {shown(rows)} is not a whole number")
    return LoadRecord(
        "lake",
        service,
        month,
        LOADED,
        int(rows) if rows else None,
        meta.get(RUN_ID_KEY) or None,
        obj.updated,
        None,
        held_version(meta),
        parse_warnings(meta.get(WARNINGS_KEY)),
        meta.get(SCHEMA_KEY) or None,
    )


class LakeLog:
    """The lake's log, read: each object's metadata and the failure records beside them."""

    target = "lake"

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def last_load(self, service: Service, month: Month) -> LoadRecord | None:
        """What the month's object says about itself (one stat, no download)."""
        name = object_name(service, month)
        stored = self.lake.stat(name)
        return None if stored is None else load_record(service, name, stored)

    def records(self, *, timeout: float | None = None) -> TargetLog:
        """Every trip object, from one listing per service (metadata, no download), and the
        failed writes recorded beside them; an object whose month, counts or footer cannot be
        read is rejected, the others kept."""
        found: dict[Key, LoadRecord] = {}
        rejected = []
        for service in Service:
            for name, obj in self.lake.listing(f"{service}/", timeout=timeout).items():
                try:
                    record = load_record(service, name, obj)
                except ValueError as exc:
                    value = obj.metadata.get(MONTH_KEY)
                    stored = shown(value) if value is not None else ""
                    rejected.append(Rejected("lake", name, stored, cut(str(exc))))
                    continue
                if record is not None:
                    found[(service, record.month)] = record
        latest, odd = self._failed(found)
        return TargetLog(latest, found, rejected=(*rejected, *odd))

    def _failed(self, found: dict[Key, LoadRecord]) -> tuple[dict[Key, LoadRecord], list[Rejected]]:
        """The latest attempts: a failed write leaves the object, its record says so."""
        latest = dict(found)
        rejected = []
        for failure in failures(self.lake):
            try:
                month = Month.recorded(failure.month)
            except ValueError as exc:
                where = "a failure record"
                rejected.append(Rejected("lake", where, shown(failure.month), str(exc)))
                continue
            if failure.service not in Service.__members__.values():
                continue
            key = (Service(failure.service), month)
            held = found.get(key)
            if held is None or after(failure.at, held.at):
                latest[key] = LoadRecord(
                    "lake", *key, FAILED, None, failure.run_id or None, failure.at, failure.error
                )
        return latest, rejected
