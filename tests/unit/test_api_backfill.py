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


class _Resp:
    def __init__(self, payload: dict | None = None, status: int = 200) -> None:
        self.payload, self.status_code, self.text = payload or {}, status, ""

    def json(self) -> dict:
        return self.payload


class _Api:
    """The api-server as `make backfill` sees it: lake_to_bigquery (asset-partitioned, paused)
    with a successful run for 2021-01 and a failed one for 2021-02."""

    base = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.posted: list[dict] = []
        self.patched = False

    def wait_for_dag(self, dag_id: str) -> dict:
        return {"timetable_partitioned": True, "timetable_periodic": False, "is_paused": True}

    def call(self, method: str, path: str, **kwargs: object) -> _Resp:
        if method == "GET":
            runs = [
                {"partition_key": "2021-01", "state": "success"},
                {"partition_key": "2021-02", "state": "failed"},
            ]
            return _Resp({"dag_runs": runs, "total_entries": 2})
        if method == "PATCH":
            self.patched = True
            return _Resp()
        self.posted.append(kwargs["json"])  # type: ignore[arg-type]
        return _Resp()


@pytest.mark.parametrize(
    ("reprocess", "newest_first", "months"),
    [
        ("none", False, ["2021-03"]),
        ("failed", False, ["2021-02", "2021-03"]),
        ("completed", True, ["2021-03", "2021-02", "2021-01"]),
    ],
)
def test_an_asset_partitioned_dag_gets_a_run_per_month_keyed_by_it(
    reprocess: str, newest_first: bool, months: list[str]
) -> None:
    """Airflow 3.3.2 refuses to backfill an asset-scheduled DAG (not periodic): `make backfill
    DAG=lake_to_bigquery` triggers a run per month with the month as partition key instead."""
    from dev.api_backfill import backfill

    api = _Api()
    request = BackfillRequest(
        "lake_to_bigquery",
        "2021-01",
        "2021-03",
        service="green",
        reprocess=reprocess,
        newest_first=newest_first,
    )
    assert backfill(api, request) == 0  # type: ignore[arg-type]
    assert [p["partition_key"] for p in api.posted] == months
    assert {(p["logical_date"], str(p["conf"])) for p in api.posted} == {
        (None, "{'service': 'green'}")
    }
    assert api.patched


def test_an_asset_partitioned_dry_run_triggers_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from dev.api_backfill import backfill

    api = _Api()
    request = BackfillRequest("lake_to_bigquery", "2021-01", "2021-04")
    assert backfill(api, request, dry_run=True) == 0  # type: ignore[arg-type]
    assert api.posted == []
    assert not api.patched
    assert "would trigger 2 runs of lake_to_bigquery: 2021-03 2021-04" in capsys.readouterr().out
