"""A contract change reloads every target, even when the source file has not changed.

"One schema contract, every target": after a column is added to the contract, a month loaded
under the old contract holds NULLs (or lacks the column) until it is reloaded, so "unchanged"
must mean the same source *and* the same contract. The contract with an added column is a
test contract put in place of the real one (``CONTRACTS``); everything else is real:
PostgreSQL, fake-gcs-server, local-bigquery.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi import contract as contracts
from include.taxi.contract import FLOAT, Column
from include.taxi.months import Month

SEPTEMBER = date(2019, 9, 1)


@pytest.fixture
def green_month(source_server) -> str:
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-09.csv.gz", "green", SEPTEMBER, 700)
    return base


def _add_a_column(monkeypatch) -> contracts.Contract:
    wider = dataclasses.replace(
        contracts.GREEN, columns=(*contracts.GREEN.columns, Column("test_added_fee", FLOAT, False))
    )
    assert wider.fingerprint != contracts.GREEN.fingerprint
    monkeypatch.setitem(contracts.CONTRACTS, "green", wider)
    return wider


def test_a_contract_change_reloads_the_month_in_postgres(
    green_month, postgres_url, pg_schema, monkeypatch
):
    from include.taxi.postgres.load import month_to_postgres

    def load() -> dict:
        return month_to_postgres(
            "green",
            Month(2019, 9),
            source_base=green_month,
            conninfo=postgres_url,
            schema=pg_schema,
        )

    assert load()["status"] == "loaded"
    assert load()["status"] == "unchanged"
    _add_a_column(monkeypatch)
    assert load()["status"] == "loaded", "the month was loaded under another contract"
    assert load()["status"] == "unchanged"
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            f"SELECT count(*), count(*) FILTER (WHERE test_added_fee IS NULL) "
            f'FROM "{pg_schema}".green_tripdata'
        ).fetchone()
        fingerprints = conn.execute(
            f'SELECT DISTINCT contract_fingerprint FROM "{pg_schema}".taxi_ingestion_log '
            "WHERE status = 'loaded'"
        ).fetchall()
    assert rows == (700, 700)
    assert len(fingerprints) == 2


def test_a_contract_change_reloads_the_month_in_the_lake_and_bigquery(
    green_month, gcs_bucket, monkeypatch
):
    from include.taxi.bigquery.load import month_to_bigquery
    from include.taxi.lake.load import month_to_lake

    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"contract_{uuid.uuid4().hex[:8]}"
    assert month_to_lake("green", Month(2019, 9), source_base=green_month, lake_url=lake)[
        "status"
    ] == ("written")
    assert month_to_bigquery("green", Month(2019, 9), lake_url=lake, dataset=dataset)["status"] == (
        "loaded"
    )
    _add_a_column(monkeypatch)
    assert month_to_lake("green", Month(2019, 9), source_base=green_month, lake_url=lake)[
        "status"
    ] == ("written")
    result = month_to_bigquery("green", Month(2019, 9), lake_url=lake, dataset=dataset)
    assert result["status"] == "loaded", "the month was loaded under another contract"
    again = month_to_bigquery("green", Month(2019, 9), lake_url=lake, dataset=dataset)
    assert again["status"] == "unchanged"

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    table = client.get_table(f"{hook.project_id}.{dataset}.green_tripdata")
    assert "test_added_fee" in [f.name for f in table.schema]
    (row,) = client.query(
        f"SELECT COUNT(*) AS n FROM `{hook.project_id}.{dataset}.green_tripdata`"
    ).result()
    assert row["n"] == 700


def test_a_bigquery_log_of_an_older_version_gains_the_fingerprint_column(green_month, gcs_bucket):
    """A log table without ``contract_fingerprint``: the month counts as loaded under an
    unknown contract, so it is reloaded once, and the log gains the column."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import bigquery

    from include.taxi.bigquery.load import month_to_bigquery
    from include.taxi.bigquery.schema import LOG_SCHEMA
    from include.taxi.lake.load import month_to_lake

    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"oldlog_{uuid.uuid4().hex[:8]}"
    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    client.create_dataset(f"{hook.project_id}.{dataset}")
    old = [
        bigquery.SchemaField(n, t, mode=m) for n, t, m in LOG_SCHEMA if n != "contract_fingerprint"
    ]
    client.create_table(
        bigquery.Table(f"{hook.project_id}.{dataset}.taxi_ingestion_log", schema=old)
    )
    month_to_lake("green", Month(2019, 9), source_base=green_month, lake_url=lake)

    assert month_to_bigquery("green", Month(2019, 9), lake_url=lake, dataset=dataset)["status"] == (
        "loaded"
    )
    assert month_to_bigquery("green", Month(2019, 9), lake_url=lake, dataset=dataset)["status"] == (
        "unchanged"
    )
    log = client.get_table(f"{hook.project_id}.{dataset}.taxi_ingestion_log")
    assert "contract_fingerprint" in [f.name for f in log.schema]
