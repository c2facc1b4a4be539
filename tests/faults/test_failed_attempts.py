"""Every failed attempt is on the record: a month whose file is refused before the load (an
HTML page served as its csv.gz) gets a ``failed`` entry in the Postgres ingestion log and in
the lake's log, with the (redacted) error, while the month's data stays as it was; the Taxi
months grid shows the month as failed, and a later good run as loaded again.

Real PostgreSQL, a real folder lake, generated files served over HTTP by the session's source
server; the source URL carries a password, which no log entry may repeat.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from dev.synthetic import write_month
from include.taxi.lake.ingestion_log import LakeLog, failures
from include.taxi.lake.load import month_to_lake
from include.taxi.lake.store import open_lake
from include.taxi.load_record import FAILED, LOADED
from include.taxi.months import Month
from include.taxi.orchestration.tasks import outcome
from include.taxi.postgres.ingestion_log import PostgresLog
from include.taxi.postgres.load import month_to_postgres
from include.taxi.status.grid import MonthsView
from include.taxi.status.report import failed, report
from include.taxi.status.targets import collect

FEB, MAR = date(2021, 2, 1), date(2021, 3, 1)
GOOD_ROWS = 300
HTML = b"<!DOCTYPE html><html><body>Rate limited, try later</body></html>"
PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture
def source(source_server):
    """A folder of this test's own at the source; the base URL with a user and password."""
    base, root = source_server
    folder = f"failed-{uuid.uuid4().hex[:8]}"
    secret_base = base.replace("http://", f"http://reader:{PASSWORD}@") + f"/{folder}"

    def path(month: date) -> Path:
        return root / folder / "green" / f"green_tripdata_{month:%Y-%m}.csv.gz"

    return secret_base, path


def _cells(view: MonthsView, target: str) -> dict[str, tuple[str, int | None]]:
    (green,) = [s for s in view.services if s.service == "green"]
    return {row.month: (row.cells[target].state, row.cells[target].rows) for row in green.months}


def _log(url: str, schema: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT to_char(source_month, 'YYYY-MM'), status, error, source_url "
            f'FROM "{schema}".taxi_ingestion_log ORDER BY id'
        ).fetchall()


def _count(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                f"SELECT to_char(source_month, 'YYYY-MM'), count(*) "
                f'FROM "{schema}".green_tripdata GROUP BY 1 ORDER BY 1'
            ).fetchall()
        )


def test_a_refused_file_is_a_failed_row_in_postgres_and_the_grid_shows_it(
    source, postgres_url, pg_schema
) -> None:
    base, path = source
    load = {"source_base": base, "conninfo": postgres_url, "schema": pg_schema}
    write_month(path(FEB), "green", FEB, GOOD_ROWS)
    month_to_postgres("green", Month(2021, 2), run_id="manual__good", **load)
    path(FEB).write_bytes(HTML)  # republished as an error page
    path(MAR).parent.mkdir(parents=True, exist_ok=True)
    path(MAR).write_bytes(HTML)  # a month never loaded, refused too

    for month, run_id in (("2021-02", "manual__html"), ("2021-03", "manual__html_mar")):
        with pytest.raises(AirflowFailException, match="not a gzip file"):
            outcome(
                lambda m=month, r=run_id: month_to_postgres(
                    "green", Month.parse(m), run_id=r, force=True, **load
                )
            )()

    rows = _log(postgres_url, pg_schema)
    assert [(m, s) for m, s, _, _ in rows] == [
        ("2021-02", "loaded"),
        ("2021-02", "failed"),
        ("2021-03", "failed"),
    ]
    for _, _, error, url in rows[1:]:
        for fragment in ("BadSourceFile", "not a gzip file", "green_tripdata_2021-0"):
            assert fragment in error
        assert PASSWORD not in error
        assert PASSWORD not in url
        assert "reader" not in url
    assert _count(postgres_url, pg_schema) == {"2021-02": GOOD_ROWS}  # data untouched

    view = collect({"postgres": PostgresLog(postgres_url, pg_schema)})
    assert _cells(view, "postgres") == {
        "2021-02": (FAILED, GOOD_ROWS),
        "2021-03": (FAILED, None),
    }
    (green,) = view.services
    feb, mar = green.months
    assert "not a gzip file" in feb.cells["postgres"].detail
    assert f"({GOOD_ROWS} rows) is kept" in feb.cells["postgres"].detail
    assert mar.cells["postgres"].run_id == "manual__html_mar"
    lines = report("green", 2021, {"postgres": PostgresLog(postgres_url, pg_schema)})
    assert lines[2].split() == ["2021-02", str(GOOD_ROWS), "(failed)"]  # make report
    assert lines[3].split() == ["2021-03", "failed"]
    assert lines[4].split() == ["2021-04", "-"]

    write_month(path(FEB), "green", FEB, GOOD_ROWS + 7, seed=1)  # fixed at the source
    assert month_to_postgres("green", Month(2021, 2), run_id="manual__fixed", **load)["status"] == (
        "loaded"
    )
    assert _cells(collect({"postgres": PostgresLog(postgres_url, pg_schema)}), "postgres")[
        "2021-02"
    ] == (
        LOADED,
        GOOD_ROWS + 7,
    )


