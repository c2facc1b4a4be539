"""Hostile parquet files: a few KB that declare gigabytes of text, millions of rows or huge row
groups, and text no target can store. Each fails at once, through the task's outcome (a failure
without retries), naming file, row group and column, in flat memory, with the month's earlier
rows intact in Postgres and its earlier object intact in the lake.

The files are generated here with pyarrow; the good month is the TLC's fhvhv layout
(dev/tlc_parquet.py), served by a local web server laid out as the TLC's.
"""

from __future__ import annotations

import secrets
import struct
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from dev.tlc_parquet import ERAS
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month
from include.taxi.orchestration import config
from include.taxi.orchestration.tasks import outcome
from include.taxi.postgres.load import month_to_postgres

MONTH = "2024-01"
FIRST_DAY = date(2024, 1, 1)
FILE = f"fhvhv_tripdata_{MONTH}.parquet"
GOOD_ROWS = 500
MIB = 1 << 20
PEAK_BUDGET = 200 * MIB
"""Most the test process may grow while a hostile month fails (a decoded bomb is GiBs)."""


def _table(rows: int, *, same: bool = False, **replace: pa.Array) -> pa.Table:
    """The fhvhv-2024 layout's ``rows`` rows, some columns replaced; ``same``: every row is
    the first (so the file is a few KB whatever ``rows``)."""
    i = np.zeros(rows, np.int64) if same else np.arange(rows, dtype=np.int64)
    columns = {name: make(i, FIRST_DAY) for name, make in ERAS["fhvhv-2024"]}
    columns.update(replace)
    return pa.table(columns)


def _repeated(value: str, rows: int) -> pa.DictionaryArray:
    """One value on every row, stored once in the file's dictionary page."""
    indices = pa.array(np.zeros(rows, np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value]))


def _write(path: Path, table: pa.Table, **options: Any) -> Path:
    options = {"compression": "zstd", "dictionary_pagesize_limit": 1 << 30, **options}
    pq.write_table(table, path, **options)
    return path


