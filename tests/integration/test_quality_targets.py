"""The quality profile in every target's log: a real PostgreSQL, a lake folder, and GCS +
BigQuery on their emulators. A month with dropoffs before pickups is published with a
warning; a month with zero data rows fails and the previous month stays."""

from __future__ import annotations

import gzip
import json
from datetime import date

import psycopg
import pyarrow.parquet as pq
import pytest

from dev.synthetic import HEADERS, write_month, write_troubled_month, write_zones
from include.taxi.bigquery.load import month_to_bigquery
from include.taxi.errors import BadSourceFile
from include.taxi.lake.load import month_to_lake, zones_to_lake
from include.taxi.lake.store import object_name
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres

MARCH = date(2020, 3, 1)
NAME = "yellow_tripdata_2020-03.csv.gz"


@pytest.fixture
def source(source_server):
    base, root = source_server
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    return base, root


def _publish_troubled(root, rows: int = 3_000) -> None:
    write_troubled_month(root / "yellow" / NAME, rows, every=53, month=MARCH)


def _publish_empty(root) -> None:
    with gzip.open(root / "yellow" / NAME, "wt") as f:
        f.write(HEADERS["yellow"] + "\n")


def _log(url: str, schema: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT status, rows_in_target, quality, warnings "
            f'FROM "{schema}".taxi_ingestion_log WHERE service = %s ORDER BY id',
            ("yellow",),
        ).fetchall()


def _month_rows(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f'SELECT count(*) FROM "{schema}".yellow_tripdata WHERE source_month = %s', (MARCH,)
        ).fetchone()[0]


