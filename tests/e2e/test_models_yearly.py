"""taxi_models_yearly through a real scheduler: it waits for the twelfth month's models, then
builds that year's yearly mart with Cosmos's tasks running .venv-dbt's dbt.

The events on ``taxi_models_trip_months`` are posted through the REST API with their month
partition keys, as taxi_models' ``announce`` emits them once a month's models passed: twelve
real taxi_models runs would take an hour here. What the yearly run reads is prepared for real
beforehand: yellow 2021-01 loaded into Postgres by the pipeline and its monthly models built by
dbt (``dbt build --vars {month: 2021-01}``). So the run executes dbt and the test checks its
key, its state and the yearly mart it built (2021 holds January only: the mart rolls up the
months that are there).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dev.airflow_stack import TERMINAL, AirflowStack, taxi_env
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres
from include.taxi.transform.project import month_vars, run_dbt
from tests.helpers.asset_events import asset_id, post_month
from tests.helpers.transform import (
    postgres_profile_env,
    served_folder,
    write_all_zones,
    write_source_month,
)

pytestmark = pytest.mark.e2e

YEARLY = "taxi_models_yearly"
MODELS_ASSET = "taxi_models_trip_months"
JANUARY_TRIPS = 700
QUIET_S = 20
"""How long 11 months must leave the rollup without a run: several scheduler loops."""
RUN_TIMEOUT_S = 600
"""Three tasks, two of them a dbt start each (10-30 s on 2 shared cores)."""


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    source_server: tuple[str, Path],
    postgres_url: str,
    pg_schema: str,
) -> Iterator[AirflowStack]:
    base, root = served_folder(source_server, "models_yearly_e2e")
    write_all_zones(root)
    write_source_month(root, "yellow", "2021-01", JANUARY_TRIPS)
    zones_to_postgres(source_base=base, conninfo=postgres_url, schema=pg_schema)
    month_to_postgres(
        "yellow", Month(2021, 1), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    env = postgres_profile_env(postgres_url, pg_schema)
    run_dbt(["build", "--vars", month_vars("2021-01")], target="postgres", env=env)
    airflow_env = {**taxi_env(postgres_url, pg_schema, base), "TAXI_END_MONTH": "2021-03"}
    with AirflowStack(tmp_path_factory.mktemp("airflow-yearly"), YEARLY, airflow_env) as stack:
        yield stack


def _yearly_mart(url: str, schema: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT source_year, service, max(months), sum(trips)"
            f' FROM "{schema}".mart_yearly_zone_revenue GROUP BY 1, 2'
        ).fetchall()


def test_the_yearly_mart_waits_for_the_twelfth_month_built(
    stack: AirflowStack, postgres_url: str, pg_schema: str
) -> None:
    stack.unpause(YEARLY)
    models_asset = asset_id(stack, MODELS_ASSET)

    def announce(month: str) -> None:
        post_month(stack, models_asset, month, {"months": [month]})

    for month in range(1, 12):
        announce(f"2021-{month:02d}")
    announce("2022-12")  # another year's month counts for 2022 only
    time.sleep(QUIET_S)
    assert stack.runs(YEARLY) == [], stack.explain("11 months of 2021 made a yearly run")

    announce("2021-12")

    def yearly_done() -> dict[str, Any] | None:
        runs = stack.runs(YEARLY)
        stack.fail_on_task_trouble([r["dag_run_id"] for r in runs], YEARLY)
        return runs[0] if runs and runs[0]["state"] in TERMINAL else None

    run = stack.wait_for("the 2021 yearly run", yearly_done, RUN_TIMEOUT_S)
    assert (run["partition_key"], run["run_type"], run["state"]) == (
        "2021",
        "asset_triggered",
        "success",
    ), stack.explain(f"yearly run {run}", [f"run_id={run['dag_run_id']}/"], YEARLY)
    assert [r["partition_key"] for r in stack.runs(YEARLY)] == ["2021"], "one run per year"
    assert _yearly_mart(postgres_url, pg_schema) == [(2021, "yellow", 1, JANUARY_TRIPS)]
