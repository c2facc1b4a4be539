"""Months, services, source URLs and how a run decides which months and services it loads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.taxi.months import Month
from include.taxi.orchestration.plan import parse_pair, run_month
from include.taxi.services import Service
from include.taxi.settings import DEFAULT_SOURCE_URL
from include.taxi.sources.catalogue import Source


@pytest.mark.parametrize(
    ("text", "first"), [("2021-01", date(2021, 1, 1)), ("2019-12", date(2019, 12, 1))]
)
def test_month_parses_once_and_spells_itself_back(text, first) -> None:
    month = Month.parse(text)
    assert month.first_day == first
    assert str(month) == text
    assert Month.of(first) == month


@pytest.mark.parametrize(
    "bad", ["2021-13", "2021-00", "2021-1", "21-01", "2021-01-01", "../../etc", "", None, 202101]
)
def test_month_rejects_with_example(bad) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(bad)


def test_month_rejects_months_before_the_tlc_published() -> None:
    with pytest.raises(ValueError, match="before 2009"):
        Month.parse("1999-01")


def test_month_arithmetic_crosses_years() -> None:
    december = Month(2020, 12)
    assert december.next() == Month(2021, 1)
    assert december.shift(-12) == Month(2019, 12)
    assert Month(2021, 1).shift(-1) == december
    assert Month.span(Month(2020, 11), Month(2021, 2)) == [
        Month(2020, 11),
        Month(2020, 12),
        Month(2021, 1),
        Month(2021, 2),
    ]
    assert Month.span(Month(2021, 2), Month(2021, 1)) == []
    assert sorted([Month(2021, 1), Month(2020, 12)]) == [Month(2020, 12), Month(2021, 1)]


def test_month_suffix_names_partitions() -> None:
    assert Month(2021, 3).suffix == "2021_03"


def test_recorded_month_refuses_months_that_cannot_be_loaded_yet() -> None:
    today = date(2021, 5, 20)
    assert Month.recorded("2021-06", today=today) == Month(2021, 6)  # in progress: may be loaded
    assert Month.recorded(datetime(2021, 4, 30, 23, 0), today=today) == Month(2021, 4)
    with pytest.raises(ValueError, match="after 2021-06"):
        Month.recorded("2021-07", today=today)


def test_service_is_one_of_four() -> None:
    assert Service.parse("fhvhv") is Service.FHVHV
    assert f"{Service.GREEN}_tripdata" == "green_tripdata"
    with pytest.raises(ValueError, match="yellow, green, fhv, fhvhv"):
        Service.parse("../../etc/passwd")


def test_a_task_parses_its_pair_before_any_io() -> None:
    assert parse_pair("green", "2020-07") == (Service.GREEN, Month(2020, 7))
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_pair("green", "2020-7")


def test_source_urls_follow_the_course_release_layout() -> None:
    mirror = Source("mirror", DEFAULT_SOURCE_URL)
    assert mirror.url(Service.YELLOW, Month(2021, 1)) == (
        "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/yellow/"
        "yellow_tripdata_2021-01.csv.gz"
    )
    assert Source("mirror", "http://h/base/").url(Service.FHV, Month(2019, 2)) == (
        "http://h/base/fhv/fhv_tripdata_2019-02.csv.gz"
    )
    assert Source("mirror", "http://h").zones_url() == "http://h/misc/taxi_zone_lookup.csv"
    assert mirror.file_name(Service.GREEN, Month(2020, 7)) == "green_tripdata_2020-07.csv.gz"


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
