"""`make report` (python -m dev.local report): rows per month per target, from the logs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

from dev.airflow_env import PROJECT, postgres_connection
from dev.synthetic import write_month
from include.taxi.bigquery.load import month_to_bigquery
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres
from include.taxi.status.report import counts, render

ROWS = {"2020-01": 640, "2020-02": 410}


def _publish(root) -> None:
    for month, rows in ROWS.items():
        path = root / "green" / f"green_tripdata_{month}.csv.gz"
        write_month(path, "green", date.fromisoformat(f"{month}-01"), rows)


def test_make_report_prints_one_line_per_month_per_target(
    tmp_path, source_server, postgres_url, pg_schema
) -> None:
    base, root = source_server
    _publish(root)
    lake = tmp_path / "lake"
    for month in ROWS:
        month_to_postgres(
            "green", Month.parse(month), source_base=base, conninfo=postgres_url, schema=pg_schema
        )
    month_to_lake("green", Month(2020, 1), source_base=base, lake_url=lake.as_uri())
    write_month(
        root / "green" / "green_tripdata_2020-02.csv.gz", "green", date(2020, 2, 1), 99, seed=5
    )
    month_to_postgres(
        "green", Month(2020, 2), source_base=base, conninfo=postgres_url, schema=pg_schema
    )  # fmt: skip  (a republished month: the last load wins)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW_CONN_TAXI_POSTGRES=postgres_connection(postgres_url),
        AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA=pg_schema,
        AIRFLOW_VAR_TAXI_LAKE_URL=lake.as_uri(),
    )
    out = subprocess.run(
        [sys.executable, "-m", "dev.local", "report", "green", "2020"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    months = [line.split() for line in out.stdout.splitlines() if re.match(r"^\d{4}-\d{2}\b", line)]
    assert len(months) == 12
    assert months[0] == ["2020-01", "640", "640"]
    assert months[1] == ["2020-02", "99", "-"]
    assert all(m[1:] == ["-", "-"] for m in months[2:])
    header = next(line for line in out.stdout.splitlines() if line.startswith("month"))
    assert header.split() == ["month", "postgres", "lake"]


def test_an_unreadable_target_is_named_not_fatal() -> None:
    lines = render("green", 2020, {"postgres": {"2020-03": 5}, "bigquery?": {}})
    assert lines[3].split() == ["2020-03", "5", "-"]
    assert lines[0].split() == ["month", "postgres", "bigquery?"]


def _bigquery_counts(dataset: str) -> dict[str, int]:
    """What make report shows for BigQuery: its log, read by its own reader."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.taxi.bigquery.ingestion_log import BigQueryLog

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    try:
        return counts(BigQueryLog(client, hook.project_id, dataset).records(), "green", 2020)
    finally:
        client.close()


def test_bigquery_counts_come_from_its_log(source_server, gcs_bucket, gcp_emulators) -> None:
    base, root = source_server
    _publish(root)
    lake = f"gs://{gcs_bucket}/lake"
    dataset = f"r_{gcs_bucket.replace('-', '_')}"
    assert _bigquery_counts(dataset) == {}
    month_to_lake("green", Month(2020, 1), source_base=base, lake_url=lake)
    month_to_bigquery("green", Month(2020, 1), lake_url=lake, dataset=dataset)
    assert _bigquery_counts(dataset) == {"2020-01": 640}
