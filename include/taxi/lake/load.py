"""One unit of work, without Airflow: fetch a source file and put its month in the lake.

source csv.gz → the contract (the same one the Postgres path uses) → a parquet file in a
private temp directory → the lake, atomically. The parquet footer (and, on GCS, the object's
metadata) records the source version, the row count and the schema fingerprint, so a later
run can tell without downloading that the lake already holds this exact source.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from include.taxi.contract import ZONE_LOOKUP, ZONES, contract_for
from include.taxi.errors import SourceNotPublished
from include.taxi.lake.ingestion_log import (
    ROWS_KEY,
    SCHEMA_KEY,
    SOURCE_URL_KEY,
    clear_failure,
    held_version,
    lake_metadata,
    quality_metadata,
    record_failure,
    trailing_rows,
    zone_ids,
)
from include.taxi.lake.parquet import READ_BLOCK_SIZE, ParquetFile, write_parquet
from include.taxi.lake.store import (
    ZONES_OBJECT,
    Lake,
    LakeObject,
    LocalLake,
    object_name,
    open_lake,
)
from include.taxi.months import Month
from include.taxi.quality import Profile
from include.taxi.results import SUPERSEDED, LakeMonth, ZonesLoad
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.sources.catalogue import MIRROR, Source
from include.taxi.sources.http import (
    DEFAULT_LIMITS,
    Download,
    DownloadLimits,
    check_space,
)
from include.taxi.sources.reader import open_source
from include.taxi.workdir import month_workdir

log = logging.getLogger(__name__)


def _unchanged(
    stored: LakeObject | None,
    service: Service,
    source: Source,
    month: Month,
    limits: DownloadLimits,
) -> dict[str, str] | None:
    """The lake object's metadata if it holds the current source under the current contract
    (and says so in the log)."""
    contract = contract_for(service)
    current = source.probe(service, month, limits=limits)
    if current is None or stored is None:
        return None
    meta = stored.metadata
    held = held_version(meta)
    if meta.get(SCHEMA_KEY) != contract.fingerprint or not current.same_as(
        held.bytes, held.etag, held.last_modified
    ):
        return None
    log.info(
        "%s %s unchanged at the source since it was written to %s (%s rows): nothing to "
        "do; trigger with force_reload to rewrite it",
        contract.name,
        month,
        stored.uri,
        meta.get(ROWS_KEY),
    )
    return meta


def _newer_stored(
    lake: Lake, name: str, before: LakeObject | None, version: SourceVersion, force: bool
) -> LakeObject | None:
    """The object, if it was written from a newer version of the source (by Last-Modified)
    than ``version`` and either by another run since ``before`` (this run's first look) or
    from the same file (a lagging mirror or CDN edge served an older copy; unless ``force``):
    it must stay. An object of another file from before this run began (the source was
    switched) is replaced."""
    now = lake.stat(name)
    if now is None or not version.older_than(held_version(now.metadata).last_modified):
        return None
    meanwhile = before is None or not _same_object(before, now)
    stale_copy = not force and version.same_file(now.metadata.get(SOURCE_URL_KEY))
    return now if meanwhile or stale_copy else None


def _same_object(a: LakeObject, b: LakeObject) -> bool:
    if a.generation is not None or b.generation is not None:
        return a.generation == b.generation
    return a.metadata == b.metadata and a.bytes == b.bytes


@dataclasses.dataclass(frozen=True)
class _Written:
    """What one write did: the download, the parquet file, and the object the month now has,
    ``kept_newer`` when that is a newer version than this run's, left in place."""

    fetched: Download
    parquet: ParquetFile
    stored: LakeObject
    kept_newer: bool = False


def _write(
    lake: Lake,
    source: Source,
    service_month: tuple[Service, Month],
    name: str,
    before: LakeObject | None,
    force: bool,
    workdir: str | None,
    run_id: str,
    limits: DownloadLimits,
) -> _Written:
    """Download, convert and put the month, unless the object became (or was) a newer version
    of the source meanwhile; ``before`` is the object this write replaces."""
    service, month = service_month
    contract = contract_for(service)
    with month_workdir("lake", service, month, workdir) as tmp:
        # the TLC's file has the lake object's very name: keep the download in a folder apart
        (download_dir := Path(tmp) / "source").mkdir()
        fetched = source.download(service, month, download_dir, limits=limits)
        reader = open_source(
            fetched.path,
            contract,
            month.first_day,
            block_size=READ_BLOCK_SIZE,
            parallel=True,
            max_csv_bytes=limits.max_csv_bytes,
            max_parquet_rows=limits.max_parquet_rows,
            max_row_group_bytes=limits.max_row_group_bytes,
        )
        metadata = lake_metadata(
            contract,
            month,
            fetched.version,
            run_id,
            source_kind=source.kind,
            source_format=source.format,
        )
        profile = Profile(
            contract,
            month.first_day,
            zone_ids=zone_ids(lake, Path(tmp)),
            trailing_rows=trailing_rows(lake, service, month),
            zone_source=lake.url,
        )
        # the parquet file comes out about the size of the csv.gz (21.7 vs 21-25 MB a month)
        check_space(Path(tmp), fetched.bytes + limits.min_free_bytes, f"writing {name}")
        parquet = write_parquet(
            reader, Path(tmp) / Path(name).name, metadata=metadata, profile=profile
        )
        if newer := _newer_stored(lake, name, before, fetched.version, force):
            return _Written(fetched, parquet, newer, kept_newer=True)
        metadata |= {ROWS_KEY: str(parquet.rows)} | quality_metadata(
            parquet.quality, parquet.warnings
        )
        replaces = before.generation if before is not None else 0
        return _Written(fetched, parquet, lake.put(parquet.path, name, metadata, replaces=replaces))


def month_to_lake(
    service: Service,
    month: Month,
    *,
    source_base: str,
    lake_url: str,
    force: bool = False,
    workdir: str | None = None,
    run_id: str = "",
    source_kind: str = MIRROR,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> LakeMonth:
    """Write ``service``'s ``month`` to the lake as parquet; returns what moved.

    ``status`` is ``written``, or ``unchanged`` when the lake already holds this source.
    ``source_kind``: ``mirror`` (csv.gz at ``source_base``) or ``tlc`` (parquet).
    """
    source = Source(source_kind, source_base)
    source.check_month(service, month)
    lake = open_lake(lake_url)
    name = object_name(service, month)
    url = source.url(service, month)
    summary = LakeMonth(service=service, month=str(month), url=url, status="unchanged", uri="")
    if isinstance(lake, LocalLake):
        lake.remove_stale_temps(name)
    stored = lake.stat(name)  # the version this write replaces (GCS: the put's precondition)
    if not force and (meta := _unchanged(stored, service, source, month, limits)):
        clear_failure(lake, service, month)
        rows = meta.get(ROWS_KEY, "")
        return summary | {"uri": lake.uri(name), "rows": int(rows) if rows.isdigit() else None}
    started = time.monotonic()
    try:
        written = _write(
            lake, source, (service, month), name, stored, force, workdir, run_id, limits
        )
    except SourceNotPublished:
        raise  # a skip, not a failure: nothing to record
    except Exception as exc:  # every failed attempt is on the record, refused files too
        record_failure(lake, service, month, error=exc, source_url=url, run_id=run_id)
        raise
    clear_failure(lake, service, month)
    if written.kept_newer:
        stored, fetched = written.stored, written.fetched
        log.warning(
            "%s %s: not written: %s holds a newer version of the source (Last-Modified "
            "%s) than this run downloaded (Last-Modified %s); the newer stays",
            service,
            month,
            stored.uri,
            held_version(stored.metadata).last_modified,
            fetched.version.last_modified,
        )
        return summary | {"status": SUPERSEDED, "uri": stored.uri, "rows": None}
    return _written_result(summary, written, time.monotonic() - started)


def _written_result(summary: LakeMonth, written: _Written, seconds: float) -> LakeMonth:
    """What a written month returns (the task's XCom) and says in the log."""
    fetched, parquet, stored = written.fetched, written.parquet, written.stored
    service, month, url = summary["service"], summary["month"], summary["url"]
    result: LakeMonth = summary | {
        "status": "written",
        "uri": stored.uri,
        "source_bytes": fetched.bytes,
        "source_sha256": fetched.version.sha256,
        "source_etag": fetched.version.etag,
        "source_last_modified": fetched.version.last_modified,
        "rows": parquet.rows,
        "bytes": parquet.bytes,
        "row_groups": parquet.row_groups,
        "seconds": round(seconds, 2),
        "quality": parquet.quality,
        "warnings": parquet.warnings,
    }
    for warning in parquet.warnings:
        log.warning("%s %s: %s", service, month, warning["message"])
    log.info(
        "%s %s: %d rows read from %s (%d bytes) → %s (%d bytes, %d row groups) in %.1f s",
        service,
        month,
        parquet.rows,
        url,
        fetched.bytes,
        stored.uri,
        parquet.bytes,
        parquet.row_groups,
        seconds,
    )
    return result


def zones_to_lake(
    *,
    source_base: str,
    lake_url: str,
    workdir: str | None = None,
    source_kind: str = MIRROR,
    limits: DownloadLimits = DEFAULT_LIMITS,
) -> ZonesLoad:
    """Replace the lake's zone lookup with the source's current file (small: always written)."""
    lake = open_lake(lake_url)
    source = Source(source_kind, source_base)
    url = source.zones_url()
    with month_workdir("lake", ZONES, None, workdir) as tmp:
        fetched = source.download_zones(Path(tmp), limits=limits)
        reader = open_source(fetched.path, ZONE_LOOKUP, max_csv_bytes=limits.max_csv_bytes)
        metadata = lake_metadata(
            ZONE_LOOKUP, None, fetched.version, source_kind=source.kind, source_format="csv"
        )
        parquet = write_parquet(reader, Path(tmp) / Path(ZONES_OBJECT).name, metadata=metadata)
        stored = lake.put(
            parquet.path,
            ZONES_OBJECT,
            {
                **metadata,
                ROWS_KEY: str(parquet.rows),
                **quality_metadata(parquet.quality, parquet.warnings),
            },
        )
    log.info("zones: %d rows from %s → %s", parquet.rows, url, stored.uri)
    return ZonesLoad(url=url, uri=stored.uri, rows=parquet.rows, bytes=parquet.bytes)
