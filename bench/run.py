"""`make bench`: time the project's load paths against psql, pandas and DuckDB on the same files.

    python -m bench.run [--repeats N] [--pandas-repeats N] [--quick] [--skip-pandas]
                        [--only KEYS] [--out DIR] [--data-dir DIR]

Methods run round-robin (one repeat of each, then the next round), so a noisy minute on a
shared machine spreads over all of them instead of sinking one. Writes ``latest.json``,
``latest.md`` and ``latest.png`` to ``--out`` and prints the Markdown. Exits 0 when every
method ran, whether or not the targets are met (the report says which are not); 1 if a method
failed to run.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import postgres, report, sources
from bench.harness import Measured, cpu_reference_s, measure
from bench.methods import Method, Outcome, Setup

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT / "bench" / "results"
DEFAULT_DATA = PROJECT / "bench" / "data"


def _parse_argv(dag_file: Path, setup: Setup, result: Path) -> list[str]:
    return setup.worker("dag-parse", result, "--file", str(dag_file))


def _project_load(key: str) -> Callable[[Setup, Path], list[str]]:
    def argv(setup: Setup, result: Path) -> list[str]:
        return setup.worker(
            "project-load",
            result,
            *setup.source_args(key),
            "--url",
            setup.url,
            "--schema",
            postgres.PROJECT_SCHEMA,
        )

    return argv


def _ensure_loaded(key: str) -> Callable[[Setup], None]:
    """A reload starts from the month already in place (loaded here, unmeasured, if not)."""

    def prepare(setup: Setup) -> None:
        src = setup.sources[key]
        if postgres.project_month_rows(setup.url, src) != src.rows:
            postgres.reset_project(setup.url)
            argv = _project_load(key)(setup, setup.work / "preload.json")
            done = subprocess.run(argv, env=setup.env, cwd=PROJECT, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"preloading the month failed: {done.stderr[-2000:]}")
        postgres.checkpoint(setup.url)

    return prepare


def _parquet(worker: str, key: str, method_key: str) -> Callable[[Setup, Path], list[str]]:
    def argv(setup: Setup, result: Path) -> list[str]:
        out = setup.work / f"{method_key}.parquet"
        return setup.worker(worker, result, *setup.source_args(key), "--out", str(out))

    return argv


def _psql_rows(measured: Measured, _: Path) -> dict[str, Any]:
    found = re.search(r"^COPY (\d+)$", measured.output, re.MULTILINE)
    if not found:
        raise RuntimeError(f"psql did not report a COPY count: {measured.output[-500:]}")
    return {"rows": int(found.group(1))}


def _reference_copy(setup: Setup, key: str, repeats: int) -> Method:
    """psql's client-side \\copy FROM PROGRAM gzip; psycopg's COPY if no psql is installed."""
    src = setup.sources[key]
    table = f"{postgres.BASELINE_SCHEMA}.{postgres.table_name_for(src)}"

    def prepare(s: Setup) -> None:
        postgres.reset_baseline(s.url, src)

    if setup.psql is not None:
        psql = setup.psql

        def psql_argv(s: Setup, _: Path) -> list[str]:
            statement = postgres.copy_statement(table, s.files[key], client_side=True)
            return [psql.path, "-X", "-v", "ON_ERROR_STOP=1", "-d", s.url, "-c", statement]

        return Method(
            f"psql_copy_{key}",
            f"psql \\copy FROM PROGRAM 'gzip -dc' ({src.service} {_size(key)})",
            "postgres",
            key,
            psql_argv,
            repeats,
            prepare=prepare,
            parse_result=_psql_rows,
            notes=f"psql {psql.version} ({psql.path}); text COPY parsed by the server; "
            "peak RSS is the larger of psql and its gzip",
        )

    def copy_argv(s: Setup, result: Path) -> list[str]:
        statement = postgres.copy_statement(table, s.files[key], client_side=False)
        args = ["--file", str(s.files[key]), "--url", s.url, "--copy-sql", statement]
        return s.worker("psycopg-copy", result, *args)

    return Method(
        f"psycopg_copy_{key}",
        f"psycopg COPY of the gunzipped stream ({src.service} {_size(key)}; no psql found)",
        "postgres",
        key,
        copy_argv,
        repeats,
        prepare=prepare,
        notes="stand-in for psql, which is not installed here",
    )


def _server_alone(setup: Setup, key: str, repeats: int) -> Method:
    """The project's own binary COPY data of the file, replayed into one backend by a client
    that only sends: the most one COPY stream can ingest on this server, whatever the client."""
    src = setup.sources[key]
    stream, columns = postgres.copy_stream(setup.files[key], src.service, src.month)
    table = f"{postgres.BASELINE_SCHEMA}.{postgres.table_name_for(src)}"

    def argv(s: Setup, result: Path) -> list[str]:
        statement = postgres.binary_copy_statement(table, columns)
        return s.worker("psycopg-copy", result, "--file", str(stream), "--url", s.url,
                        "--copy-sql", statement)  # fmt: skip

    return Method(
        f"server_alone_{key}",
        f"diagnostic: one backend alone, the project's COPY data replayed ({src.service} "
        f"{_size(key)})",
        "postgres",
        key,
        argv,
        repeats,
        prepare=lambda s: postgres.reset_baseline(s.url, src),
        notes="the bytes replace_month sends for this file (bench.postgres.copy_stream), sent "
        "from a file in 1 MiB writes into a plain table: the server's share of the load, "
        "and the ceiling of one COPY stream",
    )


def _pandas(setup: Setup, key: str, repeats: int) -> Method:
    src = setup.sources[key]

    def argv(s: Setup, result: Path) -> list[str]:
        return s.worker(
            "pandas-to-sql",
            result,
            *s.source_args(key),
            "--sqlalchemy-url",
            postgres.sqlalchemy_url(s.url),
            "--schema",
            postgres.BASELINE_SCHEMA,
            "--table",
            postgres.table_name_for(src),
        )

    return Method(
        f"pandas_to_sql_{key}",
        f"course: pandas read_csv + to_sql(chunksize=100k) ({src.service} {_size(key)})",
        "postgres",
        key,
        argv,
        repeats=repeats,
        prepare=lambda s: postgres.reset_baseline(s.url, src),
        notes="whole file into pandas, the two datetimes via pd.to_datetime, "
        "SQLAlchemy + psycopg2; column names lower-cased to fit the table",
    )


def _size(key: str) -> str:
    return key.split("_")[-1].replace("x", "×")


def _reset(setup: Setup) -> None:
    postgres.reset_project(setup.url)


def _load(setup: Setup, key: str, repeats: int, *, reload: bool = False) -> Method:
    """The project's load of one file into Postgres: a first load, or a reload of the month."""
    src = setup.sources[key]
    what = "reload (replace the loaded month)" if reload else "first load"
    return Method(
        f"project_pg_{key}" + ("_reload" if reload else ""),
        f"project → Postgres, {what} ({src.service} {_size(key)})",
        "postgres",
        key,
        _project_load(key),
        repeats,
        prepare=_ensure_loaded(key) if reload else _reset,
        notes="ContractReader → replace_month (numpy-encoded binary COPY into a stage table, "
        "partition swap, one transaction)"
        + (", the month already loaded" if reload else ", no table beforehand"),
    )


