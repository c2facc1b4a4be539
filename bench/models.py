"""`make bench-models`: one month's incremental dbt build with 1 and with 12 months loaded, on
Postgres and on DuckDB over a folder lake, side by side in one run. Not a test.

Issue 23 asks that a month's build cost the same however many months are loaded (ratio 12/1
at most 1.3): fct_trips and the mart delete and insert that month only, and the staging models
read it through the month's filter (Postgres: the raw table's month partition; DuckDB: the
parquet files' statistics). Four setups, each loaded by the pipeline's own code from generated
csv.gz months served over local HTTP (``month_to_postgres``/``month_to_lake``) and then built
whole once, so the models hold every loaded month: Postgres with only the last month loaded,
Postgres with 12, the same for DuckDB. Then, in alternation over the rounds, each setup runs
``dbt build --vars {month: LAST}`` (models and tests, as taxi_models runs them). Before each
build the Postgres setups' models are vacuumed (see ``Setup.vacuum``). Measured:
the whole dbt process (wall, start-up and parse included) and dbt's own ``elapsed_time`` from
its run_results.json, with fct_trips' and the mart's execution times; medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import postgres
from dev.synthetic import write_all_zones, write_month
from include.taxi.lake.load import month_to_lake, zones_to_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres, zones_to_postgres
from include.taxi.services import Service
from include.taxi.transform.project import month_vars, run_dbt

PROJECT = Path(__file__).resolve().parent.parent
OUT = PROJECT / "bench" / "results"
DATA = PROJECT / "bench" / "data" / "models"
YEAR = 2021
GREEN_SHARE = 0.1
TARGET_RATIO = 1.3
TIMED_MODELS = ("fct_trips", "mart_monthly_zone_revenue")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def make_source(root: Path, rows: int, months: int) -> dict[str, int]:
    """Yellow (``rows``) and green (10 %) csv.gz months of YEAR and the full zone lookup, in
    the mirror's layout; kept between runs. Returns the rows per month."""
    for m in range(1, months + 1):
        for service, n in ((Service.YELLOW, rows), (Service.GREEN, round(rows * GREEN_SHARE))):
            path = root / str(service) / f"{service}_tripdata_{YEAR}-{m:02d}.csv.gz"
            if not path.exists() or path.stat().st_size == 0:
                tmp = path.with_suffix(".tmp")
                write_month(tmp, str(service), date(YEAR, m, 1), n, seed=m)
                tmp.rename(path)
    write_all_zones(root / "misc" / "taxi_zone_lookup.csv")
    return {"yellow": rows, "green": round(rows * GREEN_SHARE)}


@contextmanager
def serve(root: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _months(loaded: int, last: int) -> list[Month]:
    return Month.span(Month(YEAR, last - loaded + 1), Month(YEAR, last))


def load_postgres(base: str, url: str, schema: str, months: list[Month]) -> None:
    zones_to_postgres(source_base=base, conninfo=url, schema=schema)
    for month in months:
        for service in (Service.YELLOW, Service.GREEN):
            month_to_postgres(service, month, source_base=base, conninfo=url, schema=schema)


def load_lake(base: str, lake: Path, months: list[Month]) -> None:
    zones_to_lake(source_base=base, lake_url=lake.as_uri())
    for month in months:
        for service in (Service.YELLOW, Service.GREEN):
            month_to_lake(service, month, source_base=base, lake_url=lake.as_uri())


class Setup:
    """One engine with some months loaded: its dbt target and the settings its profile reads."""

    def __init__(
        self, engine: str, loaded: int, env: dict[str, str], work: Path, url: str = ""
    ) -> None:
        self.engine, self.loaded, self.work, self.url = engine, loaded, work, url
        self.key = f"{engine}_{loaded}"
        self.env = {**env, "DBT_TARGET_PATH": str(work / f"target_{self.key}")}

    def vacuum(self) -> None:
        """Postgres: clear the rows the last rebuild deleted, so every round starts alike.
        Autovacuum runs once a fifth of a table is dead: after each rebuild with 1 month
        loaded, never within these rounds with 12, whose deletes then wade through the
        earlier rounds' dead rows of the same month (measured: +0.5 s after 5 rebuilds)."""
        if self.engine != "postgres":
            return
        with psycopg.connect(self.url, autocommit=True) as conn:
            for table in TIMED_MODELS:
                schema = self.env["TAXI_PG_SCHEMA"]
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(schema, table)))

    def build(self, months: str) -> dict[str, Any]:
        """``dbt build`` of ``months`` (empty: all); wall time and what run_results.json says."""
        started = time.perf_counter()
        run_dbt(["build", "--vars", month_vars(months)], target=self.engine, env=self.env)
        wall = time.perf_counter() - started
        results = json.loads((Path(self.env["DBT_TARGET_PATH"]) / "run_results.json").read_text())
        timed = {
            node["unique_id"].split(".")[-1]: node["execution_time"]
            for node in results["results"]
            if node["unique_id"].split(".")[-1] in TIMED_MODELS
        }
        return {"wall_s": wall, "dbt_elapsed_s": results["elapsed_time"], **timed}


