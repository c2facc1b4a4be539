"""BigQuery's ingestion log, read: which lake file each month of a trip table was loaded from.

The log itself is written by the load's own transaction (``bigquery/month.py``,
``replace_month.sql``) and by ``record_failure``; this is its one reader, for the Taxi months
page, ``make report``, ``taxi_daily``'s discovery and the loader's "unchanged?" check.
"""

from __future__ import annotations

from typing import Any

from include.taxi.bigquery.month import LOG_TABLE
from include.taxi.bigquery.month import last_load as logged_load
from include.taxi.contract import contract_for
from include.taxi.load_record import (
    LOADED,
    LoadRecord,
    Rejected,
    TargetLog,
    after,
    cut,
    parse_warnings,
    shown,
)
from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion
from include.taxi.sql import bigquery_identifier, bigquery_script

TARGET = "bigquery"
_OPTIONAL = ("contract_fingerprint", "warnings", "error")
"""Columns a log from an older version may not have yet."""


def _record(service: Service, month: Month, row: Any) -> LoadRecord:
    """A log row as a record; ``source`` is the lake file loaded (its URI and the source's
    sha256: no size or dates, HEAD never asks the lake)."""
    sha256 = row.get("source_sha256") or None
    version = SourceVersion(row["source_uri"] or "", None, None, None, sha256)
    return LoadRecord(
        TARGET,
        service,
        month,
        row["status"],
        row["rows_in_target"],
        row.get("run_id") or None,
        row.get("finished_at"),
        row.get("error"),
        version,
        parse_warnings(row.get("warnings")),
        row.get("contract_fingerprint") or None,
    )


class BigQueryLog:
    """BigQuery's ``taxi_ingestion_log`` in ``project.dataset``, through ``client``."""

    target = TARGET

    def __init__(self, client: Any, project: str, dataset: str) -> None:
        self.client, self.project, self.dataset = client, project, dataset

    @property
    def table_id(self) -> str:
        return f"{self.project}.{self.dataset}.{LOG_TABLE}"

    def last_load(self, service: Service, month: Month) -> LoadRecord | None:
        """The month's last successful load; None if never loaded (or no log yet)."""
        from google.api_core.exceptions import NotFound

        try:
            row = logged_load(
                self.client, self.project, self.dataset, contract_for(service), month.first_day
            )
        except NotFound:  # no dataset or log table yet: never loaded
            return None
        if row is None:
            return None
        return _record(service, month, row)

    def records(self, *, timeout: float | None = None) -> TargetLog:
        """The latest attempt and the latest load per table-month.

        The log is one small row per attempt, so it is read whole and reduced here.
        ``timeout`` bounds each request and the query job itself (no retries: the page shows
        the problem instead)."""
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        bounded: dict[str, Any] = {"timeout": timeout, "retry": None} if timeout else {}
        job_bounded = {**bounded, "job_retry": None} if timeout else {}
        try:
            columns = {f.name for f in self.client.get_table(self.table_id, **bounded).schema}
        except NotFound:
            return TargetLog(problem=f"no {self.table_id} yet: nothing was loaded into BigQuery")
        optional = {
            name: name if name in columns else f"CAST(NULL AS STRING) AS {name}"
            for name in _OPTIONAL
        }
        log = bigquery_identifier(self.project, self.dataset, LOG_TABLE)
        query = bigquery_script("bigquery/log_records.sql", log=log, **optional)
        config = bigquery.QueryJobConfig(job_timeout_ms=int(timeout * 1000) if timeout else None)
        job = self.client.query(query, job_config=config, **job_bounded)
        return self._reduced(job.result(**job_bounded))

    def _reduced(self, rows: Any) -> TargetLog:
        """The latest attempt and latest load per (service, month) of the log's rows."""
        latest: dict[tuple[Service, Month], LoadRecord] = {}
        loads: dict[tuple[Service, Month], LoadRecord] = {}
        rejected: dict[str, Rejected] = {}
        for row in rows:
            if row["service"] not in Service.__members__.values() or row["month"] is None:
                continue
            try:
                month = Month.recorded(row["month"])
            except ValueError as exc:
                where = f"{self.table_id}, {row['service']} rows of month {row['month']}"
                rejected[where] = Rejected(TARGET, where, shown(row["month"]), cut(str(exc)))
                continue
            record = _record(Service(row["service"]), month, row)
            key = (record.service, month)
            for kept in (latest, loads) if record.status == LOADED else (latest,):
                if key not in kept or after(record.at, kept[key].at):
                    kept[key] = record
        return TargetLog(latest, loads, rejected=tuple(rejected.values()))
