"""Which months taxi_models builds: the Param, else its triggering events' months."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.taxi.orchestration.assets import POSTGRES_TRIP_MONTHS
from include.taxi.transform.months import event_months, models_months
from include.taxi.transform.project import month_vars


def _event(**extra):
    return SimpleNamespace(extra=extra)


def test_batched_events_build_each_valid_month_once_oldest_first() -> None:
    events = [_event(month="2021-02"), _event(month="2021-01"), _event(month="2021-02")]
    events += [_event(month="2021-13"), _event(), SimpleNamespace(extra=None)]
    assert event_months(events) == ["2021-01", "2021-02"]


def test_the_param_wins_over_events() -> None:
    context = {
        "params": {"month": "2020-05"},
        "triggering_asset_events": {POSTGRES_TRIP_MONTHS: [_event(month="2021-01")]},
    }
    assert models_months(context) == "2020-05"


def test_events_become_dbts_month_var() -> None:
    context = {
        "params": {"month": None},
        "triggering_asset_events": {
            POSTGRES_TRIP_MONTHS: [_event(month="2021-02"), _event(month="2021-01")]
        },
    }
    assert models_months(context) == "2021-01,2021-02"
    assert month_vars("2021-01,2021-02") == "{month: '2021-01,2021-02'}"


def test_a_run_without_a_month_fails_for_good() -> None:
    context = {"params": {"month": None}, "triggering_asset_events": {}}
    with pytest.raises(AirflowFailException, match="no month to build"):
        models_months(context)
