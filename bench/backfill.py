"""`make bench-backfill`: a year × 3 services backfilled through the real scheduler, on the
LocalExecutor and on the CeleryExecutor with two workers, in one run. Not a test.

Each executor gets a fresh stack (dev/airflow_stack.py: api-server, scheduler,
dag-processor, plus two `airflow celery worker` processes for Celery), a fresh PostgreSQL
metadata database and warehouse schema on one embedded PostgreSQL, and the same generated
source files served over local HTTP. Both have 4 task slots (LocalExecutor parallelism 4;
2 workers × concurrency 2, the scheduler at Celery's parallelism of 32, the workers preloading
the pipeline as the project's Celery config does) and the project's pools (2 warehouse COPYs
at a time).

Measured from the REST API's task instances after the backfill: wall time (first task queued
→ last task ended), rows/s end to end, the orchestration overhead = wall / ideal, where ideal is
the sum of the tasks' own durations spread over the slots that may run them (4, and the COPY
pool's 2 for load_trips: max of the two quotients), and the queued → running latency of every
task (median, p95). Beside them: the load path alone (the largest month loaded in-process, no
scheduler) against which the backfill's rows/s is set (× the COPY pool's slots), the peak
memory of every process tree of the stack (bench/process_memory.py), and the WAL and disk a
month costs.

Shapes (``--shape``): ``2020``, yellow 2020 (the pandemic drop from ~6.4 M to ~0.24 M rows a
month, TLC totals, rounded), green at 7 % and fhv at 40 % of yellow, csv.gz from the mirror,
scaled by ``--scale`` (default 1, the real sizes); ``fhvhv``, twelve high-volume FHV months of
``--rows`` rows each (default 20 M, the real size) as the TLC's parquet files. The shape is in
the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import cpu_reference_s
from bench.process_memory import TreeMemory
from dev import local_postgres
from dev.airflow_env import CONNECT_ARGS
from dev.airflow_stack import TERMINAL, AirflowStack, metadata_database, run_month, taxi_env
from dev.celery_stack import celery_env, redis_broker
from dev.synthetic import write_month, write_zones
from include.taxi.settings import DEFAULT_POSTGRES_COPY_SLOTS, POOL_POSTGRES_COPY
from include.taxi.sources.catalogue import MIRROR, TLC

DAG_ID = "taxi_to_postgres"
YEAR = 2020
YELLOW_2020 = [6405, 6300, 3007, 238, 349, 549, 800, 1007, 1341, 1681, 1509, 1461]
"""Thousands of yellow trips per month of 2020 (TLC monthly totals, rounded)."""
SHARE = {"yellow": 1.0, "green": 0.07, "fhv": 0.4}
FHVHV_YEAR = 2024
SLOTS = 4
COPY_SLOTS = DEFAULT_POSTGRES_COPY_SLOTS
RUNS_TIMEOUT_S = 1800
OUT = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parent / "data"
TIMELINE_FIELDS = (
    "task_id",
    "map_index",
    "pool",
    "state",
    "hostname",
    "scheduled_when",
    "queued_when",
    "start_date",
    "end_date",
    "duration",
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@dataclass(frozen=True)
class Shape:
    """What one bench-backfill loads: rows per service and month, from which kind of source."""

    name: str
    year: int
    rows: dict[str, dict[str, int]]
    """service → ``YYYY-MM`` → rows."""
    source_kind: str = MIRROR
    """``mirror``: csv.gz per service folder; ``tlc``: parquet in ``trip-data/``."""

    @property
    def total(self) -> int:
        return sum(sum(months.values()) for months in self.rows.values())

    def conf(self) -> dict[str, str]:
        """The backfill's run conf: the one service, if only one is loaded."""
        return {"service": next(iter(self.rows))} if len(self.rows) == 1 else {}


def year_2020(scale: float) -> Shape:
    """The shape of 2020 (yellow, green, fhv; csv.gz from the mirror), scaled."""
    rows = {
        service: {
            f"{YEAR}-{m:02d}": max(1, round(thousands * 1000 * share * scale))
            for m, thousands in enumerate(YELLOW_2020, start=1)
        }
        for service, share in SHARE.items()
    }
    return Shape(f"scale-{scale:g}", YEAR, rows)


