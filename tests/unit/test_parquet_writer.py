"""The parquet writer: row groups of the declared size, footer row count, no partial file."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from dev.synthetic import write_month
from include.taxi.contract import YELLOW
from include.taxi.lake.parquet import ROWS_KEY, write_parquet
from include.taxi.sources.csv import ContractReader

JAN = date(2021, 1, 1)


def test_row_groups_have_the_requested_size_whatever_the_batches(tmp_path):
    source = tmp_path / "yellow.csv.gz"
    write_month(source, "yellow", JAN, 25_000)
    reader = ContractReader(source, YELLOW, JAN, block_size=64 * 1024)
    written = write_parquet(reader, tmp_path / "y.parquet", row_group_rows=10_000)
    meta = pq.read_metadata(written.path)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        10_000,
        10_000,
        5_000,
    ]
    assert written.rows == meta.num_rows == 25_000
    assert meta.metadata[ROWS_KEY.encode()] == b"25000"


def test_a_bad_row_mid_file_raises_the_readers_error(tmp_path):
    import gzip

    from dev.synthetic import HEADERS
    from include.taxi.errors import BadSourceFile

    source = tmp_path / "yellow.csv.gz"
    write_month(source, "yellow", JAN, 5_000)
    with gzip.open(source, "rt") as f:
        lines = f.read().splitlines()
    fields = len(HEADERS["yellow"].split(","))
    lines[4_000] = "1,not-a-date" + "," * (fields - 2)
    source.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    reader = ContractReader(source, YELLOW, JAN, block_size=64 * 1024)
    with pytest.raises(BadSourceFile, match=r"line 4001, column tpep_pickup_datetime"):
        write_parquet(reader, tmp_path / "y.parquet", row_group_rows=1_000)
