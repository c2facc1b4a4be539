"""`make bench-parquet`: an fhvhv-sized TLC parquet month into Postgres and the lake, side by side.

    python -m bench.parquet_run [--rows N] [--repeats R] [--out DIR] [--data-dir DIR]

The month is generated with the real fhvhv column names and types (dev/tlc_parquet.py,
1 M-row groups as the TLC writes them), once at ``--rows`` (default 20 M, a real month) and
once at twice that, to see whether memory stays flat. Each method runs as its own process,
round-robin, measured by bench/harness.py (wall time, peak RSS from wait4):

- project → Postgres: ``ParquetContractReader`` → ``replace_month`` (binary COPY), 1× and 2×;
- project → Postgres from a csv.gz of the same 1× rows (the csv path, ``ContractReader``);
- baseline → Postgres: ``pyarrow.parquet.read_table`` + psycopg text COPY (CSV), 1×;
- DuckDB → Postgres: its postgres extension (from the PyPI wheel), ``INSERT … read_parquet``;
- project → lake: ``write_parquet(ParquetContractReader(...))``, 1× and 2×;
- DuckDB → parquet: ``COPY (SELECT * FROM read_parquet(...)) TO ... (zstd)``, 1× and 2×.

Writes ``parquet_latest.json`` and ``parquet_latest.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import postgres
from bench.harness import cpu_bound_rows_per_s, cpu_reference_s, measure

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT / "bench" / "results"
DEFAULT_DATA = PROJECT / "bench" / "data"
MONTHS = {"1x": date(2024, 1, 1), "2x": date(2024, 2, 1), "csv": date(2024, 1, 1)}


@dataclass(frozen=True)
class Method:
    key: str
    worker: str
    size: str
    label: str
    table: tuple[str, str] | None = None
    """(schema, table) a Postgres method loads into; None for the parquet writers."""
    streams: int | None = None
    """The project's COPY streams (``replace_month(streams=...)``); ``--streams`` sets
    ``project_pg_streams_1x``'s."""

    @property
    def postgres(self) -> bool:
        return self.table is not None


PROJECT_TABLE = (postgres.PROJECT_SCHEMA, "fhvhv_tripdata")
METHODS = [
    Method(
        "project_pg_1x",
        "project-load",
        "1x",
        "project → Postgres (binary COPY, 1 stream)",
        PROJECT_TABLE,
        streams=1,
    ),
    Method(
        "project_pg_streams_1x",
        "project-load",
        "1x",
        "project → Postgres (binary COPY, --streams streams)",
        PROJECT_TABLE,
        streams=2,
    ),
    Method(
        "project_pg_2x",
        "project-load",
        "2x",
        "project → Postgres (binary COPY, 1 stream)",
        PROJECT_TABLE,
        streams=1,
    ),
    Method(
        "project_pg_csv_1x",
        "project-load",
        "csv",
        "project → Postgres, csv.gz rows",
        PROJECT_TABLE,
        streams=1,
    ),
    Method(
        "arrow_text_copy_1x",
        "arrow-text-copy",
        "1x",
        "read_table + psycopg text COPY",
        (postgres.BASELINE_SCHEMA, "fhvhv_text"),
    ),
    *(
        Method(
            f"duckdb_pg_{size}",
            "duckdb-postgres",
            size,
            "DuckDB postgres extension",
            (postgres.BASELINE_SCHEMA, "fhvhv_duckdb"),
        )
        for size in ("1x", "2x")
    ),
    Method("project_lake_1x", "project-parquet", "1x", "project → lake parquet (zstd)"),
    Method("project_lake_2x", "project-parquet", "2x", "project → lake parquet (zstd)"),
    Method("duckdb_rewrite_1x", "duckdb-parquet-rewrite", "1x", "DuckDB read_parquet → parquet"),
    Method("duckdb_rewrite_2x", "duckdb-parquet-rewrite", "2x", "DuckDB read_parquet → parquet"),
]


def ensure_files(rows: int, data_dir: Path) -> dict[str, Path]:
    from dev.tlc_parquet import write_era

    files = {}
    for size, month in MONTHS.items():
        n = rows * (2 if size == "2x" else 1)
        path = data_dir / f"fhvhv-{n}" / f"fhvhv_tripdata_{month:%Y-%m}.parquet"
        if not path.exists():
            tmp = path.with_suffix(".tmp.parquet")
            write_era(tmp, "fhvhv-2024", month, n, row_group_rows=1_000_000)
            tmp.rename(path)
        files[size] = path
    csv = files["1x"].with_suffix(".csv.gz")
    if not csv.exists():
        tmp = csv.with_suffix(".tmp.gz")
        write_csv_gz(files["1x"], tmp)
        tmp.rename(csv)
    files["csv"] = csv
    return files