def fhvhv_year(rows_per_month: int) -> Shape:
    """Twelve high-volume FHV months of ``rows_per_month`` each (the real ones: ~20 M), as the
    TLC publishes them (parquet, its 2024 schema, ~1 M-row groups)."""
    months = {f"{FHVHV_YEAR}-{m:02d}": rows_per_month for m in range(1, 13)}
    return Shape(f"fhvhv-{rows_per_month}", FHVHV_YEAR, {"fhvhv": months}, TLC)


def make_source(root: Path, shape: Shape) -> None:
    """The shape's files under ``root``, laid out as its source serves them; generated once
    and kept between runs in bench/data (the 2020 year in ~5 min)."""
    from dev.tlc_parquet import write_era

    for service, months in shape.rows.items():
        for month, n in months.items():
            first = date.fromisoformat(f"{month}-01")
            if shape.source_kind == TLC:
                path = root / "trip-data" / f"{service}_tripdata_{month}.parquet"
            else:
                path = root / service / f"{service}_tripdata_{month}.csv.gz"
            if path.exists():
                continue
            tmp = path.with_name(f".{path.name}.tmp")
            if shape.source_kind == TLC:
                write_era(tmp, "fhvhv-2024", first, n, row_group_rows=1_000_000)
            else:
                write_month(tmp, service, first, n, seed=first.month)
            tmp.rename(path)
    write_zones(root / "misc" / "taxi_zone_lookup.csv")


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def pool_turn_idle(tis: list[dict[str, Any]]) -> list[float]:
    """For each COPY-pool task after the pool first filled: seconds between the latest pool
    task's end before it started and its start (how long the freed slot sat idle)."""
    pooled = sorted(
        (t for t in tis if t.get("pool") == POOL_POSTGRES_COPY and t["start_date"]),
        key=lambda t: t["start_date"],
    )
    idle = []
    for n, t in enumerate(pooled):
        start = _ts(t["start_date"])
        ended = [_ts(u["end_date"]) for u in pooled[:n] if _ts(u["end_date"]) <= start]
        if n >= COPY_SLOTS and ended:
            idle.append((start - max(ended)).total_seconds())
    return idle


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_backfill(
    executor: str,
    home: Path,
    postgres_url: str,
    source_url: str,
    shape: Shape,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One backfill of the year on a fresh stack; the figures from its task instances, the
    stack's peak memory, and the WAL and disk the months cost."""
    schema = f"bench_{executor.lower()}_{int(time.time())}"
    with metadata_database(postgres_url) as database, contextlib.ExitStack() as cleanup:
        env: dict[str, str | None] = {
            **taxi_env(postgres_url, schema, source_url),
            "TAXI_START_MONTH": f"{shape.year}-01",
            "TAXI_END_MONTH": f"{shape.year}-12",  # no scheduled run of the current month beside it
            "AIRFLOW__CORE__PARALLELISM": str(SLOTS),  # Local: its 4 task processes
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            CONNECT_ARGS: None,
        }
        if shape.source_kind == TLC:
            env |= {"AIRFLOW_VAR_TAXI_SOURCE": TLC, "AIRFLOW_VAR_TAXI_TLC_URL": source_url}
        workers: tuple[str, ...] = ()
        if executor == "Celery":
            # the workers' 2 × 2 slots; the scheduler at Celery's cap, the workers preloading
            env.update(celery_env(cleanup.enter_context(redis_broker(home)), database))
            workers = ("bench-a", "bench-b")
        env.update(settings or {})
        with AirflowStack(home, DAG_ID, env, workers=workers, worker_concurrency=2) as stack:
            wal_start = _wal_lsn(postgres_url)
            pids = {name: proc.pid for name, proc in stack.processes.items()}
            with TreeMemory(lambda: pids) as memory:
                runs, tis = _backfill_year(stack, shape)
            wal_bytes = _wal_lsn(postgres_url) - wal_start
    loaded, disk_bytes = _count_and_drop(postgres_url, schema, shape)
    months = sum(len(m) for m in shape.rows.values())
    return {
        "executor": executor,
        **_figures(runs, tis, shape.total, loaded),
        "memory": memory.peaks(),
        "wal_bytes_per_month": round(wal_bytes / months),
        "disk_bytes_per_month": round(disk_bytes / months),
    }


def _wal_lsn(postgres_url: str) -> int:
    """The server's WAL position in bytes: the difference of two is the WAL written between."""
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def _backfill_year(
    stack: AirflowStack, shape: Shape
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Create the year's backfill, unpause, wait for its 12 runs; the runs and their tasks."""
    args = ["backfill", "create", "--dag-id", DAG_ID, "--from-date", f"{shape.year}-01-01"]
    args += ["--to-date", f"{shape.year}-12-31", "--max-active-runs", "4"]
    if conf := shape.conf():
        args += ["--dag-run-conf", json.dumps(conf)]
    created = stack.cli(*args)
    if created.returncode:
        raise RuntimeError(created.stderr[-2000:])
    stack.unpause()

    def done() -> list[dict[str, Any]] | None:
        runs = [r for r in stack.runs() if r["run_type"] == "backfill"]
        if len(runs) == 12 and all(r["state"] in TERMINAL for r in runs):
            return runs
        return None

    runs = stack.wait_for("the year's backfill", done, RUNS_TIMEOUT_S)
    ids = {r["dag_run_id"] for r in runs}
    resp = stack.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 1000}
    )
    return runs, [t for t in resp.json()["task_instances"] if t["dag_run_id"] in ids]