def test_a_refused_file_is_recorded_in_the_lake_without_touching_its_object(
    source, tmp_path: Path
) -> None:
    base, path = source
    lake_url = (tmp_path / "lake").as_uri()
    write_month(path(FEB), "green", FEB, GOOD_ROWS)
    month_to_lake(
        "green", Month(2021, 2), source_base=base, lake_url=lake_url, run_id="manual__good"
    )
    lake = open_lake(lake_url)
    (name,) = lake.listing("green/")
    before = (tmp_path / "lake" / name).read_bytes()
    path(FEB).write_bytes(HTML)

    with pytest.raises(AirflowFailException, match="not a gzip file"):
        outcome(
            lambda: month_to_lake(
                "green",
                Month(2021, 2),
                source_base=base,
                lake_url=lake_url,
                force=True,
                run_id="manual__html",
            )
        )()

    assert (tmp_path / "lake" / name).read_bytes() == before  # the month's object untouched
    (failure,) = failures(lake)
    assert (failure.service, failure.month, failure.run_id) == ("green", "2021-02", "manual__html")
    assert "not a gzip file" in failure.error
    for stored in (tmp_path / "lake").rglob("*"):
        if stored.is_file():
            assert PASSWORD.encode() not in stored.read_bytes(), stored
    view = collect({"lake": LakeLog(lake)})
    assert _cells(view, "lake") == {"2021-02": (FAILED, GOOD_ROWS)}
    (green,) = view.services
    assert "not a gzip file" in green.months[0].cells["lake"].detail
    sources = {"lake": LakeLog(open_lake(lake_url))}
    assert report("green", 2021, sources)[2].split() == ["2021-02", str(GOOD_ROWS), "(failed)"]

    write_month(path(FEB), "green", FEB, GOOD_ROWS + 3, seed=2)
    month_to_lake("green", Month(2021, 2), source_base=base, lake_url=lake_url, run_id="manual__ok")
    assert failures(lake) == []
    assert report("green", 2021, sources)[2].split() == ["2021-02", str(GOOD_ROWS + 3)]
    view = collect({"lake": LakeLog(lake)})
    assert _cells(view, "lake") == {"2021-02": (LOADED, GOOD_ROWS + 3)}


def _bigquery_log(client, dataset: str) -> list[tuple]:
    rows = client.query(
        "SELECT CAST(month AS STRING) AS m, status, error, rows_in_target "
        f"FROM `{client.project}.{dataset}.taxi_ingestion_log` ORDER BY finished_at"
    ).result()
    return [(r["m"][:7], r["status"], r["error"], r["rows_in_target"]) for r in rows]


