"""The TLC's parquet files of every era, from a local server laid out as the TLC's
(``trip-data/`` flat, ``misc/``), into Postgres, the lake and BigQuery with exact values.

Real components only: the embedded PostgreSQL, a folder lake, fake-gcs-server and
local-bigquery through the real google clients. The files carry each era's published names and
types (dev/tlc_parquet.py, docs/sources.md "The TLC's parquet files").
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from dev.synthetic import ZONES_CSV
from dev.tlc_parquet import expected, write_era
from include.taxi.contract import contract_for
from include.taxi.errors import BadSourceFile, SourceNotPublished
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres

ROWS = 1_500
ERAS = {  # era → the month it is published as
    "yellow-2009": "2009-01",
    "yellow-2010": "2010-02",
    "yellow-2014": "2014-03",
    "yellow-2016": "2016-06",
    "yellow-2019": "2019-04",
    "yellow-2022": "2022-05",
    "yellow-2023": "2023-06",
    "yellow-2025": "2025-01",
    "green-2019": "2019-07",
    "fhv-2015": "2015-03",
    "fhv-2019": "2019-08",
    "fhvhv-2024": "2024-01",
}


@pytest.fixture(scope="module")
def tlc(tmp_path_factory: pytest.TempPathFactory, source_server) -> str:
    """The TLC's layout under ``{base}/tlc``: every era's month, and the zones."""
    base, root = source_server
    for era, month in ERAS.items():
        service = era.split("-")[0]
        path = root / "tlc" / "trip-data" / f"{service}_tripdata_{month}.parquet"
        write_era(path, era, date.fromisoformat(f"{month}-01"), ROWS, row_group_rows=600)
    (root / "tlc" / "misc").mkdir(parents=True, exist_ok=True)
    (root / "tlc" / "misc" / "taxi_zone_lookup.csv").write_text(ZONES_CSV)
    return f"{base}/tlc"


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_every_era_loads_into_one_postgres_table_per_service(tlc, postgres_url, pg_schema):
    load = {"source_base": tlc, "source_kind": "tlc", "conninfo": postgres_url, "schema": pg_schema}
    for era, month in ERAS.items():
        result = month_to_postgres(era.split("-")[0], Month.parse(month), **load)
        assert result["rows_read"] == result["rows_in_target"] == ROWS, era
    want = expected(ROWS)
    yellow = _query(
        postgres_url,
        f"SELECT to_char(source_month, 'YYYY-MM'), count(*), sum(fare_amount), sum(total_amount),"
        f" sum(passenger_count), sum(pulocationid), count(pickup_longitude) "
        f'FROM "{pg_schema}".yellow_tripdata GROUP BY 1 ORDER BY 1',
    )
    coordinates = {"2009-01", "2010-02", "2014-03", "2016-06"}
    assert [r[0] for r in yellow] == sorted(m for e, m in ERAS.items() if e.startswith("yellow"))
    for month, rows, fare, total, passengers, pu, lon in yellow:
        assert (rows, passengers) == (ROWS, want["passengers"]), month
        assert fare == pytest.approx(want["fare"])
        assert total == pytest.approx(want["total"])
        # zone ids are NULL where the era has coordinates, coordinates NULL where it has zones
        assert (pu, lon) == ((None, ROWS) if month in coordinates else (want["pu"], 0)), month
    (row,) = _query(
        postgres_url,
        f"SELECT vendorid, vendor_text, payment_type, payment_type_text, extra, "
        f'tpep_pickup_datetime::text FROM "{pg_schema}".yellow_tripdata '
        "WHERE source_month = '2009-01-01' ORDER BY tpep_pickup_datetime LIMIT 1 OFFSET 1",
    )
    assert row == (1, "CMT", 1, "Credit", 0.5, "2009-01-01 00:00:37")
    (fhvhv,) = _query(
        postgres_url,
        f"SELECT count(*), sum(base_passenger_fare), sum(trip_time), count(on_scene_datetime), "
        f"count(*) FILTER (WHERE shared_request_flag = 'Y') FROM \"{pg_schema}\".fhvhv_tripdata",
    )
    assert fhvhv == (
        ROWS,
        pytest.approx(want["fare"]),
        sum(600 + i % 300 for i in range(ROWS)),
        ROWS - ROWS // 5,
        ROWS // 3,
    )
    fhv = _query(
        postgres_url,
        f"SELECT to_char(source_month, 'YYYY-MM'), count(*), count(pickup_datetime), "
        f"count(dropoff_datetime), sum(pulocationid), count(dolocationid) "
        f'FROM "{pg_schema}".fhv_tripdata GROUP BY 1 ORDER BY 1',
    )
    # 2015's Pickup_date and locationID are the contract's columns; it has no dropoff yet
    assert fhv == [
        ("2015-03", ROWS, ROWS, 0, want["pu"], 0),
        ("2019-08", ROWS, ROWS, ROWS, want["pu"], ROWS),
    ]
    (airport,) = _query(
        postgres_url,
        f'SELECT count(airport_fee), count(cbd_congestion_fee) FROM "{pg_schema}".yellow_tripdata '
        "WHERE source_month IN ('2019-04-01', '2025-01-01')",
    )
    assert airport == (ROWS, ROWS)  # 2019's typed-null airport_fee is NULL, 2025's has values
    log = _query(
        postgres_url,
        f"SELECT service, source_kind, source_format, status, source_url "
        f'FROM "{pg_schema}".taxi_ingestion_log ORDER BY id',
    )
    assert {(r[1], r[2], r[3]) for r in log} == {("tlc", "parquet", "loaded")}
    assert log[-1][4] == f"{tlc}/trip-data/fhvhv_tripdata_2024-01.parquet"
    zones = zones_to_postgres(
        source_base=tlc, source_kind="tlc", conninfo=postgres_url, schema=pg_schema
    )
    assert zones["url"] == f"{tlc}/misc/taxi_zone_lookup.csv"
    assert zones["rows_in_target"] == 7
    again = month_to_postgres("fhvhv", Month(2024, 1), **load)
    assert again["status"] == "unchanged"  # HEAD: same size and validators


def test_every_era_gives_one_lake_schema_per_service(tlc, tmp_path: Path):
    lake = tmp_path / "lake"
    for era, month in ERAS.items():
        service = era.split("-")[0]
        written = month_to_lake(
            service, Month.parse(month), source_base=tlc, source_kind="tlc", lake_url=lake.as_uri()
        )
        assert written["rows"] == ROWS
        path = lake / service / month[:4] / f"{service}_tripdata_{month}.parquet"
        assert pq.read_schema(path).remove_metadata() == contract_for(service).arrow_schema
        meta = pq.read_metadata(path).metadata
        assert meta[b"taxi.source_kind"] == b"tlc"
        assert meta[b"taxi.source_format"] == b"parquet"
    table = pq.read_table(lake / "yellow" / "2009" / "yellow_tripdata_2009-01.parquet")
    assert table["vendor_text"].to_pylist()[:3] == ["VTS", "CMT", "DDS"]
    assert table["pulocationid"].null_count == ROWS


def test_a_month_the_tlc_cannot_have_is_skipped_before_any_request(tlc, postgres_url, pg_schema):
    with pytest.raises(SourceNotPublished, match=r"first fhvhv month is 2019-02.*mirror"):
        month_to_postgres(
            "fhvhv",
            Month(2018, 12),
            source_base=tlc,
            source_kind="tlc",
            conninfo=postgres_url,
            schema=pg_schema,
        )
    with pytest.raises(SourceNotPublished, match=r"answered 404.*two months after"):
        month_to_postgres(
            "green",
            Month(2026, 10),
            source_base=tlc,
            source_kind="tlc",
            conninfo=postgres_url,
            schema=pg_schema,
        )


BAD = {
    "fractional": ["row group 1", "row 1001", "column passenger_count", "1.5"],
    "truncated": ["truncated", "footer"],
    "html": ["not a parquet file", "<!DOCTYPE html>", "taxi_tlc_url"],
    "missing column": ["tpep_dropoff_datetime missing", "2023-06"],
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_parquet_file_fails_located_and_leaves_the_month_as_it_was(
    case, tlc, source_server, postgres_url, pg_schema, tmp_path
):
    import numpy as np
    import pyarrow as pa

    from dev.tlc_parquet import ERAS as SPEC

    base, root = source_server
    folder = root / f"bad-{case.replace(' ', '-')}"
    month = date(2023, 6, 1)
    target = folder / "trip-data" / "yellow_tripdata_2023-06.parquet"
    write_era(target, "yellow-2023", month, 900, row_group_rows=600)
    load = {
        "source_base": f"{base}/{folder.name}",
        "source_kind": "tlc",
        "conninfo": postgres_url,
        "schema": pg_schema,
    }
    assert month_to_postgres("yellow", Month(2023, 6), **load)["rows_in_target"] == 900
    if case == "fractional":

        def passengers(i: np.ndarray, m: date) -> pa.Array:
            return pa.array(np.where(i == 1000, 1.5, 1.0))

        spec = [(n, passengers if n == "passenger_count" else f) for n, f in SPEC["yellow-2023"]]
        write_era(target, "", month, 1_200, row_group_rows=600, columns=spec)
    elif case == "truncated":
        good = write_era(tmp_path / "g.parquet", "yellow-2023", month, 1_200)
        target.write_bytes(good.read_bytes()[:-300])
    elif case == "html":
        target.write_text("<!DOCTYPE html><html><body>moved</body></html>")
    else:
        spec = [(n, f) for n, f in SPEC["yellow-2023"] if n != "tpep_dropoff_datetime"]
        write_era(target, "", month, 1_200, columns=spec)
    with pytest.raises(BadSourceFile) as caught:
        month_to_postgres("yellow", Month(2023, 6), **load, force=True)
    for part in ["yellow_tripdata_2023-06.parquet", *BAD[case]]:
        assert part in str(caught.value), str(caught.value)
    (rows,) = _query(postgres_url, f'SELECT count(*) FROM "{pg_schema}".yellow_tripdata')
    assert rows == (900,), "the month is exactly as it was"
    with pytest.raises(BadSourceFile):
        month_to_lake(
            "yellow",
            Month(2023, 6),
            source_base=load["source_base"],
            source_kind="tlc",
            lake_url=(tmp_path / "lake").as_uri(),
            force=True,
        )
    assert not (tmp_path / "lake" / "yellow").exists() or not any(
        (tmp_path / "lake" / "yellow").rglob("*.parquet")
    )


def test_eras_of_a_service_travel_to_one_bigquery_table(tlc, gcs_bucket, gcp_emulators):
    """yellow 2009 (names, text codes, coordinates) and 2023 (Airport_fee, int32 ids) into one
    BigQuery table; fhvhv and green (null-typed ehail_fee) into theirs; the log says tlc."""
    import uuid

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.taxi.bigquery.load import month_to_bigquery

    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"taxi_{uuid.uuid4().hex[:8]}"
    picked = {
        "yellow-2009": "2009-01",
        "yellow-2023": "2023-06",
        "green-2019": "2019-07",
        "fhvhv-2024": "2024-01",
    }
    for era, month in picked.items():
        service = era.split("-")[0]
        month_to_lake(
            service, Month.parse(month), source_base=tlc, source_kind="tlc", lake_url=lake
        )
        loaded = month_to_bigquery(service, Month.parse(month), lake_url=lake, dataset=dataset)
        assert loaded["rows_loaded"] == loaded["rows_in_target"] == ROWS, era
    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    want = expected(ROWS)
    table = f"`{client.project}.{dataset}.yellow_tripdata`"
    rows = {
        r["m"][:7]: (r["n"], r["fare"], r["pu"], r["lon"], r["cash"])
        for r in client.query(
            f"SELECT CAST(source_month AS STRING) AS m, COUNT(*) AS n, SUM(fare_amount) AS fare, "
            f"SUM(pulocationid) AS pu, COUNT(pickup_longitude) AS lon, "
            f"COUNTIF(payment_type_text = 'CASH') AS cash FROM {table} GROUP BY m"
        ).result()
    }
    assert rows == {
        "2009-01": (ROWS, pytest.approx(want["fare"]), None, ROWS, ROWS // 4),
        "2023-06": (ROWS, pytest.approx(want["fare"]), want["pu"], 0, 0),
    }
    (fhvhv,) = client.query(
        f"SELECT COUNT(*) AS n, SUM(trip_time) AS t "
        f"FROM `{client.project}.{dataset}.fhvhv_tripdata`"
    ).result()
    assert (fhvhv["n"], fhvhv["t"]) == (ROWS, sum(600 + i % 300 for i in range(ROWS)))
    log = client.query(
        f"SELECT DISTINCT source_kind, source_format FROM `{client.project}.{dataset}."
        "taxi_ingestion_log`"
    ).result()
    assert [(r["source_kind"], r["source_format"]) for r in log] == [("tlc", "parquet")]
    client.close()


def test_taxi_daily_discovery_with_the_tlc_heads_only_months_it_can_have(tlc) -> None:
    """taxi_daily's discovery against the TLC layout: published months are new, unpublished
    ones (the lag) are not there yet, months before a service's first are never asked for."""
    from include.taxi.orchestration.discovery import changed_months

    asked: list[tuple[str, str]] = []

    def held(service: str, month: str) -> None:
        asked.append((service, month))

    found = changed_months(
        ["fhvhv", "green"],
        [Month.parse(m) for m in ["2024-01", "2019-07", "2019-01"]],
        source_base=tlc,
        source_kind="tlc",
        held=held,
    )
    assert found == [
        {"service": "fhvhv", "month": "2024-01", "reason": "new"},
        {"service": "green", "month": "2019-07", "reason": "new"},
    ]
    assert ("fhvhv", "2019-01") not in asked  # before fhvhv's first TLC month: no request


