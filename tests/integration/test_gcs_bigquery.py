"""web → GCS lake → BigQuery, against fake-gcs-server and local-bigquery.

Nothing is mocked: the project's code talks to the emulators through the real google clients
and the provider's GCSHook and BigQueryHook (connection google_cloud_default from the
fixture's environment). What the emulator cannot check (BigQuery's refusal of INT vs DOUBLE
parquet columns) is covered by tests/unit/test_bigquery_schema.py and by the check below that
refuses a drifted file before any load.
"""

from __future__ import annotations

import gzip
import os
import uuid
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dev.synthetic import HEADERS, write_month
from include.taxi.bigquery.load import month_to_bigquery
from include.taxi.bigquery.schema import schema_fields
from include.taxi.contract import contract_for
from include.taxi.errors import BadSourceFile, LakeSchemaMismatch, NotInLake
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month

APRIL, MAY, JUNE = date(2019, 4, 1), date(2019, 5, 1), date(2019, 6, 1)
ROWS = {("yellow", APRIL): 1_200, ("green", APRIL): 700, ("fhv", APRIL): 500}


@pytest.fixture
def published(source_server):
    base, root = source_server
    for (service, month), rows in ROWS.items():
        name = f"{service}_tripdata_{month:%Y-%m}.csv.gz"
        write_month(root / service / name, service, month, rows, year_3019=True)
    write_month(root / "green" / "green_tripdata_2019-05.csv.gz", "green", MAY, 400)
    write_month(
        root / "green" / "green_tripdata_2019-06.csv.gz", "green", JUNE, 300, float_ints=True
    )
    return base, root


