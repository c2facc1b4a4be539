"""The month is Airflow's partition: the key a run carries, and what Airflow 3.3.2 does with it.

Pins the behaviour of Airflow's own timetable the pipeline relies on (the core timetable the
scheduler and ``airflow backfill create`` use, not a re-implementation), and how ``plan``
ranks the month Param, the partition key and the data interval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction

from include.taxi.orchestration import schedule
from include.taxi.orchestration.plan import plan_months, run_month
from include.taxi.transform.months import models_months

JAN, FEB, MAR, APR = (datetime(2021, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4))


def _core() -> object:
    return coerce_to_core_timetable(schedule.MONTHLY_PARTITIONS)


def test_the_scheduled_run_for_a_month_is_due_when_the_month_is_over() -> None:
    """Catchup from a start_date of 2021-02-01 (TAXI_START_MONTH=2021-01): keys 2021-01..03,
    each run due on the first of the next month, without a logical date."""
    timetable = _core()
    restriction = TimeRestriction(earliest=FEB, latest=APR, catchup=True)
    infos, last = [], None
    while info := timetable.next_dagrun_info_v2(last_dagrun_info=last, restriction=restriction):
        infos.append(info)
        last = info
    assert [i.partition_key for i in infos] == ["2021-01", "2021-02", "2021-03"]
    assert [i.run_after for i in infos] == [FEB, MAR, APR]
    assert [i.partition_date for i in infos] == [JAN, FEB, MAR]
    assert {i.logical_date for i in infos} == {None}


def test_a_backfill_walks_the_months_themselves() -> None:
    """``airflow backfill create --from-date 2021-01-01 --to-date 2021-03-31``: the months in
    the range, by partition date (no run_offset), due at once, not clamped to now: Airflow
    3.3.2 does not drop a month still in progress (a non-partitioned backfill does), so `make
    backfill` refuses one."""
    timetable = _core()
    infos = list(
        timetable.iter_partition_dagrun_infos(
            earliest=JAN, latest=datetime(2021, 3, 31, tzinfo=UTC)
        )
    )
    assert [i.partition_key for i in infos] == ["2021-01", "2021-02", "2021-03"]
    assert [i.partition_date for i in infos] == [JAN, FEB, MAR]
    future = datetime(2999, 1, 1, tzinfo=UTC)
    assert [
        i.partition_key
        for i in timetable.iter_partition_dagrun_infos(earliest=future, latest=future)
    ] == ["2999-01"]


def test_dag_bounds_are_a_month_after_the_first_and_last_month(monkeypatch) -> None:
    monkeypatch.setenv("TAXI_START_MONTH", "2021-12")
    monkeypatch.setenv("TAXI_END_MONTH", "2022-03")
    assert schedule.partition_start_date() == datetime(2022, 1, 1, tzinfo=UTC)
    assert schedule.partition_end_date() == datetime(2022, 4, 1, tzinfo=UTC)
    monkeypatch.delenv("TAXI_END_MONTH")
    assert schedule.partition_end_date() is None


def _context(month=None, key=None, interval=None, service="all"):
    dag_run = SimpleNamespace(partition_key=key, run_after=datetime(2021, 6, 15, tzinfo=UTC))
    return {
        "params": {"service": service, "month": month},
        "data_interval_start": interval,
        "dag_run": dag_run,
    }


def test_the_partition_key_is_the_month_of_a_scheduled_or_backfill_run() -> None:
    plan = plan_months(_context(key="2021-01", service="green"))  # type: ignore[arg-type]
    assert plan == [{"service": "green", "month": "2021-01"}]


def test_the_month_param_wins_over_the_partition_key() -> None:
    plan = plan_months(_context(month="2020-05", key="2021-01", service="fhv"))  # type: ignore[arg-type]
    assert plan == [{"service": "fhv", "month": "2020-05"}]


def test_the_partition_key_wins_over_a_data_interval() -> None:
    assert run_month("yellow", None, MAR, None, "2021-01") == [
        {"service": "yellow", "month": "2021-01"}
    ]


def test_a_manual_run_without_key_or_param_loads_the_last_complete_month() -> None:
    plan = plan_months(_context(service="green"))  # type: ignore[arg-type]
    assert plan == [{"service": "green", "month": "2021-05"}]


@pytest.mark.parametrize("key", ["2021-1", "2021-01-01T00:00:00", "x"])
def test_a_key_that_is_not_a_month_fails_before_any_io(key) -> None:
    with pytest.raises(AirflowFailException, match="partition key"):
        run_month("all", None, None, None, key)


def test_taxi_models_builds_its_partition_unless_the_param_says_otherwise() -> None:
    context = {"params": {"month": None}, "dag_run": SimpleNamespace(partition_key="2021-02")}
    assert models_months(context) == "2021-02"
    context["params"] = {"month": "2020-01"}
    assert models_months(context) == "2020-01"
    context = {"params": {"month": None}, "dag_run": SimpleNamespace(partition_key="2021")}
    with pytest.raises(AirflowFailException, match="partition key"):
        models_months(context)
