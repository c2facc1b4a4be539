"""taxi_models and taxi_models_yearly as parsed: which models each renders, and how the yearly
one is scheduled (a rollup of the month events taxi_models emits after its models passed)."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import PartitionedAssetTimetable, RollupMapper, StartOfYearMapper, WaitForAll
from airflow.sdk.definitions.partition_mappers.window import YearWindow

from include.taxi.orchestration.assets import MODELS_TRIP_MONTHS
from include.taxi.transform.project import DBT_LS_FILE, YEARLY_DBT_LS_FILE

MONTHLY, YEARLY = "taxi_models", "taxi_models_yearly"
YEARLY_MART = "mart_yearly_zone_revenue"


@pytest.fixture(scope="module")
def dags(dag_bag):
    return dag_bag.dags


def _models(dag) -> set[str]:
    """The dbt models a DAG runs: its Cosmos run tasks (``models.<model>.run`` or ``_run``)."""
    return {
        task_id.removeprefix("models.").removesuffix(".run").removesuffix("_run")
        for task_id in dag.task_dict
        if task_id.startswith("models.") and task_id.endswith("run")
    }


def test_the_monthly_dag_leaves_the_yearly_mart_out(dags) -> None:
    models = _models(dags[MONTHLY])
    assert {"fct_trips", "mart_monthly_zone_revenue"} <= models
    assert not any("yearly" in task_id for task_id in dags[MONTHLY].task_dict)


def test_the_yearly_dag_builds_and_tests_the_yearly_mart_only(dags) -> None:
    dag = dags[YEARLY]
    assert sorted(dag.task_dict) == [
        f"models.{YEARLY_MART}.run",
        f"models.{YEARLY_MART}.test",
        "plan",
    ]
    run = dag.task_dict[f"models.{YEARLY_MART}.run"]
    assert run.vars["year"] == "{{ ti.xcom_pull(task_ids='plan') }}"
    assert "month" not in run.vars
    assert dag.task_dict["plan"].downstream_task_ids == {run.task_id}


def test_the_yearly_dag_is_a_rollup_of_the_models_months(dags) -> None:
    timetable = dags[YEARLY].timetable
    assert isinstance(timetable, PartitionedAssetTimetable)
    assert timetable.asset_condition == MODELS_TRIP_MONTHS
    mapper = timetable.default_partition_mapper
    assert isinstance(mapper, RollupMapper)
    assert isinstance(mapper.upstream_mapper, StartOfYearMapper)
    assert (mapper.upstream_mapper.input_format, mapper.upstream_mapper.output_format) == (
        "%Y-%m",
        "%Y",
    )
    assert isinstance(mapper.window, YearWindow)
    assert isinstance(mapper.wait_policy, WaitForAll)


def test_the_monthly_dag_announces_a_month_only_after_every_model_and_test(dags) -> None:
    dag = dags[MONTHLY]
    announce = dag.task_dict["announce"]
    assert announce.outlets == [MODELS_TRIP_MONTHS]
    assert announce.trigger_rule == "all_success"
    group = {task_id for task_id in dag.task_dict if task_id.startswith("models.")}
    assert group <= announce.get_flat_relative_ids(upstream=True)
    assert not dag.task_dict["record"].downstream_task_ids  # the teardown stays last, unchanged


def test_the_dbt_ls_files_split_the_project_by_the_yearly_tag() -> None:
    """Cosmos renders each DAG from its own `dbt ls` file: no node in both, the yearly file
    holds only the yearly models and their tests."""
    monthly = [json.loads(line) for line in DBT_LS_FILE.read_text().splitlines()]
    yearly = [json.loads(line) for line in YEARLY_DBT_LS_FILE.read_text().splitlines()]
    assert not {n["unique_id"] for n in monthly} & {n["unique_id"] for n in yearly}
    assert not [n["name"] for n in monthly if "yearly" in n["tags"]]
    yearly_models = {n["name"] for n in yearly if n["resource_type"] == "model"}
    assert yearly_models == {YEARLY_MART}
    assert all(n["resource_type"] in ("model", "test") for n in yearly)
