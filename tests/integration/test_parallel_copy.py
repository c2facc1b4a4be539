"""Several COPY streams into one month (issue 24): the same rows as one stream, all-or-nothing,
no stage left behind, two months at once exact. A real PostgreSQL, real parquet files."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.tlc_parquet import write_era
from include.taxi.contract import YELLOW
from include.taxi.errors import BadSourceFile
from include.taxi.postgres.month import partition_name, replace_month
from include.taxi.sources.parquet import ParquetContractReader
from include.taxi.sources.reader import split

JAN, FEB = date(2022, 1, 1), date(2022, 2, 1)
ROWS, GROUP = 20_000, 3_000  # 7 row groups, the last one short


def _file(tmp_path: Path, month: date, rows: int = ROWS) -> Path:
    path = tmp_path / f"yellow_tripdata_{month:%Y-%m}.parquet"
    if not path.exists():
        write_era(path, "yellow-2022", month, rows, row_group_rows=GROUP)
    return path


def _contents(url: str, schema: str, month: date) -> tuple[int, str]:
    """Rows of the month and a digest of their values, in no particular load order."""
    table = f'"{schema}".{partition_name(YELLOW, month)}'
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _stages(url: str, schema: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE '%%_load'",
            (schema,),
        ).fetchall()
    return [name for (name,) in rows]


def _load(url: str, schema: str, path: Path, month: date, streams: int) -> Any:
    reader = ParquetContractReader(path, YELLOW, month)
    replaced = replace_month(url, schema, reader, streams=streams)
    assert reader.rows == replaced.rows_read  # the whole file's, however it was split
    return replaced


def test_slices_read_the_whole_file_once(tmp_path) -> None:
    reader = ParquetContractReader(_file(tmp_path, JAN), YELLOW, JAN)
    parts = split(reader, 3)
    assert len(parts) == 3
    rows = [sum(batch.num_rows for batch in part) for part in parts]
    assert rows == [part.rows for part in parts]
    assert sum(rows) == ROWS
    assert max(rows) - min(rows) <= 2 * GROUP
    assert len(split(ParquetContractReader(_file(tmp_path, JAN), YELLOW, JAN), 50)) == 7


def test_one_and_several_streams_load_the_same_rows(tmp_path, postgres_url, pg_schema) -> None:
    path = _file(tmp_path, JAN)
    one = _load(postgres_url, pg_schema, path, JAN, 1)
    by_one = _contents(postgres_url, pg_schema, JAN)
    three = _load(postgres_url, pg_schema, path, JAN, 3)
    assert (one.rows_read, one.rows_written, one.rows_in_target) == (ROWS, ROWS, ROWS)
    assert (three.rows_read, three.rows_written, three.rows_in_target) == (ROWS, ROWS, ROWS)
    assert three.quality == one.quality
    assert _contents(postgres_url, pg_schema, JAN) == by_one
    _load(postgres_url, pg_schema, path, JAN, 3)  # a rerun replaces, never appends
    assert _contents(postgres_url, pg_schema, JAN) == by_one
    assert _stages(postgres_url, pg_schema) == []


def test_several_streams_leave_the_month_all_visible(tmp_path, postgres_url, pg_schema) -> None:
    """The streams' rows are not frozen, but the VACUUM before the swap set their hint bits:
    the month's first reader does not rewrite its pages (all but the few a busy server kept
    pinned, which VACUUM skips rather than wait: 488 of 502 in one run). Without it none is."""
    _load(postgres_url, pg_schema, _file(tmp_path, JAN), JAN, 2)
    partition = f'"{pg_schema}".{partition_name(YELLOW, JAN)}'
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        except psycopg.Error as exc:
            pytest.skip(f"pg_visibility is not available: {exc}")
        pages, visible = conn.execute(
            f"SELECT pg_relation_size('{partition}') / current_setting('block_size')::int, "
            f"all_visible FROM pg_visibility_map_summary('{partition}')"
        ).fetchone()
    assert pages > 10
    assert visible >= 0.9 * pages


def _with_bad_value(good: Path, out: Path, row: int) -> None:
    """The same rows, with a passenger count of 1.5 at (0-based) ``row``."""
    table = pq.read_table(good)
    counts = table.column("passenger_count").to_numpy().copy()
    counts[row] = 1.5
    table = table.set_column(
        table.schema.get_field_index("passenger_count"), "passenger_count", pa.array(counts)
    )
    pq.write_table(table, out, row_group_size=GROUP)


def test_a_violation_in_one_stream_aborts_the_month(tmp_path, postgres_url, pg_schema) -> None:
    path = _file(tmp_path, JAN)
    _load(postgres_url, pg_schema, path, JAN, 1)
    before = _contents(postgres_url, pg_schema, JAN)
    bad = tmp_path / "bad" / path.name
    bad.parent.mkdir()
    _with_bad_value(path, bad, 19_000)
    with pytest.raises(BadSourceFile) as caught:
        _load(postgres_url, pg_schema, bad, JAN, 3)
    error = caught.value
    assert (error.file, error.row_group, error.row, error.column) == (
        bad.name,
        6,
        19_001,
        "passenger_count",
    )
    assert "value 1.5 is not a whole number" in str(error)
    assert _contents(postgres_url, pg_schema, JAN) == before
    assert _stages(postgres_url, pg_schema) == []


class _KillingReader:
    """A reader whose last slice, after its first batch, has one COPY stream's backend
    terminated (as an operator's pg_terminate_backend or a server crash would)."""

    def __init__(self, reader: ParquetContractReader, url: str, stage: str) -> None:
        self.reader, self.url, self.stage = reader, url, stage
        self.killed: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def slices(self, n: int) -> list[Any]:
        parts: list[Any] = self.reader.slices(n)
        parts[-1] = _Hooked(parts[-1], self._kill)
        return parts

    def _kill(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE %s AND pid <> pg_backend_pid() ORDER BY pid LIMIT 1",
                (f"COPY%{self.stage}%",),
            ).fetchall()
        self.killed += [pid for pid, _ in rows]


class _Hooked:
    def __init__(self, part: Any, hook: Any) -> None:
        self.part, self.hook = part, hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self.part, name)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for index, batch in enumerate(self.part):
            yield batch
            if index == 0:
                self.hook()