def write_csv_gz(parquet: Path, out: Path) -> None:
    """The same rows as the TLC's old csv.gz files had them: a header of the parquet's names,
    times as ``YYYY-MM-DD HH:MM:SS`` (cast to whole seconds: a fraction would fail the cast, and
    ``strftime``'s ``%S`` would add ``.000000``), empty cells for NULL; a row group at a time,
    gzipped by ISA-L."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from isal import igzip

    source = pq.ParquetFile(parquet)
    with igzip.open(out, "wb", compresslevel=3) as sink:
        header = True
        for group in range(source.num_row_groups):
            table = source.read_row_group(group)
            columns = [
                pc.cast(pc.cast(col, pa.timestamp("s")), pa.string())
                if pa.types.is_timestamp(col.type)
                else col
                for col in table.columns
            ]
            table = pa.table(columns, names=table.column_names)
            options = pacsv.WriteOptions(include_header=header, quoting_style="needed")
            pacsv.write_csv(table, sink, options)
            header = False


def _argv(method: Method, file: Path, url: str, work: Path, result: Path) -> list[str]:
    month = str(MONTHS[method.size])
    argv = [
        sys.executable,
        "-m",
        "bench.worker",
        method.worker,
        "--result",
        str(result),
        "--file",
        str(file),
        "--service",
        "fhvhv",
        "--month",
        month,
    ]
    if method.table is not None:
        schema, table = method.table
        argv += ["--url", url, "--schema", schema, "--table", table]
    if method.streams is not None:
        argv += ["--streams", str(method.streams)]
    else:
        argv += ["--out", str(work / f"{method.key}.parquet")]
    return argv


def _median(samples: dict[str, list[dict[str, Any]]], key: str, field: str) -> float | None:
    values = [s[field] for s in samples.get(key, []) if s.get(field) is not None]
    return statistics.median(values) if values else None


class _Measures:
    """Medians of one run's samples, and the ratios the targets compare."""

    def __init__(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        self.samples = samples

    def m(self, key: str, field: str = "rows_per_s") -> float | None:
        return _median(self.samples, key, field)

    def ratio(self, a: str, b: str, field: str = "rows_per_s") -> float | None:
        top, bottom = self.m(a, field), self.m(b, field)
        return top / bottom if top and bottom else None

    def until_read(self, key: str) -> float | None:
        wall, read = self.m(key, "wall_s"), self.m(key, "first_read_s")
        return wall + read if wall is not None and read is not None else None


AT_MOST = True


Row = tuple[str, float | None, float, bool]
"""A target: its name, the measured value, the limit, and whether the limit is an upper one."""


AHEAD_OF_DUCKDB = 1.2
"""Issue 24: the project's load at least this many times DuckDB's postgres extension, for the
load alone and for the load and the first ``count(*)``, at 1× and 2×."""
AHEAD_OF_DUCKDB_LAKE = 1.5
"""Issue 24: the lake writer at least this many times DuckDB's parquet rewrite, at 1× and 2×."""


def _ahead_of_duckdb(at: _Measures) -> list[Row]:
    rows: list[Row] = []
    for size, shown in (("1x", "1×"), ("2x", "2×")):
        project, duck = f"project_pg_{size}", f"duckdb_pg_{size}"
        duck_read, project_read = at.until_read(duck), at.until_read(project)
        rows += [
            (
                f"project → Postgres rows/s ÷ DuckDB postgres extension, {shown} (issue 24)",
                at.ratio(project, duck),
                AHEAD_OF_DUCKDB,
                not AT_MOST,
            ),
            (
                f"project → Postgres ÷ DuckDB postgres extension, load + first count(*), "
                f"{shown} (issue 24)",
                duck_read / project_read if duck_read and project_read else None,
                AHEAD_OF_DUCKDB,
                not AT_MOST,
            ),
        ]
    return rows


def _postgres_rows(at: _Measures) -> list[Row]:
    rss = "peak_rss_mb"
    return [
        ("project → Postgres peak RSS (MB), 1×", at.m("project_pg_1x", rss), 300, AT_MOST),
        (
            "project → Postgres peak RSS 2× / 1×",
            at.ratio("project_pg_2x", "project_pg_1x", rss),
            1.1,
            AT_MOST,
        ),
        (
            "project → Postgres rows/s ÷ read_table + text COPY",
            at.ratio("project_pg_1x", "arrow_text_copy_1x"),
            1.5,
            not AT_MOST,
        ),
        (
            "project → Postgres rows/s, parquet ÷ csv.gz of the same rows",
            at.ratio("project_pg_1x", "project_pg_csv_1x"),
            1.0,
            not AT_MOST,
        ),
        *_ahead_of_duckdb(at),
    ]


def _lake_rows(at: _Measures) -> list[Row]:
    return [
        (
            f"project → lake rows/s ÷ DuckDB rewrite, {shown} (issue 24)",
            at.ratio(f"project_lake_{size}", f"duckdb_rewrite_{size}"),
            AHEAD_OF_DUCKDB_LAKE,
            not AT_MOST,
        )
        for size, shown in (("1x", "1×"), ("2x", "2×"))
    ] + [
        (
            "project → lake peak RSS 2× / 1×",
            at.ratio("project_lake_2x", "project_lake_1x", "peak_rss_mb"),
            1.1,
            AT_MOST,
        )
    ]


def _targets(samples: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target: its measured value (a ratio, or MB), its limit, and whether it is met."""
    at = _Measures(samples)
    table = _postgres_rows(at) + _lake_rows(at)
    return [
        {
            "name": name,
            "value": value,
            "limit": limit,
            "met": value is not None and (value <= limit if upper else value >= limit),
        }
        for name, value, limit, upper in table
    ]


def _markdown(results: dict[str, Any]) -> str:
    lines = [
        "# make bench-parquet: an fhvhv parquet month",
        "",
        f"{results['date']}; rows 1× = {results['rows']:,}; repeats {results['repeats']}; "
        f"load average {results['loadavg_start']} → {results['loadavg_end']} "
        f"({os.cpu_count()} cores; CPU reference {results.get('cpu_reference_s')} s for 10 M "
        "Python additions). Figures move with the machine: compare ratios of one run.",
        "",
        "| method | file | rows/s (whole process) | load call s | wall s | peak RSS MB "
        "| client CPU s | server CPU s | first count(*) s | its WAL MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        samples = results["samples"].get(method.key, [])
        if not samples:
            continue
        med = {
            f: _median(results["samples"], method.key, f)
            for f in ("rows_per_s", "load_s", "wall_s", "peak_rss_mb", "cpu_s", "server_cpu_s")
        }
        read = _median(results["samples"], method.key, "first_read_s")
        wal = _median(results["samples"], method.key, "first_read_wal_mb")
        label = method.label.replace("--streams", str(results.get("streams", 2)))
        lines.append(
            f"| {label} | {method.size} | {med['rows_per_s']:,.0f} | "
            f"{med['load_s']:.1f} | {med['wall_s']:.1f} | {med['peak_rss_mb']:.0f} | "
            f"{med['cpu_s']:.1f} | {_shown(med['server_cpu_s'], '.1f')} | "
            f"{_shown(read, '.2f')} | {_shown(wal, ',.0f')} |"
        )
    lines += _streams_lines(results)
    lines += _budget_lines(results)
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in results["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.3f}"
        lines.append(f"| {t['name']} | {value} | {t['limit']} | {'✅' if t['met'] else '❌'} |")
    lines += ["", *(f"- {note}" for note in results["notes"]), ""]
    return "\n".join(lines)


def _shown(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _streams_lines(results: dict[str, Any]) -> list[str]:
    """N streams ÷ 1 stream, each round paired with its own (they ran one after the other)."""
    one = results["samples"].get("project_pg_1x", [])
    many = results["samples"].get("project_pg_streams_1x", [])
    if not one or not many:
        return []
    shown = []
    for field in ("wall_s", "cpu_s", "server_cpu_s"):
        ratios = [
            b[field] / a[field]
            for a, b in zip(one, many, strict=False)
            if a.get(field) and b.get(field)
        ]
        shown.append(f"{field} {_shown(statistics.median(ratios) if ratios else None, '.2f')}")
    n = results.get("streams", 2)
    return ["", f"{n} COPY streams ÷ 1 stream, paired by round (medians): {', '.join(shown)}."]


def _budget_lines(results: dict[str, Any]) -> list[str]:
    """What the cores allow: a load cannot beat its client's and server's CPU spread over every
    core, so this bounds the project's rows/s against DuckDB's, whatever the streams."""
    at, cores = _Measures(results["samples"]), os.cpu_count() or 1
    lines = []
    for key in ("project_pg_1x", "project_pg_streams_1x", "duckdb_pg_1x"):
        client, server = at.m(key, "cpu_s"), at.m(key, "server_cpu_s")
        rows, duck = at.m(key, "rows"), at.m("duckdb_pg_1x")
        if client is None or server is None or not rows or not duck:
            continue
        bound = cpu_bound_rows_per_s(rows, client, server, cores)
        lines.append(
            f"- {key}: client {client:.1f} s + server {server:.1f} s of CPU; on {cores} cores "
            f"at most {bound:,.0f} rows/s = {bound / duck:.2f}× DuckDB's measured rows/s"
        )
    return ["", "CPU per 1× file, and the rows/s it allows at best:", *lines] if lines else []


NOTES = [
    "rows/s = rows ÷ the whole process's wall time (imports included), medians.",
    "client CPU: the load process's rusage (its threads included); server CPU: what the "
    "server's backends that ended during the run used (the postmaster's reaped children, "
    "/proc; — when the server is elsewhere).",
    "csv.gz: the 1× month's rows written as the TLC's old CSVs were (header, "
    "'YYYY-MM-DD HH:MM:SS' times, gzip), loaded by the same project path (ContractReader).",
    "DuckDB postgres extension: duckdb-extension-postgres-scanner from PyPI, installed "
    "into a private extension directory; INSERT INTO an attached Postgres table "
    "SELECT * FROM read_parquet (its binary COPY), all cores.",
    "read_table + text COPY holds the whole file in memory (its peak RSS shows it).",
    "first count(*): the first query after the load, in a new session; the project's "
    "COPY FREEZE writes the rows frozen, the others leave the hint bits to that reader "
    "(PostgreSQL 18 initdb enables data checksums, so setting them is WAL-logged).",
]
"""What the report says of how each figure was measured."""


def _sample(
    method: Method, files: dict[str, Path], url: str, work: Path, env: dict[str, str], round_no: int
) -> dict[str, Any] | None:
    """One timed run of ``method`` in a child process (None when it failed: its output printed)."""
    if method.postgres:
        postgres.reset_project(url)
    result = work / f"{method.key}.json"
    server_before = postgres.server_cpu_s(url) if method.postgres else None
    measured = measure(
        _argv(method, files[method.size], url, work, result),
        env,
        PROJECT,
        work / f"{method.key}.log",
    )
    if measured.returncode != 0:
        print(measured.output[-3000:], file=sys.stderr)
        return None
    got = json.loads(result.read_text())
    server_after = postgres.server_cpu_s(url) if method.postgres else None
    if server_before is not None and server_after is not None:
        got["server_cpu_s"] = round(server_after - server_before, 2)
    if method.table is not None:
        got.update(postgres.first_read(url, *method.table))
    (work / f"{method.key}.parquet").unlink(missing_ok=True)
    print(
        f"{method.key}: {got['rows'] / measured.wall_s:,.0f} rows/s, {measured.peak_rss_mb:.0f} MB",
        flush=True,
    )
    return {
        **got,
        "wall_s": measured.wall_s,
        "peak_rss_mb": measured.peak_rss_mb,
        "cpu_s": measured.cpu_s,
        "round": round_no,
        "rows_per_s": got["rows"] / measured.wall_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parquet_run")
    parser.add_argument("--rows", type=int, default=20_000_000, help="rows of the 1× month")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", help="comma-separated substrings of method keys")
    parser.add_argument(
        "--streams", type=int, default=2, help="COPY streams of project_pg_streams_1x"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    methods = [
        replace(m, streams=args.streams) if m.key == "project_pg_streams_1x" else m
        for m in METHODS
        if not args.only or any(k in m.key for k in args.only.split(","))
    ]
    started = time.monotonic()
    files = ensure_files(args.rows, args.data_dir)
    generated_s = time.monotonic() - started
    work = Path(tempfile.mkdtemp(prefix="bench-parquet-"))
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    samples: dict[str, list[dict[str, Any]]] = {}
    load_start, cpu_reference = os.getloadavg(), cpu_reference_s()
    try:
        with postgres.server() as (url, _):
            for round_no in range(args.repeats):
                for method in methods:
                    sample = _sample(method, files, url, work, env, round_no)
                    if sample is None:
                        return 1
                    samples.setdefault(method.key, []).append(sample)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "repeats": args.repeats,
        "loadavg_start": [round(v, 1) for v in load_start],
        "loadavg_end": [round(v, 1) for v in os.getloadavg()],
        "cpu_reference_s": cpu_reference,
        "generation_s": round(generated_s, 1),
        "streams": args.streams,
        "samples": samples,
        "targets": _targets(samples),
        "notes": NOTES,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parquet_latest.json").write_text(json.dumps(results, indent=1))
    markdown = _markdown(results)
    (args.out / "parquet_latest.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
