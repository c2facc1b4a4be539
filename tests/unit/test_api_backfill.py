"""`make backfill`'s request: the body it posts, and the ranges it refuses before asking."""

from __future__ import annotations

from datetime import date

import pytest

from dev.api_backfill import ApiError, BackfillRequest
from include.taxi.months import Month


def test_a_month_range_becomes_whole_days_with_the_flags() -> None:
    body = BackfillRequest(
        "taxi_to_postgres",
        "2021-01",
        "2021-03",
        service="green",
        reprocess="failed",
        newest_first=True,
    ).body()
    assert body["from_date"] == "2021-01-01T00:00:00Z"
    assert body["to_date"] == "2021-03-31T00:00:00Z"
    assert body["reprocess_behavior"] == "failed"
    assert body["run_backwards"] is True
    assert body["dag_run_conf"] == {"service": "green"}


def test_a_month_not_over_yet_is_refused() -> None:
    """Airflow 3.3.2 backfills every partition of the range at once, the current month too
    (tests/unit/test_month_partitions.py pins that): `make backfill` stops before asking."""
    current = str(Month.of(date.today()))
    with pytest.raises(ApiError, match="not over yet"):
        BackfillRequest("taxi_to_postgres", "2021-01", current).body()


@pytest.mark.parametrize(("first", "last"), [("2021-03", "2021-01"), ("2021-1", "2021-02")])
def test_bad_ranges_are_refused(first: str, last: str) -> None:
    with pytest.raises(ApiError):
        BackfillRequest("taxi_to_postgres", first, last).body()