def test_a_killed_stream_leaves_the_previous_month(tmp_path, postgres_url, pg_schema) -> None:
    path = _file(tmp_path, JAN)
    _load(postgres_url, pg_schema, path, JAN, 1)
    before = _contents(postgres_url, pg_schema, JAN)
    stage = f"{partition_name(YELLOW, JAN)}_load"
    reader = _KillingReader(ParquetContractReader(path, YELLOW, JAN), postgres_url, stage)
    with pytest.raises(psycopg.OperationalError):
        replace_month(postgres_url, pg_schema, reader, streams=2)  # type: ignore[arg-type]
    assert len(reader.killed) == 1
    assert _contents(postgres_url, pg_schema, JAN) == before
    assert _stages(postgres_url, pg_schema) == []


def test_two_months_loading_at_once_stay_exact(tmp_path, postgres_url, pg_schema) -> None:
    jan, feb = _file(tmp_path, JAN), _file(tmp_path, FEB, ROWS // 2)
    _load(postgres_url, pg_schema, jan, JAN, 1)  # the table exists before the race
    errors: list[BaseException] = []

    def load(path: Path, month: date) -> None:
        try:
            _load(postgres_url, pg_schema, path, month, 2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=a) for a in ((jan, JAN), (feb, FEB))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _contents(postgres_url, pg_schema, JAN)[0] == ROWS
    assert _contents(postgres_url, pg_schema, FEB)[0] == ROWS // 2
    with psycopg.connect(postgres_url) as conn:
        months = conn.execute(
            f'SELECT source_month, count(*) FROM "{pg_schema}".yellow_tripdata GROUP BY 1'
        ).fetchall()
    assert dict(months) == {JAN: ROWS, FEB: ROWS // 2}


@pytest.mark.parametrize("streams", [1, 2])
def test_a_stage_a_dead_load_left_is_replaced(tmp_path, postgres_url, pg_schema, streams) -> None:
    """A load whose own process died after committing its stage leaves it behind; the month's
    next load drops it under the month's lock, whatever its stream count."""
    path = _file(tmp_path, JAN)
    _load(postgres_url, pg_schema, path, JAN, 1)
    stage = f"{partition_name(YELLOW, JAN)}_load"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{pg_schema}".{stage} (leftover int)')
    replaced = _load(postgres_url, pg_schema, path, JAN, streams)
    assert replaced.rows_in_target == ROWS
    assert _stages(postgres_url, pg_schema) == []
