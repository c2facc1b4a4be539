"""Month partitions through a real scheduler: the yearly rollup waits for the twelfth month.

Events on the lake's month asset are posted through the REST API with their partition keys
(as taxi_to_lake's writes carry them), so the test needs no source, lake writes or BigQuery:
what it checks is Airflow's rollup (RollupMapper + YearWindow + WaitForAll) as configured in
taxi_year_complete, run by the scheduler itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.airflow_stack import TERMINAL, AirflowStack, taxi_env
from tests.helpers.asset_events import asset_id, post_month

pytestmark = pytest.mark.e2e

ROLLUP = "taxi_year_complete"
LAKE_ASSET = "taxi_lake_trip_months"
QUIET_S = 20
"""How long 11 months must leave the rollup without a run: several scheduler loops."""
RUN_TIMEOUT_S = 120


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pg_schema: str,
    source_server: tuple[str, Path],
) -> Iterator[AirflowStack]:
    lake = tmp_path_factory.mktemp("lake")
    env = taxi_env(postgres_url, pg_schema, source_server[0])
    env["AIRFLOW_VAR_TAXI_LAKE_URL"] = lake.as_uri()
    with AirflowStack(tmp_path_factory.mktemp("airflow-partitions"), ROLLUP, env) as stack:
        yield stack


def _post_month(stack: AirflowStack, asset: int, month: str) -> None:
    post_month(stack, asset, month, {"month": month})


def test_the_year_rollup_waits_for_the_twelfth_month(stack: AirflowStack) -> None:
    stack.unpause(ROLLUP)
    lake_asset = asset_id(stack, LAKE_ASSET)

    for month in range(1, 12):
        _post_month(stack, lake_asset, f"2021-{month:02d}")
    _post_month(stack, lake_asset, "2022-12")  # another year's month counts for 2022 only
    time.sleep(QUIET_S)
    assert stack.runs(ROLLUP) == [], stack.explain("11 months of 2021 made a rollup run")

    _post_month(stack, lake_asset, "2021-12")

    def rollup_done() -> dict[str, Any] | None:
        runs = stack.runs(ROLLUP)
        stack.fail_on_task_trouble([r["dag_run_id"] for r in runs], ROLLUP)
        return runs[0] if runs and runs[0]["state"] in TERMINAL else None

    run = stack.wait_for("the 2021 rollup run", rollup_done, RUN_TIMEOUT_S)
    assert (run["partition_key"], run["run_type"], run["state"]) == (
        "2021",
        "asset_triggered",
        "success",
    ), stack.explain(f"rollup run {run}", dag_id=ROLLUP)
    time.sleep(5)
    assert [r["partition_key"] for r in stack.runs(ROLLUP)] == ["2021"], "one run per year"

    resp = stack.api(
        "GET",
        f"/api/v2/dags/{ROLLUP}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents",
    )
    resp.raise_for_status()
    keys = sorted(e["partition_key"] for e in resp.json()["asset_events"])
    assert keys == [f"2021-{m:02d}" for m in range(1, 13)], keys
    result = stack.api(
        "GET",
        f"/api/v2/dags/{ROLLUP}/dagRuns/{run['dag_run_id']}/taskInstances/summarise/xcomEntries/"
        "return_value",
        params={"deserialize": True},
    ).json()["value"]
    assert (result["year"], result["complete"]) == ("2021", []), result  # an empty lake