def test_a_table_of_the_previous_contract_gains_the_tlc_columns(
    tlc, tmp_path, postgres_url, pg_schema
):
    """A yellow table created before issue 11 (no coordinates, no text columns) takes a 2009
    TLC month after a mirror month: the columns are added, both months stay whole."""
    from dev.synthetic import write_month
    from include.taxi.contract import YELLOW, Contract
    from include.taxi.postgres.month import ensure_table, replace_month
    from include.taxi.sources.reader import open_source

    ensure_table(postgres_url, pg_schema, Contract("yellow", YELLOW.columns[:19]))
    mirror = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(mirror, "yellow", date(2021, 1, 1), 500)
    replace_month(postgres_url, pg_schema, open_source(mirror, YELLOW, date(2021, 1, 1)))
    month_to_postgres(
        "yellow",
        Month(2009, 1),
        source_base=tlc,
        source_kind="tlc",
        conninfo=postgres_url,
        schema=pg_schema,
    )
    rows = _query(
        postgres_url,
        f"SELECT to_char(source_month, 'YYYY-MM'), count(*), count(vendor_text) "
        f'FROM "{pg_schema}".yellow_tripdata GROUP BY 1 ORDER BY 1',
    )
    assert rows == [("2009-01", ROWS, ROWS), ("2021-01", 500, 0)]
