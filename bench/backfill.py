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
task (median, p95).

Sizes: the shape of yellow 2020 (the pandemic drop from ~6.4 M to ~0.24 M rows a month, TLC
totals, rounded), green at 7 % and fhv at 40 % of yellow, scaled by ``--scale`` (default
1, the real sizes) on a 2-core machine; the scale is in the results.
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
from datetime import date, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from dev import local_postgres
from dev.airflow_env import CONNECT_ARGS
from dev.airflow_stack import TERMINAL, AirflowStack, metadata_database, run_month, taxi_env
from dev.celery_stack import celery_env, redis_broker
from dev.synthetic import write_month, write_zones
from include.taxi.settings import DEFAULT_POSTGRES_COPY_SLOTS, POOL_POSTGRES_COPY

DAG_ID = "taxi_to_postgres"
YEAR = 2020
YELLOW_2020 = [6405, 6300, 3007, 238, 349, 549, 800, 1007, 1341, 1681, 1509, 1461]
"""Thousands of yellow trips per month of 2020 (TLC monthly totals, rounded)."""
SHARE = {"yellow": 1.0, "green": 0.07, "fhv": 0.4}
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


def make_source(root: Path, scale: float) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for service, share in SHARE.items():
        for m, thousands in enumerate(YELLOW_2020, start=1):
            month = date(YEAR, m, 1)
            n = max(1, round(thousands * 1000 * share * scale))
            path = root / service / f"{service}_tripdata_{month:%Y-%m}.csv.gz"
            if not path.exists():  # kept between runs in bench/data (generated in ~5 min)
                tmp = path.with_suffix(".tmp")
                write_month(tmp, service, month, n, seed=m)
                tmp.rename(path)
            rows.setdefault(service, {})[f"{month:%Y-%m}"] = n
    write_zones(root / "misc" / "taxi_zone_lookup.csv")
    return rows


def cpu_reference_s() -> float:
    """Seconds for 10 M Python additions, best of 3: how fast this machine's cores are, so runs
    on different machines can be compared (the overhead ratio falls as the tasks get slower)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 2)


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
    rows: int,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One backfill of the year on a fresh stack; the figures from its task instances."""
    schema = f"bench_{executor.lower()}_{int(time.time())}"
    with metadata_database(postgres_url) as database, contextlib.ExitStack() as cleanup:
        env: dict[str, str | None] = {
            **taxi_env(postgres_url, schema, source_url),
            "TAXI_START_MONTH": f"{YEAR}-01",
            "TAXI_END_MONTH": f"{YEAR}-12",  # no scheduled run of the current month beside it
            "AIRFLOW__CORE__PARALLELISM": str(SLOTS),  # Local: its 4 task processes
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            CONNECT_ARGS: None,
        }
        workers: tuple[str, ...] = ()
        if executor == "Celery":
            # the workers' 2 × 2 slots; the scheduler at Celery's cap, the workers preloading
            env.update(celery_env(cleanup.enter_context(redis_broker(home)), database))
            workers = ("bench-a", "bench-b")
        env.update(settings or {})
        with AirflowStack(home, DAG_ID, env, workers=workers, worker_concurrency=2) as stack:
            runs, tis = _backfill_year(stack)
    loaded = _count_and_drop(postgres_url, schema)
    return {"executor": executor, **_figures(runs, tis, rows, loaded)}


def _backfill_year(stack: AirflowStack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Create the year's backfill, unpause, wait for its 12 runs; the runs and their tasks."""
    args = ["backfill", "create", "--dag-id", DAG_ID, "--from-date", f"{YEAR}-01-01"]
    args += ["--to-date", f"{YEAR}-12-31", "--max-active-runs", "4"]
    created = stack.cli(*args)
    if created.returncode:
        raise RuntimeError(created.stderr[-2000:])
    stack.write("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

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


def _count_and_drop(postgres_url: str, schema: str) -> int:
    """The rows the backfill loaded, before its schema is dropped."""
    with psycopg.connect(postgres_url) as conn:
        loaded = sum(
            (conn.execute(f'SELECT count(*) FROM "{schema}"."{s}_tripdata"').fetchone() or (0,))[0]
            for s in SHARE
        )
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.commit()
    return int(loaded)


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


def report(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "backfill.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [
        f"# make bench-backfill ({results['when']})",
        "",
        f"{results['months']} months × 3 services ({YEAR}), {results['rows']:,} rows at scale "
        f"{results['scale']} of the real sizes; {SLOTS} task slots; machine: "
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
    (out / "backfill.md").write_text("\n".join(lines) + "\n")
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
    fig.savefig(out / "backfill.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="share of the real sizes")
    parser.add_argument("--executors", default="Local,Celery", help="Local, Celery or both")
    parser.add_argument("--out", type=Path, default=OUT)
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
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        work = Path(tmp)
        source = args.data_dir / f"backfill-scale-{args.scale:g}"
        rows = make_source(source, args.scale)
        total = sum(sum(m.values()) for m in rows.values())
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(source)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        source_url = f"http://127.0.0.1:{server.server_address[1]}"
        pg_url = local_postgres.start(
            work / "pg",
            local_postgres.free_port(),
            password=secrets.token_urlsafe(16),
            durable=False,
        )
        results: dict[str, Any] = {
            "when": datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "cpu_reference_s": cpu_reference_s(),
            "scale": args.scale,
            "settings": settings,
            "months": 12,
            "loadavg_start": [round(v, 1) for v in os.getloadavg()],
            "rows": total,
            "executors": [],
        }
        try:
            for executor in args.executors.split(","):
                home = work / f"home-{executor}"
                home.mkdir()
                print(f"{executor}: backfilling {total:,} rows ...", flush=True)
                result = run_backfill(executor, home, pg_url, source_url, total, settings)
                print(json.dumps(result), flush=True)
                results["executors"].append(result)
        finally:
            server.shutdown()
            local_postgres.stop(work / "pg")
        report(results, args.out)
    print((args.out / "backfill.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
