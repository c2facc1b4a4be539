"""Month parsing, source URLs and how a run decides which months and services it loads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.taxi.months import parse_month, partition_suffix
from include.taxi.orchestration.tasks import run_month
from include.taxi.settings import DEFAULT_SOURCE_URL
from include.taxi.sources.http import file_name, source_url


@pytest.mark.parametrize(
    ("text", "first"), [("2021-01", date(2021, 1, 1)), ("2019-12", date(2019, 12, 1))]
)
def test_parse_month(text, first) -> None:
    assert parse_month(text) == first


@pytest.mark.parametrize(
    "bad", ["2021-13", "2021-00", "2021-1", "21-01", "2021-01-01", "../../etc", "", None, 202101]
)
def test_parse_month_rejects_with_example(bad) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)


def test_parse_month_rejects_months_before_the_tlc_published() -> None:
    with pytest.raises(ValueError, match="before 2009"):
        parse_month("1999-01")


def test_partition_suffix() -> None:
    assert partition_suffix(date(2021, 3, 1)) == "2021_03"


def test_source_urls_follow_the_course_release_layout() -> None:
    assert source_url(DEFAULT_SOURCE_URL, "yellow", "2021-01") == (
        "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/yellow/"
        "yellow_tripdata_2021-01.csv.gz"
    )
    assert source_url("http://h/base/", "fhv", "2019-02") == (
        "http://h/base/fhv/fhv_tripdata_2019-02.csv.gz"
    )
    assert source_url("http://h", "zones", "") == "http://h/misc/taxi_zone_lookup.csv"
    assert file_name("green", "2020-07") == "green_tripdata_2020-07.csv.gz"


def test_file_name_refuses_unknown_services() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        file_name("../../etc/passwd", "2021-01")


def test_run_month_defaults_to_all_services_and_the_interval_month() -> None:
    plan = run_month("all", None, datetime(2021, 2, 1, tzinfo=UTC), None)
    assert plan == [
        {"service": "yellow", "month": "2021-02"},
        {"service": "green", "month": "2021-02"},
        {"service": "fhv", "month": "2021-02"},
        {"service": "fhvhv", "month": "2021-02"},
    ]


def test_run_month_with_params() -> None:
    assert run_month("green", "2020-07", datetime(2021, 2, 1, tzinfo=UTC), None) == [
        {"service": "green", "month": "2020-07"}
    ]


def test_manual_run_without_logical_date_loads_the_last_complete_month() -> None:
    plan = run_month("fhv", "", None, datetime(2021, 3, 15, 8, 0, tzinfo=UTC))
    assert plan == [{"service": "fhv", "month": "2021-02"}]


@pytest.mark.parametrize(
    ("service", "month", "message"),
    [
        ("yellow; DROP TABLE x", None, "is not one of"),
        ("../../etc", None, "is not one of"),
        ("yellow", "2021-13", "YYYY-MM"),
        ("yellow", "../../etc", "YYYY-MM"),
    ],
)
def test_hostile_params_are_rejected_before_io(service, month, message) -> None:
    with pytest.raises(AirflowFailException, match=message):
        run_month(service, month, datetime(2021, 2, 1, tzinfo=UTC), None)