def _postgres_env(url: str, schema: str) -> dict[str, str]:
    info = psycopg.conninfo.conninfo_to_dict(url)
    return {
        "TAXI_PG_HOST": str(info.get("host", "127.0.0.1")),
        "TAXI_PG_PORT": str(info.get("port", 5432)),
        "TAXI_PG_USER": str(info.get("user", "postgres")),
        "TAXI_PG_PASSWORD": str(info.get("password", "")),
        "TAXI_PG_DATABASE": str(info.get("dbname", "postgres")),
        "TAXI_PG_SCHEMA": schema,
    }


def prepare(base: str, url: str, work: Path, months: int) -> list[Setup]:
    """Load the four setups and build each whole once (the models then hold every month)."""
    setups = []
    for loaded in (1, months):
        schema = f"bench_models_{loaded}"
        _drop_schema(url, schema)
        load_postgres(base, url, schema, _months(loaded, months))
        setups.append(Setup("postgres", loaded, _postgres_env(url, schema), work, url))
        lake = work / f"lake_{loaded}"
        load_lake(base, lake, _months(loaded, months))
        duck = {"TAXI_LAKE": str(lake), "TAXI_DUCKDB_PATH": str(work / f"models_{loaded}.duckdb")}
        setups.append(Setup("duckdb", loaded, duck, work))
    for setup in setups:
        setup.build("")
    return setups


def _drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def measure(setups: list[Setup], month: str, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Each setup's build of ``month``, in alternation; one warm-up build each first."""
    for setup in setups:
        setup.build(month)
    samples: dict[str, list[dict[str, Any]]] = {s.key: [] for s in setups}
    for round_ in range(1, repeats + 1):
        for setup in setups:
            setup.vacuum()
            load = os.getloadavg()[0]
            sample = {**setup.build(month), "loadavg_1m_before": load}
            samples[setup.key].append({"round": round_, **sample})
            print(f"round {round_} {setup.key}: {sample}", flush=True)
    return samples


def summary(samples: dict[str, list[dict[str, Any]]], months: int) -> list[dict[str, Any]]:
    """Per engine: the medians with 1 and with ``months`` loaded, and their ratios."""
    rows = []
    for engine in ("postgres", "duckdb"):
        one, many = samples[f"{engine}_1"], samples[f"{engine}_{months}"]
        row: dict[str, Any] = {"engine": engine}
        for field in ("wall_s", "dbt_elapsed_s", *TIMED_MODELS):
            a = statistics.median(s[field] for s in one)
            b = statistics.median(s[field] for s in many)
            row[field] = {"1": a, str(months): b, "ratio": b / a if a else None}
        row["met"] = row["dbt_elapsed_s"]["ratio"] <= TARGET_RATIO
        rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    months = results["months"]
    lines = [
        f"# bench-models: one month's incremental build, 1 vs {months} months loaded",
        "",
        f"{results['finished_at']}, {results['machine']}; a month: "
        + " + ".join(f"{n:,} {s}" for s, n in results["rows_per_month"].items())
        + f" trips; {results['repeats']} rounds in alternation, medians; "
        f"target: ratio ≤ {TARGET_RATIO} on dbt's own time.",
        "",
        f"| engine | measure | 1 month loaded | {months} months loaded | ratio |",
        "|---|---|---|---|---|",
    ]
    for row in results["summary"]:
        for field in ("dbt_elapsed_s", "wall_s", *TIMED_MODELS):
            cell = row[field]
            lines.append(
                f"| {row['engine']} | {field} | {cell['1']:.2f} s | {cell[str(months)]:.2f} s "
                f"| {cell['ratio']:.2f} |"
            )
    met = ", ".join(f"{r['engine']} {'met' if r['met'] else 'NOT met'}" for r in results["summary"])
    loads = [x["loadavg_1m_before"] for xs in results["samples"].values() for x in xs]
    lines += [
        "",
        f"Target (dbt_elapsed_s ratio ≤ {TARGET_RATIO}): {met}. Load average (1 min) before "
        f"the builds: median {statistics.median(loads):.1f} on {os.cpu_count()} cores.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="yellow rows a month")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, default=DATA, help="where the months are kept")
    args = parser.parse_args(argv)
    data = args.data / f"rows_{args.rows}"
    rows = make_source(data, args.rows, args.months)
    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    try:
        with serve(data) as base, postgres.server() as (url, how):
            setups = prepare(base, url, work, args.months)
            samples = measure(setups, f"{YEAR}-{args.months:02d}", args.repeats)
            for loaded in (1, args.months):
                _drop_schema(url, f"bench_models_{loaded}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "finished_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, postgres: {how}",
        "rows_per_month": rows,
        "months": args.months,
        "repeats": args.repeats,
        "summary": summary(samples, args.months),
        "samples": samples,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "models.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "models.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
