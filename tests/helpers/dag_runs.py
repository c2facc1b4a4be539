"""Run a DAG in-process (``dag.test``) and read what happened: one helper for every DAG test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def run_month(dag: Any, month: str, **conf: Any) -> Any:
    """A manual run for ``month``; the month is passed as a Param, as `make month` does (a
    manual run's data interval is the month *before* its logical date)."""
    logical = datetime.fromisoformat(f"{month}-01").replace(tzinfo=UTC)
    return dag.test(logical_date=logical, run_conf={"month": month, **conf})


def task_states(run: Any) -> dict[str, str]:
    """``{"task_id[map_index]": state}`` of a finished run."""
    return {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in run.get_task_instances()}
