"""The pools: which tasks take them, and the sizes the tooling creates them with."""

from __future__ import annotations

from pathlib import Path

import pytest

from dev.pools import pools_file
from include.taxi.settings import (
    DEFAULT_POSTGRES_COPY_STREAMS,
    ENV_BIGQUERY_MONTH_SLOTS,
    ENV_POSTGRES_COPY_SLOTS,
    ENV_POSTGRES_COPY_STREAMS,
    POOL_POSTGRES_COPY,
    SERVICES,
    bigquery_pool,
    pool_sizes,
    postgres_copy_streams,
)

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    ("taxi_to_postgres", "load_trips"): POOL_POSTGRES_COPY,
    **{("lake_to_bigquery", f"load_{s}"): f"taxi_bigquery_{s}_tripdata" for s in SERVICES},
    ("lake_to_bigquery", "load_zones"): "taxi_bigquery_taxi_zone_lookup",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_warehouse_writes_take_their_pool_and_nothing_else_does(dagbag) -> None:
    """COPYs and BigQuery month transactions are capped; downloads and lake writes stay wide."""
    pooled = {
        (dag_id, task.task_id): task.pool
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task.pool != "default_pool"
    }
    assert pooled == EXPECTED
    assert all(t.pool == "default_pool" for t in dagbag.dags["taxi_to_lake"].tasks)


def test_pool_sizes_default_and_follow_the_environment() -> None:
    bigquery = [bigquery_pool(s) for s in (*SERVICES, "zones")]
    assert {name: slots for name, (slots, _) in pool_sizes({}).items()} == {
        POOL_POSTGRES_COPY: 2,
        **dict.fromkeys(bigquery, 1),
    }
    env = {ENV_POSTGRES_COPY_SLOTS: "6", ENV_BIGQUERY_MONTH_SLOTS: " 3 "}
    assert pools_file(env)[POOL_POSTGRES_COPY]["slots"] == 6
    assert {pools_file(env)[pool]["slots"] for pool in bigquery} == {3}


def test_one_bigquery_pool_per_warehouse_table() -> None:
    """The pool names follow the tables the contract names (settings cannot import it)."""
    from include.taxi.contract import CONTRACTS, table_name
    from include.taxi.settings import BIGQUERY_TABLES

    assert {name: table_name(c) for name, c in CONTRACTS.items()} == BIGQUERY_TABLES


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_pool_size_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match=f"{ENV_POSTGRES_COPY_SLOTS}='{value}'"):
        pool_sizes({ENV_POSTGRES_COPY_SLOTS: value})


def test_a_month_load_takes_a_pool_slot_per_copy_stream(dagbag) -> None:
    load = dagbag.dags["taxi_to_postgres"].get_task("load_trips")
    assert load.pool_slots == postgres_copy_streams() >= 1


def test_copy_streams_default_to_one_per_two_cores_and_never_exceed_the_pool() -> None:
    assert DEFAULT_POSTGRES_COPY_STREAMS == 1  # opt-in: see settings.py for why
    assert postgres_copy_streams({ENV_POSTGRES_COPY_STREAMS: "3"}) == 2  # the pool's 2 slots
    env = {ENV_POSTGRES_COPY_STREAMS: "3", ENV_POSTGRES_COPY_SLOTS: "6"}
    assert postgres_copy_streams(env) == 3
    assert postgres_copy_streams({ENV_POSTGRES_COPY_SLOTS: "1"}) == 1


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_stream_count_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match=f"{ENV_POSTGRES_COPY_STREAMS}='{value}'"):
        postgres_copy_streams({ENV_POSTGRES_COPY_STREAMS: value})
