"""`make bench-backfill --shape fhvhv` still runs end to end: a year of tiny TLC parquet months
backfilled through a real scheduler (LocalExecutor), every month exact, the measures written.

The numbers mean nothing at this size, so no target is asserted; what is checked is that the
shape reaches the DAG (TLC source, fhvhv only), every row lands, and the memory, WAL and disk
measures are there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
ROWS = 3_000


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_the_fhvhv_year_backfills_exactly(tmp_path: Path) -> None:
    out = tmp_path / "results"
    command = [sys.executable, "-m", "bench.backfill", "--shape", "fhvhv", "--rows", str(ROWS)]
    command += ["--executors", "Local", "--out", str(out), "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    results = json.loads((out / "backfill-fhvhv.json").read_text())
    assert results["shape"] == {
        "name": f"fhvhv-{ROWS}",
        "year": 2024,
        "services": "fhvhv",
        "source": "tlc",
    }
    assert results["solo"]["rows"] == ROWS
    assert results["solo"]["rows_per_s"] > 0
    (local,) = results["executors"]
    assert (local["runs_success"], local["rows_loaded"]) == (12, 12 * ROWS)
    loads = [t for t in local["timeline"] if t["task_id"] == "load_trips"]
    assert len(loads) == 12, "one service a month: the conf chose fhvhv"
    assert {t["state"] for t in loads} == {"success"}
    assert local["memory"]["scheduler"]["tree_mb"] > 0
    assert local["wal_bytes_per_month"] > 0
    assert local["disk_bytes_per_month"] > 0
    assert "rows/s ÷ (alone × slots)" in (out / "backfill-fhvhv.md").read_text()
