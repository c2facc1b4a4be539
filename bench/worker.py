"""One measured method, run as its own process: ``python -m bench.worker METHOD --result R ...``.

The harness times the whole process and reads its peak RSS from ``wait4``, so each method
imports only what it needs, inside its function: a library another method uses must not
inflate this one's memory or start-up. The worker writes the rows it handled (and the time of
the load call alone, without interpreter start-up and imports) as JSON to ``--result``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_split_mb() -> Result:
    """Resident memory now, anonymous (heap) vs file-backed (shared library code, mostly).

    The file-backed part depends on the machine as much as on the method (which library pages
    are touched, whether the kernel maps them as huge pages), so it is reported apart.
    """
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {"RssAnon:": "rss_anon_mb_at_end", "RssFile:": "rss_file_mb_at_end"}
    return {
        fields[parts[0]]: round(int(parts[1]) / 1024, 1)
        for parts in (line.split() for line in lines)
        if parts and parts[0] in fields
    }


def _timed(work: Callable[[], Result]) -> Result:
    """Run the load itself (imports are done by now): its time alone and the RSS around it."""
    rss_ready = _rss_mb()
    started = time.perf_counter()
    result = work()
    result.update(load_s=time.perf_counter() - started, rss_after_imports_mb=round(rss_ready, 1))
    result.update(_rss_split_mb())
    return result


def project_load(args: argparse.Namespace) -> Result:
    """The DAG's load step after the download (include/taxi/postgres/load.py):
    reader → replace_month.

    The attempt carries no sha256: the download computes it while streaming, which is outside
    what is measured here (and without it a load never takes another's place as "unchanged").
    """
    from datetime import UTC, datetime

    from include.taxi.contract import contract_for, table_name
    from include.taxi.postgres.ingestion_log import Attempt
    from include.taxi.postgres.month import replace_month
    from include.taxi.source_version import SourceVersion
    from include.taxi.sources.reader import open_source

    def work() -> Result:
        path, contract = Path(args.file).resolve(), contract_for(args.service)
        source = SourceVersion(path.as_uri(), path.stat().st_size, None, None)
        attempt = Attempt(
            table_name(contract), contract.name, args.month, source, datetime.now(UTC)
        )
        reader = open_source(path, contract, args.month)
        result = replace_month(args.url, args.schema, reader, attempt, streams=args.streams)
        if result.status != "loaded" or result.rows_in_target != reader.rows:
            raise RuntimeError(f"{result}: expected {reader.rows} rows loaded")
        return {"rows": result.rows_in_target}

    return _timed(work)


def project_read(args: argparse.Namespace) -> Result:
    """The reader alone (no sink): how much of the load is parsing and conforming."""
    from include.taxi.contract import contract_for
    from include.taxi.sources.reader import open_source

    def work() -> Result:
        reader = open_source(Path(args.file), contract_for(args.service), args.month)
        batches = sum(1 for _ in reader)
        return {"rows": reader.rows, "batches": batches}

    return _timed(work)


def project_parquet(args: argparse.Namespace) -> Result:
    """The lake path as ``include/taxi/lake/load.py`` runs it after the download:
    ``write_parquet(ContractReader(...), path)`` (zstd, ROW_GROUP_ROWS-row groups)."""
    from include.taxi.contract import contract_for
    from include.taxi.lake.parquet import (
        COMPRESSION,
        READ_BLOCK_SIZE,
        ROW_GROUP_ROWS,
        write_parquet,
    )
    from include.taxi.sources.reader import open_source

    def work() -> Result:
        reader = open_source(
            Path(args.file),
            contract_for(args.service),
            args.month,
            block_size=READ_BLOCK_SIZE,
            parallel=True,
        )
        written = write_parquet(reader, Path(args.out))
        return {
            "rows": written.rows,
            "row_groups": written.row_groups,
            "row_group_rows": ROW_GROUP_ROWS,
            "compression": COMPRESSION,
            **_size(args.out),
        }

    return _timed(work)


def duckdb_parquet(args: argparse.Namespace) -> Result:
    """DuckDB's own conversion, as the issue names it (its defaults: inferred types, snappy)."""
    import duckdb

    def work() -> Result:
        con = duckdb.connect()
        (rows,) = con.execute(
            "COPY (SELECT * FROM read_csv(?)) TO '" + _sql_text(args.out) + "' (FORMAT parquet)",
            [args.file],
        ).fetchone() or (0,)
        (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (0,)
        con.close()
        return {"rows": int(rows), "threads": int(threads), **_size(args.out)}

    return _timed(work)


def duckdb_parquet_rewrite(args: argparse.Namespace) -> Result:
    """DuckDB rewriting a parquet source: ``COPY (SELECT * FROM read_parquet(?)) TO ...``."""
    import duckdb

    def work() -> Result:
        con = duckdb.connect()
        (rows,) = con.execute(
            "COPY (SELECT * FROM read_parquet(?)) TO '" + _sql_text(args.out) + "' "
            "(FORMAT parquet, COMPRESSION zstd)",
            [args.file],
        ).fetchone() or (0,)
        (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (0,)
        con.close()
        return {"rows": int(rows), "threads": int(threads), **_size(args.out)}

    return _timed(work)


def duckdb_postgres(args: argparse.Namespace) -> Result:
    """DuckDB reading the parquet file and writing it to Postgres through its postgres extension
    (``INSERT INTO pg.… SELECT * FROM read_parquet(?)``: the extension writes with binary COPY).

    The extension comes from its PyPI wheel (``duckdb-extension-postgres-scanner``), installed
    into a private extension directory: DuckDB cannot download it here.
    """
    import importlib
    import tempfile

    import duckdb

    package = importlib.import_module("duckdb_extension_postgres_scanner")
    extension = next(Path(str(package.__file__)).parent.rglob("postgres_scanner.duckdb_extension"))
    extensions = tempfile.mkdtemp(prefix="duckdb-ext-")

    def work() -> Result:
        con = duckdb.connect(config={"extension_directory": extensions})
        con.execute(f"INSTALL '{_sql_text(str(extension))}'")
        con.execute("LOAD postgres_scanner")
        con.execute(f"ATTACH '{_sql_text(args.url)}' AS pg (TYPE postgres)")
        target = f'pg."{args.schema}"."{args.table}"'
        con.execute(f'CREATE SCHEMA IF NOT EXISTS pg."{args.schema}"')
        con.execute(f"DROP TABLE IF EXISTS {target}")
        con.execute(f"CREATE TABLE {target} AS SELECT * FROM read_parquet(?) LIMIT 0", [args.file])
        (rows,) = con.execute(
            f"INSERT INTO {target} SELECT * FROM read_parquet(?)", [args.file]
        ).fetchone() or (0,)
        (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (0,)
        con.close()
        return {"rows": int(rows), "threads": int(threads)}

    return _timed(work)


def arrow_text_copy(args: argparse.Namespace) -> Result:
    """The obvious parquet load: ``pyarrow.parquet.read_table`` (the whole file in memory),
    then text COPY (CSV written by pyarrow, a 1 MiB buffer at a time) into a plain table."""
    import io

    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from psycopg import sql

    pg = {
        "int32": "integer",
        "int64": "bigint",
        "double": "double precision",
        "string": "text",
        "large_string": "text",
    }

    def work() -> Result:
        table = pq.read_table(args.file)
        columns = [
            sql.SQL("{} {}").format(
                sql.Identifier(f.name.lower()),
                sql.SQL("timestamp" if str(f.type).startswith("timestamp") else pg[str(f.type)]),
            )
            for f in table.schema
        ]
        target = sql.Identifier(args.schema, args.table)
        with psycopg.connect(args.url) as conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(args.schema))
            )
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(columns)))
            statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)
            options = pacsv.WriteOptions(include_header=False)
            with cur.copy(statement) as copy:
                for batch in table.to_batches(max_chunksize=64 * 1024):
                    buffer = io.BytesIO()
                    pacsv.write_csv(batch, buffer, options)
                    copy.write(buffer.getvalue())
            rows = cur.rowcount
            conn.commit()
        return {"rows": rows}

    return _timed(work)


