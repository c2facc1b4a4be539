"""The models log: which source months taxi_models built in Postgres, and whether their tests
passed.

Written by taxi_models' last task once every model and test task of the run is done (one row
per service of each month it built: ``loaded`` with fct_trips' rows of that service-month, or
``failed`` naming the tasks that failed), read by the Taxi months page's Models column. A log,
not a count of fct_trips per view: the page stays one small query however many trips there
are, a built month whose tests failed shows as failed (fct_trips alone cannot say so), and each
cell links to the run that built it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from psycopg import sql

from include.taxi.load_record import FAILED, LOADED, LoadRecord, Rejected, TargetLog, cut, shown
from include.taxi.months import Month
from include.taxi.postgres import ingestion_log, session
from include.taxi.services import Service
from include.taxi.sql import statements

LOG_TABLE = "taxi_models_log"
TARGET = "models"
FCT_TRIPS = "fct_trips"
MAX_ERROR_CHARS = 2000


def _log(schema: str) -> sql.Composable:
    return sql.Identifier(schema, LOG_TABLE)


def ensure(cur: session.Session, schema: str) -> None:
    """Create the log table once (under the DDL lock, as the ingestion log)."""
    if session.existing_columns(cur, schema, LOG_TABLE):
        return
    session.advisory_lock(cur, schema, session.DDL_KEY)
    session.run(
        cur,
        "postgres/ensure_models_log.sql",
        schema=sql.Identifier(schema),
        log=_log(schema),
        log_index=sql.Identifier(f"{LOG_TABLE}_month_idx"),
    )


def month_rows(cur: session.Session, schema: str, month: date) -> dict[str, int]:
    """fct_trips' rows of ``month`` per service; empty when fct_trips was never built."""
    if not session.existing_columns(cur, schema, FCT_TRIPS):
        return {}
    (statement,) = statements(
        "postgres/models_month_rows.sql", fct_trips=sql.Identifier(schema, FCT_TRIPS)
    )
    cur.execute(statement, (month,))
    return {str(service): int(n) for service, n in cur.fetchall()}


def loaded_services(cur: session.Session, schema: str, month: date) -> set[str]:
    """The services Postgres holds a load of ``month`` for (its ingestion log says)."""
    if not session.existing_columns(cur, schema, ingestion_log.LOG_TABLE):
        return set()
    (statement,) = statements(
        "postgres/loaded_services.sql", log=sql.Identifier(schema, ingestion_log.LOG_TABLE)
    )
    cur.execute(statement, (month,))
    return {str(service) for (service,) in cur.fetchall()}


def record_build(
    conninfo: str, schema: str, months: Iterable[Month], run_id: str, failed: list[str]
) -> dict[str, dict[str, int]]:
    """Log a taxi_models run's months in one transaction: ``loaded`` per service when no task
    failed (``failed`` empty), else ``failed`` naming the tasks. A month's services are those
    fct_trips holds for it and those Postgres loaded (a service whose build failed has no
    fct_trips rows but still gets its failed row). Returns the rows per month and service."""
    status = FAILED if failed else LOADED
    error = cut(f"failed tasks: {', '.join(failed)}", MAX_ERROR_CHARS) if failed else None
    built: dict[str, dict[str, int]] = {}
    with session.connect(conninfo) as cur:
        ensure(cur, schema)
        (insert,) = statements("postgres/insert_models_log.sql", log=_log(schema))
        for month in months:
            rows = month_rows(cur, schema, month.first_day)
            for service in sorted(set(rows) | loaded_services(cur, schema, month.first_day)):
                count = rows.get(service, 0)
                cur.execute(insert, (service, month.first_day, status, count, run_id, error))
            built[str(month)] = rows
        cur.commit()
    return built


class ModelsLog:
    """The models log, read: what taxi_models built per service-month (the Taxi months page)."""

    target = TARGET

    def __init__(self, conninfo: str, schema: str) -> None:
        self.conninfo, self.schema = conninfo, schema

    def last_load(self, service: Service, month: Month) -> LoadRecord | None:
        """The month's last successful build, None if it was never built."""
        return self.records().loads.get((service, month))

    def records(self, *, timeout: float | None = None) -> TargetLog:
        """The latest build attempt and latest successful build per service-month."""
        with session.connect(self.conninfo, timeout=timeout) as cur:
            if not session.existing_columns(cur, self.schema, LOG_TABLE):
                return TargetLog()  # no run of taxi_models yet: every month is "missing"
            (statement,) = statements("postgres/models_log_records.sql", log=_log(self.schema))
            cur.execute(statement)
            rows = cur.fetchall()
        latest: dict[tuple[Service, Month], LoadRecord] = {}
        loads: dict[tuple[Service, Month], LoadRecord] = {}
        rejected: list[Rejected] = []
        for kind, *row in rows:
            try:
                record = _record(row)
            except ValueError as exc:
                where = f"{self.schema}.{LOG_TABLE}, {row[0]} of source_month {row[1]}"
                rejected.append(Rejected(TARGET, where, shown(row[1]), cut(str(exc))))
                continue
            (latest if kind == "latest" else loads)[(record.service, record.month)] = record
        return TargetLog(latest, loads, rejected=tuple(rejected))


def _record(row: list[Any]) -> LoadRecord:
    """A row of models_log_records.sql; a ValueError for a service or month that is not one."""
    service, month, status, rows, run_id, at, error = row
    return LoadRecord(
        TARGET, Service.parse(service), Month.recorded(month), status, rows, run_id, at, error
    )
