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
    with pytest.raises(Exception):  # noqa: B017, PT011 - pyarrow re-wraps the generator's exception
        reader.record_batch_reader().read_all()
    assert isinstance(reader.error, BadSourceFile)


# --- malformed CSV: fail at once, located, in bounded memory (issue 13, must-fix 3) -------


GOOD_YELLOW = (
    "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1,2.1,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5"
)


@pytest.mark.parametrize("where", ["middle", "last line"])
def test_unterminated_quote_names_line_and_column(tmp_path: Path, where: str) -> None:
    """Python's csv module raised `_csv.Error` (unmapped: retried 3×, no file or line) or read
    every following line into the quoted field."""
    bad = GOOD_YELLOW.replace(",N,", ',"N,')
    path = (
        _yellow_with(tmp_path, bad)
        if where == "middle"
        else _gz(
            tmp_path / "yellow_tripdata_2021-01.csv.gz",
            HEADERS["yellow"] + "\n" + (GOOD_YELLOW + "\n") * 50 + bad + "\n",
        )
    )
    with pytest.raises(BadSourceFile) as err:
        list(ContractReader(path, YELLOW, JAN))
    message = str(err.value)
    assert "yellow_tripdata_2021-01.csv.gz, line 52, column store_and_fwd_flag" in message
    assert "unterminated quote" in message


def test_nul_byte_in_a_text_field_is_refused_with_its_line(tmp_path: Path) -> None:
    """Arrow and parquet take a NUL in a string; PostgreSQL text cannot hold one, and its error
    looked transient (retried). Refused in the reader, for every target alike."""
    path = _yellow_with(tmp_path, GOOD_YELLOW.replace(",N,", ",N\x00,"))
    with pytest.raises(BadSourceFile) as err:
        list(ContractReader(path, YELLOW, JAN))
    message = str(err.value)
    assert "line 52, column store_and_fwd_flag" in message
    assert "NUL" in message


def test_field_over_the_csv_modules_limit_is_located(tmp_path: Path) -> None:
    """A 200 kB field made `_csv.Error: field larger than field limit (131072)` escape."""
    bad = GOOD_YELLOW.replace(",142,", "," + "x" * 200_000 + ",")
    with pytest.raises(BadSourceFile) as err:
        list(ContractReader(_yellow_with(tmp_path, bad), YELLOW, JAN))
    assert "line 52, column pulocationid" in str(err.value)
    assert "'xxxxx" in str(err.value)
    assert len(str(err.value)) < 500


LONG_LINE_SCRIPT = """
import resource, sys
from datetime import date
from pathlib import Path
from include.taxi.contract import YELLOW
from include.taxi.errors import BadSourceFile
from include.taxi.sources.csv import ContractReader

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

before = peak_mb()
try:
    list(ContractReader(Path(sys.argv[1]), YELLOW, date(2021, 1, 1)))
    print("no error")
except BadSourceFile as exc:
    print(f"{peak_mb() - before:.0f}")
    print(exc)
"""


@pytest.mark.parametrize("line", [1, 3])
def test_line_without_newline_fails_in_bounded_memory(tmp_path: Path, line: int) -> None:
    """A 256 MiB line (a 256 kB gzip) was read whole by Python, twice over; the reader must
    stop at its block size. Peak RSS measured in a fresh process."""
    import subprocess
    import sys

    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    head = "" if line == 1 else HEADERS["yellow"] + "\n" + GOOD_YELLOW + "\n"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(head.encode())
        chunk = b"1" * (1 << 20)
        for _ in range(256):
            f.write(chunk)
    assert path.stat().st_size < 4 << 20
    result = subprocess.run(
        [sys.executable, "-c", LONG_LINE_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    grown, message = result.stdout.split("\n", 1)
    assert f"line {line}" in message, message
    assert "longer than" in message, message
    assert int(grown) < 64, f"peak RSS grew by {grown} MB reading a 256 MiB line"


# --- integers are parsed as integers (issue 13, must-fix 8) -------------------------------


def test_integers_beyond_2_to_the_53_keep_every_digit(tmp_path: Path) -> None:
    """Parsed through float64, 9007199254740993 (2**53 + 1) became 9007199254740992."""
    bad = GOOD_YELLOW.replace(",142,", ",9007199254740993,")
    table = _table(ContractReader(_yellow_with(tmp_path, bad), YELLOW, JAN))
    assert 2**53 + 1 in table.column("pulocationid").to_pylist()


def test_whole_floats_and_big_integers_in_one_column(tmp_path: Path) -> None:
    """`1.0` is still accepted beside an exact big integer; a fractional value still fails."""
    rows = [
        GOOD_YELLOW.replace(",142,", ",142.0,"),
        GOOD_YELLOW.replace(",142,", ",-9007199254740993,"),
    ]
    path = _yellow_with(tmp_path, "\n".join(rows))
    values = _table(ContractReader(path, YELLOW, JAN)).column("pulocationid").to_pylist()
    assert values.count(142) == 56
    assert -(2**53) - 1 in values
    with pytest.raises(BadSourceFile, match=r"line 52, column pulocationid.*'142.5'"):
        list(
            ContractReader(
                _yellow_with(tmp_path, GOOD_YELLOW.replace(",142,", ",142.5,")), YELLOW, JAN
            )
        )


def test_gzip_bomb_stops_at_the_decompressed_limit(tmp_path: Path) -> None:
    """A small gzip holding ~90 MB of rows: the reader stops at its limit, not at a full disk."""
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(HEADERS["yellow"].encode() + b"\n")
        block = (GOOD_YELLOW + "\n").encode() * 10_000
        for _ in range(100):
            f.write(block)
    assert path.stat().st_size < 8 << 20
    reader = ContractReader(path, YELLOW, JAN, max_bytes=32 << 20)
    with pytest.raises(BadSourceFile, match=r"decompresses to more than 33,554,432 bytes"):
        for _ in reader:
            pass
    assert reader.rows < 400_000
