"""`make bench-models` still runs end to end: four setups built, every ratio computed, files
written. Tiny months: the numbers mean nothing here, so the target is not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_bench_models_writes_both_engines_side_by_side(tmp_path: Path, postgres_url: str) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "DATABASE_URL": postgres_url, "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "bench.models", "--rows", "2000", "--months", "2"]
    run = subprocess.run(
        [*command, "--repeats", "1", "--out", str(out), "--data", str(tmp_path / "data")],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=590,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((out / "models.json").read_text())
    assert set(results["samples"]) == {"postgres_1", "postgres_2", "duckdb_1", "duckdb_2"}
    assert [row["engine"] for row in results["summary"]] == ["postgres", "duckdb"]
    assert all(row["dbt_elapsed_s"]["ratio"] > 0 for row in results["summary"])
    assert "| duckdb | dbt_elapsed_s |" in (out / "models.md").read_text()
