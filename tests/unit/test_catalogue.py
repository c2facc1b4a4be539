"""Source selection: the TLC's and the mirror's layouts, months a source cannot have, and a
CDN's 403 for a missing object (against a scripted local server, no mock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.taxi.errors import SourceNotPublished
from include.taxi.months import Month
from include.taxi.settings import DEFAULT_SOURCE_URL, DEFAULT_TLC_URL
from include.taxi.sources import http
from include.taxi.sources.catalogue import Source
from tests.helpers.scripted_http import Answer, ScriptedServer

TLC = Source("tlc", DEFAULT_TLC_URL)
MIRROR = Source("mirror", DEFAULT_SOURCE_URL)


def test_the_tlc_layout_is_one_flat_folder_of_parquet_files() -> None:
    assert TLC.url("fhvhv", Month(2024, 1)) == (
        "https://d37ci6vzurychx.cloudfront.net/trip-data/fhvhv_tripdata_2024-01.parquet"
    )
    assert TLC.zones_url() == "https://d37ci6vzurychx.cloudfront.net/misc/taxi_zone_lookup.csv"
    assert TLC.format == "parquet"
    assert MIRROR.format == "csv.gz"
    assert (
        MIRROR.url("yellow", Month(2021, 1))
        == f"{DEFAULT_SOURCE_URL}/yellow/yellow_tripdata_2021-01.csv.gz"
    )
    with pytest.raises(ValueError, match=r"taxi_source is 's3': use mirror .* or tlc"):
        Source("s3", "x")


@pytest.mark.parametrize(
    ("service", "month"),
    [("yellow", "2009-01"), ("green", "2013-08"), ("fhv", "2015-01"), ("fhvhv", "2019-02")],
)
def test_each_services_first_tlc_month_is_asked_for(service: str, month: str) -> None:
    TLC.check_month(service, Month.parse(month))


@pytest.mark.parametrize(
    ("service", "month"), [("green", "2013-07"), ("fhv", "2014-12"), ("fhvhv", "2019-01")]
)
def test_a_month_before_the_tlc_published_the_service_is_skipped_naming_the_mirror(
    service: str, month: str
) -> None:
    with pytest.raises(SourceNotPublished, match=r"cannot exist .*taxi_source=mirror"):
        TLC.check_month(service, Month.parse(month))


def test_a_mirror_miss_names_the_tlc() -> None:
    hint = MIRROR.missing_hint("yellow", Month(2024, 5))
    assert "2019-01..2021-07" in hint
    assert "set the Variable taxi_source to tlc" in hint
    assert "has no fhvhv files" in MIRROR.missing_hint("fhvhv", Month(2024, 1))
    assert "the course mirror has 2020-03" in TLC.missing_hint("green", Month(2020, 3))


def test_a_404_skip_message_names_the_other_source(tmp_path: Path) -> None:
    with ScriptedServer() as server, pytest.raises(SourceNotPublished) as caught:
        Source("mirror", server.url).download("yellow", Month(2024, 5), tmp_path)
    assert "answered 404" in str(caught.value)
    assert "taxi_source to tlc" in str(caught.value)


def test_a_cdn_403_is_retried_then_taken_as_not_published(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        path = "/trip-data/fhvhv_tripdata_2031-01.parquet"
        server.answer(path, Answer(403, b"<Error>AccessDenied</Error>"))
        with pytest.raises(
            SourceNotPublished, match=r"403 Forbidden on every try.*two months after"
        ):
            http.download(
                server.url + path,
                tmp_path / "f.parquet",
                retries=2,
                forbidden_is_missing=True,
                hint=TLC.missing_hint("fhvhv", Month(2031, 1)),
            )
        assert server.requests.count(path) == 3  # the first try and two retries, then stop
        # a throttling 403 that clears: the retry gets the file
        server.answer(path, Answer(403), Answer(200, b"PAR1data"))
        got = http.download(server.url + path, tmp_path / "g.parquet", forbidden_is_missing=True)
        assert got.path.read_bytes() == b"PAR1data"
        # the mirror (GitHub) does not answer 403 for a missing file: there it is an error
        server.answer("/m", Answer(403))
        with pytest.raises(Exception, match="403"):
            http.download(server.url + "/m", tmp_path / "m", retries=0)
