"""Where a csv.gz load's client CPU goes: the load's stages added one at a time.

    python -m bench.profile_csv [--file F] [--service yellow] [--month 2021-01-01] [--repeats 5]

Each row runs the pipeline up to that stage (nothing after it), in a fresh process, and reports
the process's CPU (every thread) and wall time for the work alone (imports excluded), medians of
``--repeats`` runs; a stage's cost is its row minus the row above. The stages are the load's
own code (``ContractReader``, ``Profile``, ``read_ahead``, ``binary_copy``); sending and the
server's side are what ``make bench`` measures (its "one backend alone" method and the server
CPU of the load). Default file: the yellow 1× month of ``make bench`` (bench/data).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = PROJECT / "bench" / "data" / "yellow_2021-01_1369765rows_seed1.csv.gz"
STAGES = {
    "decompress": "ISA-L gunzip, 1 MiB reads",
    "parse": "+ Arrow's streaming CSV parse with the contract's types (256 KiB blocks)",
    "conform": "+ the contract (text → int64 casts, NUL checks, missing columns, source_month)",
    "profile": "+ the in-stream quality profile",
    "read_ahead": "+ the read-ahead thread (what the load does: the above on a second thread)",
    "encode": "+ binary COPY encoding of the columns the file fills",
}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_stage(stage: str, path: Path, service: str, month: date) -> dict[str, float]:
    """Run the pipeline up to ``stage`` in this process; its CPU and wall time."""
    from isal import igzip

    from include.taxi.contract import contract_for
    from include.taxi.postgres import binary_copy
    from include.taxi.quality import Profile
    from include.taxi.sources.csv import ContractReader
    from include.taxi.sources.read_ahead import read_ahead

    contract = contract_for(service)
    cpu, started = _cpu_s(), time.perf_counter()
    if stage == "decompress":
        with igzip.open(path, "rb") as source:
            while source.read(1 << 20):
                pass
    else:
        reader = ContractReader(path, contract, month)
        if stage == "parse":
            reader._conform = lambda batch: batch  # type: ignore[method-assign]
        batches = iter(reader)
        if stage not in ("parse", "conform"):
            batches = Profile(contract, month).observe(batches)
        if stage in ("read_ahead", "encode"):
            batches = read_ahead(batches, reader.read_ahead_batches)
        columns = reader.filled
        for batch in batches:
            if stage == "encode":
                for _ in binary_copy.encode(batch.select(columns)):
                    pass
    return {"cpu_s": _cpu_s() - cpu, "wall_s": time.perf_counter() - started}


def _measure(stage: str, args: argparse.Namespace) -> dict[str, float]:
    argv = [sys.executable, "-m", "bench.profile_csv", "--stage", stage, "--file", str(args.file)]
    argv += ["--service", args.service, "--month", str(args.month)]
    done = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_csv")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--service", default="yellow")
    parser.add_argument("--month", type=date.fromisoformat, default=date(2021, 1, 1))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:  # the child: one stage, its figures as JSON
        print(json.dumps(_run_stage(args.stage, args.file, args.service, args.month)))
        return 0
    median: Callable[[list[float]], float] = statistics.median
    print(f"{args.file.name}, medians of {args.repeats} fresh processes per stage\n")
    print("| stage | client CPU s | its share | wall s |\n|---|---:|---:|---:|")
    before = 0.0
    for stage, what in STAGES.items():
        runs = [_measure(stage, args) for _ in range(args.repeats)]
        cpu, wall = median([r["cpu_s"] for r in runs]), median([r["wall_s"] for r in runs])
        print(f"| {stage}: {what} | {cpu:.2f} | {cpu - before:+.2f} | {wall:.2f} |", flush=True)
        before = cpu
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