def _count_and_drop(postgres_url: str, schema: str, shape: Shape) -> tuple[int, int]:
    """The rows the backfill loaded and the bytes its tables take, before its schema is
    dropped."""
    with psycopg.connect(postgres_url) as conn:
        loaded = disk = 0
        for service in shape.rows:
            table = f'"{schema}"."{service}_tripdata"'
            loaded += (conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,))[0]
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                f"FROM pg_partition_tree('{table}'::regclass)"
            ).fetchone()
            disk += int(size[0]) if size else 0
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.commit()
    return int(loaded), disk


def solo_rate(postgres_url: str, source_url: str, shape: Shape) -> dict[str, Any]:
    """The load path alone, no scheduler: the shape's largest month loaded in-process into a
    scratch schema (rows/s), the rate a backfill's COPY-pool slots each could reach."""
    from include.taxi.months import Month
    from include.taxi.postgres.load import month_to_postgres
    from include.taxi.services import Service

    service, month, rows = max(
        ((s, m, n) for s, months in shape.rows.items() for m, n in months.items()),
        key=lambda found: found[2],
    )
    schema = f"bench_solo_{int(time.time())}"
    started = time.perf_counter()
    month_to_postgres(
        Service(service),
        Month.parse(month),
        source_base=source_url,
        source_kind=shape.source_kind,
        conninfo=postgres_url,
        schema=schema,
    )
    seconds = time.perf_counter() - started
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return {"month": f"{service} {month}", "rows": rows, "rows_per_s": round(rows / seconds)}


