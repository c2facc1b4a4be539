"""The dbt project (transform/) on the BigQuery emulator (local-bigquery), over months the
pipeline loaded web → GCS lake → BigQuery: dbt-bigquery from .venv-dbt with the profile target
``bigquery_emulator`` (transform/profiles.yml: its endpoint, a token the emulator does not
check). The views and tests run there and every model compiles against it; tables do not
build (EMULATOR_GAP), which the last test checks by its message."""

from __future__ import annotations

import uuid

import pytest

from include.taxi.bigquery.load import month_to_bigquery, zones_to_bigquery
from include.taxi.lake.load import month_to_lake, zones_to_lake
from include.taxi.months import Month
from include.taxi.transform.project import TRANSFORM_DIR, month_vars, run_dbt
from tests.helpers.transform import served_folder, write_all_zones, write_source_month

ROWS = {("yellow", "2021-01"): 800, ("green", "2021-01"): 200, ("yellow", "2021-02"): 500}
EMULATOR_GAP = (
    "local-bigquery 0.3.2 answers CREATE TABLE AS SELECT with a job without a destination "
    "table; dbt-bigquery reads the new table's row count from it ('NoneType' object has no "
    "attribute 'path'), so no table or incremental model builds there"
)
GAP_MESSAGE = "'NoneType' object has no attribute 'path'"


@pytest.fixture
def loaded(source_server, gcp_emulators, gcs_bucket):
    """Zones and the ROWS months in a fresh dataset, as lake_to_bigquery loads them; the
    settings transform/profiles.yml reads."""
    base, root = served_folder(source_server, "transform_bq")
    write_all_zones(root)
    lake, dataset = f"gs://{gcs_bucket}/lake", f"models_{uuid.uuid4().hex[:8]}"
    zones_to_lake(source_base=base, lake_url=lake)
    zones_to_bigquery(lake_url=lake, dataset=dataset)
    for (service, month), rows in ROWS.items():
        write_source_month(root, service, month, rows)
        month_to_lake(service, Month.parse(month), source_base=base, lake_url=lake)
        month_to_bigquery(service, Month.parse(month), lake_url=lake, dataset=dataset)
    return {
        "TAXI_BQ_PROJECT": gcp_emulators.project,
        "TAXI_BQ_DATASET": dataset,
        "BIGQUERY_EMULATOR_HOST": gcp_emulators.bigquery.url,
    }


def _fct_counts(env: dict[str, str]) -> dict[tuple[str, str], int]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=env["TAXI_BQ_PROJECT"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": env["BIGQUERY_EMULATOR_HOST"]},
    )
    try:
        rows = client.query(
            "SELECT CAST(source_month AS STRING) AS m, service, COUNT(*) AS n FROM "
            f"`{env['TAXI_BQ_PROJECT']}.{env['TAXI_BQ_DATASET']}.fct_trips` GROUP BY m, service"
        ).result()
        return {(r["m"][:7], r["service"]): r["n"] for r in rows}
    finally:
        client.close()


def _dbt(env: dict[str, str], *args: str, check: bool = True):
    return run_dbt(list(args), target="bigquery_emulator", env=env, check=check)


def test_staging_builds_and_the_project_compiles_on_the_bigquery_emulator(loaded) -> None:
    """What runs there: the staging views and their tests, and a compile of every model (which
    asks the emulator which raw tables exist), with the month filter in BigQuery's SQL."""
    _dbt(loaded, "build", "--select", "staging", "--vars", month_vars("2021-01"))
    _dbt(loaded, "compile", "--vars", month_vars("2021-01"))
    compiled = TRANSFORM_DIR / "target" / "compiled" / "taxi" / "models" / "core"
    fct = (compiled / "fct_trips.sql").read_text()
    dataset = f"`{loaded['TAXI_BQ_PROJECT']}`.`{loaded['TAXI_BQ_DATASET']}`"
    assert (
        f"from {dataset}.`stg_yellow_trips` where source_month in (cast('2021-01-01' as date))"
        in fct
    )


def test_months_build_on_the_bigquery_emulator(loaded) -> None:
    """The whole build, as on BigQuery. It stops at the emulator's gap (xfail, checked by its
    own message: any other failure fails the test); once the emulator returns CTAS
    destinations it runs on and checks the months, and the docs' BigQuery line can change."""
    done = _dbt(loaded, "build", "--vars", month_vars("2021-01"), check=False)
    if done.returncode != 0:
        assert GAP_MESSAGE in done.stdout, done.stdout[-4000:]
        pytest.xfail(EMULATOR_GAP)
    assert _fct_counts(loaded) == {("2021-01", "yellow"): 800, ("2021-01", "green"): 200}
    _dbt(loaded, "build", "--vars", month_vars("2021-02"))  # overwrites February's partition
    assert _fct_counts(loaded) == {(m, s): n for (s, m), n in ROWS.items()}
