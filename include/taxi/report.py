"""Rows per month per target, from the ingestion logs (never from the trip tables).

``make report SERVICE=green YEAR=2020`` prints one line per month, starting with ``YYYY-MM``
(the course's homework asks for these counts), and a column per target: Postgres (through
the connection ``taxi_postgres``), the lake and BigQuery when they are configured. A month a
target never loaded shows ``-``; one whose latest attempt failed shows ``failed`` (beside the
rows of its last successful load, kept, if any). Reading the logs is fast whatever the size
of the tables: Postgres' log is indexed by (table, month), the lake's counts are in the
objects' metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from include.taxi.contract import contract_for, table_name
from include.taxi.lake.ingestion_log import ROWS_KEY
from include.taxi.lake.store import object_name, open_lake
from include.taxi.months import Month
from include.taxi.postgres import session
from include.taxi.postgres.ingestion_log import LOG_TABLE
from include.taxi.postgres.month import check_schema_name
from include.taxi.services import Service
from include.taxi.sql import statements

log = logging.getLogger(__name__)

Counts = dict[str, int]
"""``YYYY-MM`` → rows in the target after its last successful load."""
Failed = set[str]
"""``YYYY-MM`` of the months whose latest attempt failed."""
Source = tuple[str, Callable[[], Counts], Callable[[], Failed]]
"""A target: its name, its counts and its failed months, each read when asked."""


def _months(year: int) -> list[date]:
    return [date(year, m, 1) for m in range(1, 13)]


def _postgres_log(
    conninfo: str, schema: str, service: str, year: int, query: str
) -> list[tuple[Any, ...]] | None:
    """The rows ``query`` (an include/sql file) finds in the Postgres ingestion log for a
    service's year; None when there is no log yet (nothing loaded)."""
    from psycopg import sql

    (statement,) = statements(query, log=sql.Identifier(check_schema_name(schema), LOG_TABLE))
    with session.connect(conninfo) as cur:
        try:
            cur.execute(
                statement,
                (table_name(contract_for(service)), date(year, 1, 1), date(year + 1, 1, 1)),
            )
        except session.ProgrammingError:
            return None
        return list(cur.fetchall())


def postgres_counts(conninfo: str, schema: str, service: str, year: int) -> Counts:
    """The ``loaded`` rows of the Postgres ingestion log, latest per month."""
    rows = _postgres_log(conninfo, schema, service, year, "postgres/report_rows.sql") or []
    return {f"{month:%Y-%m}": int(count) for month, count in rows if count is not None}


def postgres_failed(conninfo: str, schema: str, service: str, year: int) -> Failed:
    """The months whose latest attempt in the Postgres ingestion log failed."""
    rows = _postgres_log(conninfo, schema, service, year, "postgres/report_failed.sql") or []
    return {f"{month:%Y-%m}" for (month,) in rows}


def lake_failed(lake_url: str, service: str, year: int) -> Failed:
    """The months whose latest write failed, from the lake's failure records."""
    from include.taxi.lake.ingestion_log import failures

    return {
        f.month
        for f in failures(open_lake(lake_url))
        if f.service == service and f.month.startswith(f"{year:04d}-")
    }


def lake_counts(lake_url: str, service: str, year: int) -> Counts:
    """The row counts the lake objects of the year carry in their metadata."""
    lake = open_lake(lake_url)
    counts = {}
    for month in _months(year):
        stored = lake.stat(object_name(Service.parse(service), Month.of(month)))
        if stored is not None and (rows := stored.metadata.get(ROWS_KEY)):
            counts[f"{month:%Y-%m}"] = int(rows)
    return counts


def _bigquery_rows(
    script_name: str, dataset: str, service: str, year: int, gcp_conn_id: str
) -> list[Any]:
    """Rows of a report query over BigQuery's ingestion log; none if there is no log yet."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    from include.taxi.bigquery.month import LOG_TABLE as BQ_LOG
    from include.taxi.sql import bigquery_identifier, bigquery_script

    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    script = bigquery_script(script_name, log=bigquery_identifier(hook.project_id, dataset, BQ_LOG))
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("target_table", "STRING", f"{service}_tripdata"),
            bigquery.ScalarQueryParameter("first", "DATE", date(year, 1, 1)),
            bigquery.ScalarQueryParameter("last", "DATE", date(year + 1, 1, 1)),
        ]
    )
    try:
        return list(client.query(script, job_config=config).result())
    except NotFound:  # no dataset or log yet
        return []


def bigquery_counts(dataset: str, service: str, year: int, gcp_conn_id: str) -> Counts:
    """The ``loaded`` rows of BigQuery's ingestion log, latest per month."""
    counts: Counts = {}
    rows = _bigquery_rows("bigquery/report_rows.sql", dataset, service, year, gcp_conn_id)
    for row in rows:  # oldest first: the last load of a month wins
        counts[f"{row['month']:%Y-%m}"] = int(row["rows_in_target"])
    return counts


