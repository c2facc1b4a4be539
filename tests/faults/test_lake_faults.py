"""Faults on the lake and BigQuery path, with real processes and the emulators.

A write to the lake killed at any moment leaves the previous object whole; two BigQuery loads
of one month at once leave the month loaded exactly once (one may fail and be retried by
Airflow, neither may double it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from dev.airflow_env import PROJECT
from dev.synthetic import write_month
from include.taxi.bigquery.load import month_to_bigquery
from include.taxi.lake.load import month_to_lake

AUGUST = date(2019, 8, 1)
WRITE = """
import sys
from include.taxi.lake.load import month_to_lake
month_to_lake("yellow", "2019-08", source_base=sys.argv[1], lake_url=sys.argv[2], force=True)
"""


def _blob(bucket: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials()
    )
    return client.bucket(bucket).get_blob("lake/yellow/2019/yellow_tripdata_2019-08.parquet")


def _rows(blob) -> int:
    return pq.read_metadata(pa.BufferReader(blob.download_as_bytes())).num_rows


def _start_write(base: str, lake: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITE, base, lake],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_lake_write_killed_at_any_moment_leaves_a_whole_object(source_server, gcs_bucket):
    """SIGKILL at fractions of a measured full write (download, parse, parquet, upload): the
    object is always the old month or the new one, whole, whichever side of the put the kill
    landed on."""
    base, root = source_server
    path = root / "yellow" / "yellow_tripdata_2019-08.csv.gz"
    lake = f"gs://{gcs_bucket}/lake"
    write_month(path, "yellow", AUGUST, 200_000, seed=1)
    started = time.monotonic()
    assert _start_write(base, lake).wait(timeout=120) == 0
    full_write_s = time.monotonic() - started
    assert _rows(_blob(gcs_bucket)) == 200_000

    sizes = [2_000, 200_000]
    for i, fraction in enumerate((0.5, 0.85, 0.97)):
        old, new = sizes[i % 2], sizes[(i + 1) % 2]
        write_month(path, "yellow", AUGUST, old, seed=1)
        month_to_lake("yellow", "2019-08", source_base=base, lake_url=lake, force=True)
        before = _blob(gcs_bucket)
        write_month(path, "yellow", AUGUST, new, seed=1)
        writer = _start_write(base, lake)
        time.sleep(full_write_s * fraction)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        after = _blob(gcs_bucket)
        expected = old if after.md5_hash == before.md5_hash else new
        assert _rows(after) == expected, f"killed at {fraction:.0%} of a write"


def test_two_bigquery_loads_of_one_month_at_once_load_it_once(source_server, gcs_bucket):
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-08.csv.gz", "green", AUGUST, 1_500)
    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"race_{uuid.uuid4().hex[:8]}"
    month_to_lake("green", "2019-08", source_base=base, lake_url=lake)
    month_to_bigquery("green", "2019-08", lake_url=lake, dataset=dataset)

    outcomes: list[object] = []
    start = threading.Barrier(2)

    def load() -> None:
        start.wait()
        try:
            outcomes.append(
                month_to_bigquery("green", "2019-08", lake_url=lake, dataset=dataset, force=True)
            )
        except Exception as exc:  # a conflict is allowed: Airflow retries it
            outcomes.append(exc)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    (row,) = client.query(
        f"SELECT COUNT(*) AS n FROM `{hook.project_id}.{dataset}.green_tripdata`"
    ).result()
    assert row["n"] == 1_500, outcomes
    assert any(isinstance(o, dict) and o["status"] == "loaded" for o in outcomes), outcomes
    leftovers = [t.table_id for t in client.list_tables(f"{hook.project_id}.{dataset}")]
    assert not [t for t in leftovers if t.startswith("_stage_")], leftovers
