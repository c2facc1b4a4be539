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
from include.taxi.lake.store import ZONES_OBJECT, Lake, object_name
from include.taxi.months import Month
from include.taxi.quality import QUALITY_KEY, TRAILING_MONTHS, WARNINGS_KEY, to_json
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion

__all__ = [
    "FAILED_PREFIX",
    "QUALITY_KEY",
    "ROWS_KEY",
    "WARNINGS_KEY",
    "Failure",
    "clear_failure",
    "failures",
    "held_source",
    "lake_metadata",
    "profile_summary",
    "quality_metadata",
    "record_failure",
    "stored_quality",
    "trailing_rows",
    "zone_ids",
]


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
    values = {
        "service": contract.name,
        "month": str(month or ""),
        "schema": contract.fingerprint,
        "source_url": version.url,
        "source_bytes": str(version.bytes or ""),
        "source_etag": version.etag or "",
        "source_last_modified": version.last_modified or "",
        "source_sha256": version.sha256 or "",
        "run_id": run_id,
        "source_kind": source_kind,
        "source_format": source_format,
    }
    return {f"taxi.{key}": value for key, value in values.items()}


def held_source(meta: dict[str, str]) -> tuple[int | None, str | None, str | None]:
    """Size, ETag and Last-Modified of the source a lake object was written from."""
    size = meta.get("taxi.source_bytes")
    return (
        int(size) if size else None,
        meta.get("taxi.source_etag") or None,
        meta.get("taxi.source_last_modified") or None,
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
