"""bench-backfill's figure of the scheduler's own cost: how long a freed COPY-pool slot
sits idle."""

from __future__ import annotations

from typing import Any

from bench.backfill import pool_turn_idle
from include.taxi.settings import POOL_POSTGRES_COPY


def _ti(start: float, end: float, pool: str = POOL_POSTGRES_COPY) -> dict[str, Any]:
    return {
        "pool": pool,
        "start_date": f"2026-01-01T00:00:{start:06.3f}Z",
        "end_date": f"2026-01-01T00:00:{end:06.3f}Z",
    }


def test_idle_is_measured_from_the_latest_end_before_each_start() -> None:
    tis = [
        _ti(0.0, 10.0),
        _ti(0.0, 5.0),
        _ti(5.5, 8.0),  # took the slot freed at 5.0: idle 0.5
        _ti(10.2, 12.0),  # the latest end before 10.2 is 10.0: idle 0.2
        _ti(3.0, 4.0, pool="default_pool"),  # not a COPY: ignored
    ]
    assert [round(x, 3) for x in pool_turn_idle(tis)] == [0.5, 0.2]