def _figures(
    runs: list[dict[str, Any]], tis: list[dict[str, Any]], rows: int, loaded: int
) -> dict[str, Any]:
    """Wall time against the pool-aware ideal, queueing latency and the per-task timeline."""
    queued = [_ts(t["queued_when"]) for t in tis if t["queued_when"]]
    ended = [_ts(t["end_date"]) for t in tis if t["end_date"]]
    wall = (max(ended) - min(queued)).total_seconds()
    work = sum(t["duration"] or 0 for t in tis)
    # The COPY pool lets only COPY_SLOTS load_trips run at once: their work cannot be spread
    # over more slots than that, whatever the executor's parallelism.
    pooled = sum(t["duration"] or 0 for t in tis if t.get("pool") == POOL_POSTGRES_COPY)
    ideal = max(work / SLOTS, pooled / COPY_SLOTS)
    latency = [
        (_ts(t["start_date"]) - _ts(t["queued_when"])).total_seconds()
        for t in tis
        if t["queued_when"] and t["start_date"]
    ]
    idle = pool_turn_idle(tis)
    month_of_run = {r["dag_run_id"]: run_month(r) for r in runs}
    timeline = [
        {k: t.get(k) for k in TIMELINE_FIELDS} | {"run": month_of_run[t["dag_run_id"]]}
        for t in sorted(tis, key=lambda t: t["queued_when"] or "")
    ]
    return {
        "runs_success": sum(r["state"] == "success" for r in runs),
        "task_instances": len(tis),
        "task_states": {s: sum(t["state"] == s for t in tis) for s in {t["state"] for t in tis}},
        "hosts": sorted({t["hostname"] for t in tis}),
        "rows_expected": rows,
        "rows_loaded": loaded,
        "wall_s": round(wall, 1),
        "rows_per_s": round(loaded / wall) if wall else None,
        "task_work_s": round(work, 1),
        "slots": SLOTS,
        "pooled_work_s": round(pooled, 1),
        "copy_slots": COPY_SLOTS,
        "ideal_s": round(ideal, 1),
        "overhead": round(wall / ideal, 2) if ideal else None,
        "overhead_all_slots": round(wall / (work / SLOTS), 2) if work else None,
        "queued_to_running_median_s": round(statistics.median(latency), 2),
        "queued_to_running_p95_s": round(_percentile(latency, 0.95), 2),
        "pool_turn_idle_mean_s": round(statistics.mean(idle), 2) if idle else None,
        "pool_turns": len(idle),
        "timeline": timeline,
    }


def _resources_table(results: dict[str, Any]) -> list[str]:
    """Rows/s against the load path alone times the COPY pool's slots (target: within 15 %),
    peak memory per process tree, and the WAL and disk a month costs."""
    solo = results.get("solo") or {}
    lines = [
        "",
        f"The load path alone (no scheduler, {solo.get('month')}): "
        f"{solo.get('rows_per_s')} rows/s; × {COPY_SLOTS} COPY-pool slots = the ideal rate. "
        "Peak memory: PSS of each process tree (sampled twice a second), and of its largest "
        "forked process (a task process, or a Celery pool child).",
        "",
        "| executor | rows/s ÷ (alone × slots) | peak MB per process tree (largest child) | "
        "WAL MB per month | disk MB per month |",
        "|---|---|---|---|---|",
    ]
    for r in results["executors"]:
        ideal = (solo.get("rows_per_s") or 0) * COPY_SLOTS
        share = f"{r['rows_per_s'] / ideal:.2f}" if ideal and r["rows_per_s"] else "—"
        memory = "; ".join(
            f"{name} {m['tree_mb']} ({m['largest_child_mb']})"
            for name, m in r.get("memory", {}).items()
        )
        lines.append(
            f"| {r['executor']} | {share} | {memory} | {r['wal_bytes_per_month'] / 2**20:.0f} "
            f"| {r['disk_bytes_per_month'] / 2**20:.0f} |"
        )
    return lines


