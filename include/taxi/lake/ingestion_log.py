"""The lake's ingestion log: what each object says about itself, in its metadata.

A parquet footer (and, on GCS, the object's metadata) records the source version it was
written from, the contract's fingerprint and the row count, so a later run can tell without
downloading that the lake already holds this exact source under this contract.
"""

from __future__ import annotations

from include.taxi.contract import Contract
from include.taxi.lake.parquet import ROWS_KEY
from include.taxi.sources.http import SourceVersion

__all__ = ["ROWS_KEY", "held_source", "lake_metadata"]


def lake_metadata(
    contract: Contract,
    month: str,
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
        "month": month,
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
