"""`make bench` still runs end to end: every method measured, every target judged, files written.

Quick mode on tiny files: the numbers mean nothing here, so no target is asserted to be met.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.postgres import server_cpu_s

PROJECT = Path(__file__).resolve().parents[2]
METHODS = {
    "project_pg_yellow_1x",
    "project_pg_yellow_1x_reload",
    "project_pg_yellow_4x",
    "project_pg_green_1x",
    "server_alone_yellow_1x",
    "server_alone_yellow_4x",
    "pandas_to_sql_yellow_1x",
    "project_read_yellow_1x",
    "duckdb_parquet_yellow_1x",
    "project_parquet_yellow_1x",
    "duckdb_parquet_yellow_4x",
    "project_parquet_yellow_4x",
}
STATS = {"median", "min", "max"}


@pytest.mark.timeout(300)
def test_quick_bench_writes_every_method_and_target(tmp_path: Path, postgres_url: str) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "DATABASE_URL": postgres_url, "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)]
    run = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data")],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "## Targets" in run.stdout

    results = json.loads((out / "latest.json").read_text())
    methods = results["methods"]
    reference = {
        f"{tool}_copy_yellow_{size}" for tool in ("psql", "psycopg") for size in ("1x", "4x")
    } & methods.keys()
    assert len(reference) == 2
    assert METHODS | reference == methods.keys()
    for key, method in methods.items():
        assert not method["errors"], key
        assert method["rows"] > 0, key
        for metric in ("rows_per_s", "wall_s", "peak_rss_mb"):
            assert set(method[metric]) == STATS, (key, metric)
            assert method[metric]["median"] > 0, (key, metric)

    # the server's side of every Postgres method, from its reaped backends when it is local
    if server_cpu_s(postgres_url) is not None:
        for key, method in methods.items():
            if method["group"] == "postgres":
                assert method["server_cpu_s"]["median"] > 0, key
    assert results["machine"]["cpu_reference_s"] > 0

    targets = results["targets"]
    assert len(targets) == 9
    ahead = [t for t in targets if "issue 24" in t["name"]]
    assert len(ahead) == 2
    for target in ahead:
        assert "one backend alone" in target["detail"]
        assert "n/a" not in target["detail"], target["detail"]
    for target in targets:
        assert {"name", "measured", "required", "met"} <= target.keys()
        assert isinstance(target["met"], bool)
        assert isinstance(target["measured"], float | int), target["name"]

    assert results["dag_parse"], "no DAG file was parsed"
    for name, parse in results["dag_parse"].items():
        assert parse["parse_s"]["median"] > 0, name
        assert not parse["import_errors"], name

    assert "## Targets" in (out / "latest.md").read_text()
    assert (out / "latest.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
