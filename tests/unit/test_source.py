"""Downloads against a scripted local server: retries, 404, cut-off bodies, wrong content."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from include.taxi.errors import BadSourceFile, IncompleteDownload, SourceNotPublished
from include.taxi.sources.http import download
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
