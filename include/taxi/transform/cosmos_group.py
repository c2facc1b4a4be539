"""taxi_models' and taxi_models_yearly's tasks: the dbt project rendered by Cosmos, a run task
and a test task per model; which models, and the dbt var naming what they build, is a ``Build``.

Declarations only (imported at parse time): Cosmos reads the committed `dbt ls` output
(LoadMode.DBT_LS_FILE), so parsing never starts dbt. At run time each task calls .venv-dbt's
``dbt`` as a subprocess (ExecutionMode.LOCAL with InvocationMode.SUBPROCESS: dbt's pins clash
with Airflow's, so it cannot be imported here), with a profile Cosmos builds from the
taxi_postgres connection; the models land in the taxi_postgres_schema Variable's schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ExecutionMode,
    InvocationMode,
    LoadMode,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
    TestBehavior,
)
from cosmos.profiles import PostgresUserPasswordProfileMapping

from include.taxi.settings import DEFAULT_POSTGRES_SCHEMA, POSTGRES_CONN_ID, VAR_POSTGRES_SCHEMA
from include.taxi.transform.project import (
    DBT_LS_FILE,
    TRANSFORM_DIR,
    YEARLY_DBT_LS_FILE,
    dbt_executable,
)

SCHEMA_ENV = "TAXI_DBT_SCHEMA"
"""The profile's schema, read by dbt from the environment the task renders (the Variable)."""
SCHEMA_TEMPLATE = f"{{{{ var.value.get('{VAR_POSTGRES_SCHEMA}', '{DEFAULT_POSTGRES_SCHEMA}') }}}}"


def profile_config() -> ProfileConfig:
    """dbt's Postgres profile from the Airflow connection: no profiles.yml with secrets (Cosmos
    hands dbt the password through an environment variable)."""
    return ProfileConfig(
        profile_name="taxi",
        target_name="postgres",
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=POSTGRES_CONN_ID,
            profile_args={"schema": f"{{{{ env_var('{SCHEMA_ENV}') }}}}"},
        ),
    )


@dataclass(frozen=True)
class Build:
    """Which models a task group renders (a committed `dbt ls` file: Cosmos applies no select
    or exclude to one, see project.YEARLY_DBT_LS_FILE) and the dbt var its template fills."""

    dbt_ls_file: Path
    var: str


MONTHLY = Build(DBT_LS_FILE, "month")
"""taxi_models: every model but the yearly ones, for source months (var month)."""
YEARLY = Build(YEARLY_DBT_LS_FILE, "year")
"""taxi_models_yearly: the models tagged yearly, for one year (var year)."""


def models_group(value: str, build: Build = MONTHLY) -> DbtTaskGroup:
    """``build``'s models and their tests as tasks, building ``value`` (a template: the months,
    comma-separated YYYY-MM, or the year, YYYY); the tasks take the DAG's default arguments
    (failure notifier)."""
    return DbtTaskGroup(
        group_id="models",
        project_config=ProjectConfig(
            dbt_project_path=TRANSFORM_DIR,
            install_dbt_deps=False,
            dbt_vars={build.var: value, "raw_schema": SCHEMA_TEMPLATE},
            env_vars={SCHEMA_ENV: SCHEMA_TEMPLATE},
        ),
        profile_config=profile_config(),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt_executable(),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS_FILE,
            dbt_ls_path=build.dbt_ls_file,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            enable_mock_profile=True,
        ),
        operator_args={"append_env": True},
    )
