"""Which year taxi_models_yearly builds, and the month events taxi_models emits for the rollup."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from include.taxi.orchestration.assets import MODELS_TRIP_MONTHS
from include.taxi.transform.project import year_vars
from include.taxi.transform.years import announce_models_months, models_year


def _planned(value: str | None) -> SimpleNamespace:
    """A task instance whose ``plan`` returned ``value``."""
    return SimpleNamespace(xcom_pull=lambda task_ids: value if task_ids == "plan" else None)


def test_each_month_built_is_an_event_partitioned_by_the_month() -> None:
    outlets = OutletEventAccessors()
    context = {"ti": _planned("2021-02,2021-01"), "outlet_events": outlets}
    assert announce_models_months(context) == ["2021-01", "2021-02"]
    event = outlets[MODELS_TRIP_MONTHS]
    assert event.partition_keys == {"2021-01", "2021-02"}
    assert event.extra == {"months": ["2021-01", "2021-02"]}


def test_a_run_that_planned_no_month_announces_nothing() -> None:
    context = {"ti": _planned(None), "outlet_events": OutletEventAccessors()}
    with pytest.raises(AirflowFailException, match="no month"):
        announce_models_months(context)


def test_the_param_wins_over_the_partition_key() -> None:
    run = SimpleNamespace(partition_key="2021")
    assert models_year({"params": {"year": "2019"}, "dag_run": run}) == "2019"
    assert models_year({"params": {"year": None}, "dag_run": run}) == "2021"
    assert year_vars("2021") == "{year: '2021'}"


@pytest.mark.parametrize("key", [None, "", "2021-01", "21"])
def test_a_run_without_a_year_fails_for_good(key: str | None) -> None:
    context = {"params": {"year": None}, "dag_run": SimpleNamespace(partition_key=key)}
    with pytest.raises(AirflowFailException, match="taxi_models_yearly"):
        models_year(context)
