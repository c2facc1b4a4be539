"""Where the source files live and how they are fetched: streamed to disk, never into memory.

Every download is bounded (``DownloadLimits``, defaults in ``include/taxi/settings.py``): its
size (announced and actual), the free space it must leave in its folder, a total deadline
(the socket timeout only bounds one read: a source trickling a byte a minute held a try for
its whole hour), and where it may be redirected (never from https to http; to another host only
if allowed). The decompressed size is bounded by the reader (``ContractReader(max_bytes=)``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from include.taxi import redact, settings
from include.taxi.errors import (
    BadSourceFile,
    IncompleteDownload,
    InsufficientSpace,
    SourceNotPublished,
    UnsafeRedirect,
)
from include.taxi.source_version import SourceVersion

log = logging.getLogger(__name__)

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
T = TypeVar("T")


@dataclass(frozen=True)
class DownloadLimits:
    """What one source file may cost; read from Variables by ``orchestration.config``."""

    max_bytes: int = settings.DEFAULT_MAX_DOWNLOAD_BYTES
    max_csv_bytes: int = settings.DEFAULT_MAX_CSV_BYTES
    max_parquet_rows: int = settings.DEFAULT_MAX_PARQUET_ROWS
    max_row_group_bytes: int = settings.DEFAULT_MAX_ROW_GROUP_BYTES
    deadline: float = settings.DEFAULT_DOWNLOAD_DEADLINE
    redirect_hosts: tuple[str, ...] = tuple(settings.DEFAULT_REDIRECT_HOSTS.split(","))
    min_free_bytes: int = settings.MIN_FREE_BYTES

    def host_allowed(self, host: str) -> bool:
        """``host`` is listed, or falls under a listed ``.domain``."""
        host = host.lower()
        for entry in (e.strip().lower() for e in self.redirect_hosts):
            if entry and (host == entry or (entry.startswith(".") and host.endswith(entry))):
                return True
        return False


DEFAULT_LIMITS = DownloadLimits()


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


def _session(
    retries: int, url: str, limits: DownloadLimits, *, retry_forbidden: bool = False
) -> requests.Session:
    """A session that retries refused connections and 429/5xx answers (and 403 if asked) with
    backoff, after the last try returning the answer (never retrying forever), and refuses a
    redirect that leaves https or goes to a host not allowed."""
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
    session.hooks["response"].append(_redirect_guard(url, limits))
    return session


def _redirect_guard(url: str, limits: DownloadLimits) -> Callable[..., None]:
    """A response hook: requests calls it on every answer, each redirect before following it."""
    origin = urlsplit(url)

    def check(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not response.is_redirect:
            return
        target = urljoin(response.url, response.headers.get("location", ""))
        to = urlsplit(target)
        shown = redact.source(target)
        if to.scheme not in ("http", "https") or (
            origin.scheme == "https" and to.scheme != "https"
        ):
            raise UnsafeRedirect(
                f"{redact.source(url)} redirects to {shown}: refused (it leaves https)"
            )
        if (to.hostname or "") != origin.hostname and not limits.host_allowed(to.hostname or ""):
            raise UnsafeRedirect(
                f"{redact.source(url)} redirects to {shown}: host {to.hostname} is not allowed. "
                f"If it is trusted, add it to the Variable {settings.VAR_REDIRECT_HOSTS}"
            )

    return check


def _within(seconds: float, call: Callable[[], T], what: str) -> T:
    """``call()``, or IncompleteDownload after ``seconds``, however slowly the server answers.

    The socket timeout bounds each read, not a server that sends its status line and headers a
    byte at a time; this bounds the whole wait. The abandoned call ends at its next socket
    timeout, on a daemon thread."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="taxi-http", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise IncompleteDownload(f"{what}: no answer within the deadline of {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def check_space(folder: Path, needed: int, what: str) -> None:
    """Refuse to start writing ``needed`` bytes into ``folder`` without the room for them."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise InsufficientSpace(
            f"{what} needs {needed:,} bytes free in {folder} (a reserve included) but only "
            f"{free:,} are: nothing was written. Free space there (or point TMPDIR elsewhere)"
        )


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
    limits: DownloadLimits = DEFAULT_LIMITS,
    forbidden_is_missing: bool = False,
    hint: str = "",
) -> Download:
    """Stream ``url`` to ``dest``; 404 is SourceNotPublished, a short body IncompleteDownload.

    Bounded by ``limits``: too large (announced or sent) is BadSourceFile, past the deadline
    IncompleteDownload, no room InsufficientSpace, a refused redirect UnsafeRedirect.
    ``forbidden_is_missing``: a 403 (retried first) is SourceNotPublished too; ``hint`` is added
    to a not-published message (where else the month may be)."""
    started = time.monotonic()
    shown = redact.source(url)
    read_timeout = min(timeout, limits.deadline)
    check_space(dest.parent, limits.min_free_bytes, f"downloading {shown}")
    with _session(retries, url, limits, retry_forbidden=forbidden_is_missing) as session:
        resp = _within(
            limits.deadline,
            lambda: session.get(url, stream=True, timeout=(read_timeout, read_timeout)),
            f"GET {shown}",
        )
        with resp:
            _not_published(url, resp.status_code, forbidden_is_missing, hint)
            if not resp.ok:
                raise requests.HTTPError(f"{shown} answered HTTP {resp.status_code}", response=resp)
            expected = resp.headers.get("Content-Length")
            if expected is not None:
                _check_size(int(expected), limits, dest.name, "announces")
                check_space(
                    dest.parent, int(expected) + limits.min_free_bytes, f"downloading {shown}"
                )
            size, digest = _stream(resp, dest, limits, started, shown)
            if expected is not None and int(expected) != size:
                raise IncompleteDownload(f"{shown}: got {size} of {expected} bytes")
            version = SourceVersion(
                url=redact.public_url(url),
                bytes=size,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                sha256=digest,
            )
    result = Download(path=dest, version=version, seconds=time.monotonic() - started)
    log.info("downloaded %s: %d bytes in %.1f s", shown, result.bytes, result.seconds)
    if url.endswith(".gz"):
        check_gzip(dest)
    return result


def _check_size(size: int, limits: DownloadLimits, file: str, verb: str) -> None:
    if size > limits.max_bytes:
        raise BadSourceFile(
            file,
            f"the source {verb} more than {limits.max_bytes:,} bytes (the download limit)",
            hint="Not a month of trips; if a real file is this large, raise the Variable "
            f"{settings.VAR_MAX_DOWNLOAD_BYTES}",
        )


def _stream(
    resp: requests.Response, dest: Path, limits: DownloadLimits, started: float, shown: str
) -> tuple[int, str]:
    """Write the body as sent (a server may label a .csv.gz "Content-Encoding: gzip"), with
    the size and the deadline checked at every read: ``read1`` returns what has arrived, so a
    trickle cannot hold the loop past the deadline by more than one read timeout."""
    size = 0
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        try:
            while chunk := resp.raw.read1(CHUNK, decode_content=False):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                _check_size(size, limits, dest.name, "sends")
                if time.monotonic() - started > limits.deadline:
                    raise IncompleteDownload(
                        f"{shown}: {size:,} bytes after {limits.deadline:.0f} s, the download's "
                        "deadline; the source is too slow (a retry may find it faster)"
                    )
        except ProtocolError as exc:
            raise IncompleteDownload(f"{shown}: connection broken after {size} bytes") from exc
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise InsufficientSpace(
                f"the disk of {dest.parent} filled up after {size:,} bytes of {shown}: nothing "
                "was loaded. Free space there (or point TMPDIR elsewhere)"
            ) from None
    return size, digest.hexdigest()


def probe(
    url: str,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    deadline: float = 120.0,
    limits: DownloadLimits = DEFAULT_LIMITS,
    forbidden_is_missing: bool = False,
    hint: str = "",
) -> SourceVersion | None:
    """HEAD the file: its size and validators, to skip a download when nothing changed.

    404 (and 403 with ``forbidden_is_missing``) raises SourceNotPublished; a server that does
    not answer HEAD usefully gives None; one that has not answered within ``deadline`` seconds
    (retries included) IncompleteDownload.
    """
    with _session(retries, url, limits, retry_forbidden=forbidden_is_missing) as session:
        resp = _within(
            deadline,
            lambda: session.head(url, allow_redirects=True, timeout=min(timeout, deadline)),
            f"HEAD {redact.source(url)}",
        )
    _not_published(url, resp.status_code, forbidden_is_missing, hint)
    length = resp.headers.get("Content-Length")
    if not resp.ok or length is None:
        return None
    return SourceVersion(
        url=redact.public_url(url),
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
        raise BadSourceFile(
            path.name,
            f"not a gzip file (it starts with {redact.text(redact.shown(head.strip(), 32))})",
            hint="A wrong URL often returns an HTML page: check the Variable taxi_source_url",
        )
