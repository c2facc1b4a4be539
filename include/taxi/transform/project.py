"""Where the dbt project and its executable are, and running dbt as a subprocess.

dbt lives in its own environment (.venv-dbt, `make dbt`): its pins clash with Airflow's lock,
so nothing here imports dbt; everything calls the ``dbt`` executable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from include.taxi.settings import DBT_EXECUTABLE_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TRANSFORM_DIR = PROJECT_ROOT / "transform"
DBT_LS_FILE = TRANSFORM_DIR / "dbt_ls.json"
"""`dbt ls` of the project, committed: Cosmos renders taxi_models' tasks from it at parse time
(LoadMode.DBT_LS_FILE) instead of running dbt in the DAG processor; `make dbt-ls` refreshes it
and tests/integration/test_transform_postgres.py fails when it is stale. It holds what a plain
`dbt ls` lists: the default selector (transform/selectors.yml) leaves the yearly models out."""
YEARLY_DBT_LS_FILE = TRANSFORM_DIR / "dbt_ls_yearly.json"
"""The same for taxi_models_yearly: `dbt ls --selector yearly`. Cosmos does not apply a
RenderConfig's select or exclude to a dbt ls file, so each task group needs its own file."""
YEARLY_SELECTOR = "yearly"
LS_OUTPUT_KEYS = (
    "name",
    "unique_id",
    "resource_type",
    "depends_on",
    "original_file_path",
    "tags",
    "config",
    "fqn",
)
"""The keys Cosmos reads from `dbt ls --output json` (cosmos.dbt.graph)."""


def dbt_executable() -> Path:
    """The ``dbt`` of .venv-dbt, or the one ``TAXI_DBT_EXECUTABLE`` names."""
    return Path(os.environ.get(DBT_EXECUTABLE_ENV) or PROJECT_ROOT / ".venv-dbt" / "bin" / "dbt")


def month_vars(months: str) -> str:
    """``--vars`` for a build of ``months`` (comma-separated YYYY-MM; empty: every month)."""
    return "{month: '" + months.replace("'", "") + "'}"


def year_vars(year: str) -> str:
    """``--vars`` for a yearly build of ``year`` (YYYY; empty: every year)."""
    return "{year: '" + year.replace("'", "") + "'}"


def run_dbt(
    args: list[str],
    *,
    target: str,
    env: Mapping[str, str] | None = None,
    project_dir: Path = TRANSFORM_DIR,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``dbt <args>`` against ``target`` (postgres, duckdb, bigquery) with transform/profiles.yml;
    ``env`` adds the TAXI_* settings the profile reads. Output is captured for the caller."""
    executable = dbt_executable()
    if not executable.exists():
        raise FileNotFoundError(f"{executable} is missing: run `make dbt` to build .venv-dbt")
    full_env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project_dir),
        "TAXI_DBT_TARGET": target,
        **(env or {}),
    }
    done = subprocess.run(
        [str(executable), *args, "--project-dir", str(project_dir), "--target", target],
        cwd=project_dir,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"dbt {' '.join(args)} (target {target}) exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )
    return done


def ls_lines(output: str) -> list[str]:
    """The JSON node lines of `dbt ls --output json` (dbt also logs to stdout)."""
    return sorted(line for line in output.splitlines() if line.startswith("{"))


def list_nodes(selector: str | None = None) -> str:
    """`dbt ls` of the project as Cosmos reads it (postgres target; no connection needed):
    the default selector's nodes, or ``selector``'s (transform/selectors.yml)."""
    chosen = ["--selector", selector] if selector else []
    done = run_dbt(
        ["ls", "--quiet", *chosen, "--output", "json", "--output-keys", *LS_OUTPUT_KEYS],
        target="postgres",
    )
    return "\n".join(ls_lines(done.stdout)) + "\n"


if __name__ == "__main__":
    for path, selector in ((DBT_LS_FILE, None), (YEARLY_DBT_LS_FILE, YEARLY_SELECTOR)):
        path.write_text(list_nodes(selector))
        print(f"wrote {path}")
