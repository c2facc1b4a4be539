"""The data lake: a local folder or a GCS bucket, holding one parquet object per service-month.

``taxi_lake_url`` picks it: ``file:///abs/path`` (or a plain absolute path) for a folder,
``gs://bucket/prefix`` for GCS through the Airflow connection ``google_cloud_default``.
Objects are ``{service}/{year}/{service}_tripdata_{YYYY-MM}.parquet`` under the prefix.

Writes are atomic: a folder gets a hidden temporary file renamed over the target in the same
directory; GCS makes an object visible only once its upload completes. Either way a reader sees
the old object or the new one, never half of one, and a rerun overwrites only its own month.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from include.taxi import settings
from include.taxi.errors import LakeObjectChanged, LakeSchemaMismatch
from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.workdir import is_stale

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

GCP_CONN_ID = settings.GCP_CONN_ID
PARQUET_MIME = "application/vnd.apache.parquet"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")


def object_name(service: Service, month: Month) -> str:
    """``yellow/2021/yellow_tripdata_2021-01.parquet``."""
    return f"{service}/{month.year:04d}/{service}_tripdata_{month}.parquet"


ZONES_OBJECT = "misc/taxi_zone_lookup.parquet"
"""The zone lookup: one object for all months, replaced whole."""


@dataclass(frozen=True)
class LakeObject:
    uri: str
    bytes: int
    metadata: dict[str, str]
    generation: int | None = None
    """GCS's version number of the object (None in a folder): reads and writes that must see
    one version pin it."""
    updated: datetime | None = None
    """When the object was last written (file mtime, GCS ``updated``), where listed."""
    unreadable: str | None = None
    """Why a listed object's metadata could not be read (a folder file that is no parquet)."""


class Lake(Protocol):
    url: str

    def uri(self, name: str) -> str: ...

    def put(
        self, local: Path, name: str, metadata: dict[str, str], *, replaces: int | None = None
    ) -> LakeObject: ...

    def stat(self, name: str) -> LakeObject | None: ...

    def fetch(self, name: str, dest: Path) -> Path: ...

    def parquet_footer(self, name: str, generation: int | None = None) -> pq.FileMetaData: ...

    def listing(self, prefix: str, *, timeout: float | None = None) -> dict[str, LakeObject]:
        """Every parquet object under ``prefix`` (name → stat): one listing, no download;
        ``timeout`` bounds each request of a remote listing."""
        ...

    def put_note(self, name: str, text: str) -> None:
        """Write a small text object (a failed attempt's record), replacing it whole."""
        ...

    def notes(self, prefix: str) -> dict[str, tuple[str, datetime | None]]:
        """Every text object under ``prefix``: name → (text, when written)."""
        ...

    def remove(self, name: str) -> None:
        """Delete an object if it exists."""
        ...