DUCKDB_NOTES = "DuckDB defaults: types inferred by read_csv, snappy, all cores"
LAKE_NOTES = (
    "write_parquet(ContractReader(...), path) from include/taxi/lake/parquet.py, as "
    "taxi_to_lake runs it after the download (contract types, 1 MiB blocks read ahead, "
    "zstd, fixed-size row groups)"
)


def _to_parquet(key: str, repeats: int) -> list[Method]:
    """DuckDB's COPY and the project's lake writer, csv.gz → parquet, on one file."""

    def method(worker: str, label: str, notes: str) -> Method:
        method_key = f"{worker.replace('-', '_')}_{key}"
        argv = _parquet(worker, key, method_key)
        return Method(
            method_key, f"{label} ({_size(key)})", "parquet", key, argv, repeats, notes=notes
        )

    return [
        method("duckdb-parquet", "DuckDB COPY read_csv → parquet", DUCKDB_NOTES),
        method("project-parquet", "project lake writer → parquet", LAKE_NOTES),
    ]


def _dag_parses(repeats: int) -> list[Method]:
    """One parse of each DAG file, in a fresh process with Airflow's environment."""
    return [
        Method(
            f"dag_parse:{dag_file.name}",
            f"DagBag parse of dags/{dag_file.name}",
            "parse",
            "",
            functools.partial(_parse_argv, dag_file),
            repeats,
            env="parse_env",
        )
        for dag_file in sorted((PROJECT / "dags").glob("*.py"))
    ]