def bigquery_failed(dataset: str, service: str, year: int, gcp_conn_id: str) -> Failed:
    """The months whose latest attempt in BigQuery's ingestion log failed."""
    latest: dict[str, str] = {}
    rows = _bigquery_rows("bigquery/report_status.sql", dataset, service, year, gcp_conn_id)
    for row in rows:  # oldest first: the last attempt of a month wins
        latest[f"{row['month']:%Y-%m}"] = row["status"]
    return {month for month, status in latest.items() if status == "failed"}


def _cell(rows: int | None, failed: bool) -> str:
    shown = "-" if rows is None else str(rows)
    if not failed:
        return shown
    return "failed" if rows is None else f"{shown} (failed)"


def render(
    service: str, year: int, columns: dict[str, Counts], failed: dict[str, Failed] | None = None
) -> list[str]:
    """The report's lines: a header, then one line per month starting with ``YYYY-MM``."""
    names = list(columns)
    failed = failed or {}
    cells = {
        f"{month:%Y-%m}": [
            _cell(columns[n].get(f"{month:%Y-%m}"), f"{month:%Y-%m}" in failed.get(n, set()))
            for n in names
        ]
        for month in _months(year)
    }
    width = max(
        [12, *(len(n) + 2 for n in names), *(len(c) + 2 for r in cells.values() for c in r)]
    )
    lines = ["month  " + "".join(f"{n:>{width}}" for n in names)]
    for key, row in cells.items():
        lines.append(key + "  " + "".join(f"{c:>{width}}" for c in row))
    totals = [sum(c.values()) for c in columns.values()]
    lines.append(f"total    {''.join(f'{t:>{width}}' for t in totals)}")
    lines.append(f"({service}, rows per source month after the last successful load of each)")
    if any(failed.values()):
        lines.append(
            "(failed: the month's latest attempt failed; rows beside it are from its last "
            "successful load, kept as they were)"
        )
    return lines


def report(service: str, year: int, sources: Sequence[Source]) -> list[str]:
    """Ask every configured target; a target that cannot be read is named, not fatal."""
    contract_for(service)
    columns: dict[str, Counts] = {}
    failed: dict[str, Failed] = {}
    for name, counts, failures in sources:
        try:
            columns[name], failed[name] = counts(), failures()
        except Exception as exc:
            log.warning("%s: cannot read its log (%s: %s)", name, type(exc).__name__, exc)
            columns[f"{name}?"] = {}
    return render(service, year, columns, failed)


def configured_sources(service: str, year: int) -> list[Source]:
    """Postgres always (``taxi_postgres``); the lake if its Variable is set or the default
    folder exists; BigQuery if the lake is in GCS and ``google_cloud_default`` exists."""
    import os

    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from include.taxi import settings
    from include.taxi.orchestration import config

    def postgres() -> Counts:
        conninfo, schema = config.postgres_conninfo(), config.postgres_schema()
        return postgres_counts(conninfo, schema, service, year)

    def postgres_failures() -> Failed:
        conninfo, schema = config.postgres_conninfo(), config.postgres_schema()
        return postgres_failed(conninfo, schema, service, year)

    sources: list[Source] = [("postgres", postgres, postgres_failures)]
    lake_url = config.lake_url()
    if (
        lake_url.startswith("gs://")
        or settings.DEFAULT_LAKE.exists()
        or (f"AIRFLOW_VAR_{settings.VAR_LAKE_URL.upper()}" in os.environ)
    ):
        sources.append(
            (
                "lake",
                lambda: lake_counts(lake_url, service, year),
                lambda: lake_failed(lake_url, service, year),
            )
        )
    if lake_url.startswith("gs://"):
        try:
            BaseHook.get_connection(settings.GCP_CONN_ID)
        except AirflowNotFoundException:
            return sources
        dataset = config.bigquery_dataset()
        sources.append(
            (
                "bigquery",
                lambda: bigquery_counts(dataset, service, year, settings.GCP_CONN_ID),
                lambda: bigquery_failed(dataset, service, year, settings.GCP_CONN_ID),
            )
        )
    return sources


def main(argv: Sequence[str]) -> int:
    """``python -m include.taxi.report SERVICE YEAR`` (``make report`` sets up the env)."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: make report SERVICE=green YEAR=2020")
        return 2
    service, year = argv[0], int(argv[1])
    try:
        contract_for(service)
    except ValueError as exc:
        print(exc)
        return 2
    for line in report(service, year, configured_sources(service, year)):
        print(line)
    return 0


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
