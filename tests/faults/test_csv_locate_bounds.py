"""The csv error-location pass (re-reading a file Arrow refused, to name the line) is bounded
like the fast pass and agrees with Arrow about what is valid.

On main it reopened the file without the decompression cap and took what Python's parsers take
(`int("1_000")`, `float(" 1")`, `fromisoformat("...Z")`), which Arrow refuses: it then found no
bad line and read on to the end of the file, a gzip bomb included, and said "unreadable".
"""

from __future__ import annotations

import gzip
import time
from datetime import date
from pathlib import Path

import pytest

from dev.synthetic import HEADERS
from include.taxi.contract import YELLOW
from include.taxi.errors import BadSourceFile
from include.taxi.sources.csv import BLOCK_SIZE, ContractReader, _first_bad_line

JAN = date(2021, 1, 1)
GOOD = "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1,2.1,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5"
FIELDS = HEADERS["yellow"].lower().split(",")


def _row(**values: str) -> str:
    fields = GOOD.split(",")
    for name, value in values.items():
        fields[FIELDS.index(name)] = value
    return ",".join(fields)


def _bomb(path: Path, first_rows: list[str], copies: int) -> Path:
    """A small gzip: the header, ``first_rows``, then ``copies`` × 10,000 good rows."""
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write((HEADERS["yellow"] + "\n" + "".join(r + "\n" for r in first_rows)).encode())
        block = (GOOD + "\n").encode() * 10_000
        for _ in range(copies):
            f.write(block)
    return path


def _error(path: Path, **kwargs: int) -> BadSourceFile:
    reader = ContractReader(path, YELLOW, JAN, **kwargs)
    with pytest.raises(BadSourceFile) as err:
        for _ in reader:
            pass
    return err.value


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("passenger_count", "1_000"),
        ("passenger_count", " 1"),
        ("passenger_count", "\u0661\u0662"),  # Arabic-Indic digits: int() and float() take them
        ("fare_amount", "1_000.5"),
        ("tpep_pickup_datetime", "2021-01-01 00:30:10Z"),
        ("tpep_pickup_datetime", "2021-01-01 00:30:10.1234567"),
    ],
)
def test_what_arrow_refuses_is_located(tmp_path: Path, column: str, value: str) -> None:
    path = _bomb(tmp_path / "yellow_tripdata_2021-01.csv.gz", [GOOD, _row(**{column: value})], 2)
    error = _error(path)
    assert (error.line, error.column) == (3, column), str(error)
    assert repr(value)[1:-1][:20] in str(error)


def test_what_arrow_accepts_is_not_blamed(tmp_path: Path) -> None:
    """Arrow's integer cast takes hexadecimal: a later line is the bad one."""
    rows = [_row(passenger_count="0x1"), GOOD, _row(passenger_count="1_000")]
    error = _error(_bomb(tmp_path / "yellow_tripdata_2021-01.csv.gz", rows, 1))
    assert (error.line, error.column) == (4, "passenger_count"), str(error)


def test_a_bomb_behind_a_bad_value_is_not_scanned(tmp_path: Path) -> None:
    """~90 MB of rows after the value Arrow refused: located at once, not after the whole."""
    path = _bomb(tmp_path / "yellow_tripdata_2021-01.csv.gz", [_row(passenger_count="1_000")], 100)
    started = time.monotonic()
    error = _error(path, max_bytes=1 << 30)
    assert (error.line, error.column) == (2, "passenger_count"), str(error)
    assert time.monotonic() - started < 5


def test_the_location_pass_reads_no_more_than_it_is_allowed(tmp_path: Path) -> None:
    """Whatever it misses, the pass stops at its byte budget (the fast pass's cap at most): a
    bad line 2.6 MB in is out of a 512 KiB budget's reach."""
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write((HEADERS["yellow"] + "\n").encode())
        for _ in range(3):
            f.write((GOOD + "\n").encode() * 10_000)
        f.write((_row(passenger_count="x") + "\n").encode())
    assert _first_bad_line(path, FIELDS, YELLOW, BLOCK_SIZE, max_bytes=512 << 10) is None
    found = _first_bad_line(path, FIELDS, YELLOW, BLOCK_SIZE, max_bytes=1 << 30)
    assert found is not None
    assert found[:2] == (30_002, "passenger_count")
