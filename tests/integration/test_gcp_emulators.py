"""The local GCS and BigQuery emulators answer the Airflow Google provider's hooks and operator
the way the lake → BigQuery path needs: real clients over HTTP, nothing mocked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.emulators import Emulators

SCHEMA = [
    ("pickup_datetime", "TIMESTAMP"),
    ("vendorid", "INT64"),
    ("fare_amount", "FLOAT64"),
    ("source_month", "DATE"),
]


def _schema() -> list:
    from google.cloud.bigquery import SchemaField

    return [SchemaField(name, kind) for name, kind in SCHEMA]


def _trips_parquet(path: Path, month: date, rows: int) -> Path:
    """A parquet file typed like the lake's: TIMESTAMP(us), INT64, DOUBLE and DATE32."""
    table = pa.table(
        {
            "pickup_datetime": pa.array(
                [datetime(month.year, month.month, 1 + i % 28, i % 24) for i in range(rows)],
                pa.timestamp("us"),
            ),
            "vendorid": pa.array([1 + i % 2 for i in range(rows)], pa.int64()),
            "fare_amount": pa.array([2.5 + i for i in range(rows)], pa.float64()),
            "source_month": pa.array([month] * rows, pa.date32()),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture
def bq(gcp_emulators: Emulators):
    """The BigQuery client exactly as tasks get it: from the hook and google_cloud_default."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    client = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False).get_client()
    assert client.project == gcp_emulators.project
    return client


@pytest.fixture
def dataset(bq) -> Iterator[str]:
    """A fresh dataset per test, ``project.dataset``."""
    name = f"{bq.project}.t_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    yield name
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


def _count(bq, sql: str) -> int:
    return next(iter(bq.query(sql).result()))[0]


def test_gcs_hook_upload_download_round_trip(gcs_bucket: str, gcp_emulators: Emulators) -> None:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    hook = GCSHook(gcp_conn_id="google_cloud_default")
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    hook.upload(gcs_bucket, "lake/yellow/2021-01.bin", data=payload)

    assert hook.download(gcs_bucket, "lake/yellow/2021-01.bin") == payload
    assert hook.exists(gcs_bucket, "lake/yellow/2021-01.bin")
    assert hook.list(gcs_bucket, prefix="lake/") == ["lake/yellow/2021-01.bin"]
    # the object is a plain file where BigQuery load jobs read gs:// from
    stored = gcp_emulators.gcs.root / gcs_bucket / "lake/yellow/2021-01.bin"
    assert stored.read_bytes() == payload


def test_create_only_upload_of_an_existing_object_fails_with_412(gcs_bucket: str) -> None:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.api_core.exceptions import PreconditionFailed

    hook = GCSHook(gcp_conn_id="google_cloud_default")
    hook.upload(gcs_bucket, "part-0.parquet", data=b"first")
    blob = hook.get_conn().bucket(gcs_bucket).blob("part-0.parquet")

    with pytest.raises(PreconditionFailed):
        blob.upload_from_string(b"second", if_generation_match=0)
    assert hook.download(gcs_bucket, "part-0.parquet") == b"first"
    # overwriting exactly the generation one has read is allowed
    blob.reload()
    blob.upload_from_string(b"second", if_generation_match=blob.generation)
    assert hook.download(gcs_bucket, "part-0.parquet") == b"second"


def test_parquet_from_gcs_loads_into_bigquery_with_its_types(
    gcs_bucket: str, bq, dataset: str, tmp_path: Path
) -> None:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.cloud import bigquery

    hook = GCSHook(gcp_conn_id="google_cloud_default")
    for month, rows in [(date(2021, 1, 1), 300), (date(2021, 2, 1), 200)]:
        local = _trips_parquet(tmp_path / f"{month:%Y-%m}.parquet", month, rows)
        hook.upload(gcs_bucket, f"trips/yellow/{month:%Y-%m}/part-0.parquet", filename=str(local))

    config = bigquery.LoadJobConfig(source_format="PARQUET", schema=_schema())
    january = f"gs://{gcs_bucket}/trips/yellow/2021-01/part-0.parquet"
    job = bq.load_table_from_uri(january, f"{dataset}.trips", job_config=config)
    job.result()
    assert job.output_rows == 300
    bq.load_table_from_uri(
        f"gs://{gcs_bucket}/trips/yellow/*", f"{dataset}.all_months", job_config=config
    ).result()

    assert _count(bq, f"SELECT COUNT(*) FROM `{dataset}.trips`") == 300
    assert _count(bq, f"SELECT COUNT(*) FROM `{dataset}.all_months`") == 500
    table = bq.get_table(f"{dataset}.trips")
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("pickup_datetime", "TIMESTAMP"),
        ("vendorid", "INTEGER"),
        ("fare_amount", "FLOAT"),
        ("source_month", "DATE"),
    ]
    rows = bq.query(f"SELECT * FROM `{dataset}.trips` ORDER BY pickup_datetime").result()
    first = next(iter(rows))
    assert first["pickup_datetime"] == datetime(2021, 1, 1, 0, tzinfo=UTC)
    assert first["source_month"] == date(2021, 1, 1)


def test_month_replace_in_a_multi_statement_transaction(bq, dataset: str) -> None:
    bq.query(
        f"CREATE TABLE `{dataset}.trips` (vendorid INT64, source_month DATE);"
        f"CREATE TABLE `{dataset}.stage` (vendorid INT64, source_month DATE);"
        f"INSERT INTO `{dataset}.trips` VALUES (1, '2021-01-01'), (2, '2021-01-01'),"
        " (3, '2021-02-01');"
        f"INSERT INTO `{dataset}.stage` VALUES (7, '2021-01-01'), (8, '2021-01-01'),"
        " (9, '2021-01-01');"
    ).result()

    bq.query(
        "BEGIN TRANSACTION;"
        f" DELETE FROM `{dataset}.trips` WHERE source_month = '2021-01-01';"
        f" INSERT INTO `{dataset}.trips` SELECT * FROM `{dataset}.stage`;"
        " COMMIT TRANSACTION;"
    ).result()
    rows = bq.query(f"SELECT vendorid FROM `{dataset}.trips` ORDER BY vendorid").result()
    assert [r.vendorid for r in rows] == [3, 7, 8, 9]

    # a statement failing inside the transaction leaves the table as it was
    with pytest.raises(Exception, match="division by zero"):
        bq.query(
            "BEGIN TRANSACTION;"
            f" DELETE FROM `{dataset}.trips` WHERE true;"
            f" INSERT INTO `{dataset}.trips` SELECT 1 / 0, DATE '2021-01-01';"
            " COMMIT TRANSACTION;"
        ).result()
    assert _count(bq, f"SELECT COUNT(*) FROM `{dataset}.trips`") == 4


def test_partitioning_clustering_query_parameters_and_dml_counts(bq, dataset: str) -> None:
    from google.cloud import bigquery

    table = bigquery.Table(f"{dataset}.trips", schema=_schema())
    table.time_partitioning = bigquery.TimePartitioning(type_="MONTH", field="pickup_datetime")
    table.clustering_fields = ["vendorid"]
    bq.create_table(table)
    got = bq.get_table(f"{dataset}.trips")
    assert got.time_partitioning.type_ == "MONTH"
    assert got.time_partitioning.field == "pickup_datetime"
    assert got.clustering_fields == ["vendorid"]

    bq.query(
        f"INSERT INTO `{dataset}.trips` VALUES"
        " (TIMESTAMP '2021-01-03 10:00:00', 1, 9.5, DATE '2021-01-01'),"
        " (TIMESTAMP '2021-01-04 11:00:00', 2, 7.0, DATE '2021-01-01'),"
        " (TIMESTAMP '2021-02-01 00:00:00', 1, 3.0, DATE '2021-02-01')"
    ).result()
    month = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("month", "DATE", date(2021, 1, 1))]
    )
    job = bq.query(f"DELETE FROM `{dataset}.trips` WHERE source_month = @month", job_config=month)
    job.result()
    assert job.num_dml_affected_rows == 2
    assert _count(bq, f"SELECT COUNT(*) FROM `{dataset}.trips`") == 1


class _XComRecorder:
    """The one part of a task instance GCSToBigQueryOperator.execute uses: xcom_push.
    (dag.test() only runs DAGs from a configured bundle, not one defined in a test.)"""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def test_gcs_to_bigquery_operator_loads_parquet(
    gcs_bucket: str, bq, dataset: str, tmp_path: Path
) -> None:
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

    local = _trips_parquet(tmp_path / "2021-03.parquet", date(2021, 3, 1), 120)
    GCSHook().upload(gcs_bucket, "trips/green/2021-03/part-0.parquet", filename=str(local))
    ti = _XComRecorder()

    for _ in range(2):  # WRITE_TRUNCATE: a rerun replaces, never appends
        # a fresh operator per run, as Airflow makes: execute() mutates src_fmt_configs
        GCSToBigQueryOperator(
            task_id="load",
            bucket=gcs_bucket,
            source_objects=["trips/green/2021-03/*.parquet"],
            destination_project_dataset_table=f"{dataset}.green",
            schema_fields=[{"name": n, "type": t, "mode": "NULLABLE"} for n, t in SCHEMA],
            source_format="PARQUET",
            write_disposition="WRITE_TRUNCATE",
            deferrable=False,  # the deferrable trigger's gcloud-aio client ignores the emulator
        ).execute(context={"ti": ti})  # type: ignore[arg-type]

    assert _count(bq, f"SELECT COUNT(*) FROM `{dataset}.green`") == 120
    assert bq.get_job(ti.xcom["job_id"]).state == "DONE"
    project, name = dataset.split(".")
    assert ti.xcom["bigquery_table"]["table_id"] == "green"
    assert (ti.xcom["bigquery_table"]["project_id"], ti.xcom["bigquery_table"]["dataset_id"]) == (
        project,
        name,
    )
