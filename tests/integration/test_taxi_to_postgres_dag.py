"""The taxi_to_postgres DAG run in-process (dag.test) against a local source and real Postgres."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from dev.synthetic import write_month, write_zones
from tests.helpers.dag_runs import asset_events, run_month, task_states

ROWS = {
    ("yellow", "2021-01"): 1_500,
    ("green", "2021-01"): 800,
    ("fhv", "2021-01"): 600,
    ("yellow", "2021-02"): 1_100,
    ("green", "2021-02"): 500,
    ("fhv", "2021-02"): 450,
}


@pytest.fixture(scope="module")
def dag(dag_bag):
    return dag_bag.dags["taxi_to_postgres"]


@pytest.fixture(scope="module")
def published(source_server):
    base, root = source_server
    for (service, month), rows in ROWS.items():
        name = f"{service}_tripdata_{month}.csv.gz"
        write_month(root / service / name, service, date.fromisoformat(f"{month}-01"), rows)
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    return base


@pytest.fixture
def warehouse(monkeypatch, taxi_postgres, published):
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", published)
    return taxi_postgres


def _counts(url: str, schema: str, table: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT to_char(source_month, \'YYYY-MM\'), count(*) FROM "{schema}"."{table}" '
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return dict(rows)


def test_a_month_loads_every_service_and_reruns_do_not_duplicate(dag, warehouse, postgres_url):
    run = run_month(dag, "2021-01")
    assert run.state == "success", task_states(run)
    assert task_states(run) == {
        "plan[-1]": "success",
        "load_zones[-1]": "success",
        "announce[-1]": "success",
        "announce_tables[-1]": "success",
        "load_trips[0]": "success",
        "load_trips[1]": "success",
        "load_trips[2]": "success",
        "load_trips[3]": "skipped",  # fhvhv: the course mirror has none (TLC source only)
    }
    for service in ("yellow", "green", "fhv"):
        assert _counts(postgres_url, warehouse, f"{service}_tripdata") == {
            "2021-01": ROWS[(service, "2021-01")]
        }
    tables = {name: extra for name, extra in asset_events(run.run_id) if "tripdata" in name}
    assert tables == {  # fhvhv skipped: no event on its table
        f"taxi_postgres_{s}_tripdata": {"month": "2021-01", "rows": ROWS[(s, "2021-01")]}
        for s in ("yellow", "green", "fhv")
    }
    rerun = run_month(dag, "2021-01")
    assert rerun.state == "success"
    assert [n for n, _ in asset_events(rerun.run_id) if "tripdata" in n] == [], "unchanged"
    assert _counts(postgres_url, warehouse, "yellow_tripdata") == {"2021-01": 1_500}
    assert run_month(dag, "2021-02").state == "success"
    for service in ("yellow", "green", "fhv"):
        assert _counts(postgres_url, warehouse, f"{service}_tripdata") == {
            month: ROWS[(service, month)] for month in ("2021-01", "2021-02")
        }
    with psycopg.connect(postgres_url) as conn:
        total = conn.execute(
            f'SELECT round(sum(total_amount)::numeric, 2) FROM "{warehouse}".yellow_tripdata '
            "WHERE source_month = '2021-01-01'"
        ).fetchone()[0]
        zones = conn.execute(f'SELECT count(*) FROM "{warehouse}".taxi_zone_lookup').fetchone()[0]
    assert total > 0
    assert zones == 7


def test_a_failed_service_fails_the_run_and_the_loaded_ones_are_still_announced(
    dag, warehouse, postgres_url, source_server
):
    """announce_tables is a teardown: after green's bad file it still announces yellow's table,
    and the run is failed by green's load, not succeeded by the teardown."""
    _, root = source_server
    write_month(root / "yellow" / "yellow_tripdata_2021-03.csv.gz", "yellow", date(2021, 3, 1), 700)
    (root / "green" / "green_tripdata_2021-03.csv.gz").write_bytes(b"not a gzip file\n")
    run = run_month(dag, "2021-03")
    states = task_states(run)
    assert run.state == "failed", states
    assert (states["load_trips[0]"], states["load_trips[1]"]) == ("success", "failed"), states
    assert states["announce_tables[-1]"] == "success", states
    assert states["announce[-1]"] == "upstream_failed", "no month event: taxi_models waits"
    tables = dict(asset_events(run.run_id))  # fhv's too, if another test published its month
    assert tables["taxi_postgres_yellow_tripdata"] == {"month": "2021-03", "rows": 700}, tables
    assert "taxi_postgres_green_tripdata" not in tables, tables
    assert _counts(postgres_url, warehouse, "yellow_tripdata") == {"2021-03": 700}


def test_params_choose_service_and_month(dag, warehouse, postgres_url):
    run = run_month(dag, "2021-02", service="green")
    assert run.state == "success"
    assert _counts(postgres_url, warehouse, "green_tripdata") == {"2021-02": 500}
    with psycopg.connect(postgres_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (warehouse,)
            )
        }
    assert "yellow_tripdata" not in tables


def test_unpublished_month_is_skipped_not_failed(dag, warehouse, postgres_url):
    run = run_month(dag, "2020-06", service="yellow")
    assert run.state == "success"
    assert task_states(run)["load_trips[0]"] == "skipped"


def test_bad_month_param_fails_the_run_with_a_clear_message(dag, warehouse):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="2021-13"):
        dag.test(
            logical_date=datetime(2021, 1, 1, tzinfo=UTC),
            run_conf={"service": "yellow", "month": "2021-13"},
        )
