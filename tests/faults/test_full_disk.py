"""A full disk, for real: a 4 MiB tmpfs as the temp folder or as PostgreSQL's tablespace.

Mounting needs root (as in CI and on these machines); elsewhere the tests are skipped. The
download must refuse to start, the lake must refuse to write its parquet file, and a load
that fills the warehouse's disk must say so in words, leaving the month as it was.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from dev.synthetic import write_month
from include.taxi.errors import InsufficientSpace
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month
from include.taxi.orchestration.tasks import outcome
from include.taxi.postgres.load import month_to_postgres
from include.taxi.sources.http import DownloadLimits

MAY = date(2021, 5, 1)
SIZE = 4 << 20
NO_RESERVE = DownloadLimits(min_free_bytes=0)


def _mount_small(folder: Path, uid: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={SIZE},uid={uid},gid={uid},mode=0700",
            "tmpfs",
            str(folder),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "small"
    _mount_small(folder)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def big_green(source_server) -> tuple[str, Path]:
    """A 60,000-row green month: ~2 MB of gzip, ~9 MB as a table."""
    base, root = source_server
    path = root / "green" / "green_tripdata_2021-05.csv.gz"
    path.parent.mkdir(exist_ok=True)
    cache = Path(os.environ.get("TMPDIR", "/tmp")) / "taxi-test-green-60k.csv.gz"
    if not cache.exists():
        write_month(cache, "green", MAY, 60_000)
    path.write_bytes(cache.read_bytes())
    return base, path


def test_download_bigger_than_the_free_space_is_refused_before_writing(
    small_disk, source_server, postgres_url, pg_schema
) -> None:
    base, root = source_server
    (root / "yellow").mkdir(exist_ok=True)
    (root / "yellow" / "yellow_tripdata_2021-05.csv.gz").write_bytes(os.urandom(SIZE + 1))
    with pytest.raises(InsufficientSpace, match=rf"needs [\d,]+ bytes free in {small_disk}/"):
        month_to_postgres(
            "yellow",
            Month(2021, 5),
            source_base=base,
            conninfo=postgres_url,
            schema=pg_schema,
            workdir=str(small_disk),
            limits=NO_RESERVE,
        )
    assert list(small_disk.iterdir()) == []


def test_lake_refuses_to_write_its_parquet_without_room(small_disk, big_green, tmp_path) -> None:
    """Room for the 2 MB download and half as much again; the parquet file needs about as much
    as the download."""
    base, path = big_green
    (small_disk / "ballast").write_bytes(b"\0" * (SIZE - path.stat().st_size * 3 // 2))
    with pytest.raises(InsufficientSpace, match="writing green/"):
        month_to_lake(
            "green",
            Month(2021, 5),
            source_base=base,
            lake_url=(tmp_path / "lake").as_uri(),
            workdir=str(small_disk),
            limits=NO_RESERVE,
        )
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


def test_full_warehouse_disk_is_said_in_words_and_the_month_kept(
    big_green, postgres_url, pg_schema
) -> None:
    """The load's stage table goes to a tablespace on a 4 MiB tmpfs (``default_tablespace``
    in the connection's options): COPY fails with disk full mid-load."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    base, path = big_green
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
    if urlsplit(postgres_url).hostname not in ("127.0.0.1", "localhost") or not data_dir.exists():
        pytest.skip("the PostgreSQL under test is not on this machine")
    small = data_dir.parent / f"tablespace_{pg_schema}"  # a path the server can reach
    _mount_small(small, uid=data_dir.stat().st_uid)
    space = f"small_{pg_schema}"
    try:
        message, rows = _fill_the_tablespace(base, path, postgres_url, pg_schema, small, space)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE')
            conn.execute(f"DROP TABLESPACE IF EXISTS {space}")
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert "PostgreSQL ran out of disk space loading green_tripdata 2021-05" in message
    assert "nothing was committed" in message
    assert rows == 300


def _fill_the_tablespace(
    base: str, path: Path, postgres_url: str, schema: str, small: Path, space: str
) -> tuple[str, int]:
    """Load 300 rows, then the whole month with its stage table in ``space``: (the error's
    message, the rows of the month afterwards)."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    original = path.read_bytes()
    path.write_bytes(gzip.compress(("\n".join(lines[:301]) + "\n").encode()))
    month_to_postgres(
        "green", Month(2021, 5), source_base=base, conninfo=postgres_url, schema=schema
    )
    path.write_bytes(original)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLESPACE {space} LOCATION '{small}'")
    joiner = "&" if "?" in postgres_url else "?"
    small_url = f"{postgres_url}{joiner}options=-c%20default_tablespace%3D{space}"
    with pytest.raises(InsufficientSpace) as failed:
        outcome(
            lambda: month_to_postgres(
                "green",
                Month(2021, 5),
                source_base=base,
                conninfo=small_url,
                schema=schema,
                force=True,
            )
        )()
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(f'SELECT count(*) FROM "{schema}".green_tripdata').fetchone()[0]
    return str(failed.value), rows
