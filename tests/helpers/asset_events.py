"""Partitioned asset events posted through a running Airflow's REST API, as a producing task
would emit them: the e2e rollup tests need the events, not the DAGs that write them."""

from __future__ import annotations

from dev.airflow_stack import AirflowStack


def asset_id(stack: AirflowStack, name: str) -> int:
    """The id of the asset ``name`` (registered once a DAG naming it was parsed)."""
    resp = stack.api("GET", "/api/v2/assets", params={"name_pattern": name})
    resp.raise_for_status()
    (asset,) = [a for a in resp.json()["assets"] if a["name"] == name]
    return int(asset["id"])


def post_month(stack: AirflowStack, asset: int, month: str, extra: dict[str, object]) -> None:
    """One event on ``asset`` with the partition key ``month``."""
    body = {"asset_id": asset, "partition_key": month, "extra": extra}
    resp = stack.write("POST", "/api/v2/assets/events", body)
    assert resp.status_code == 200, stack.explain(f"asset event {month}: {resp.text}")
