"""The rules of the "Taxi months" grid on hand-made log records (no database needed: ``build``
does no I/O; tests/integration/test_status_grid.py feeds it real logs)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest

from include.taxi.load_record import (
    FAILED,
    LOADED,
    LoadRecord,
    QualityWarning,
    Rejected,
    TargetLog,
    parse_warnings,
)
from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.status.grid import MAX_REJECTED_SHOWN, MISSING, NOT_PUBLISHED, STALE, build
from include.taxi.status.page import render


def _at(day: int) -> datetime:
    return datetime(2021, 6, day, tzinfo=UTC)


def _record(
    target: str,
    service: str,
    month: str,
    status: str,
    rows: int | None = None,
    *,
    version: tuple[int, str, None] | None = None,
    sha256: str | None = None,
    **rest: object,
) -> LoadRecord:
    """A log record as a reader returns one, from the values a test cares about."""
    source = None
    if version is not None or sha256 is not None:
        size, etag, modified = version or (None, None, None)
        source = SourceVersion("https://example/f.csv.gz", size, etag, modified, sha256)
    return LoadRecord(
        target, Service(service), Month.parse(month), status, rows, source=source, **rest
    )


def _log(*records: LoadRecord) -> TargetLog:
    loads = {(r.service, r.month): r for r in records if r.status == LOADED}
    return TargetLog({(r.service, r.month): r for r in records}, loads)


def _states(view, service="green"):
    (found,) = [s for s in view.services if s.service == service]
    return {row.month: {t: c.state for t, c in row.cells.items()} for row in found.months}


def test_bigquery_is_stale_when_the_lake_holds_a_newer_file():
    lake = _log(_record("lake", "green", "2021-01", LOADED, 10, at=_at(2), sha256="new"))
    bigquery = _log(_record("bigquery", "green", "2021-01", LOADED, 9, at=_at(1), sha256="old"))
    view = build({"lake": lake, "bigquery": bigquery})
    assert _states(view) == {"2021-01": {"lake": LOADED, "bigquery": STALE}}
    same = _log(_record("bigquery", "green", "2021-01", LOADED, 10, at=_at(3), sha256="new"))
    assert _states(build({"lake": lake, "bigquery": same})) == {
        "2021-01": {"lake": LOADED, "bigquery": LOADED}
    }


def test_a_version_seen_before_the_load_does_not_make_it_stale():
    """Postgres loaded v2 after the lake wrote v1: the lake is stale, Postgres is not."""
    postgres = _log(
        _record("postgres", "green", "2021-01", LOADED, 5, at=_at(5), version=(2, "v2", None))
    )
    lake = _log(_record("lake", "green", "2021-01", LOADED, 4, at=_at(1), version=(1, "v1", None)))
    assert _states(build({"postgres": postgres, "lake": lake})) == {
        "2021-01": {"postgres": LOADED, "lake": STALE}
    }


def test_missing_inside_the_span_and_not_published_outside():
    postgres = _log(
        _record("postgres", "green", "2021-01", LOADED, 5, at=_at(1)),
        _record("postgres", "green", "2021-04", LOADED, 5, at=_at(1)),
        _record("postgres", "yellow", "2021-06", FAILED, at=_at(1), error="boom"),
    )
    view = build({"postgres": postgres})
    assert {m: s["postgres"] for m, s in _states(view).items()} == {
        "2021-01": LOADED,
        "2021-02": MISSING,
        "2021-03": MISSING,
        "2021-04": LOADED,
        "2021-05": NOT_PUBLISHED,
        "2021-06": NOT_PUBLISHED,
    }
    yellow = _states(view, "yellow")
    assert yellow["2021-06"] == {"postgres": FAILED}
    assert yellow["2021-01"]["postgres"] == (NOT_PUBLISHED)


def test_warnings_are_read_whatever_shape_they_were_stored_in():
    full = '[{"rule": "negative_total", "level": "warn", "message": "3 refunds"}]'
    assert parse_warnings(full) == (QualityWarning("negative_total", "warn", "3 refunds"),)
    assert parse_warnings(["plain text"]) == (QualityWarning("warning", "warn", "plain text"),)
    assert parse_warnings("not json {") == (QualityWarning("warning", "warn", "not json {"),)
    assert parse_warnings({"warnings": []}) == ()
    assert parse_warnings(None) == parse_warnings("") == ()


def test_the_page_escapes_what_the_logs_say():
    evil = QualityWarning("<b>rule</b>", "warn", "<script>alert(1)</script>")
    postgres = _log(
        _record(
            "postgres", "green", "2021-01", LOADED, 5, run_id="r&<1>", at=_at(1), warnings=(evil,)
        )
    )
    html = render(build({"postgres": postgres}), base_url="http://af")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="http://af/dags/taxi_to_postgres/runs/r%26%3C1%3E"' in html


TODAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("stored", "month"),
    [
        ("2021-01", "2021-01"),
        ("2009-01", "2009-01"),
        ("2027-01", "2027-01"),  # next month: a month in progress may be loaded already
        (date(2021, 6, 1), "2021-06"),
        (datetime(2021, 6, 30, 23, 0, tzinfo=UTC), "2021-06"),
    ],
)
def test_a_recorded_month_is_read(stored: object, month: str) -> None:
    assert str(Month.recorded(stored, today=TODAY)) == month


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("9999-12", "after 2027-01"),
        ("2027-02", "after 2027-01"),
        (date(9999, 12, 1), "after 2027-01"),
        ("2008-12", "before 2009"),
        (date(1970, 1, 1), "before 2009"),
        ("garbage", "not a month"),
        ("2021-13", "not a month"),
        ("2021-1", "not a month"),
        (" 2021-01", "not a month"),
        ("", "not a month"),
        (None, "not a month"),
        (202101, "not a month"),
    ],
)
def test_a_recorded_month_out_of_shape_or_range_is_refused(stored: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Month.recorded(stored, today=TODAY)


def test_the_month_axis_is_bounded() -> None:
    """``build`` gets parsed months only; if a far one slipped through, it refuses at once
    instead of building ~95,000 months per service."""
    far = _log(
        _record("postgres", "green", "2009-01", LOADED, 5, at=_at(1)),
        _record("postgres", "green", "9999-12", LOADED, 5, at=_at(1)),
    )
    started = time.perf_counter()
    with pytest.raises(ValueError, match="longer than 1200 months"):
        build({"postgres": far})
    assert time.perf_counter() - started < 0.1


def test_rejected_entries_are_listed_escaped() -> None:
    odd = Rejected(
        "lake", "green/<b>x</b>.parquet", "'<script>'", "month '<script>' is not a month"
    )
    view = build({"lake": TargetLog(rejected=(odd,))})
    assert view.rejected == [odd]
    html = render(view, base_url="")
    assert "Left off the grid" in html
    assert "<script>'" not in html
    assert "green/&lt;b&gt;x&lt;/b&gt;.parquet" in html
    assert view.as_json()["rejected"] == [
        {"target": "lake", "where": odd.where, "value": odd.value, "reason": odd.reason}
    ]


def test_a_bucket_of_odd_objects_lists_the_first_and_a_count() -> None:
    odd = tuple(Rejected("lake", f"yellow/{i}.parquet", "'x'", "not a month") for i in range(5000))
    view = build({"lake": TargetLog(rejected=odd)})
    assert (len(view.rejected), view.rejected_total) == (MAX_REJECTED_SHOWN, 5000)
    assert "and 4,900 more" in render(view, base_url="")


def test_a_failed_month_offers_the_exact_clear_command():
    """By partition key when the failed run is the month's partition run (its id carries the
    key), else by run id; only the failed tasks either way (docs/partitions.md)."""
    postgres = _log(
        _record(
            "postgres",
            "green",
            "2021-01",
            FAILED,
            run_id="backfill__2021-01-01T00:00:00+00:00__2021-01__ab",
            at=_at(1),
        ),
        _record("postgres", "green", "2021-02", FAILED, run_id="manual__x'y", at=_at(2)),
        _record(
            "postgres",
            "green",
            "2021-03",
            LOADED,
            5,
            run_id="scheduled__2021-04-01__2021-03__cd",
            at=_at(3),
        ),
    )
    html = render(build({"postgres": postgres}), base_url="http://af")
    assert "airflow dags clear taxi_to_postgres --partition-key 2021-01 --only-failed --yes" in html
    assert (
        "airflow dags clear taxi_to_postgres --run-id "
        "&#x27;manual__x&#x27;&quot;&#x27;&quot;&#x27;y&#x27; --only-failed --yes" in html
    )
    assert html.count('class="clear"') == 2, "a loaded month offers none"
