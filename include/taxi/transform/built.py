"""taxi_models' last task: record which months the run built, and whether every model and test
task passed (the Models column of the Taxi months page reads it).

It runs as a teardown, so it runs whatever the models did and does not decide the run's state
(the failed test tasks do, and they alert). The task states come from Airflow itself
(``get_task_states`` of this run), not from dbt: a test task that failed, or a model task
never run because an upstream one failed, both make the month *failed*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.taxi.months import Month

GROUP_PREFIX = "models."
"""The Cosmos task group's tasks (cosmos_group.models_group's group_id)."""
PASSED = frozenset({"success", "skipped"})


def failed_tasks(states: Mapping[str, Any]) -> list[str]:
    """The group's tasks of the run that did not pass, by task id."""
    return sorted(
        task_id
        for task_id, state in states.items()
        if task_id.startswith(GROUP_PREFIX) and str(state) not in PASSED
    )


def record_models(context: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Log each month ``plan`` chose as built (or failed) with fct_trips' rows per service;
    nothing when ``plan`` chose none (that run already failed for good)."""
    from include.taxi.orchestration import config
    from include.taxi.postgres.models_log import record_build

    ti = context["ti"]
    planned = ti.xcom_pull(task_ids="plan")
    if not planned:
        return {}
    months = [Month.parse(month) for month in str(planned).split(",")]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    return record_build(
        config.postgres_conninfo(),
        config.postgres_schema(),
        months,
        run_id,
        failed_tasks(states),
    )