def pandas_to_sql(args: argparse.Namespace) -> Result:
    """The course's notebook: whole file into pandas, datetimes parsed, to_sql in 100k chunks.

    Only change: column names are lower-cased so the rows land in the same table as the others.
    """
    import pandas as pd
    from sqlalchemy import create_engine

    from include.taxi.contract import TIMESTAMP, contract_for

    def work() -> Result:
        df = pd.read_csv(args.file)
        df.columns = [c.lower() for c in df.columns]
        for col in contract_for(args.service).columns:
            if col.type == TIMESTAMP and col.name in df.columns:
                df[col.name] = pd.to_datetime(df[col.name])
        engine = create_engine(args.sqlalchemy_url)
        df.to_sql(
            args.table,
            engine,
            schema=args.schema,
            if_exists="append",
            index=False,
            chunksize=100_000,
        )
        engine.dispose()
        return {"rows": len(df)}

    return _timed(work)


def psycopg_copy(args: argparse.Namespace) -> Result:
    """COPY a file's bytes in 1 MiB writes: a csv.gz gunzipped (the stand-in for psql when none
    is installed), or the project's binary COPY data replayed from a ``.pgcopy`` file (the
    server's side of the project's load, with a client that only sends)."""
    import gzip

    import psycopg

    opener = gzip.open if args.file.endswith(".gz") else open

    def work() -> Result:
        with (
            psycopg.connect(args.url) as conn,
            conn.cursor() as cur,
            opener(args.file, "rb") as src,
        ):
            with cur.copy(args.copy_sql) as copy:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)
            rows = cur.rowcount
        return {"rows": rows}

    return _timed(work)