class _Peak:
    """The most this process's RSS grew above where it stood at the start, sampled."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _Peak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def grew(self) -> int:
        return self.peak - self.start


@pytest.fixture
def tlc(source_server) -> tuple[str, Path]:
    """A TLC-shaped folder of its own (the web server is shared) holding a good month."""
    base, root = source_server
    folder = f"tlc-{secrets.token_hex(4)}"
    path = root / folder / "trip-data" / FILE
    path.parent.mkdir(parents=True)
    _write(path, _table(GOOD_ROWS))
    return f"{base}/{folder}", path


@pytest.fixture
def loaded(tlc, postgres_url, pg_schema) -> tuple[str, Path]:
    base, path = tlc
    _to_postgres(base, postgres_url, pg_schema)
    assert _count(postgres_url, pg_schema) == GOOD_ROWS
    return base, path


def _to_postgres(base: str, url: str, schema: str) -> dict[str, Any]:
    """The Postgres task's call: limits from the Variables, the task's outcome, forced."""
    limits = config.download_limits()
    return outcome(
        lambda: month_to_postgres(
            "fhvhv",
            Month.parse(MONTH),
            source_base=base,
            source_kind="tlc",
            conninfo=url,
            schema=schema,
            force=True,
            limits=limits,
        )
    )()


def _to_lake(base: str, lake: str) -> dict[str, Any]:
    limits = config.download_limits()
    return outcome(
        lambda: month_to_lake(
            "fhvhv",
            Month.parse(MONTH),
            source_base=base,
            source_kind="tlc",
            lake_url=lake,
            force=True,
            limits=limits,
        )
    )()


def _count(url: str, schema: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}".fhvhv_tripdata').fetchone()[0]


def _fails(load: Callable[[], Any], *fragments: str) -> str:
    """Runs ``load``, which must fail for good (no retry) with every fragment in its message,
    the process growing by less than ``PEAK_BUDGET``."""
    with _Peak() as peak, pytest.raises(AirflowFailException) as failure:
        load()
    message = str(failure.value)
    assert FILE in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert peak.grew < PEAK_BUDGET, f"grew {peak.grew / MIB:.0f} MiB"
    return message


def test_a_dictionary_repeating_a_huge_value_fails_before_it_is_decoded(
    loaded, postgres_url, pg_schema, tmp_path
) -> None:
    """A 1 MiB base number on 200,000 rows: a ~1 KB file that decodes to ~200 GiB."""
    base, path = loaded
    _write(path, _table(200_000, same=True, dispatching_base_num=_repeated("B" * MIB, 200_000)))
    assert path.stat().st_size < 64 << 10
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "row group 0",
        "column dispatching_base_num",
        "a value of 1,048,576 bytes",
        "longer than the 12",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_the_lake_refuses_the_same_bomb_and_keeps_its_object(tlc, tmp_path) -> None:
    base, path = tlc
    lake = f"file://{tmp_path / 'lake'}"
    written = _to_lake(base, lake)
    assert written["rows"] == GOOD_ROWS
    obj = next((tmp_path / "lake").rglob(FILE))
    before = obj.read_bytes()
    _write(path, _table(200_000, same=True, dispatching_base_num=_repeated("B" * MIB, 200_000)))
    _fails(lambda: _to_lake(base, lake), "column dispatching_base_num", "1,048,576 bytes")
    assert obj.read_bytes() == before


def test_a_flag_longer_than_one_character_is_refused(loaded, postgres_url, pg_schema) -> None:
    base, path = loaded
    _write(path, _table(1_000, shared_request_flag=_repeated("YES", 1_000)))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "column shared_request_flag",
        "a value of 3 bytes, longer than the 1",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_a_footer_declaring_more_rows_than_the_default_limit_fails_at_once(
    loaded, postgres_url, pg_schema
) -> None:
    """110 M rows of one RLE run (all empty): a file of a few KB, refused by its footer
    against the default limit (settings.DEFAULT_MAX_PARQUET_ROWS, 100 M)."""
    base, path = loaded
    rows = 110_000_000
    _write(path, pa.table({"hvfhs_license_num": pa.nulls(rows)}), row_group_size=rows)
    assert path.stat().st_size < 1 << 20
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "declares 110,000,000 rows",
        "limit of 100,000,000",
        "taxi_max_parquet_rows",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_the_row_limit_is_its_variable(loaded, postgres_url, pg_schema, monkeypatch) -> None:
    base, path = loaded
    _write(path, _table(5_000))
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MAX_PARQUET_ROWS", "4000")
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "declares 5,000 rows, more than the limit of 4,000",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_a_row_group_declaring_more_bytes_than_its_limit_fails_at_once(
    loaded, postgres_url, pg_schema, monkeypatch
) -> None:
    """1 M rows written plain: 8 MiB of a constant trip_miles alone, against a limit of 4 MiB
    set by its Variable (a row group over the 1 GiB default takes ~20 s to write here)."""
    base, path = loaded
    rows = 1 << 20
    table = _table(rows, trip_miles=pa.array(np.full(rows, 1.5)))
    _write(path, table, use_dictionary=False, row_group_size=rows)
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MAX_PARQUET_ROW_GROUP_BYTES", str(4 * MIB))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "row group 0",
        "bytes uncompressed",
        "more than the limit of 4,194,304",
        "taxi_max_parquet_row_group_bytes",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


# --- text no target can store, and Arrow's own errors


def _with_value(rows: int, at: int, value: bytes) -> pa.Array:
    """A text column of ``rows`` values ``B02510``, ``value`` at ``at`` (raw bytes: pyarrow
    would refuse to build invalid UTF-8 from Python)."""
    values = [b"B02510"] * rows
    values[at] = value
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))]
    return pa.Array.from_buffers(pa.string(), rows, buffers)


def test_a_nul_byte_in_text_fails_for_postgres_and_the_lake(
    loaded, postgres_url, pg_schema, tmp_path
) -> None:
    base, path = loaded
    lake = f"file://{tmp_path / 'lake'}"
    _write(path, _table(3_000, originating_base_num=_with_value(3_000, 2_500, b"B0\x0013")))
    for load in (lambda: _to_postgres(base, postgres_url, pg_schema), lambda: _to_lake(base, lake)):
        _fails(load, "row 2501", "column originating_base_num", "NUL byte")
    assert _count(postgres_url, pg_schema) == GOOD_ROWS
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_text_that_is_not_utf8_fails_located(loaded, postgres_url, pg_schema) -> None:
    base, path = loaded
    _write(path, _table(1_000, hvfhs_license_num=_with_value(1_000, 10, b"HV\xff3")))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "column hvfhs_license_num",
        "not valid UTF-8",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def test_an_arrow_error_while_converting_is_a_located_failure(
    loaded, postgres_url, pg_schema
) -> None:
    """A flag stored as a double holding 1e300: Arrow's own overflow error, located."""
    base, path = loaded
    flags = pa.array(np.where(np.arange(1_000) == 7, 1e300, 1.0))
    _write(path, _table(1_000, wav_match_flag=flags))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "row group 0",
        "column wav_match_flag",
        "cannot convert it to text",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