def report(results: dict[str, Any], out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [
        f"# make bench-backfill ({results['when']})",
        "",
        f"{results['months']} months of {results['shape']['services']} "
        f"({results['shape']['year']}, {results['shape']['source']}: {results['shape']['name']}), "
        f"{results['rows']:,} rows; {SLOTS} task slots; machine: "
        f"{results['machine']} (10 M Python additions: {results.get('cpu_reference_s')} s); "
        f"load average {results.get('loadavg_start')} at the start. "
        f"Overhead = wall / ideal, ideal = max(task work / {SLOTS} slots, load_trips work / "
        f"{COPY_SLOTS} COPY-pool slots); target ≤ 1.3×. "
        f"(wall / (work / {SLOTS}) alone, ignoring the pool, is in the last column.) "
        f"Airflow settings beyond the project's: {results.get('settings') or 'none'}.",
        "",
        "| executor | runs ok | tasks | wall s | rows/s | task work s | load_trips work s | "
        "ideal s | overhead | queued→running median s | p95 s | idle per pool turn s | hosts | "
        "wall / (work / 4) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["executors"]:
        lines.append(
            f"| {r['executor']} | {r['runs_success']}/12 | {r['task_instances']} | {r['wall_s']} "
            f"| {r['rows_per_s']} | {r['task_work_s']} | {r['pooled_work_s']} | {r['ideal_s']} "
            f"| {r['overhead']}× | {r['queued_to_running_median_s']} "
            f"| {r['queued_to_running_p95_s']} | {r.get('pool_turn_idle_mean_s')} "
            f"| {', '.join(r['hosts'])} "
            f"| {r['overhead_all_slots']}× |"
        )
    lines += _resources_table(results)
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = [r["executor"] for r in results["executors"]]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    axes[0].bar(names, [r["wall_s"] for r in results["executors"]])
    axes[0].set_title("wall time (s)")
    axes[1].bar(names, [r["overhead"] for r in results["executors"]])
    axes[1].axhline(1.3, color="red", linestyle="--", label="target 1.3×")
    axes[1].set_title("overhead = wall / ideal")
    axes[1].legend()
    width = 0.35
    xs = range(len(names))
    medians = [r["queued_to_running_median_s"] for r in results["executors"]]
    p95s = [r["queued_to_running_p95_s"] for r in results["executors"]]
    axes[2].bar([x - width / 2 for x in xs], medians, width, label="median")
    axes[2].bar([x + width / 2 for x in xs], p95s, width, label="p95")
    axes[2].set_xticks(list(xs), names)
    axes[2].set_title("queued → running (s)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument(
        "--shape",
        choices=("2020", "fhvhv"),
        default="2020",
        help="2020: yellow, green, fhv csv.gz in 2020's sizes (times --scale); fhvhv: 12 TLC "
        "parquet months of --rows rows",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="2020: share of the real sizes")
    parser.add_argument(
        "--rows", type=int, default=20_000_000, help="fhvhv: rows per month (real: ~20 M)"
    )
    parser.add_argument("--executors", default="Local,Celery", help="Local, Celery or both")
    parser.add_argument(
        "--out", type=Path, default=OUT, help="writes backfill.* (2020) or backfill-fhvhv.*"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA, help="generated months, kept")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Airflow setting for both stacks, e.g. "
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2 (recorded in the results)",
    )
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set)
    shape = year_2020(args.scale) if args.shape == "2020" else fhvhv_year(args.rows)
    source = args.data_dir / f"backfill-{shape.name}"
    print(f"generating (or reusing) {source} ...", flush=True)
    make_source(source, shape)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        results = _run(Path(tmp), source, shape, args.executors.split(","), settings)
    stem = "backfill" if args.shape == "2020" else f"backfill-{args.shape}"
    report(results, args.out, stem)
    print((args.out / f"{stem}.md").read_text())
    return 0


def _run(
    work: Path, source: Path, shape: Shape, executors: list[str], settings: dict[str, str]
) -> dict[str, Any]:
    """The solo load, then one backfill per executor, on one fresh embedded PostgreSQL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(source)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source_url = f"http://127.0.0.1:{server.server_address[1]}"
    pg_url = local_postgres.start(
        work / "pg", local_postgres.free_port(), password=secrets.token_urlsafe(16), durable=False
    )
    results: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "cpu_reference_s": cpu_reference_s(),
        "shape": {
            "name": shape.name,
            "year": shape.year,
            "services": ", ".join(shape.rows),
            "source": shape.source_kind,
        },
        "scale": shape.name,
        "settings": settings,
        "months": 12,
        "loadavg_start": [round(v, 1) for v in os.getloadavg()],
        "rows": shape.total,
        "executors": [],
    }
    try:
        results["solo"] = solo_rate(pg_url, source_url, shape)
        print(f"alone: {results['solo']}", flush=True)
        for executor in executors:
            home = work / f"home-{executor}"
            home.mkdir()
            print(f"{executor}: backfilling {shape.total:,} rows ...", flush=True)
            result = run_backfill(executor, home, pg_url, source_url, shape, settings)
            print(json.dumps({k: v for k, v in result.items() if k != "timeline"}), flush=True)
            results["executors"].append(result)
    finally:
        server.shutdown()
        local_postgres.stop(work / "pg")
    return results


if __name__ == "__main__":
    sys.exit(main())