def open_lake(url: str, *, gcp_conn_id: str = GCP_CONN_ID) -> Lake:
    """The lake named by ``url``; anything but a folder or a gs:// bucket is refused."""
    parsed = urlparse(url)
    if parsed.scheme == "gs":
        prefix = parsed.path.strip("/")
        if not _BUCKET.match(parsed.netloc) or not _PREFIX.match(prefix) or ".." in prefix:
            raise ValueError(f"taxi_lake_url {url!r} is not gs://bucket[/prefix]")
        return GcsLake(parsed.netloc, prefix, gcp_conn_id)
    if parsed.scheme in ("file", ""):
        path = Path(parsed.path if parsed.scheme else url)
        if not path.is_absolute() or parsed.netloc:
            raise ValueError(f"taxi_lake_url {url!r}: give an absolute path, file:///abs/path")
        return LocalLake(path)
    raise ValueError(f"taxi_lake_url {url!r}: the lake is a folder (file://) or gs://bucket")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalLake:
    """A folder; parquet metadata lives in the file's footer (see lake.ingestion_log)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def uri(self, name: str) -> str:
        return (self.root / name).as_uri()

    def put(
        self, local: Path, name: str, metadata: dict[str, str], *, replaces: int | None = None
    ) -> LakeObject:
        """Copy to a hidden temp file beside the target, fsync it, rename it over the target,
        fsync the folder (the rename itself survives a power cut). ``replaces`` is a GCS
        notion: a folder has one writer per month (the task's own run)."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(local, temp)
            with temp.open("rb") as f:
                os.fsync(f.fileno())
            os.replace(temp, target)
            _fsync_dir(target.parent)
        finally:
            temp.unlink(missing_ok=True)
        return LakeObject(self.uri(name), target.stat().st_size, metadata)

    def stat(self, name: str) -> LakeObject | None:
        target = self.root / name
        if not target.exists():
            return None
        footer = pq.read_metadata(target).metadata or {}
        metadata = {k.decode(): v.decode() for k, v in footer.items() if k.startswith(b"taxi.")}
        return LakeObject(self.uri(name), target.stat().st_size, metadata)

    def fetch(self, name: str, dest: Path) -> Path:
        shutil.copyfile(self.root / name, dest)
        return dest

    def listing(self, prefix: str, *, timeout: float | None = None) -> dict[str, LakeObject]:
        """A file whose footer cannot be read is listed with the reason, not raised: one
        foreign file must not hide the folder's other months."""
        found = {}
        base = self.root / prefix
        for path in sorted(base.rglob("*.parquet")) if base.is_dir() else []:
            if path.name.startswith("."):  # a writer's temp file, not an object yet
                continue
            name = path.relative_to(self.root).as_posix()
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            try:
                stat = self.stat(name)
            except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
                reason = f"its parquet footer cannot be read ({type(exc).__name__})"
                found[name] = LakeObject(self.uri(name), 0, {}, updated=mtime, unreadable=reason)
                continue
            if stat is not None:
                found[name] = LakeObject(stat.uri, stat.bytes, stat.metadata, updated=mtime)
        return found

    def parquet_footer(self, name: str, generation: int | None = None) -> pq.FileMetaData:
        return pq.read_metadata(self.root / name)

    def put_note(self, name: str, text: str) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
        try:
            temp.write_text(text, encoding="utf-8")
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def notes(self, prefix: str) -> dict[str, tuple[str, datetime | None]]:
        base = self.root / prefix
        found: dict[str, tuple[str, datetime | None]] = {}
        for path in sorted(base.rglob("*.json")) if base.is_dir() else []:
            if path.name.startswith("."):
                continue
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found[path.relative_to(self.root).as_posix()] = (path.read_text("utf-8"), mtime)
        return found

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def remove_stale_temps(self, name: str) -> list[Path]:
        """Temp files a killed put of ``name`` left beside it: those of a process that is gone
        (the pid is in the name; see ``workdir.is_stale``)."""
        target = self.root / name
        if not target.parent.exists():
            return []
        removed = []
        for temp in target.parent.glob(f".{target.name}.*.tmp"):
            if is_stale(temp, temp.name[len(target.name) + 2 :].split("-", 1)[0]):
                temp.unlink(missing_ok=True)
                removed.append(temp)
        return removed


class GcsLake:
    """A bucket and prefix, through the google provider's GCSHook."""

    def __init__(self, bucket: str, prefix: str, gcp_conn_id: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.gcp_conn_id = gcp_conn_id
        self.url = f"gs://{bucket}/{prefix}".rstrip("/")

    def _hook(self) -> GCSHook:
        """Imported here: the provider stays out of DAG parsing."""
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        return GCSHook(gcp_conn_id=self.gcp_conn_id)

    def _object(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{self._object(name)}"

    def put(
        self, local: Path, name: str, metadata: dict[str, str], *, replaces: int | None = None
    ) -> LakeObject:
        """Upload; with ``replaces`` (the generation read before the write, 0: none), only if
        nobody else replaced the object meanwhile (GCS's ``ifGenerationMatch``, which also
        makes the client's retries of the upload safe)."""
        from google.api_core.exceptions import PreconditionFailed

        blob = self._hook().get_conn().bucket(self.bucket).blob(self._object(name))
        blob.metadata = metadata
        try:
            blob.upload_from_filename(
                str(local), content_type=PARQUET_MIME, if_generation_match=replaces
            )
        except PreconditionFailed:
            raise LakeObjectChanged(
                f"{self.uri(name)} was replaced by another writer while this one wrote it "
                f"(expected generation {replaces}); nothing was overwritten, a retry compares "
                "with the new object"
            ) from None
        return LakeObject(self.uri(name), local.stat().st_size, metadata, blob.generation)

    def stat(self, name: str) -> LakeObject | None:
        blob = self._hook().get_conn().bucket(self.bucket).get_blob(self._object(name))
        if blob is None:
            return None
        return LakeObject(
            self.uri(name), blob.size or 0, dict(blob.metadata or {}), blob.generation
        )

    def fetch(self, name: str, dest: Path) -> Path:
        self._hook().download(self.bucket, self._object(name), filename=str(dest))
        return dest

    def listing(self, prefix: str, *, timeout: float | None = None) -> dict[str, LakeObject]:
        """One paged list call: GCS returns each object's metadata with the listing."""
        root = f"{self.prefix}/" if self.prefix else ""
        bounded = {"timeout": timeout, "retry": None} if timeout is not None else {}
        blobs = self._hook().get_conn().list_blobs(self.bucket, prefix=f"{root}{prefix}", **bounded)
        return {
            blob.name[len(root) :]: LakeObject(
                f"gs://{self.bucket}/{blob.name}",
                blob.size or 0,
                dict(blob.metadata or {}),
                blob.generation,
                blob.updated,
            )
            for blob in blobs
            if blob.name.endswith(".parquet")
        }

    def put_note(self, name: str, text: str) -> None:
        blob = self._hook().get_conn().bucket(self.bucket).blob(self._object(name))
        blob.upload_from_string(text, content_type="application/json")

    def notes(self, prefix: str) -> dict[str, tuple[str, datetime | None]]:
        root = f"{self.prefix}/" if self.prefix else ""
        blobs = self._hook().get_conn().list_blobs(self.bucket, prefix=f"{root}{prefix}")
        return {
            blob.name[len(root) :]: (blob.download_as_text(), blob.updated)
            for blob in blobs
            if blob.name.endswith(".json")
        }

    def remove(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._hook().get_conn().bucket(self.bucket).blob(self._object(name)).delete()

    def parquet_footer(self, name: str, generation: int | None = None) -> pq.FileMetaData:
        """Schema and row count from two ranged reads, not a download of the month; with
        ``generation``, of that version only (both reads pinned to it)."""
        from google.api_core.exceptions import NotFound

        bucket = self._hook().get_conn().bucket(self.bucket)
        try:
            blob = bucket.get_blob(self._object(name), generation=generation)
        except NotFound:
            blob = None
        if blob is None and generation is not None:
            raise LakeObjectChanged(
                f"{self.uri(name)} generation {generation} is gone: the object was replaced "
                "meanwhile; nothing was loaded, a retry reads the new one"
            )
        if blob is None:
            raise FileNotFoundError(self.uri(name))
        size = blob.size or 0
        tail = blob.download_as_bytes(start=max(size - 8, 0))
        if size < 12 or tail[4:] != b"PAR1":
            raise LakeSchemaMismatch(f"{self.uri(name)} is not a parquet file")
        footer_len = int.from_bytes(tail[:4], "little")
        footer = blob.download_as_bytes(start=size - 8 - footer_len)
        return pq.read_metadata(pa.BufferReader(b"PAR1" + footer))
