"""Downloads against a scripted local server: retries, 404, cut-off bodies, wrong content."""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from include.taxi.errors import (
    BadSourceFile,
    IncompleteDownload,
    InsufficientSpace,
    SourceNotPublished,
    UnsafeRedirect,
)
from include.taxi.sources.http import DownloadLimits, download
from tests.helpers.scripted_http import Answer, ScriptedServer

PATH = "/yellow/yellow_tripdata_2021-01.csv.gz"
BODY = gzip.compress(b"VendorID,tpep_pickup_datetime\n1,2021-01-01 00:00:00\n")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def test_download_writes_the_bytes_and_reports_them(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(200, BODY))
    got = download(server.url + PATH, tmp_path / "f.csv.gz")
    assert got.bytes == len(BODY)
    assert (tmp_path / "f.csv.gz").read_bytes() == BODY


def test_503_twice_then_200_is_retried_within_the_task(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(503), Answer(503), Answer(200, BODY))
    got = download(server.url + PATH, tmp_path / "f.csv.gz", retries=3)
    assert got.bytes == len(BODY)
    assert server.requests.count(PATH) == 3


def test_persistent_503_raises_for_airflow_to_retry(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(503))
    with pytest.raises(requests.HTTPError, match="503"):
        download(server.url + PATH, tmp_path / "f.csv.gz", retries=1)


def test_404_is_not_published(server, tmp_path: Path) -> None:
    with pytest.raises(SourceNotPublished, match="not published"):
        download(server.url + "/yellow/yellow_tripdata_2031-01.csv.gz", tmp_path / "f.csv.gz")


def test_html_instead_of_gzip_says_check_the_url(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(200, b"<!DOCTYPE html><html><body>Moved</body></html>"))
    with pytest.raises(BadSourceFile, match=r"not a gzip file.*taxi_source_url"):
        download(server.url + PATH, tmp_path / "f.csv.gz")


def test_empty_body_is_refused(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(200, b""))
    with pytest.raises(BadSourceFile, match="empty"):
        download(server.url + PATH, tmp_path / "f.csv.gz")


def test_cut_off_body_is_a_retryable_error(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(200, BODY[:10], announce=len(BODY)))
    with pytest.raises(IncompleteDownload, match="after 10 bytes"):
        download(server.url + PATH, tmp_path / "f.csv.gz", retries=0)


# --- every download is bounded (issue 13, must-fix 4) -------------------------------------


def _limits(**kwargs) -> DownloadLimits:
    return DownloadLimits(**{"min_free_bytes": 0, **kwargs})


def test_announced_size_over_the_limit_fails_before_any_byte_is_written(
    server, tmp_path: Path
) -> None:
    server.answer(PATH, Answer(200, BODY, announce=5 << 30))
    with pytest.raises(BadSourceFile, match=r"announces more than 1,000 bytes.*taxi_max_download"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(max_bytes=1_000))
    assert not (tmp_path / "f.csv.gz").exists()


def test_endless_body_without_length_stops_at_the_limit(server, tmp_path: Path) -> None:
    """No Content-Length: the body ends when the server closes; it must not fill the disk."""
    server.answer(PATH, Answer(200, b"\x1f\x8b" + b"x" * (8 << 20), length=False))
    with pytest.raises(BadSourceFile, match="sends more than 1,048,576 bytes"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(max_bytes=1 << 20))
    assert (tmp_path / "f.csv.gz").stat().st_size <= 2 << 20


def test_trickling_body_is_cut_at_the_deadline(server, tmp_path: Path) -> None:
    """200 bytes every 0.2 s: each read is well within the 60 s socket timeout, which was the
    only bound (a try held for its whole hour); the download's total deadline cuts it."""
    server.answer(PATH, Answer(200, BODY * 200, trickle=0.2, piece=200))
    started = time.monotonic()
    with pytest.raises(IncompleteDownload, match="deadline"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(deadline=1.5))
    assert time.monotonic() - started < 4


def test_trickling_headers_are_cut_at_the_deadline(server, tmp_path: Path) -> None:
    server.answer(
        PATH, Answer(200, BODY, headers={f"X-Slow-{i}": "1" for i in range(30)}, head_trickle=0.2)
    )
    started = time.monotonic()
    with pytest.raises(IncompleteDownload, match="deadline"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(deadline=1.5))
    assert time.monotonic() - started < 4


def test_no_room_in_the_temp_folder_fails_before_downloading(server, tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    server.answer(PATH, Answer(200, BODY, announce=free + (1 << 30)))
    with pytest.raises(InsufficientSpace, match=rf"needs [\d,]+ bytes free in {tmp_path}"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(max_bytes=1 << 60))
    assert not (tmp_path / "f.csv.gz").exists()
    with pytest.raises(InsufficientSpace, match="a reserve included"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(min_free_bytes=free * 2))


def test_redirect_to_another_host_is_refused_unless_allowed(server, tmp_path: Path) -> None:
    """127.0.0.1 → localhost is another host to the guard (names are compared, not addresses)."""
    elsewhere = server.url.replace("127.0.0.1", "localhost") + "/elsewhere.csv.gz"
    server.answer(PATH, Answer(302, headers={"Location": elsewhere}))
    server.answer("/elsewhere.csv.gz", Answer(200, BODY))
    with pytest.raises(UnsafeRedirect, match="host localhost is not allowed"):
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits())
    assert "/elsewhere.csv.gz" not in server.requests
    got = download(
        server.url + PATH, tmp_path / "f.csv.gz", limits=_limits(redirect_hosts=("localhost",))
    )
    assert got.bytes == len(BODY)


def test_redirect_within_the_host_is_followed(server, tmp_path: Path) -> None:
    server.answer(PATH, Answer(301, headers={"Location": "/moved.csv.gz"}))
    server.answer("/moved.csv.gz", Answer(200, BODY))
    assert download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits()).bytes == len(BODY)


def test_redirect_from_https_to_http_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A local https server whose certificate the client trusts (REQUESTS_CA_BUNDLE), sending
    the client to plain http on the same host."""
    with ScriptedServer(tls_dir=tmp_path) as tls, ScriptedServer() as plain:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
        tls.answer(PATH, Answer(302, headers={"Location": plain.url + PATH}))
        plain.answer(PATH, Answer(200, BODY))
        with pytest.raises(UnsafeRedirect, match="leaves https"):
            download(
                tls.url + PATH, tmp_path / "f.csv.gz", limits=_limits(redirect_hosts=("127.0.0.1",))
            )
        assert plain.requests == []
        tls.answer(PATH, Answer(200, BODY))
        assert download(tls.url + PATH, tmp_path / "f.csv.gz", limits=_limits()).bytes == len(BODY)


def test_first_bytes_quoted_in_the_error_are_short_and_redacted(server, tmp_path: Path) -> None:
    """The error reaches Slack and the ingestion log: no control characters, no token."""
    server.answer(PATH, Answer(200, b"\x1b[2J\x07token=s3cr3tT0k3n <html>" + b"A" * 500))
    with pytest.raises(BadSourceFile) as err:
        download(server.url + PATH, tmp_path / "f.csv.gz", limits=_limits())
    message = str(err.value)
    assert "not a gzip file" in message
    assert "s3cr3tT0k3n" not in message
    assert not any(ord(c) < 32 for c in message)
    assert "A" * 40 not in message