def dag_parse(args: argparse.Namespace) -> Result:
    """One DAG file parsed as the dag-processor does, timed without Airflow's own import.

    The processor imports the file's ``airflow.*`` modules before parsing it
    (``parsing_pre_import_modules``, on by default); so does this, then times ``DagBag`` of the
    file. A second parse in the same process shows the file's own cost once imports are warm.
    """
    import gc
    import importlib

    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.file import iter_airflow_imports

    for module in iter_airflow_imports(args.file):
        importlib.import_module(module)
    # The dag-processor freezes its heap before it forks the parsing processes (gc.freeze() in
    # DagFileProcessorManager.before_run), so their collections skip Airflow's own objects;
    # without it a full collection over that heap (~0.15 s) lands in whichever import hits it.
    gc.freeze()
    started = time.perf_counter()
    bag = DagBag(dag_folder=args.file)
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    DagBag(dag_folder=args.file)
    reparse_s = time.perf_counter() - started
    return {
        "parse_s": parse_s,
        "reparse_s": reparse_s,
        "dags": sorted(bag.dags),
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    }


def _size(path: str) -> Result:
    return {"output_mb": round(Path(path).stat().st_size / 2**20, 2)}


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


METHODS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "project-load": project_load,
    "project-read": project_read,
    "project-parquet": project_parquet,
    "duckdb-parquet": duckdb_parquet,
    "duckdb-parquet-rewrite": duckdb_parquet_rewrite,
    "arrow-text-copy": arrow_text_copy,
    "duckdb-postgres": duckdb_postgres,
    "pandas-to-sql": pandas_to_sql,
    "psycopg-copy": psycopg_copy,
    "dag-parse": dag_parse,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("--result", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--service", default="yellow")
    parser.add_argument("--month", type=date.fromisoformat, default=date(2021, 1, 1))
    parser.add_argument("--url")
    parser.add_argument("--sqlalchemy-url")
    parser.add_argument("--schema")
    parser.add_argument("--table")
    parser.add_argument("--copy-sql")
    parser.add_argument("--out")
    parser.add_argument("--streams", type=int, help="project-load: COPY streams")
    args = parser.parse_args(argv)
    result = METHODS[args.method](args)
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
