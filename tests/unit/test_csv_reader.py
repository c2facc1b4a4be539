"""Reading source files against the contract: types, drift, quirks and the errors users see."""

from __future__ import annotations

import gzip
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dev.synthetic import HEADERS, write_month, write_zones
from include.taxi.contract import FHV, GREEN, YELLOW, ZONE_LOOKUP
from include.taxi.errors import BadSourceFile
from include.taxi.quality import Profile
from include.taxi.sources.csv import ContractReader

JAN = date(2021, 1, 1)


def _table(reader: ContractReader) -> pa.Table:
    return pa.Table.from_batches(list(reader), schema=reader.schema)


def _gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


@pytest.mark.parametrize("contract", [YELLOW, GREEN, FHV])
def test_every_row_is_read_with_the_declared_schema(tmp_path: Path, contract) -> None:
    path = tmp_path / f"{contract.name}.csv.gz"
    rows = write_month(path, contract.name, JAN, 2_345, seed=3)
    reader = ContractReader(path, contract, JAN, block_size=16 << 10)
    table = _table(reader)
    assert reader.rows == rows == table.num_rows
    assert table.schema == contract.arrow_schema
    assert table.column("source_month").unique().to_pylist() == [JAN]


def test_quirks_empty_cells_dotted_decimals_out_of_month(tmp_path: Path) -> None:
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(path, "yellow", JAN, 1_000)
    table = _table(ContractReader(path, YELLOW, JAN))
    # the tail of the file has VendorID, passenger_count, ... empty together: NULLs, not 0
    tail = table.slice(990)
    for name in ("vendorid", "passenger_count", "ratecodeid", "store_and_fwd_flag", "payment_type"):
        assert tail.column(name).null_count == 10, name
    assert table.column("vendorid").null_count == 10
    # `.30` parses as 0.3
    assert 0.3 in table.column("improvement_surcharge").unique().to_pylist()
    # row 1 is a pickup in December, kept and tagged with the file's month
    assert table.column("tpep_pickup_datetime")[1].as_py() < datetime(2021, 1, 1)
    assert table.column("source_month")[1].as_py() == JAN


def test_integers_written_as_floats_become_integers(tmp_path: Path) -> None:
    path = write_month(tmp_path / "g.csv.gz", "green", JAN, 300, float_ints=True)
    assert path == 300
    table = _table(ContractReader(tmp_path / "g.csv.gz", GREEN, JAN))
    assert table.schema.field("passenger_count").type == pa.int64()
    assert set(table.column("trip_type").drop_null().to_pylist()) == {1}


def test_year_3019_timestamp_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "fhv.csv.gz"
    write_month(path, "fhv", JAN, 100, year_3019=True)
    table = _table(ContractReader(path, FHV, JAN))
    assert max(table.column("dropoff_datetime").drop_null().to_pylist()).year == 3019


def test_zone_lookup_keeps_na_strings(tmp_path: Path) -> None:
    path = tmp_path / "taxi_zone_lookup.csv"
    rows = write_zones(path)
    table = _table(ContractReader(path, ZONE_LOOKUP))
    assert table.num_rows == rows
    assert "N/A" in table.column("service_zone").to_pylist()
    assert "NA" in table.column("zone").to_pylist()


def _yellow_with(tmp_path: Path, bad_line: str, good_rows: int = 50) -> Path:
    good = "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1,2.1,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5\n"
    text = HEADERS["yellow"] + "\n" + good * good_rows + bad_line + "\n" + good * 5
    return _gz(tmp_path / "yellow_tripdata_2021-01.csv.gz", text)


def test_unparseable_value_names_file_line_and_column(tmp_path: Path) -> None:
    bad = (
        "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1,2.1,1,N,142,43,2,eight,3,0.5,0,0,0.3,11.8,2.5"
    )
    path = _yellow_with(tmp_path, bad)
    with pytest.raises(BadSourceFile) as err:
        list(ContractReader(path, YELLOW, JAN))
    message = str(err.value)
    assert "yellow_tripdata_2021-01.csv.gz" in message
    assert "line 52" in message
    assert "column fare_amount" in message
    assert "'eight'" in message


def test_fractional_integer_names_its_line(tmp_path: Path) -> None:
    bad = "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1.5,2.1,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5"
    with pytest.raises(BadSourceFile) as err:
        list(ContractReader(_yellow_with(tmp_path, bad), YELLOW, JAN))
    assert "line 52, column passenger_count" in str(err.value)
    assert "1.5" in str(err.value)


def test_bad_timestamp_names_its_line(tmp_path: Path) -> None:
    bad = "1,2021-01-32 00:30:10,2021-01-01 00:36:12,1,2.1,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5"
    with pytest.raises(BadSourceFile, match="line 52, column tpep_pickup_datetime"):
        list(ContractReader(_yellow_with(tmp_path, bad), YELLOW, JAN))


def test_short_row_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(BadSourceFile, match=r"line 52.*has 3 fields, the header has 18"):
        list(ContractReader(_yellow_with(tmp_path, "1,2,3"), YELLOW, JAN))


def test_truncated_gzip_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(path, "yellow", JAN, 5_000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadSourceFile, match="damaged"):
        list(ContractReader(path, YELLOW, JAN))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    path.write_bytes(b"")
    with pytest.raises(BadSourceFile, match="empty"):
        ContractReader(path, YELLOW, JAN)


def test_header_only_file_is_refused(tmp_path: Path) -> None:
    """The reader yields nothing; the quality rule ``no_rows`` (a ``fail``) refuses it."""
    path = _gz(tmp_path / "yellow_tripdata_2021-01.csv.gz", HEADERS["yellow"] + "\n")
    reader = ContractReader(path, YELLOW, JAN)
    profile = Profile(YELLOW, JAN)
    assert list(profile.observe(reader)) == []
    with pytest.raises(BadSourceFile, match="no data rows"):
        profile.check(reader.file)


def test_error_is_kept_for_consumers_that_rewrap_it(tmp_path: Path) -> None:
    reader = ContractReader(_yellow_with(tmp_path, "1,2,3"), YELLOW, JAN)
    with pytest.raises(Exception):  # noqa: B017 - pyarrow re-wraps the generator's exception
        reader.record_batch_reader().read_all()
    assert isinstance(reader.error, BadSourceFile)