def plan(setup: Setup, repeats: int, pandas_repeats: int) -> list[Method]:
    """Every method in the order one round runs them."""
    methods = [
        _load(setup, "yellow_1x", repeats),
        _load(setup, "yellow_1x", repeats, reload=True),
        _reference_copy(setup, "yellow_1x", repeats),
    ]
    if pandas_repeats:
        methods.append(_pandas(setup, "yellow_1x", pandas_repeats))
    return [
        *methods,
        _server_alone(setup, "yellow_1x", repeats),
        _load(setup, "yellow_4x", repeats),
        _reference_copy(setup, "yellow_4x", repeats),
        _server_alone(setup, "yellow_4x", repeats),
        _load(setup, "green_1x", repeats),
        Method(
            "project_read_yellow_1x",
            "diagnostic: project ContractReader alone, no sink (1×)",
            "diagnostic",
            "yellow_1x",
            lambda s, r: s.worker("project-read", r, *s.source_args("yellow_1x")),
            repeats,
            notes="parse + conform only: the share of the load spent before Postgres",
        ),
        *_to_parquet("yellow_1x", repeats),
        *_to_parquet("yellow_4x", repeats),
        *_dag_parses(repeats),
    ]


def _cpu_pressure() -> float | None:
    """Share of the last 10 s some task waited for a CPU (Linux PSI): how shared the machine is."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    found = re.search(r"avg10=([\d.]+)", line)
    return float(found.group(1)) if found else None


def run_once(setup: Setup, method: Method, round_no: int) -> dict[str, Any]:
    """One measured run: reset state, run the child, read what it did, clean its output."""
    method.prepare(setup)
    result = setup.work / "result.json"
    result.unlink(missing_ok=True)
    load_before, pressure_before = os.getloadavg()[0], _cpu_pressure()
    server_before = postgres.server_cpu_s(setup.url) if method.group == "postgres" else None
    measured = measure(
        method.argv(setup, result), getattr(setup, method.env), PROJECT, setup.work / "child.log"
    )
    for leftover in setup.work.glob("*.parquet"):
        leftover.unlink()
    if measured.returncode != 0:
        raise RuntimeError(
            f"exit {measured.returncode}: {measured.output[-2000:].strip() or '(no output)'}"
        )
    sample: dict[str, Any] = {
        "round": round_no,
        "wall_s": measured.wall_s,
        "peak_rss_mb": measured.peak_rss_mb,
        "cpu_s": measured.cpu_s,
        "loadavg_1m_before": load_before,
        "cpu_pressure_pct_before": pressure_before,
        **method.parse_result(measured, result),
    }
    if server_before is not None and (server_after := postgres.server_cpu_s(setup.url)):
        sample["server_cpu_s"] = round(server_after - server_before, 2)
    if "rows" in sample:
        sample["rows_per_s"] = sample["rows"] / measured.wall_s
    return sample


def _progress(method: Method, sample: dict[str, Any]) -> str:
    if method.group == "parse":
        return f"parse {sample['parse_s'] * 1000:.0f} ms"
    return (
        f"{sample['rows']:,} rows in {sample['wall_s']:.2f} s = "
        f"{sample['rows_per_s'] / 1000:,.0f}k rows/s, peak {sample['peak_rss_mb']:.0f} MB"
    )


def run_rounds(setup: Setup, methods: list[Method]) -> list[Outcome]:
    outcomes = [Outcome(m) for m in methods]
    rounds = max(m.repeats for m in methods)
    for round_no in range(1, rounds + 1):
        for outcome in outcomes:
            method = outcome.method
            if round_no > method.repeats:
                continue
            try:
                sample = run_once(setup, method, round_no)
            except Exception as exc:
                outcome.errors.append(f"round {round_no}: {exc}")
                print(f"[{round_no}/{rounds}] {method.label}: FAILED {exc}", flush=True)
                continue
            outcome.samples.append(sample)
            print(f"[{round_no}/{rounds}] {method.label}: {_progress(method, sample)}", flush=True)
    return outcomes


def _parse_env(home: Path) -> dict[str, str]:
    from dev.airflow_env import airflow_env

    return airflow_env(home, use_dotenv=False)


def _memory_gib() -> float:
    meminfo = Path("/proc/meminfo").read_text()
    found = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
    return round(int(found.group(1)) / 2**20, 1) if found else float("nan")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, help="rounds of every method (default 3; quick 1)")
    parser.add_argument(
        "--pandas-repeats",
        type=int,
        default=1,
        help="rounds that also run the slow (~2 min) pandas method (default 1: its ratio is "
        "~50× against a 40× target, so more rounds only add minutes to make bench)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny files, one round (smoke test)")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the pandas method")
    parser.add_argument(
        "--only",
        help="comma-separated substrings of method keys to run (e.g. project_pg,psql); "
        "for quick comparisons, the targets of the methods left out are reported as not measured",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the results go")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="source file cache")
    return parser.parse_args(argv)


def _only(methods: list[Method], only: str | None) -> list[Method]:
    """The methods ``--only`` names by substrings of their keys (all without it)."""
    if not only:
        return methods
    wanted_keys = [part.strip() for part in only.split(",") if part.strip()]
    chosen = [m for m in methods if any(k in m.key for k in wanted_keys)]
    if not chosen:
        raise SystemExit(f"--only {only!r} matches no method")
    return chosen


def _machine(setup: Setup, version: str, url_source: str) -> dict[str, Any]:
    """What the report says of the machine and the servers the run used."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgres": version,
        "postgres_from": url_source,
        "psql": f"{setup.psql.path} ({setup.psql.version})"
        if setup.psql
        else "none found: psycopg COPY of the gunzipped stream stands in",
        "loadavg_at_start": os.getloadavg(),
        "cpu_reference_s": cpu_reference_s(),
    }