def test_postgres_publishes_a_month_with_warnings_and_logs_its_profile(
    source, postgres_url, pg_schema
):
    base, root = source
    zones_to_postgres(source_base=base, conninfo=postgres_url, schema=pg_schema)
    _publish_troubled(root)
    result = month_to_postgres(
        "yellow", Month(2020, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    assert result["status"] == "loaded"
    assert result["rows_in_target"] == 3_000
    rules = {w["rule"]: w for w in result["warnings"]}
    assert "dropoff_before_pickup" in rules
    assert rules["dropoff_before_pickup"]["level"] == "warn"
    assert "unknown_zone" in rules  # the 7-zone synthetic lookup, read from the zone table
    ((status, rows, quality, warnings),) = _log(postgres_url, pg_schema)
    assert (status, rows) == ("loaded", 3_000)
    assert quality["rows"] == 3_000
    assert quality["dropoff_before_pickup"] == result["quality"]["dropoff_before_pickup"] > 0
    assert quality["nulls"]["vendorid"] == 30
    assert quality["min"]["tpep_pickup_datetime"] < "2020-03-01"  # the out-of-month pickups
    assert quality["notes"] == []
    assert warnings == result["warnings"]


def test_postgres_refuses_a_month_with_zero_rows_and_keeps_the_old_month(
    source, postgres_url, pg_schema
):
    base, root = source
    write_month(root / "yellow" / NAME, "yellow", MARCH, 1_500)
    month_to_postgres(
        "yellow", Month(2020, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    _publish_empty(root)
    with pytest.raises(BadSourceFile, match="no_rows: the file has a header but no data rows"):
        month_to_postgres(
            "yellow",
            Month(2020, 3),
            source_base=base,
            conninfo=postgres_url,
            schema=pg_schema,
            force=True,
        )
    assert _month_rows(postgres_url, pg_schema) == 1_500
    loaded, failed = _log(postgres_url, pg_schema)
    assert loaded[:2] == ("loaded", 1_500)
    assert failed[0] == "failed"
    assert failed[2]["rows"] == 0
    assert [(w["rule"], w["level"]) for w in failed[3]] == [("no_rows", "fail")]


def test_a_month_far_below_its_trailing_median_warns(source, postgres_url, pg_schema):
    base, root = source
    for month, rows in (("2019-12", 2_000), ("2020-01", 2_100), ("2020-02", 1_900)):
        name = f"yellow_tripdata_{month}.csv.gz"
        write_month(root / "yellow" / name, "yellow", date.fromisoformat(f"{month}-01"), rows)
        month_to_postgres(
            "yellow", Month.parse(month), source_base=base, conninfo=postgres_url, schema=pg_schema
        )
    write_month(root / "yellow" / NAME, "yellow", MARCH, 300)
    result = month_to_postgres(
        "yellow", Month(2020, 3), source_base=base, conninfo=postgres_url, schema=pg_schema
    )
    assert result["status"] == "loaded"
    assert "far_below_trailing_median" in {w["rule"] for w in result["warnings"]}
    assert result["quality"]["trailing_median_rows"] == 2_000


def test_the_lake_object_carries_its_profile_and_warnings(source, tmp_path):
    base, root = source
    lake = tmp_path / "lake"
    zones_to_lake(source_base=base, lake_url=lake.as_uri())
    _publish_troubled(root)
    result = month_to_lake("yellow", Month(2020, 3), source_base=base, lake_url=lake.as_uri())
    assert "dropoff_before_pickup" in {w["rule"] for w in result["warnings"]}
    footer = pq.read_metadata(lake / object_name("yellow", Month.of(MARCH))).metadata
    quality = json.loads(footer[b"taxi.quality"])
    warnings = json.loads(footer[b"taxi.warnings"])
    assert quality["rows"] == 3_000
    assert quality["unknown_zone"] > 0  # the lake's zone lookup was used
    assert warnings == result["warnings"]


def test_the_lake_refuses_a_month_with_zero_rows_and_keeps_the_old_object(source, tmp_path):
    base, root = source
    lake = tmp_path / "lake"
    write_month(root / "yellow" / NAME, "yellow", MARCH, 800)
    month_to_lake("yellow", Month(2020, 3), source_base=base, lake_url=lake.as_uri())
    before = (lake / object_name("yellow", Month.of(MARCH))).read_bytes()
    _publish_empty(root)
    with pytest.raises(BadSourceFile, match="no data rows"):
        month_to_lake(
            "yellow", Month(2020, 3), source_base=base, lake_url=lake.as_uri(), force=True
        )
    assert (lake / object_name("yellow", Month.of(MARCH))).read_bytes() == before
    assert pq.read_metadata(lake / object_name("yellow", Month.of(MARCH))).num_rows == 800


def test_bigquery_logs_the_lake_objects_profile(source, gcs_bucket, gcp_emulators):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    base, root = source
    lake = f"gs://{gcs_bucket}/lake"
    _publish_troubled(root, rows=1_000)
    written = month_to_lake("yellow", Month(2020, 3), source_base=base, lake_url=lake)
    dataset = f"q_{gcs_bucket.replace('-', '_')}"
    loaded = month_to_bigquery("yellow", Month(2020, 3), lake_url=lake, dataset=dataset)
    assert loaded["quality"] == written["quality"]
    client = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False).get_client()
    (row,) = client.query(
        f"SELECT quality, warnings FROM `{client.project}.{dataset}.taxi_ingestion_log`"
    ).result()
    assert json.loads(row["quality"])["dropoff_before_pickup"] > 0
    assert "dropoff_before_pickup" in {w["rule"] for w in json.loads(row["warnings"])}


def test_a_bigquery_log_from_before_profiles_gains_the_columns(source, gcs_bucket, gcp_emulators):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import bigquery

    from include.taxi.bigquery.schema import LOG_SCHEMA

    base, root = source
    write_month(root / "yellow" / NAME, "yellow", MARCH, 600)
    lake = f"gs://{gcs_bucket}/lake"
    month_to_lake("yellow", Month(2020, 3), source_base=base, lake_url=lake)
    dataset = f"o_{gcs_bucket.replace('-', '_')}"
    client = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False).get_client()
    client.create_dataset(f"{client.project}.{dataset}")
    old = [
        bigquery.SchemaField(n, t, mode=m)
        for n, t, m in LOG_SCHEMA
        if n not in ("quality", "warnings")
    ]
    client.create_table(bigquery.Table(f"{client.project}.{dataset}.taxi_ingestion_log", old))
    loaded = month_to_bigquery("yellow", Month(2020, 3), lake_url=lake, dataset=dataset)
    assert loaded["rows_in_target"] == 600
    (row,) = client.query(
        f"SELECT quality FROM `{client.project}.{dataset}.taxi_ingestion_log`"
    ).result()
    assert json.loads(row["quality"])["rows"] == 600