# --- INT96 timestamps (Spark's and Hive's legacy type)

MARK_US = 123_456
"""The sub-second part of the row whose INT96 bytes a test rewrites."""


def _int96_file(path: Path, rows: int, pickups: list[datetime]) -> None:
    unix = datetime(1970, 1, 1)
    us = [int((p - unix).total_seconds()) * 1_000_000 + p.microsecond for p in pickups]
    table = _table(rows, pickup_datetime=pa.array(us, pa.timestamp("us")))
    _write(
        path,
        table,
        use_deprecated_int96_timestamps=True,
        compression="NONE",
        use_dictionary=False,
    )


def _julian_day(day: datetime) -> int:
    return (day - datetime(1970, 1, 1)).days + 2_440_588


def test_int96_times_past_2262_load_exactly(loaded, postgres_url, pg_schema) -> None:
    """Read as nanoseconds (Arrow's default) year 3019 would wrap; read in us it is exact."""
    base, path = loaded
    far = datetime(3019, 2, 1, 10, 0, 0, 5)
    pickups = [datetime(2024, 1, 1) + timedelta(seconds=i) for i in range(GOOD_ROWS)]
    pickups[3] = far
    _int96_file(path, GOOD_ROWS, pickups)
    assert "int96" in str(pq.ParquetFile(path).schema)
    _to_postgres(base, postgres_url, pg_schema)
    with psycopg.connect(postgres_url) as conn:
        (latest,) = conn.execute(
            f'SELECT max(pickup_datetime) FROM "{pg_schema}".fhvhv_tripdata'
        ).fetchone()
    assert latest == far


def test_an_int96_time_that_would_wrap_is_refused(loaded, postgres_url, pg_schema) -> None:
    """The file's bytes rewritten to a julian day of ~4.29 billion (year ~11.7 million): in
    microseconds Arrow's conversion overflows and wraps to some plausible-looking time."""
    base, path = loaded
    marked = datetime(2024, 1, 2, 0, 0, 0, MARK_US)
    pickups = [datetime(2024, 1, 1) + timedelta(seconds=i) for i in range(GOOD_ROWS)]
    pickups[42] = marked
    _int96_file(path, GOOD_ROWS, pickups)
    raw = path.read_bytes()
    nanos = MARK_US * 1_000
    needle = struct.pack("<qI", nanos, _julian_day(marked))
    assert raw.count(needle) == 1
    path.write_bytes(raw.replace(needle, struct.pack("<qI", nanos, 0xFFFF_FF00)))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "row 43",
        "column pickup_datetime",
        "outside years 1-9999",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def test_page_headers_declaring_more_than_the_footer_fail_at_once(
    loaded, postgres_url, pg_schema, monkeypatch
) -> None:
    """Arrow allocates what a page's own header declares: 13 page headers rewritten to declare
    1,000,000 bytes each (13 MB), behind a footer that still says ~2 MB, are refused from the
    headers against a limit of 8 MiB."""
    base, path = loaded
    pages, page_rows = 13, 20_000  # Arrow cuts a data page at 20,000 rows
    table = _table(pages * page_rows, same=True)
    at = table.schema.get_field_index("trip_miles")
    table = table.cast(table.schema.set(at, pa.field("trip_miles", pa.float64(), nullable=False)))
    others = [name for name in table.column_names if name != "trip_miles"]
    _write(path, table, use_dictionary=others)  # trip_miles plain, the rest a few bytes
    raw = path.read_bytes()
    # PageHeader: type DATA_PAGE (0), uncompressed_page_size, in Thrift's compact protocol
    declared = b"\x15\x00\x15" + _varint(2 * (8 * page_rows))  # no NULLs: no levels
    lie = b"\x15\x00\x15" + _varint(2 * 1_000_000)
    assert raw.count(declared) == pages
    assert len(lie) == len(declared)
    path.write_bytes(raw.replace(declared, lie))
    assert pq.read_metadata(path).row_group(0).total_byte_size < 3 * MIB
    monkeypatch.setenv("AIRFLOW_VAR_TAXI_MAX_PARQUET_ROW_GROUP_BYTES", str(8 * MIB))
    _fails(
        lambda: _to_postgres(base, postgres_url, pg_schema),
        "row group 0",
        "column trip_miles",
        "page headers declare more than 8,388,608 bytes",
        "page 1,000,000",
        "taxi_max_parquet_row_group_bytes",
    )
    assert _count(postgres_url, pg_schema) == GOOD_ROWS