def test_a_refused_lake_file_is_a_failed_row_in_bigquery_and_a_gcs_failure_record(
    source, gcs_bucket, gcp_emulators
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import storage
    from google.cloud.bigquery import SchemaField, Table

    from include.taxi.bigquery.ingestion_log import BigQueryLog
    from include.taxi.bigquery.load import month_to_bigquery
    from include.taxi.bigquery.schema import LOG_SCHEMA
    from include.taxi.contract import GREEN

    base, path = source
    lake_url, dataset = f"gs://{gcs_bucket}/lake", f"taxi_{uuid.uuid4().hex[:8]}"
    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    bigquery = BigQueryLog(client, hook.project_id, dataset)
    old_log = [f for f in LOG_SCHEMA if f[0] != "error"]  # a log from before the column
    client.create_dataset(f"{client.project}.{dataset}")
    client.create_table(
        Table(
            f"{client.project}.{dataset}.taxi_ingestion_log",
            schema=[SchemaField(n, t, mode=m) for n, t, m in old_log],
        )
    )
    write_month(path(FEB), "green", FEB, GOOD_ROWS)
    month_to_lake(
        "green", Month(2021, 2), source_base=base, lake_url=lake_url, run_id="manual__lake"
    )
    month_to_bigquery(
        "green", Month(2021, 2), lake_url=lake_url, dataset=dataset, run_id="manual__bq"
    )

    # the lake's failure record on GCS: an HTML page refused, the object kept
    path(FEB).write_bytes(HTML)
    with pytest.raises(AirflowFailException, match="not a gzip file"):
        outcome(
            lambda: month_to_lake(
                "green",
                Month(2021, 2),
                source_base=base,
                lake_url=lake_url,
                force=True,
                run_id="r1",
            )
        )()
    lake = open_lake(lake_url)
    assert [(f.month, f.run_id) for f in failures(lake)] == [("2021-02", "r1")]

    # a hand-written object with a drifted column: refused before BigQuery loads anything
    table = GREEN.arrow_schema.empty_table()
    drifted = table.set_column(
        table.schema.get_field_index("passenger_count"),
        "passenger_count",
        pa.array([], pa.float64()),
    )
    sink = pa.BufferOutputStream()
    pq.write_table(drifted, sink)
    gcs = storage.Client(project=client.project, credentials=client._credentials)
    blob = gcs.bucket(gcs_bucket).blob("lake/green/2021/green_tripdata_2021-02.parquet")
    blob.upload_from_string(sink.getvalue().to_pybytes())
    with pytest.raises(AirflowFailException, match="passenger_count"):
        outcome(
            lambda: month_to_bigquery(
                "green", Month(2021, 2), lake_url=lake_url, dataset=dataset, run_id="manual__drift"
            )
        )()

    logged = _bigquery_log(client, dataset)
    assert [(m, s) for m, s, _, _ in logged] == [("2021-02", "loaded"), ("2021-02", "failed")]
    assert "LakeSchemaMismatch" in logged[1][2]
    assert "column passenger_count is double" in logged[1][2]
    count = client.query(
        f"SELECT COUNT(*) AS n FROM `{client.project}.{dataset}.green_tripdata`"
    ).result()
    assert next(iter(count))["n"] == GOOD_ROWS  # the month as it was
    view = collect({"lake": LakeLog(lake), "bigquery": bigquery})
    assert _cells(view, "bigquery") == {"2021-02": (FAILED, GOOD_ROWS)}
    (green,) = view.services
    assert "passenger_count" in green.months[0].cells["bigquery"].detail
    assert failed(bigquery.records(), "green", 2021) == {"2021-02"}

    write_month(path(FEB), "green", FEB, GOOD_ROWS + 5, seed=3)
    month_to_lake("green", Month(2021, 2), source_base=base, lake_url=lake_url, force=True)
    assert failures(lake) == []
    month_to_bigquery(
        "green", Month(2021, 2), lake_url=lake_url, dataset=dataset, run_id="manual__ok"
    )
    view = collect({"lake": LakeLog(lake), "bigquery": bigquery})
    assert _cells(view, "bigquery") == {"2021-02": (LOADED, GOOD_ROWS + 5)}
    assert _cells(view, "lake") == {"2021-02": (LOADED, GOOD_ROWS + 5)}
    assert failed(bigquery.records(), "green", 2021) == set()
    client.close()
