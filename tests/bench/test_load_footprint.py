"""What keeps a month load inside the memory target: it never imports pandas.

pyarrow imports pandas (~35 MB resident, ~0.3 s) the first time a Python value is converted
(``pa.array([value])``, ``pa.scalar``) or a time-zone-aware timestamp is turned back into
Python. The load path builds its few such values from bytes instead; this test keeps it so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

LOAD_TWICE = """
import json, sys
from datetime import date
from pathlib import Path
from dev.synthetic import write_month
from include.taxi.contract import contract_for
from include.taxi.sources.csv import ContractReader
from include.taxi.postgres.month import replace_month

url, schema, folder = sys.argv[1:4]
path = Path(folder) / "yellow_tripdata_2021-01.csv.gz"
write_month(path, "yellow", date(2021, 1, 1), 3000, seed=7)
before = "pandas" in sys.modules
rows = [
    replace_month(url, schema, ContractReader(path, contract_for("yellow"), date(2021, 1, 1)))
    .rows_in_target
    for _ in range(2)  # the second is a reload: it reads the log's timestamptz back
]
print(json.dumps({"rows": rows, "pandas_before": before, "pandas_after": "pandas" in sys.modules}))
"""


@pytest.mark.timeout(120)
def test_a_month_load_and_reload_never_import_pandas(
    postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run(
        [sys.executable, "-c", LOAD_TWICE, postgres_url, pg_schema, str(tmp_path)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome == {"rows": [3000, 3000], "pandas_before": False, "pandas_after": False}


LOAD_PARQUET = """
import json, sys
from datetime import date
from pathlib import Path
from include.taxi.contract import contract_for
from include.taxi.sources.reader import open_source
from include.taxi.postgres.month import replace_month

url, schema, folder = sys.argv[1:4]
rows = []
for name, service, month in [("fhvhv_tripdata_2024-01.parquet", "fhvhv", date(2024, 1, 1)),
                             ("yellow_tripdata_2009-01.parquet", "yellow", date(2009, 1, 1)),
                             ("fhvhv_tripdata_2021-01.parquet", "fhvhv", date(2021, 1, 1))]:
    reader = open_source(Path(folder) / name, contract_for(service), month)
    rows.append(replace_month(url, schema, reader).rows_in_target)
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would report the pytest parent's peak
status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
peak = int(status.split()[0]) // 1024
print(json.dumps({"rows": rows, "pandas": "pandas" in sys.modules, "peak_mb": peak}))
"""


@pytest.mark.timeout(300)
def test_the_parquet_path_never_imports_pandas_and_streams_a_large_file(
    postgres_url: str, pg_schema: str, tmp_path: Path
) -> None:
    """An fhvhv month of 1.2 M rows in 4 row groups (the TLC's are ~1 M rows each), a yellow
    2009 month (text codes) and an fhvhv month in the original layout load without pandas, in
    bounded memory: the reader holds a batch and the row group's current pages, never the file
    (peak RSS measured here: see docs/performance.md)."""
    from datetime import date

    from dev.tlc_parquet import ORIGINAL_FHVHV, write_era

    big = 1_200_000
    write_era(
        tmp_path / "fhvhv_tripdata_2024-01.parquet",
        "fhvhv-2024",
        date(2024, 1, 1),
        big,
        row_group_rows=300_000,
    )
    write_era(tmp_path / "yellow_tripdata_2009-01.parquet", "yellow-2009", date(2009, 1, 1), 5_000)
    original = tmp_path / "fhvhv_tripdata_2021-01.parquet"  # SR_Flag, no fares
    write_era(original, "", date(2021, 1, 1), 5_000, columns=ORIGINAL_FHVHV)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run(
        [sys.executable, "-c", LOAD_PARQUET, postgres_url, pg_schema, str(tmp_path)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["rows"] == [big, 5_000, 5_000]
    assert outcome["pandas"] is False
    assert outcome["peak_mb"] < 300, outcome