def _lake_file(bucket: str, service: str, month: str) -> pa.BufferReader:
    """A lake object's bytes, read back with the plain storage client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials()
    )
    name = f"lake/{service}/{month[:4]}/{service}_tripdata_{month}.parquet"
    return pa.BufferReader(client.bucket(bucket).blob(name).download_as_bytes())


@pytest.fixture
def dataset(gcp_emulators):
    return f"taxi_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bq(gcp_emulators):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    yield client
    client.close()


def _month_counts(client, dataset: str, service: str) -> dict[str, int]:
    rows = client.query(
        f"SELECT CAST(source_month AS STRING) AS m, COUNT(*) AS n "
        f"FROM `{client.project}.{dataset}.{service}_tripdata` GROUP BY m ORDER BY m"
    ).result()
    return {r["m"][:7]: r["n"] for r in rows}


def test_one_month_of_each_service_travels_web_to_gcs_to_bigquery(
    published, gcs_bucket, dataset, bq
):
    base, _ = published
    lake = f"gs://{gcs_bucket}/lake"
    for service in ("yellow", "green", "fhv"):
        written = month_to_lake(service, Month(2019, 4), source_base=base, lake_url=lake)
        expected = ROWS[(service, APRIL)]
        assert written["rows"] == expected
        assert written["uri"] == (
            f"gs://{gcs_bucket}/lake/{service}/2019/{service}_tripdata_2019-04.parquet"
        )
        loaded = month_to_bigquery(service, Month(2019, 4), lake_url=lake, dataset=dataset)
        assert loaded["status"] == "loaded"
        assert loaded["rows_loaded"] == loaded["rows_in_target"] == expected
        assert _month_counts(bq, dataset, service) == {"2019-04": expected}

    for service in ("yellow", "green", "fhv"):
        table = bq.get_table(f"{bq.project}.{dataset}.{service}_tripdata")
        declared = schema_fields(contract_for(service))
        assert [(f.name, f.field_type) for f in table.schema] == [
            (f["name"], f["type"]) for f in declared
        ]
        assert table.time_partitioning.type_ == "MONTH"
        assert table.clustering_fields == ["source_month", "pulocationid"]
    source = pq.read_table(_lake_file(gcs_bucket, "yellow", "2019-04"))
    (sums,) = bq.query(
        f"SELECT SUM(total_amount) AS total, SUM(passenger_count) AS passengers, "
        f"MIN(tpep_pickup_datetime) AS first FROM `{bq.project}.{dataset}.yellow_tripdata`"
    ).result()
    assert sums["total"] == pytest.approx(pc.sum(source["total_amount"]).as_py())
    assert sums["passengers"] == pc.sum(source["passenger_count"]).as_py()
    assert sums["first"] == pc.min(source["tpep_pickup_datetime"]).as_py()
    (row,) = bq.query(
        f"SELECT MAX(dropoff_datetime) AS latest FROM `{bq.project}.{dataset}.fhv_tripdata`"
    ).result()
    assert row["latest"].year == 3019, "the year-3019 dropoff survives every hop"


def test_reruns_replace_only_their_month_and_drifted_months_share_one_schema(
    published, gcs_bucket, dataset, bq
):
    base, _ = published
    lake = f"gs://{gcs_bucket}/lake"
    for month in ("2019-05", "2019-06"):
        month_to_lake("green", Month.parse(month), source_base=base, lake_url=lake)
        month_to_bigquery("green", Month.parse(month), lake_url=lake, dataset=dataset)
    assert _month_counts(bq, dataset, "green") == {"2019-05": 400, "2019-06": 300}

    again = month_to_bigquery("green", Month(2019, 5), lake_url=lake, dataset=dataset)
    assert again["status"] == "unchanged"
    forced = month_to_bigquery("green", Month(2019, 5), lake_url=lake, dataset=dataset, force=True)
    assert forced["status"] == "loaded"
    assert _month_counts(bq, dataset, "green") == {"2019-05": 400, "2019-06": 300}
    log = list(
        bq.query(
            f"SELECT month, rows_in_target, status FROM `{bq.project}.{dataset}."
            "taxi_ingestion_log` ORDER BY finished_at"
        ).result()
    )
    assert [(r["month"].isoformat()[:7], r["rows_in_target"]) for r in log] == [
        ("2019-05", 400),
        ("2019-06", 300),
        ("2019-05", 400),
    ]


def test_a_bad_source_leaves_lake_and_bigquery_month_untouched(published, gcs_bucket, dataset, bq):
    base, root = published
    lake = f"gs://{gcs_bucket}/lake"
    month_to_lake("green", Month(2019, 5), source_base=base, lake_url=lake)
    month_to_bigquery("green", Month(2019, 5), lake_url=lake, dataset=dataset)
    from google.cloud import storage

    blob_name = "lake/green/2019/green_tripdata_2019-05.parquet"
    gcs = storage.Client(project=bq.project, credentials=bq._credentials)
    before = gcs.bucket(gcs_bucket).get_blob(blob_name).md5_hash

    path = root / "green" / "green_tripdata_2019-05.csv.gz"
    header = HEADERS["green"].replace("lpep_dropoff_datetime,", "")
    path.write_bytes(gzip.compress(f"{header}\n2,2019-05-01 10:00:00,N\n".encode()))
    with pytest.raises(BadSourceFile, match="lpep_dropoff_datetime"):
        month_to_lake("green", Month(2019, 5), source_base=base, lake_url=lake)
    assert gcs.bucket(gcs_bucket).get_blob(blob_name).md5_hash == before
    assert _month_counts(bq, dataset, "green") == {"2019-05": 400}


def test_a_drifted_parquet_in_the_lake_is_refused_before_loading(gcs_bucket, dataset, bq):
    """A file written by hand (pandas-style: int columns as double) never reaches BigQuery."""
    from google.cloud import storage

    from include.taxi.contract import GREEN

    table = GREEN.arrow_schema.empty_table()
    drifted = table.set_column(
        table.schema.get_field_index("passenger_count"),
        "passenger_count",
        pa.array([], pa.float64()),
    )
    sink = pa.BufferOutputStream()
    pq.write_table(drifted, sink)
    gcs = storage.Client(project=bq.project, credentials=bq._credentials)
    gcs.bucket(gcs_bucket).blob(
        "lake/green/2019/green_tripdata_2019-05.parquet"
    ).upload_from_string(sink.getvalue().to_pybytes())
    with pytest.raises(LakeSchemaMismatch, match="column passenger_count is double"):
        month_to_bigquery(
            "green", Month(2019, 5), lake_url=f"gs://{gcs_bucket}/lake", dataset=dataset
        )


def test_a_month_not_in_the_lake_is_reported_as_such(gcs_bucket, dataset):
    with pytest.raises(NotInLake, match=r"green_tripdata_2019-05\.parquet"):
        month_to_bigquery(
            "green", Month(2019, 5), lake_url=f"gs://{gcs_bucket}/lake", dataset=dataset
        )


def test_the_zone_lookup_travels_to_the_lake_and_replaces_the_bigquery_table(
    source_server, gcs_bucket, dataset, bq
):
    from dev.synthetic import ZONES_CSV, write_zones
    from include.taxi.bigquery.load import zones_to_bigquery
    from include.taxi.lake.load import zones_to_lake

    base, root = source_server
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    lake = f"gs://{gcs_bucket}/lake"
    written = zones_to_lake(source_base=base, lake_url=lake)
    assert written["uri"] == f"gs://{gcs_bucket}/lake/misc/taxi_zone_lookup.parquet"
    expected = ZONES_CSV.count("\n") - 1
    for _ in range(2):
        loaded = zones_to_bigquery(lake_url=lake, dataset=dataset)
        assert loaded["rows_in_target"] == expected
    rows = bq.query(
        f"SELECT locationid, zone FROM `{bq.project}.{dataset}.taxi_zone_lookup` "
        "ORDER BY locationid"
    ).result()
    zones = {r["locationid"]: r["zone"] for r in rows}
    assert len(zones) == expected
    assert zones[132] == "JFK Airport"


def test_yellow_months_with_and_without_airport_fee_share_one_table(
    source_server, gcs_bucket, dataset, bq
):
    """2019 files have no airport fee; later ones add ``Airport_fee`` (capital A) with
    integer-looking values: both land in one BigQuery table with one FLOAT column."""
    base, root = source_server
    lake = f"gs://{gcs_bucket}/lake"
    march = root / "yellow" / "yellow_tripdata_2019-03.csv.gz"
    write_month(march, "yellow", date(2019, 3, 1), 600)
    february = root / "yellow" / "yellow_tripdata_2019-02.csv.gz"
    write_month(february, "yellow", date(2019, 2, 1), 500, float_ints=True)
    with gzip.open(february, "rt") as f:
        lines = f.read().splitlines()
    lines = [lines[0] + ",Airport_fee"] + [line + ",0" for line in lines[1:]]
    february.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    for month in ("2019-02", "2019-03"):
        month_to_lake("yellow", Month.parse(month), source_base=base, lake_url=lake)
        month_to_bigquery("yellow", Month.parse(month), lake_url=lake, dataset=dataset)
    assert _month_counts(bq, dataset, "yellow") == {"2019-02": 500, "2019-03": 600}
    (row,) = bq.query(
        "SELECT COUNTIF(airport_fee IS NOT NULL) AS with_fee, COUNTIF(airport_fee IS NULL) "
        f"AS without_fee FROM `{bq.project}.{dataset}.yellow_tripdata`"
    ).result()
    assert (row["with_fee"], row["without_fee"]) == (500, 600)
    for month in ("2019-02", "2019-03"):
        schema = pq.read_schema(_lake_file(gcs_bucket, "yellow", month)).remove_metadata()
        assert schema == contract_for("yellow").arrow_schema


def test_staging_tables_expire_and_none_is_left_after_loads(published, gcs_bucket, dataset, bq):
    """A task killed between staging and dropping would leave its stage table: BigQuery
    deletes it after a day. (The emulator stores the expiry; only BigQuery enforces it.)"""
    from datetime import UTC, datetime, timedelta

    from include.taxi.bigquery.month import STAGE_TTL, create_stage, ensure_dataset

    ensure_dataset(bq, bq.project, dataset)
    stage = create_stage(bq, bq.project, dataset, "_stage_probe", contract_for("green"))
    expires = bq.get_table(stage.reference).expires
    assert expires is not None
    assert abs(expires - (datetime.now(UTC) + STAGE_TTL)) < timedelta(minutes=5)
    bq.delete_table(stage.reference)

    base, _ = published
    lake = f"gs://{gcs_bucket}/lake"
    month_to_lake("green", Month(2019, 5), source_base=base, lake_url=lake)
    month_to_bigquery("green", Month(2019, 5), lake_url=lake, dataset=dataset)
    tables = [t.table_id for t in bq.list_tables(f"{bq.project}.{dataset}")]
    assert "green_tripdata" in tables
    assert [t for t in tables if t.startswith("_stage_")] == []


def test_the_transactions_count_assertion_rolls_the_month_back(published, gcs_bucket, dataset, bq):
    """The last line of defence inside the BigQuery transaction: if the month would not hold
    exactly the parquet file's rows, ASSERT fails and nothing of the transaction stays."""
    from google.api_core.exceptions import BadRequest
    from google.cloud import bigquery

    from include.taxi.bigquery.month import LOG_TABLE, create_stage
    from include.taxi.sql import bigquery_identifier, bigquery_script

    base, _ = published
    lake = f"gs://{gcs_bucket}/lake"
    month_to_lake("green", Month(2019, 5), source_base=base, lake_url=lake)
    month_to_bigquery("green", Month(2019, 5), lake_url=lake, dataset=dataset)
    green = contract_for("green")
    create_stage(bq, bq.project, dataset, "_stage_assert", green)
    bq.load_table_from_uri(
        f"{lake}/green/2019/green_tripdata_2019-05.parquet",
        f"{bq.project}.{dataset}._stage_assert",
        job_config=bigquery.LoadJobConfig(
            source_format="PARQUET", write_disposition="WRITE_APPEND"
        ),
    ).result()
    script = bigquery_script(
        "bigquery/replace_month.sql",
        table=bigquery_identifier(bq.project, dataset, "green_tripdata"),
        stage=bigquery_identifier(bq.project, dataset, "_stage_assert"),
        log=bigquery_identifier(bq.project, dataset, LOG_TABLE),
        columns=", ".join(green.arrow_schema.names),
    )
    params = [
        bigquery.ScalarQueryParameter("month", "DATE", MAY),
        bigquery.ScalarQueryParameter("rows_loaded", "INT64", 399),  # the file has 400
        *(
            bigquery.ScalarQueryParameter(name, "STRING", "x")
            for name in ("target_table", "service", "source_uri", "source_sha256", "run_id")
        ),
    ]
    with pytest.raises(BadRequest, match="rows in the month after the load differ"):
        bq.query(script, job_config=bigquery.QueryJobConfig(query_parameters=params)).result()
    assert _month_counts(bq, dataset, "green") == {"2019-05": 400}
    log_rows = bq.query(f"SELECT COUNT(*) AS n FROM `{bq.project}.{dataset}.{LOG_TABLE}`").result()
    assert next(iter(log_rows))["n"] == 1
