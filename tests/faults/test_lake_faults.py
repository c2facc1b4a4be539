"""Faults on the lake and BigQuery path, with real processes and the emulators.

A write to the lake killed inside its put leaves the previous object and its metadata whole,
and the next run cleans up after it; two BigQuery loads of one month at once leave the month
loaded exactly once (one may fail and be retried by Airflow, neither may double it).
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
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.airflow_env import PROJECT
from dev.synthetic import write_month
from include.taxi.bigquery.load import month_to_bigquery
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month

AUGUST = date(2019, 8, 1)
OLD_ROWS, NEW_ROWS = 2_000, 100_000
WRITE = """
import os, shutil, sys, time
from pathlib import Path

base, lake, point, marker, workdir = sys.argv[1:6]


def pause():
    Path(marker).write_text(str(os.getpid()))
    time.sleep(300)  # SIGKILLed here, inside the write


if point == "copy":  # half of the lake's temp file written
    real_copy = shutil.copyfile

    def copyfile(src, dst, **kwargs):
        if str(dst).endswith(".tmp"):
            data = Path(src).read_bytes()
            with open(dst, "wb") as out:
                out.write(data[: len(data) // 2])
            pause()
        return real_copy(src, dst, **kwargs)

    shutil.copyfile = copyfile
elif point == "rename":  # the temp file whole and synced, not yet renamed over the object
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(src).endswith(".tmp"):
            pause()
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
elif point == "upload":  # a resumable upload to GCS, two chunks of 256 KiB sent
    from google.cloud.storage import Blob, blob
    from google.cloud.storage._media.requests.upload import ResumableUpload

    blob._MAX_MULTIPART_SIZE = 0  # resumable (chunked) even below 8 MiB, as a big month goes

    real_upload, sent = Blob.upload_from_filename, []
    real_chunk = ResumableUpload.transmit_next_chunk

    def upload(self, *args, **kwargs):
        self.chunk_size = 256 * 1024
        return real_upload(self, *args, **kwargs)

    def chunk(self, *args, **kwargs):
        if len(sent) == 2:
            pause()
        sent.append(1)
        return real_chunk(self, *args, **kwargs)

    Blob.upload_from_filename, ResumableUpload.transmit_next_chunk = upload, chunk

from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month

month_to_lake(
    "yellow", Month(2019, 8), source_base=base, lake_url=lake, force=True, workdir=workdir
)
"""


def _blob(bucket: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials()
    )
    return client.bucket(bucket).get_blob("lake/yellow/2019/yellow_tripdata_2019-08.parquet")


def _object(lake: str, tmp_path: Path) -> tuple[int, dict[str, str], int]:
    """(rows read from the whole object, its metadata, the footer's taxi.rows) of the month."""
    if lake.startswith("gs://"):
        blob = _blob(lake[5:].split("/")[0])
        data = pa.BufferReader(blob.download_as_bytes())
        table, meta = pq.read_table(data), dict(blob.metadata or {})
        footer = pq.read_metadata(pa.BufferReader(blob.download_as_bytes())).metadata
    else:
        path = Path(lake[7:]) / "yellow" / "2019" / "yellow_tripdata_2019-08.parquet"
        table = pq.read_table(path)
        footer = pq.read_metadata(path).metadata
        meta = {k.decode(): v.decode() for k, v in footer.items() if k.startswith(b"taxi.")}
    return table.num_rows, meta, int(footer[b"taxi.rows"])


def _kill_inside_the_write(base: str, lake: str, point: str, tmp_path: Path) -> None:
    marker = tmp_path / f"paused-{point}"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE, base, lake, point, str(marker), str(tmp_path / "work")],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert writer.poll() is None, writer.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the writer never reached the point to kill it at"
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)


@pytest.mark.parametrize(
    ("lake_kind", "point"), [("folder", "copy"), ("folder", "rename"), ("gcs", "upload")]
)
def test_a_write_killed_inside_the_put_leaves_the_old_object_whole(
    lake_kind, point, source_server, gcs_bucket, tmp_path
):
    """SIGKILL at a chosen instant inside the put (the temp file half written; written but not
    renamed; a resumable upload half sent): the object and its metadata are the old month's,
    together; the next run of the month removes what the killed one left and writes the new
    month whole."""
    base, root = source_server
    source = root / "yellow" / "yellow_tripdata_2019-08.csv.gz"
    lake = f"gs://{gcs_bucket}/lake" if lake_kind == "gcs" else (tmp_path / "lake").as_uri()
    work = tmp_path / "work"
    work.mkdir()
    write_month(source, "yellow", AUGUST, OLD_ROWS, seed=1)
    month_to_lake("yellow", Month(2019, 8), source_base=base, lake_url=lake, force=True)
    old = _object(lake, tmp_path)
    assert old[0] == old[2] == int(old[1]["taxi.rows"]) == OLD_ROWS

    write_month(source, "yellow", AUGUST, NEW_ROWS, seed=2)
    _kill_inside_the_write(base, lake, point, tmp_path)
    assert _object(lake, tmp_path) == old, f"killed at {point}: not the old object whole"
    left = list(work.glob("taxi-*"))
    temps = list((tmp_path / "lake").rglob(".*.tmp")) if lake_kind == "folder" else []
    assert left, "the killed writer left no temp directory: was it killed inside the write?"
    assert lake_kind == "gcs" or temps, "no lake temp file: the kill missed the put"

    result = month_to_lake(
        "yellow", Month(2019, 8), source_base=base, lake_url=lake, workdir=str(work)
    )
    assert result["status"] == "written"
    rows, meta, footer_rows = _object(lake, tmp_path)
    assert rows == footer_rows == int(meta["taxi.rows"]) == NEW_ROWS
    assert meta["taxi.source_bytes"] == str(source.stat().st_size)
    assert [p for p in left if p.exists()] == [], "the killed run's temp dir is still there"
    assert [p for p in temps if p.exists()] == [], "the killed put's temp file is still there"


def test_two_bigquery_loads_of_one_month_at_once_load_it_once(source_server, gcs_bucket):
    base, root = source_server
    write_month(root / "green" / "green_tripdata_2019-08.csv.gz", "green", AUGUST, 1_500)
    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"race_{uuid.uuid4().hex[:8]}"
    month_to_lake("green", Month(2019, 8), source_base=base, lake_url=lake)
    month_to_bigquery("green", Month(2019, 8), lake_url=lake, dataset=dataset)

    outcomes: list[object] = []
    start = threading.Barrier(2)

    def load() -> None:
        start.wait()
        try:
            outcomes.append(
                month_to_bigquery(
                    "green", Month(2019, 8), lake_url=lake, dataset=dataset, force=True
                )
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