def _print_summary(results: dict[str, Any], outcomes: list[Outcome], markdown: str) -> int:
    """The Markdown, the targets not met and the methods that failed; the exit status."""
    print()
    print(markdown)
    unmet = [t["name"] for t in results["targets"] if not t["met"]]
    print(f"targets met: {len(results['targets']) - len(unmet)}/{len(results['targets'])}")
    for name in unmet:
        print(f"NOT MET: {name}")
    failed = [o.method.label for o in outcomes if o.errors]
    for label in failed:
        print(f"FAILED TO RUN: {label}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    pandas_repeats = 0 if args.skip_pandas else min(args.pandas_repeats, repeats)

    started = time.monotonic()
    wanted = sources.sources(args.quick)
    files = {key: sources.ensure(src, args.data_dir) for key, src in wanted.items()}
    generated_s = time.monotonic() - started

    work = Path(tempfile.mkdtemp(prefix="bench-work-"))
    paths = [str(PROJECT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    try:
        with postgres.server() as (url, url_source):
            major, version = postgres.server_version(url)
            setup = Setup(
                url=url,
                files=files,
                sources=wanted,
                work=work,
                psql=postgres.find_psql(major),
                env=env,
                parse_env=_parse_env(work / "airflow-home"),
            )
            methods = _only(plan(setup, repeats, pandas_repeats), args.only)
            machine = _machine(setup, version, url_source)
            bench_started = time.monotonic()
            outcomes = run_rounds(setup, methods)
            machine["loadavg_at_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = report.build(
        outcomes,
        machine=machine,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        options={
            "repeats": repeats,
            "pandas_repeats": pandas_repeats,
            "quick": args.quick,
            "only": args.only,
            "sources": {k: {"file": files[k].name, "rows": s.rows} for k, s in wanted.items()},
        },
        timing={
            "bench_wall_s": time.monotonic() - bench_started,
            "source_generation_s": generated_s,
            "total_s": time.monotonic() - started,
        },
    )
    return _print_summary(results, outcomes, report.write(results, args.out))


if __name__ == "__main__":
    raise SystemExit(main())
