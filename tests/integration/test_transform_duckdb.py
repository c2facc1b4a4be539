"""The same dbt models on DuckDB over a folder lake give Postgres' counts; `make duckdb`'s
views read the lake; the BigQuery target parses without a warehouse."""

from __future__ import annotations

import json
import subprocess

import psycopg

from dev import duckdb_lake
from include.taxi.lake.load import month_to_lake, zones_to_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres
from include.taxi.transform.project import PROJECT_ROOT, month_vars, run_dbt, year_vars
from tests.helpers.transform import (
    postgres_profile_env,
    served_folder,
    write_all_zones,
    write_source_month,
)

MONTHS = {("yellow", "2021-01"): 900, ("green", "2021-01"): 400, ("yellow", "2021-02"): 700}
COUNT_SQL = "SELECT strftime(source_month, '%Y-%m'), service, count(*) FROM fct_trips GROUP BY 1, 2"


def _duckdb_query(path, sql: str) -> list[list]:
    """Rows of ``sql``, read with .venv-dbt's duckdb (the version that wrote the file)."""
    probe = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        f"print(json.dumps(con.execute({sql!r}).fetchall()))\n"
    )
    python = PROJECT_ROOT / ".venv-dbt" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def _duckdb_counts(path) -> dict[tuple[str, str], int]:
    """fct_trips' counts per (month, service)."""
    return {(m, s): n for m, s, n in _duckdb_query(path, COUNT_SQL)}


def test_duckdb_over_the_lake_counts_like_postgres(
    tmp_path, source_server, postgres_url, pg_schema, capsys
) -> None:
    base, root = served_folder(source_server, "duckdb_lake")
    lake = tmp_path / "lake"
    write_all_zones(root)
    zones_to_lake(source_base=base, lake_url=lake.as_uri())
    zones_to_postgres(source_base=base, conninfo=postgres_url, schema=pg_schema)
    for (service, month), rows in MONTHS.items():
        write_source_month(root, service, month, rows)
        month_to_lake(service, Month.parse(month), source_base=base, lake_url=lake.as_uri())
        month_to_postgres(
            service, Month.parse(month), source_base=base, conninfo=postgres_url, schema=pg_schema
        )

    months = month_vars("2021-01,2021-02")
    run_dbt(
        ["build", "--vars", months],
        target="postgres",
        env=postgres_profile_env(postgres_url, pg_schema),
    )
    database = tmp_path / "taxi.duckdb"
    run_dbt(
        ["build", "--vars", months],
        target="duckdb",
        env={"TAXI_LAKE": str(lake), "TAXI_DUCKDB_PATH": str(database)},
    )

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            COUNT_SQL.replace(
                "strftime(source_month, '%Y-%m')", "to_char(source_month, 'YYYY-MM')"
            ).replace("fct_trips", f'"{pg_schema}".fct_trips')
        ).fetchall()
    in_postgres = {(m, s): n for m, s, n in rows}
    assert in_postgres == {(m, s): n for (s, m), n in MONTHS.items()}
    assert _duckdb_counts(database) == in_postgres

    run_dbt(  # the yearly mart, as taxi_models_yearly selects it
        ["build", "--select", "tag:yearly", "--vars", year_vars("2021")],
        target="duckdb",
        env={"TAXI_LAKE": str(lake), "TAXI_DUCKDB_PATH": str(database)},
    )
    yearly = _duckdb_query(
        database,
        "SELECT source_year, service, sum(trips) FROM mart_yearly_zone_revenue GROUP BY 1, 2",
    )
    assert sorted(map(tuple, yearly)) == [(2021, "green", 400), (2021, "yellow", 1_600)]

    assert (
        duckdb_lake.main(
            ["--lake", str(lake), "--sql", "SELECT count(*) AS n FROM yellow_tripdata"]
        )
        == 0
    )
    assert "1600" in capsys.readouterr().out


def test_the_bigquery_target_parses(tmp_path) -> None:
    """Not run against BigQuery or its emulator here: the project parses for the BigQuery
    target, with fct_trips overwriting its month's partition and the yearly mart its year's."""
    env = {"TAXI_BQ_PROJECT": "taxi-test", "TAXI_BQ_DATASET": "nyc_taxi"}
    run_dbt(["parse", "--target-path", str(tmp_path / "bq")], target="bigquery", env=env)
    manifest = json.loads((tmp_path / "bq" / "manifest.json").read_text())
    fct = manifest["nodes"]["model.taxi.fct_trips"]["config"]
    assert fct["incremental_strategy"] == "insert_overwrite"
    assert fct["partition_by"] == {
        "field": "source_month",
        "data_type": "date",
        "granularity": "month",
    }
    yearly = manifest["nodes"]["model.taxi.mart_yearly_zone_revenue"]["config"]
    assert yearly["incremental_strategy"] == "insert_overwrite"
    assert yearly["partition_by"]["field"] == "source_year"
