"""A source that answers slowly cannot hold a task: taxi_daily's HEADs share a deadline.

The server trickles its headers (one line every few tenths of a second), so every socket read
succeeds well within its timeout: only a deadline over the whole exchange ends the wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from include.taxi.errors import IncompleteDownload
from include.taxi.months import Month
from include.taxi.orchestration.discovery import changed_months
from tests.helpers.scripted_http import Answer, ScriptedServer

MONTHS = ["2021-03", "2021-02", "2021-01"]
SLOW_HEADERS = {f"X-Slow-{i}": "1" for i in range(40)}


def _path(month: str) -> str:
    return f"/yellow/yellow_tripdata_{month}.csv.gz"


def _discover(server: ScriptedServer, deadline: float, head_deadline: float) -> list[dict]:
    return changed_months(
        ["yellow"],
        [Month.parse(m) for m in MONTHS],
        source_base=server.url,
        held=lambda s, m: None,
        deadline=deadline,
        head_deadline=head_deadline,
    )


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def test_one_trickling_head_cannot_hold_discovery(server) -> None:
    """40 header lines 0.5 s apart: 20 s for one HEAD, each read far below its timeout."""
    server.answer(_path("2021-03"), Answer(200, headers=SLOW_HEADERS, head_trickle=0.5))
    started = time.monotonic()
    with pytest.raises(
        IncompleteDownload, match=r"HEAD .*yellow_tripdata_2021-03.*deadline of 2 s"
    ):
        _discover(server, deadline=30, head_deadline=2)
    assert time.monotonic() - started < 5


def test_discovery_stops_at_its_total_deadline_naming_what_was_not_probed(server) -> None:
    """Every HEAD answers within its own deadline (~1.2 s), but three of them exceed the total."""
    for month in MONTHS:
        server.answer(_path(month), Answer(200, headers={"X-Slow": "1"}, head_trickle=0.4))
    started = time.monotonic()
    with pytest.raises(
        IncompleteDownload, match=r"deadline of 2 s; not probed: (yellow 2021-02, )?yellow 2021-01$"
    ):
        _discover(server, deadline=2, head_deadline=10)
    assert time.monotonic() - started < 4


def test_prompt_source_is_probed_as_before(server) -> None:
    server.answer(_path("2021-02"), Answer(200, b"x" * 10))
    found = _discover(server, deadline=5, head_deadline=2)
    assert found == [{"service": "yellow", "month": "2021-02", "reason": "new"}]
