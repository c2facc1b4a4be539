"""Replacing a month in a real PostgreSQL: exact counts, idempotent, isolated, all-or-nothing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from dev.synthetic import write_month, write_zones
from include.taxi.contract import FHV, YELLOW, ZONE_LOOKUP, table_name
from include.taxi.errors import BadSourceFile
from include.taxi.postgres.ingestion_log import Attempt
from include.taxi.postgres.month import partition_name, replace_month, replace_zones
from include.taxi.source_version import SourceVersion
from include.taxi.sources.csv import ContractReader

JAN, FEB = date(2021, 1, 1), date(2021, 2, 1)


def _attempt(path: Path, contract, month: date | None) -> Attempt:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = SourceVersion(f"file://{path}", path.stat().st_size, None, None, digest)
    return Attempt(table_name(contract), contract.name, month, source, datetime.now(UTC))


def _counts(url: str, schema: str, table: str) -> dict[date, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT source_month, count(*) FROM "{schema}"."{table}" GROUP BY 1 ORDER BY 1'
        ).fetchall()
    return dict(rows)


def _load(url: str, schema: str, path: Path, contract, month: date):
    reader = ContractReader(path, contract, month, block_size=64 << 10)
    return replace_month(url, schema, reader, _attempt(path, contract, month))


def test_load_then_reload_replaces_exactly(tmp_path, postgres_url, pg_schema) -> None:
    path = tmp_path / "y1.csv.gz"
    write_month(path, "yellow", JAN, 3_000)
    first = _load(postgres_url, pg_schema, path, YELLOW, JAN)
    assert (first.rows_read, first.rows_written, first.rows_in_target) == (3_000, 3_000, 3_000)
    write_month(path, "yellow", JAN, 2_500, seed=9)
    _load(postgres_url, pg_schema, path, YELLOW, JAN)
    assert _counts(postgres_url, pg_schema, "yellow_tripdata") == {JAN: 2_500}


def test_another_month_does_not_touch_the_first(tmp_path, postgres_url, pg_schema) -> None:
    write_month(tmp_path / "jan.csv.gz", "fhv", JAN, 700)
    write_month(tmp_path / "feb.csv.gz", "fhv", FEB, 400)
    _load(postgres_url, pg_schema, tmp_path / "jan.csv.gz", FHV, JAN)
    _load(postgres_url, pg_schema, tmp_path / "feb.csv.gz", FHV, FEB)
    _load(postgres_url, pg_schema, tmp_path / "feb.csv.gz", FHV, FEB)
    assert _counts(postgres_url, pg_schema, "fhv_tripdata") == {JAN: 700, FEB: 400}


def test_values_survive_the_round_trip(tmp_path, postgres_url, pg_schema) -> None:
    path = tmp_path / "y.csv.gz"
    write_month(path, "yellow", JAN, 1_000)
    _load(postgres_url, pg_schema, path, YELLOW, JAN)
    with psycopg.connect(postgres_url) as conn:
        nulls, outside, dotted = conn.execute(
            f"""SELECT count(*) FILTER (WHERE vendorid IS NULL AND passenger_count IS NULL),
                       count(*) FILTER (WHERE tpep_pickup_datetime < '2021-01-01'),
                       count(*) FILTER (WHERE improvement_surcharge = 0.3)
                FROM "{pg_schema}".yellow_tripdata"""
        ).fetchone()
    assert nulls == 10
    assert outside >= 1
    assert dotted == 1_000


def test_a_bad_file_leaves_the_previous_month_intact(tmp_path, postgres_url, pg_schema) -> None:
    good = tmp_path / "good.csv.gz"
    write_month(good, "yellow", JAN, 2_000)
    _load(postgres_url, pg_schema, good, YELLOW, JAN)
    bad = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(bad, "yellow", JAN, 5_000, seed=2)
    with bad.open("ab") as f:  # a second gzip member with a broken last row, after many good ones
        import gzip

        f.write(gzip.compress(b"1,2,3\n"))
    with pytest.raises(BadSourceFile, match="line 5002"):
        _load(postgres_url, pg_schema, bad, YELLOW, JAN)
    assert _counts(postgres_url, pg_schema, "yellow_tripdata") == {JAN: 2_000}
    with psycopg.connect(postgres_url) as conn:
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
            (pg_schema, "%_load"),
        ).fetchone()[0]
    assert leftovers == 0


def test_zone_lookup_is_replaced_whole(tmp_path, postgres_url, pg_schema) -> None:
    path = tmp_path / "taxi_zone_lookup.csv"
    rows = write_zones(path)
    for _ in range(2):
        reader = ContractReader(path, ZONE_LOOKUP)
        result = replace_zones(postgres_url, pg_schema, reader, _attempt(path, ZONE_LOOKUP, None))
    assert result.rows_in_target == rows
    with psycopg.connect(postgres_url) as conn:
        zone = conn.execute(
            f'SELECT borough, zone FROM "{pg_schema}".taxi_zone_lookup WHERE locationid = 132'
        ).fetchone()
    assert zone == ("Queens", "JFK Airport")


def test_a_load_that_committed_while_waiting_is_not_repeated(
    tmp_path, postgres_url, pg_schema
) -> None:
    """The decision uses log ids, not clocks: a run that began before another's commit and
    reaches the month's lock after it skips the same file, and loads a different one."""
    path = tmp_path / "y.csv.gz"
    write_month(path, "yellow", JAN, 1_000)
    _load(postgres_url, pg_schema, path, YELLOW, JAN)  # log id n, committed
    with psycopg.connect(postgres_url) as conn:
        (seen_before,) = conn.execute(
            f'SELECT max(id) FROM "{pg_schema}".taxi_ingestion_log'
        ).fetchone()
    write_month(path, "yellow", JAN, 1_200, seed=3)
    first = replace_month(
        postgres_url,
        pg_schema,
        ContractReader(path, YELLOW, JAN),
        replace(_attempt(path, YELLOW, JAN), previous_load=seen_before),
    )
    late = replace_month(
        postgres_url,
        pg_schema,
        ContractReader(path, YELLOW, JAN),
        replace(_attempt(path, YELLOW, JAN), previous_load=seen_before),
    )
    assert (first.status, late.status) == ("loaded", "unchanged")
    assert late.rows_in_target == 1_200
    write_month(path, "yellow", JAN, 900, seed=4)
    other_file = replace_month(
        postgres_url,
        pg_schema,
        ContractReader(path, YELLOW, JAN),
        replace(_attempt(path, YELLOW, JAN), previous_load=seen_before),
    )
    assert other_file.status == "loaded"
    assert _counts(postgres_url, pg_schema, "yellow_tripdata") == {JAN: 900}


def test_a_loaded_month_is_written_frozen(tmp_path, postgres_url, pg_schema) -> None:
    """COPY FREEZE into the stage table: the month's pages are all-frozen at commit (all but
    the few that two of COPY's insert buffers share: 465 of 480 here), so neither the first
    reader nor autovacuum rewrites the month afterwards. Without FREEZE none is."""
    path = tmp_path / "y.csv.gz"
    write_month(path, "yellow", JAN, 20_000)
    _load(postgres_url, pg_schema, path, YELLOW, JAN)
    partition = f'"{pg_schema}".{partition_name(YELLOW, JAN)}'
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        except psycopg.Error as exc:  # a DATABASE_URL server without the contrib module
            pytest.skip(f"pg_visibility is not available: {exc}")
        pages, frozen = conn.execute(
            f"SELECT pg_relation_size('{partition}') / current_setting('block_size')::int, "
            f"all_frozen FROM pg_visibility_map_summary('{partition}')"
        ).fetchone()
    assert pages > 10
    assert frozen >= 0.9 * pages
