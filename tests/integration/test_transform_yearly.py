"""The yearly mart (mart_yearly_zone_revenue) on the real PostgreSQL over months of two years
the pipeline loaded: left out of the monthly builds, rebuilt one year at a time.

dbt runs as a subprocess from .venv-dbt, with the selection taxi_models_yearly uses
(``--select tag:yearly --vars {year: YYYY}``).
"""

from __future__ import annotations

import psycopg
import pytest

from include.taxi.transform.project import month_vars, run_dbt, year_vars
from tests.helpers.transform import month_loader, postgres_profile_env

LOADS = {
    ("yellow", "2021-01"): 700,
    ("yellow", "2021-02"): 500,
    ("green", "2021-02"): 300,
    ("yellow", "2022-01"): 400,
}


@pytest.fixture
def warehouse(source_server, postgres_url, pg_schema):
    """Zones and the LOADS months in a fresh schema, their monthly models built in one dbt call;
    ``load(service, month, rows, seed)`` reloads a month."""
    load = month_loader(source_server, "transform_yearly", postgres_url, pg_schema)
    for (service, month), rows in LOADS.items():
        load(service, month, rows)
    env = postgres_profile_env(postgres_url, pg_schema)
    months = ",".join(sorted({month for _, month in LOADS}))
    run_dbt(["build", "--vars", month_vars(months)], target="postgres", env=env)
    return load, env


def _build_year(env: dict[str, str], year: str, check: bool = True):
    return run_dbt(
        ["build", "--select", "tag:yearly", "--vars", year_vars(year)],
        target="postgres",
        env=env,
        check=check,
    )


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _yearly(url: str, schema: str) -> dict[tuple[int, str], tuple[int, int, float]]:
    """(year, service) → trips, rows (zones) and revenue of the yearly mart."""
    rows = _query(
        url,
        f"SELECT source_year, service, sum(trips), count(*), round(sum(revenue)::numeric, 2)"
        f' FROM "{schema}".mart_yearly_zone_revenue GROUP BY 1, 2',
    )
    return {
        (year, service): (int(n), int(zones), float(rev)) for year, service, n, zones, rev in rows
    }


def _monthly(url: str, schema: str) -> dict[tuple[int, str], tuple[int, int, float]]:
    """The same, summed from the monthly mart (zones: distinct pickup zones of the year)."""
    rows = _query(
        url,
        "SELECT extract(year FROM source_month)::int, service, sum(trips),"
        " count(DISTINCT pickup_location_id), round(sum(revenue)::numeric, 2)"
        f' FROM "{schema}".mart_monthly_zone_revenue GROUP BY 1, 2',
    )
    return {
        (year, service): (int(n), int(zones), float(rev)) for year, service, n, zones, rev in rows
    }


def _table_exists(url: str, schema: str, table: str) -> bool:
    return bool(_query(url, f"SELECT to_regclass('\"{schema}\".{table}') IS NOT NULL")[0][0])


def test_the_yearly_mart_sums_the_monthly_one_a_year_at_a_time(
    warehouse, postgres_url, pg_schema
) -> None:
    load, env = warehouse
    assert not _table_exists(postgres_url, pg_schema, "mart_yearly_zone_revenue"), (
        "a monthly build built the yearly mart"
    )
    monthly = _monthly(postgres_url, pg_schema)
    assert {key: trips for key, (trips, _, _) in monthly.items()} == {
        (2021, "yellow"): 1_200,
        (2021, "green"): 300,
        (2022, "yellow"): 400,
    }

    _build_year(env, "2021")
    expected_2021 = {key: value for key, value in monthly.items() if key[0] == 2021}
    assert _yearly(postgres_url, pg_schema) == expected_2021

    _build_year(env, "2022")
    assert _yearly(postgres_url, pg_schema) == monthly

    # 2021-01 changes and its monthly models are rebuilt: 2021's yearly rebuild picks it up,
    # replaces the year (never adds to it) and leaves 2022 alone.
    load("yellow", "2021-01", 900, seed=3)
    run_dbt(["build", "--vars", month_vars("2021-01")], target="postgres", env=env)
    changed = _monthly(postgres_url, pg_schema)
    assert changed[(2021, "yellow")][0] == 1_400
    _build_year(env, "2021")
    _build_year(env, "2021")
    assert _yearly(postgres_url, pg_schema) == changed
    assert _yearly(postgres_url, pg_schema)[(2022, "yellow")] == monthly[(2022, "yellow")]


def test_the_yearly_averages_are_per_trip_and_the_year_var_is_checked(
    warehouse, postgres_url, pg_schema
) -> None:
    """Average fare and distance of a (year, service, zone) equal those over its trips; a
    var year that is not YYYY fails before anything runs."""
    _, env = warehouse
    _build_year(env, "2021")
    rows = _query(
        postgres_url,
        "SELECT count(*) FILTER (WHERE abs(y.avg_fare_amount - t.avg_fare) > 1e-6"
        " OR abs(y.avg_trip_distance - t.avg_distance) > 1e-6), count(*)"
        f' FROM "{pg_schema}".mart_yearly_zone_revenue AS y JOIN ('
        "  SELECT service, pickup_location_id, avg(fare_amount) AS avg_fare,"
        "  avg(trip_distance) AS avg_distance"
        f"  FROM \"{pg_schema}\".fct_trips WHERE source_month < DATE '2022-01-01' GROUP BY 1, 2"
        ") AS t USING (service, pickup_location_id) WHERE y.source_year = 2021",
    )
    mismatched, compared = rows[0]
    assert compared > 0
    assert mismatched == 0

    done = _build_year(env, "21", check=False)  # a bad var year is refused
    assert done.returncode != 0
    assert "expected YYYY" in done.stdout
