"""Run one command as a child process and measure it: wall time, peak RSS, CPU.

``os.wait4`` returns the rusage of that one child (and of the descendants it waited for, such
as psql's ``gzip``), so peak RSS is this run's own; ``RUSAGE_CHILDREN`` would be the maximum
over every child the harness ever had. The wait4 happens in ``bench/launcher.py``, a small
process in between: see there why the harness must not fork the measured child itself.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"


@dataclass(frozen=True)
class Measured:
    """What the operating system says about one finished child process."""

    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    returncode: int
    output: str


def measure(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Measured:
    """Run ``argv`` to completion; stdout and stderr go to ``log`` (read back as ``output``)."""
    usage = log.with_suffix(".usage.json")
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(usage), str(log)]
    subprocess.run([*launcher, *argv], env=env, cwd=cwd, check=True)
    measured = json.loads(usage.read_text())
    return Measured(
        wall_s=measured["wall_s"],
        peak_rss_mb=measured["maxrss_kb"] / 1024,
        cpu_s=measured["cpu_s"],
        returncode=measured["returncode"],
        output=log.read_text(errors="replace"),
    )


def spread(values: list[float]) -> dict[str, float]:
    """Median and range of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


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


def cpu_bound_rows_per_s(
    rows: float, client_cpu_s: float, server_cpu_s: float, cores: int
) -> float:
    """The most rows/s a load can reach when its client and the server share ``cores``: its
    CPU per file spread over every core, whatever its streams or threads."""
    return rows / ((client_cpu_s + server_cpu_s) / cores)
