"""Where the source files live and how they are fetched: streamed to disk, never into memory."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from include.taxi.contract import ZONES, contract_for
from include.taxi.errors import BadSourceFile, IncompleteDownload, SourceNotPublished

log = logging.getLogger(__name__)

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


def file_name(service: str, month: str) -> str:
    """``yellow_tripdata_2021-01.csv.gz``; the zone lookup has one file for all months."""
    if service == ZONES:
        return "taxi_zone_lookup.csv"
    contract_for(service)
    return f"{service}_tripdata_{month}.csv.gz"


def source_url(base: str, service: str, month: str) -> str:
    """``{base}/{service}/{file}`` for trips, ``{base}/misc/taxi_zone_lookup.csv`` for zones."""
    folder = "misc" if service == ZONES else service
    return f"{base.rstrip('/')}/{folder}/{file_name(service, month)}"


@dataclass(frozen=True)
class SourceVersion:
    """What identifies one published version of a source file."""

    url: str
    bytes: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None = None

    def same_as(self, bytes_: int | None, etag: str | None, last_modified: str | None) -> bool:
        """Same size and the same ETag (or, without ETags, Last-Modified): what HEAD can tell."""
        if self.bytes is None or self.bytes != bytes_:
            return False
        if self.etag and etag:
            return self.etag == etag
        return bool(self.last_modified and self.last_modified == last_modified)


@dataclass(frozen=True)
class Download:
    path: Path
    version: SourceVersion
    seconds: float

    @property
    def bytes(self) -> int:
        return self.version.bytes or 0


FORBIDDEN_ANSWER = (
    "answered 403 Forbidden on every try: a CDN in front of an object store (the TLC's "
    "CloudFront) says so for an object that does not exist, and when it throttles; taken as "
    "not published"
)


def _session(retries: int, *, retry_forbidden: bool = False) -> requests.Session:
    """A session that retries refused connections and 429/5xx answers (and 403 if asked) with
    backoff; after the last try the answer is returned, never retried forever."""
    statuses = (429, 500, 502, 503, 504, *((403,) if retry_forbidden else ()))
    retry = Retry(
        total=retries,
        backoff_factor=1.0,
        backoff_max=30,
        status_forcelist=statuses,
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _not_published(url: str, status: int, forbidden_is_missing: bool, hint: str) -> None:
    if status == 404:
        raise SourceNotPublished(url, hint=hint)
    if status == 403 and forbidden_is_missing:
        raise SourceNotPublished(url, answer=FORBIDDEN_ANSWER, hint=hint)


def download(
    url: str,
    dest: Path,
    *,
    retries: int = 3,
    timeout: float = 60.0,
    forbidden_is_missing: bool = False,
    hint: str = "",
) -> Download:
    """Stream ``url`` to ``dest``; 404 is SourceNotPublished, a short body IncompleteDownload.

    ``forbidden_is_missing``: a 403 (retried first) is SourceNotPublished too; ``hint`` is added
    to a not-published message (where else the month may be)."""
    started = time.monotonic()
    with (
        _session(retries, retry_forbidden=forbidden_is_missing) as session,
        session.get(url, stream=True, timeout=timeout) as resp,
    ):
        _not_published(url, resp.status_code, forbidden_is_missing, hint)
        resp.raise_for_status()
        size = 0
        digest = hashlib.sha256()
        with dest.open("wb") as out:
            # the bytes as sent: a server may label a .csv.gz "Content-Encoding: gzip"
            try:
                for chunk in resp.raw.stream(CHUNK, decode_content=False):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except ProtocolError as exc:
                raise IncompleteDownload(f"{url}: connection broken after {size} bytes") from exc
        expected = resp.headers.get("Content-Length")
        if expected is not None and int(expected) != size:
            raise IncompleteDownload(f"{url}: got {size} of {expected} bytes")
        version = SourceVersion(
            url=url,
            bytes=size,
            etag=resp.headers.get("ETag"),
            last_modified=resp.headers.get("Last-Modified"),
            sha256=digest.hexdigest(),
        )
        result = Download(path=dest, version=version, seconds=time.monotonic() - started)
    log.info("downloaded %s: %d bytes in %.1f s", url, result.bytes, result.seconds)
    if url.endswith(".gz"):
        check_gzip(dest)
    return result


def probe(
    url: str,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    forbidden_is_missing: bool = False,
    hint: str = "",
) -> SourceVersion | None:
    """HEAD the file: its size and validators, to skip a download when nothing changed.

    404 (and 403 with ``forbidden_is_missing``) raises SourceNotPublished; a server that does
    not answer HEAD usefully gives None.
    """
    with _session(retries, retry_forbidden=forbidden_is_missing) as session:
        resp = session.head(url, allow_redirects=True, timeout=timeout)
    _not_published(url, resp.status_code, forbidden_is_missing, hint)
    length = resp.headers.get("Content-Length")
    if not resp.ok or length is None:
        return None
    return SourceVersion(
        url=url,
        bytes=int(length),
        etag=resp.headers.get("ETag"),
        last_modified=resp.headers.get("Last-Modified"),
    )


def check_gzip(path: Path) -> None:
    """Refuse what is not gzip (a wrong URL usually returns an HTML page) before parsing it."""
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        raise BadSourceFile(path.name, "the file is empty", hint="Check the source URL")
    if head[:2] != GZIP_MAGIC:
        shown = head[:40].decode("utf-8", "replace").strip()
        raise BadSourceFile(
            path.name,
            f"not a gzip file (it starts with {shown!r})",
            hint="A wrong URL often returns an HTML page: check the Variable taxi_source_url",
        )
