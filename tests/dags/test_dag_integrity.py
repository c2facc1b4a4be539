"""Every DAG file imports cleanly, fast, offline, and follows the project's conventions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dev.airflow_env import PROJECT

DAGS_DIR = PROJECT / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
PARSE_BUDGET_S = 2.0


DAG_IDS = [p.stem for p in DAG_FILES]
"""One DAG per file, named like the file (checked below): the ids are known before parsing."""


@pytest.fixture(scope="module")
def dagbag(dag_bag):
    return dag_bag


def test_there_are_dag_files() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_no_warnings_while_parsing(dagbag) -> None:
    assert dict(dagbag.captured_warnings) == {}


def test_every_file_defines_one_dag_named_like_the_file(dagbag) -> None:
    by_file: dict[str, list[str]] = {}
    for dag_id, dag in dagbag.dags.items():
        by_file.setdefault(Path(dag.fileloc).stem, []).append(dag_id)
    assert by_file == {p.stem: [p.stem] for p in DAG_FILES}


def test_parse_time_within_budget(dagbag) -> None:
    slow = {
        stat.file: stat.duration.total_seconds()
        for stat in dagbag.dagbag_stats
        if stat.duration.total_seconds() > PARSE_BUDGET_S
    }
    assert slow == {}, f"DAG files parsing slower than {PARSE_BUDGET_S}s: {slow}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_conventions(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md, f"{dag_id} has no doc_md"
    assert dag.start_date is not None, f"{dag_id} has no start_date"
    assert dag.start_date.tzinfo is not None, f"{dag_id}: naive start_date"
    for task in dag.tasks:
        assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id}: set an owner"
        assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
        assert task.execution_timeout is not None, f"{dag_id}.{task.task_id}: no timeout"
        assert task.on_failure_callback, f"{dag_id}.{task.task_id}: no failure notifier"


TABLE_TARGETS = {
    "taxi_to_postgres": "postgres",
    "taxi_to_lake": "lake",
    "lake_to_bigquery": "bigquery",
}


@pytest.mark.parametrize("dag_id", sorted(TABLE_TARGETS))
def test_one_task_announces_the_tables_one_run_at_a_time(dagbag, dag_id: str) -> None:
    """Only announce_tables emits through the target's alias, never two runs at once (Airflow
    3.3.2 races linking an alias to an asset), after every load and without owning the run's
    state (a teardown)."""
    from include.taxi.orchestration.assets import TABLES

    dag = dagbag.dags[dag_id]
    alias = TABLES[TABLE_TARGETS[dag_id]]
    emitters = [t.task_id for t in dag.tasks if alias in t.outlets]
    assert emitters == ["announce_tables"], f"{dag_id}: {alias.name} is an outlet of {emitters}"
    announce = dag.get_task("announce_tables")
    assert announce.max_active_tis_per_dag == 1
    assert announce.is_teardown
    assert not announce.on_failure_fail_dagrun
    loads = {t.task_id for t in dag.tasks if t.task_id.startswith(("load_", "write_month"))}
    loads -= {"load_zones"}
    assert loads, dag_id
    assert loads == announce.upstream_task_ids, f"{dag_id}: {announce.upstream_task_ids}"


OFFLINE_IMPORT = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network or database access at DAG import time")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(len(bag.dags), bag.import_errors)
sys.exit(1 if bag.import_errors or not bag.dags else 0)
"""


def test_import_needs_no_network_or_database(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path}/absent/db.sqlite"
    env["AIRFLOW_CONN_TAXI_POSTGRES"] = "postgres://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_IMPORT, str(DAGS_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


HEAVY_MODULES = (
    "pandas",
    "pyarrow",
    "numpy",
    "google.cloud.storage",
    "google.cloud.bigquery",
    "adbc_driver_manager",
)
HEAVY_PREFIXES = ("airflow.providers.google.cloud.hooks", "airflow.providers.postgres.hooks")


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parsing_imports_no_heavy_module(dag_file: Path) -> None:
    """What makes a DAG file slow to parse is what it imports: the hooks, clients and pandas
    belong inside the tasks. (An Asset with a URI scheme, for one, loads every provider's asset
    handlers and with them GCSHook.) Checked by module, not by a timer."""
    probe = (
        "import importlib.util, json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "before = set(sys.modules)\n"
        f"DagBag(dag_folder={str(dag_file)!r})\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m in HEAVY_MODULES or m.startswith(HEAVY_PREFIXES)]
    assert heavy == [], f"{dag_file.name} imports at parse time: {heavy[:10]}"
