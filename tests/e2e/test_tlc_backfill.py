"""``airflow backfill create`` over TLC months of different eras, through a real scheduler.

With ``taxi_source=tlc`` a backfill crosses the points where the TLC's files change shape:
2016-06 → 2016-07 (yellow coordinates → zone ids; fhv still without a dropoff time), then
2019-01 → 2019-02 (no fhvhv yet → the first fhvhv month). Each month must land with exactly its
rows in one table per service, and a month a service cannot have is skipped, not failed.
Real components: api-server, scheduler, dag-processor, the session's PostgreSQL, and a local
HTTP server laid out as the TLC's (``trip-data/`` flat, ``misc/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dev.airflow_stack import AirflowStack, taxi_env
from dev.synthetic import ZONES_CSV
from dev.tlc_parquet import write_era

pytestmark = pytest.mark.e2e

DAG_ID = "taxi_to_postgres"
RUNS_TIMEOUT_S = 300
FILES = {  # (service, month) → (era of the file's columns, rows)
    ("yellow", "2016-06"): ("yellow-2016", 310),
    ("yellow", "2016-07"): ("yellow-2019", 290),
    ("green", "2016-06"): ("green-2019", 120),
    ("green", "2016-07"): ("green-2019", 130),
    ("fhv", "2016-06"): ("fhv-2015", 210),
    ("fhv", "2016-07"): ("fhv-2015", 220),
    ("yellow", "2019-01"): ("yellow-2019", 270),
    ("yellow", "2019-02"): ("yellow-2022", 260),
    ("green", "2019-01"): ("green-2019", 140),
    ("green", "2019-02"): ("green-2019", 150),
    ("fhv", "2019-01"): ("fhv-2019", 230),
    ("fhv", "2019-02"): ("fhv-2019", 240),
    ("fhvhv", "2019-02"): ("fhvhv-2024", 330),
}
"""Different counts per service and month, so a row in the wrong month shows."""
DROPOFF = {"yellow": "tpep_dropoff_datetime", "green": "lpep_dropoff_datetime"}
FHVHV_MAP_INDEX = 3
"""load_trips maps over the services in their order: yellow, green, fhv, fhvhv."""


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pg_schema: str,
    source_server: tuple[str, Path],
) -> Iterator[AirflowStack]:
    base, root = source_server
    tlc = root / "tlc-backfill"
    for (service, month), (era, rows) in FILES.items():
        path = tlc / "trip-data" / f"{service}_tripdata_{month}.parquet"
        write_era(path, era, date.fromisoformat(f"{month}-01"), rows, row_group_rows=100)
    (tlc / "misc").mkdir(parents=True, exist_ok=True)
    (tlc / "misc" / "taxi_zone_lookup.csv").write_text(ZONES_CSV)
    env = {
        **taxi_env(postgres_url, pg_schema, f"{base}/mirror-unused"),
        "TAXI_START_MONTH": "2016-01",
        "AIRFLOW_VAR_TAXI_SOURCE": "tlc",
        "AIRFLOW_VAR_TAXI_TLC_URL": f"{base}/{tlc.name}",
    }
    home = tmp_path_factory.mktemp("airflow-tlc-backfill")
    with AirflowStack(home, DAG_ID, env) as stack:
        yield stack


def _month_counts(url: str, schema: str, service: str) -> dict[str, tuple[int, int, int]]:
    """Per source month: rows, rows with a pickup zone, rows with a dropoff time."""
    table = sql.Identifier(schema, f"{service}_tripdata")
    dropoff = DROPOFF.get(service, "dropoff_datetime")
    query = sql.SQL(
        "SELECT to_char(source_month, 'YYYY-MM'), count(*), count(pulocationid), count({}) "
        "FROM {} GROUP BY 1 ORDER BY 1"
    ).format(sql.Identifier(dropoff), table)
    with psycopg.connect(url) as conn:
        return {m: (n, pu, do) for m, n, pu, do in conn.execute(query).fetchall()}


def test_backfill_across_eras_loads_every_month_exactly(
    stack: AirflowStack, postgres_url: str, pg_schema: str
) -> None:
    stack.create_backfill("2016-06-01", "2016-07-31")
    stack.unpause(DAG_ID)
    first = stack.wait_for_backfill({"2016-06-01", "2016-07-01"}, RUNS_TIMEOUT_S)
    # one active backfill per DAG: the second era boundary once the first has ended
    stack.create_backfill("2019-01-01", "2019-02-28")
    second = stack.wait_for_backfill({"2019-01-01", "2019-02-01"}, RUNS_TIMEOUT_S)
    runs = {**first, **second}
    states = {d: r["state"] for d, r in runs.items()}
    assert set(states.values()) == {"success"}, stack.explain(f"states {states}")

    for service in ("yellow", "green", "fhv", "fhvhv"):
        got = _month_counts(postgres_url, pg_schema, service)
        want = {}
        for (s, month), (era, rows) in FILES.items():
            if s != service:
                continue
            zones = 0 if era == "yellow-2016" else rows  # coordinates, no zone ids
            dropoffs = 0 if era == "fhv-2015" else rows  # fhv before 2017-06: no dropoff
            want[month] = (rows, zones, dropoffs)
        assert got == want, stack.explain(f"{service}: {got} != {want}")

    # fhvhv before 2019-02 cannot exist at the TLC: skipped before any request, not failed
    resp = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances",
        params={"task_id": "load_trips", "limit": 100},
    )
    resp.raise_for_status()
    mine = {r["dag_run_id"]: d for d, r in runs.items()}
    states_by_load = {
        (mine[t["dag_run_id"]], t["map_index"]): t["state"]
        for t in resp.json()["task_instances"]
        if t["dag_run_id"] in mine
    }
    assert len(states_by_load) == 16, stack.explain(f"load_trips: {states_by_load}")
    skipped = sorted(k for k, v in states_by_load.items() if v == "skipped")
    assert skipped == [
        (day, FHVHV_MAP_INDEX) for day in ("2016-06-01", "2016-07-01", "2019-01-01")
    ], stack.explain(f"load_trips states: {states_by_load}")
    with psycopg.connect(postgres_url) as conn:
        log = conn.execute(
            sql.SQL(
                "SELECT DISTINCT source_kind, source_format, status FROM {} "
                "WHERE service <> 'zones' ORDER BY 1"
            ).format(sql.Identifier(pg_schema, "taxi_ingestion_log"))
        ).fetchall()
    assert log == [("tlc", "parquet", "loaded")], stack.explain(f"ingestion log: {log}")
