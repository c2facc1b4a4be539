"""web → lake (a local folder): the parquet file, its schema, reruns, and bad sources.

The source is a local HTTP server serving generated csv.gz files with the real quirks; the
lake is a temp folder (the GCS lake is tested against fake-gcs-server in
test_gcs_bigquery.py). Every file is read back with pyarrow and compared with the source.
"""

from __future__ import annotations

import gzip
from datetime import date

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dev.synthetic import HEADERS, write_month
from include.taxi.contract import GREEN, YELLOW
from include.taxi.errors import BadSourceFile
from include.taxi.lake.load import month_to_lake
from include.taxi.lake.parquet import COMPRESSION
from include.taxi.lake.store import object_name
from include.taxi.months import Month

SEPT, OCT = date(2019, 9, 1), date(2019, 10, 1)


@pytest.fixture
def source(source_server):
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-09.csv.gz", "green", SEPT, 3_000)
    write_month(
        root / "green" / "green_tripdata_2019-10.csv.gz", "green", OCT, 2_000, float_ints=True
    )
    write_month(root / "yellow" / "yellow_tripdata_2019-09.csv.gz", "yellow", SEPT, 2_500)
    return base, root


def _file(lake, service: str, month: date):
    return lake / object_name(service, Month.of(month))


def test_a_month_lands_as_one_parquet_file_with_the_declared_schema(source, tmp_path):
    base, _ = source
    result = month_to_lake("green", Month(2019, 9), source_base=base, lake_url=tmp_path.as_uri())
    path = _file(tmp_path, "green", SEPT)
    assert path == tmp_path / "green" / "2019" / "green_tripdata_2019-09.parquet"
    assert result["status"] == "written"
    assert result["uri"] == path.as_uri()
    table = pq.read_table(path)
    assert table.num_rows == result["rows"] == 3_000
    assert table.schema.remove_metadata() == GREEN.arrow_schema
    assert pc.all(pc.equal(table["source_month"], SEPT)).as_py()
    meta = pq.read_metadata(path)
    assert meta.row_group(0).column(0).compression.lower() == COMPRESSION
    footer = {k.decode(): v.decode() for k, v in meta.metadata.items()}
    assert footer["taxi.rows"] == "3000"
    assert footer["taxi.source_url"].endswith("green_tripdata_2019-09.csv.gz")
    assert len(footer["taxi.source_sha256"]) == 64
    assert not list(tmp_path.rglob("*.tmp")), "no temp file is left behind"


def test_the_parquet_values_equal_the_source_values(source, tmp_path):
    base, root = source
    month_to_lake("yellow", Month(2019, 9), source_base=base, lake_url=tmp_path.as_uri())
    table = pq.read_table(_file(tmp_path, "yellow", SEPT))
    with gzip.open(root / "yellow" / "yellow_tripdata_2019-09.csv.gz", "rt") as f:
        header = f.readline().strip().split(",")
        first = dict(zip(header, f.readline().strip().split(","), strict=True))
    row = table.slice(0, 1).to_pylist()[0]
    assert row["tpep_pickup_datetime"].isoformat(" ") == first["tpep_pickup_datetime"]
    assert row["pulocationid"] == int(first["PULocationID"])
    assert row["total_amount"] == pytest.approx(float(first["total_amount"]))
    assert table.schema.remove_metadata() == YELLOW.arrow_schema


def test_drifted_months_get_the_same_schema(source, tmp_path):
    """October writes integers as ``1.0``: still int64, like September."""
    base, _ = source
    for month in ("2019-09", "2019-10"):
        month_to_lake("green", Month.parse(month), source_base=base, lake_url=tmp_path.as_uri())
    sept = pq.read_schema(_file(tmp_path, "green", SEPT)).remove_metadata()
    octo = pq.read_schema(_file(tmp_path, "green", OCT)).remove_metadata()
    assert sept == octo == GREEN.arrow_schema


def test_rerun_skips_an_unchanged_source_and_force_rewrites_only_its_month(source, tmp_path):
    base, _ = source
    url = tmp_path.as_uri()
    month_to_lake("green", Month(2019, 9), source_base=base, lake_url=url)
    month_to_lake("green", Month(2019, 10), source_base=base, lake_url=url)
    october = _file(tmp_path, "green", OCT).read_bytes()
    september_mtime = _file(tmp_path, "green", SEPT).stat().st_mtime_ns

    again = month_to_lake("green", Month(2019, 9), source_base=base, lake_url=url)
    assert again["status"] == "unchanged"
    assert _file(tmp_path, "green", SEPT).stat().st_mtime_ns == september_mtime

    forced = month_to_lake("green", Month(2019, 9), source_base=base, lake_url=url, force=True)
    assert forced["status"] == "written"
    assert forced["rows"] == 3_000
    assert _file(tmp_path, "green", SEPT).stat().st_mtime_ns != september_mtime
    assert _file(tmp_path, "green", OCT).read_bytes() == october


def test_a_bad_source_fails_clearly_and_leaves_the_lake_object_as_it_was(source, tmp_path):
    base, root = source
    url = tmp_path.as_uri()
    month_to_lake("green", Month(2019, 9), source_base=base, lake_url=url)
    before = _file(tmp_path, "green", SEPT).read_bytes()
    good = root / "green" / "green_tripdata_2019-09.csv.gz"
    saved = good.read_bytes()
    header = HEADERS["green"].replace("fare_amount,", "")
    line = "2,2019-09-01 10:00:00,2019-09-01 10:20:00,N,1,74,75,1,2.5,0.5,0.5,0,0,,0.3,11.3,2,1,0"
    try:
        good.write_bytes(gzip.compress(f"{header}\n{line}\n".encode()))
        with pytest.raises(BadSourceFile) as caught:
            month_to_lake("green", Month(2019, 9), source_base=base, lake_url=url)
    finally:
        good.write_bytes(saved)
    message = str(caught.value)
    assert "green_tripdata_2019-09.csv.gz" in message
    assert "fare_amount" in message
    assert _file(tmp_path, "green", SEPT).read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_unparseable_value_names_file_line_and_column(source, tmp_path):
    base, root = source
    path = root / "green" / "green_tripdata_2019-11.csv.gz"
    good = (
        "2,2019-11-01 10:00:00,2019-11-01 10:20:00,N,1,74,75,1,2.5,10,0.5,0.5,0,0,,0.3,11.3,2,1,0"
    )
    bad = good.replace(",2.5,", ",two,")
    path.write_bytes(gzip.compress(f"{HEADERS['green']}\n{good}\n{bad}\n".encode()))
    with pytest.raises(BadSourceFile, match=r"line 3, column trip_distance"):
        month_to_lake("green", Month(2019, 11), source_base=base, lake_url=tmp_path.as_uri())
    assert not (tmp_path / "green").exists() or not list((tmp_path / "green").rglob("*"))
