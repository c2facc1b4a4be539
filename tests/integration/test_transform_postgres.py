"""The dbt project (transform/) on the real PostgreSQL over months the pipeline loaded.

dbt runs as a subprocess from .venv-dbt (`make dbt`), as taxi_models runs it.
"""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from include.taxi.transform.project import (
    DBT_LS_FILE,
    YEARLY_DBT_LS_FILE,
    YEARLY_SELECTOR,
    list_nodes,
    month_vars,
    run_dbt,
)
from tests.helpers.transform import break_zone_id, month_loader, postgres_profile_env

JAN, FEB, MAR = date(2021, 1, 1), date(2021, 2, 1), date(2021, 3, 1)
YELLOW_PICKUP_ZONE = 7
"""PULocationID's column in the yellow csv."""


@pytest.fixture
def warehouse(source_server, postgres_url, pg_schema):
    """Zones and two months of yellow and green in a fresh schema; ``load(service, month)``."""
    loader = month_loader(source_server, "transform", postgres_url, pg_schema)

    def load(service: str, month: str, rows: int, seed: int = 0) -> None:
        """A negative seed also gives the month's first trip a zone the lookup lacks."""
        broken = (lambda path: break_zone_id(path, YELLOW_PICKUP_ZONE)) if seed < 0 else None
        loader(service, month, rows, seed, broken)

    return load, postgres_profile_env(postgres_url, pg_schema)


def _build(env: dict[str, str], months: str, check: bool = True):
    return run_dbt(["build", "--vars", month_vars(months)], target="postgres", env=env, check=check)


def _fct_counts(url: str, schema: str) -> dict[tuple[date, str], int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT source_month, service, count(*) FROM "{schema}".fct_trips GROUP BY 1, 2'
        ).fetchall()
    return {(month, service): n for month, service, n in rows}


def _mart_trips(url: str, schema: str) -> dict[date, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT source_month, sum(trips) FROM "{schema}".mart_monthly_zone_revenue GROUP BY 1'
        ).fetchall()
    return {month: int(n) for month, n in rows}


def test_months_build_incrementally_and_idempotently(warehouse, postgres_url, pg_schema) -> None:
    load, env = warehouse
    load("yellow", "2021-01", 3_000)
    load("green", "2021-01", 1_000)
    _build(env, "2021-01")
    assert _fct_counts(postgres_url, pg_schema) == {(JAN, "yellow"): 3_000, (JAN, "green"): 1_000}
    assert _mart_trips(postgres_url, pg_schema) == {JAN: 4_000}

    # January changes in the warehouse, but a February build must not touch January's models
    load("yellow", "2021-01", 2_000, seed=5)
    load("yellow", "2021-02", 1_500)
    _build(env, "2021-02")
    expected = {(JAN, "yellow"): 3_000, (JAN, "green"): 1_000, (FEB, "yellow"): 1_500}
    assert _fct_counts(postgres_url, pg_schema) == expected
    _build(env, "2021-02")  # a rerun replaces the month, never adds to it
    assert _fct_counts(postgres_url, pg_schema) == expected
    assert _mart_trips(postgres_url, pg_schema) == {JAN: 4_000, FEB: 1_500}

    _build(env, "2021-01")  # January's own run picks up its reload
    assert _fct_counts(postgres_url, pg_schema)[(JAN, "yellow")] == 2_000


def test_a_broken_month_fails_its_own_test(warehouse, postgres_url, pg_schema) -> None:
    load, env = warehouse
    load("yellow", "2021-01", 1_000)
    load("yellow", "2021-03", 1_000, seed=-1)  # one trip from a zone the lookup lacks
    done = _build(env, "2021-03", check=False)
    assert done.returncode == 1, done.stdout[-3000:]
    failed = [line for line in done.stdout.splitlines() if "FAIL 1 " in line]
    assert any("relationships_fct_trips_pickup_location_id" in line for line in failed), failed
    assert _build(env, "2021-01").returncode == 0  # the other months' tests are unaffected


def test_a_bad_month_var_is_refused_before_anything_runs(warehouse) -> None:
    _, env = warehouse
    done = _build(env, "2021-13", check=False)
    assert done.returncode != 0
    assert "expected YYYY-MM" in done.stdout


def test_the_committed_dbt_ls_files_are_current() -> None:
    """Cosmos renders taxi_models from transform/dbt_ls.json and taxi_models_yearly from
    dbt_ls_yearly.json: refresh them with `make dbt-ls`."""
    assert list_nodes() == DBT_LS_FILE.read_text()
    assert list_nodes(YEARLY_SELECTOR) == YEARLY_DBT_LS_FILE.read_text()
