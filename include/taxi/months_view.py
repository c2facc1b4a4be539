"""The state of every service-month in every target, from the ingestion logs alone.

What the "Taxi months" page (``plugins/taxi_months.py``) and its JSON show: for each service a
month × target grid (Postgres, lake, BigQuery) whose cells say *loaded*, *unchanged*, *stale*,
*failed*, *missing* or *not published*, with row counts, quality warnings and the Airflow run
that wrote them. Only the logs are read (Postgres ``taxi_ingestion_log``, the lake objects'
metadata, BigQuery's ``taxi_ingestion_log``), never a trip table, so a page view costs a few
small queries and one lake listing however many rows the warehouse holds; and the source is
never asked (no HEAD per view): *stale* means a log has already seen a newer source version
than the one the target holds.

Reading is split from deciding: ``postgres_records`` / ``lake_records`` /
``bigquery_records`` turn each log into ``Record``s; ``build`` (pure, no I/O) decides the
states, so the rules are tested without any database.

The page runs in the api-server, whose threads also serve the Execution API, and what it reads
is outside input (anyone who can write to the bucket writes lake metadata). So every month read
is parsed strictly (``Month.recorded``: a log row or object with a month that is not
``YYYY-MM`` from 2009-01 to next month is listed as *rejected*, the rest still shows), the month
axis is bounded, each read has a short timeout (``taxi_months_page_timeout_seconds``), and a
target that cannot be read shows a problem that names no host.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from include.taxi.contract import SERVICES, contract_for, table_name
from include.taxi.months import Month
from include.taxi.postgres import session
from include.taxi.postgres.ingestion_log import LOG_TABLE
from include.taxi.sql import bigquery_identifier, statements

if TYPE_CHECKING:
    from include.taxi.lake.store import Lake, LakeObject

log = logging.getLogger(__name__)

TARGETS = ("postgres", "lake", "bigquery")
DAG_OF_TARGET = {
    "postgres": "taxi_to_postgres",
    "lake": "taxi_to_lake",
    "bigquery": "lake_to_bigquery",
}
"""The DAG whose runs write each target: a cell's run link is ``/dags/{dag}/runs/{run_id}``."""

LOADED, UNCHANGED, STALE, FAILED, MISSING, NOT_PUBLISHED = (
    "loaded",
    "unchanged",
    "stale",
    "failed",
    "missing",
    "not_published",
)
STATES = (LOADED, UNCHANGED, STALE, FAILED, MISSING, NOT_PUBLISHED)
STATE_HELP = {
    LOADED: "the month's rows are in the target, from the newest source version any log has seen",
    UNCHANGED: "loaded; the latest run found the source unchanged and left it alone",
    STALE: "loaded, but a log has since seen a newer version of the source (republished)",
    FAILED: "the latest attempt failed; any earlier load of the month is kept as it was",
    MISSING: "published (another target or the neighbouring months have it) but not loaded here",
    NOT_PUBLISHED: "no log and no lake object knows this month: not published when last asked",
}
WARNINGS_KEY = "taxi.warnings"
RUN_ID_KEY = "taxi.run_id"
_LAKE_MONTH = re.compile(r"_tripdata_(\d{4}-\d{2})\.parquet$")
TARGET_NAMES = {"postgres": "Postgres", "lake": "the lake", "bigquery": "BigQuery"}
MAX_AXIS_MONTHS = 1200
"""A hundred years: far above any real axis (2009-01 to next month), a guard against a loop."""
SHOWN_VALUE_CHARS = 80
MAX_REJECTED_SHOWN = 100
"""A bucket full of foreign objects lists the first ones and a count, not a page per object."""

Version = tuple[int | None, str | None, str | None]
"""Source size, ETag, Last-Modified: what a HEAD can tell (see SourceVersion.same_as)."""


@dataclass(frozen=True)
class QualityWarning:
    rule: str
    level: str
    message: str


@dataclass(frozen=True)
class Record:
    """One target's knowledge of one service-month, as its log tells it."""

    target: str
    service: str
    month: str
    status: str
    """``loaded``, ``unchanged`` or ``failed`` (a lake object or BigQuery log row: ``loaded``)."""
    rows: int | None = None
    run_id: str | None = None
    at: datetime | None = None
    error: str | None = None
    version: Version | None = None
    sha256: str | None = None
    """Of the source file (Postgres, lake) or of the lake file BigQuery loaded."""
    warnings: tuple[QualityWarning, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A log row or lake object left off the grid because what it says is not readable."""

    target: str
    where: str
    """Which object or log row, e.g. ``yellow/2021/yellow_tripdata_2021-01.parquet``."""
    value: str
    """The month as stored (shortened), e.g. ``'9999-12'``; empty if it has none."""
    reason: str


@dataclass(frozen=True)
class TargetLog:
    """What one target's log says: per (service, month) the latest attempt and latest load."""

    latest: dict[tuple[str, str], Record] = field(default_factory=dict)
    loads: dict[tuple[str, str], Record] = field(default_factory=dict)
    problem: str | None = None
    """Why the log could not be read (shown on the page), None if it was."""
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True)
class Cell:
    state: str
    rows: int | None = None
    run_id: str | None = None
    dag_id: str | None = None
    at: str | None = None
    detail: str = ""
    warnings: tuple[QualityWarning, ...] = ()


@dataclass(frozen=True)
class MonthRow:
    month: str
    cells: dict[str, Cell]

    @property
    def rows(self) -> int | None:
        """The month's rows for the chart: the first target (in TARGETS order) that holds it."""
        for target in TARGETS:
            cell = self.cells.get(target)
            if cell and cell.rows is not None and cell.state != FAILED:
                return cell.rows
        return None


@dataclass(frozen=True)
class ServiceView:
    service: str
    months: list[MonthRow]


@dataclass(frozen=True)
class MonthsView:
    targets: list[str]
    services: list[ServiceView]
    problems: dict[str, str]
    generated_at: str
    rejected: list[Rejected] = field(default_factory=list)
    """The first MAX_REJECTED_SHOWN of them; ``rejected_total`` counts them all."""
    rejected_total: int = 0

    def as_json(self) -> dict[str, Any]:
        """The page's data, for ``/taxi-months/api/months``."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))  # tuples become lists
        data["states"] = STATE_HELP
        return data


# --- reading the logs ----------------------------------------------------------------------


def parse_warnings(value: object) -> tuple[QualityWarning, ...]:
    """Warnings as any writer stored them: a list (or JSON text of one) of {rule, level,
    message} objects or plain strings; anything unreadable becomes one message, not an error."""
    if value is None or value == "":
        return ()
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return (QualityWarning("warning", "warn", str(value)[:500]),)
    if isinstance(value, dict):
        value = value.get("warnings", [value])
    if not isinstance(value, list):
        value = [value]
    found = []
    for item in value:
        if isinstance(item, dict):
            found.append(
                QualityWarning(
                    str(item.get("rule", "warning")),
                    str(item.get("level", "warn")),
                    str(item.get("message", "")),
                )
            )
        elif item:
            found.append(QualityWarning("warning", "warn", str(item)))
    return tuple(found)


def _cut(text: str, limit: int = 4 * SHOWN_VALUE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _shown(value: object) -> str:
    """A stored value as the page lists it: its repr, cut short (it may be any size)."""
    return _cut(repr(value), SHOWN_VALUE_CHARS)


def postgres_records(conninfo: str, schema: str, *, timeout: float | None = None) -> TargetLog:
    """The Postgres log's latest attempt and latest load per table-month.

    Measured (2026-12-01, a shared 2-core machine under load): a 24,480-row log (3 services ×
    204 months × 40 attempts) takes 0.5-0.8 s for the whole page, ~0.3 s of it sorting the log
    for DISTINCT ON; rendering the 231 KiB page takes 0.03-0.05 s. ``timeout`` bounds the
    connect and the query (a load or a migration holding the log's lock ends it)."""
    services = {table_name(contract_for(s)): s for s in SERVICES}
    latest: dict[tuple[str, str], Record] = {}
    loads: dict[tuple[str, str], Record] = {}
    rejected: dict[str, Rejected] = {}
    with session.connect(conninfo, timeout=timeout) as cur:
        columns = session.existing_columns(cur, schema, LOG_TABLE)
        if not columns:
            return TargetLog(problem=f"no {schema}.{LOG_TABLE} yet: nothing was loaded")
        warnings = sql.Identifier("warnings") if "warnings" in columns else sql.SQL("NULL::jsonb")
        (statement,) = statements(
            "postgres/months_view.sql", log=sql.Identifier(schema, LOG_TABLE), warnings=warnings
        )
        cur.execute(statement)
        rows = cur.fetchall()
    for (
        kind,
        service,
        month,
        status,
        rows_in_target,
        run_id,
        at,
        error,
        size,
        etag,
        modified,
        sha256,
        found_warnings,
    ) in rows:
        if service not in services.values():
            continue
        try:
            name = str(Month.recorded(month))
        except ValueError as exc:
            where = f"{schema}.{LOG_TABLE}, {service} rows of source_month {month}"
            rejected[where] = Rejected("postgres", where, _shown(month), _cut(str(exc)))
            continue
        record = Record(
            "postgres",
            service,
            name,
            status,
            rows_in_target,
            run_id,
            at,
            error,
            (size, etag, modified),
            sha256,
            parse_warnings(found_warnings),
        )
        (latest if kind == "latest" else loads)[(service, record.month)] = record
    return TargetLog(latest, loads, rejected=tuple(rejected.values()))


def _lake_record(service: str, name: str, obj: LakeObject) -> Record | None:
    """The record of one lake object; None if it is no month of ``service``; a ValueError
    naming the value if what it says about itself is unreadable."""
    if obj.unreadable:
        raise ValueError(obj.unreadable)
    meta = obj.metadata
    match = _LAKE_MONTH.search(name)
    named = match.group(1) if match else None
    stored = meta.get("taxi.month") or None
    if stored is None and named is None:
        return None
    if meta.get("taxi.service", service) != service:
        return None
    month = str(Month.recorded(stored if stored is not None else named))
    if named is not None and month != named:
        raise ValueError(f"taxi.month {_shown(stored)} differs from the month in its name")
    rows = meta.get("taxi.rows")
    size = meta.get("taxi.source_bytes")
    for key, value in (("taxi.rows", rows), ("taxi.source_bytes", size)):
        if value and not value.isdigit():
            raise ValueError(f"{key} {_shown(value)} is not a whole number")
    return Record(
        "lake",
        service,
        month,
        LOADED,
        int(rows) if rows else None,
        meta.get(RUN_ID_KEY) or None,
        obj.updated,
        None,
        (
            int(size) if size else None,
            meta.get("taxi.source_etag") or None,
            meta.get("taxi.source_last_modified") or None,
        ),
        meta.get("taxi.source_sha256") or None,
        parse_warnings(meta.get(WARNINGS_KEY)),
    )


def lake_records(lake: Lake, *, timeout: float | None = None) -> TargetLog:
    """Every trip object of the lake, from one listing per service (metadata, no download),
    and the failed writes recorded beside them (lake.ingestion_log.failures); an object whose
    month, counts or footer cannot be read is rejected, the others shown."""
    from include.taxi.lake.ingestion_log import failures

    found = {}
    rejected = []
    for service in SERVICES:
        for name, obj in lake.listing(f"{service}/", timeout=timeout).items():
            try:
                record = _lake_record(service, name, obj)
            except ValueError as exc:
                value = obj.metadata.get("taxi.month")
                shown = _shown(value) if value is not None else ""
                rejected.append(Rejected("lake", name, shown, _cut(str(exc))))
                continue
            if record is not None:
                found[(service, record.month)] = record
    latest = dict(found)
    for failure in failures(lake):  # a failed write leaves the object; its record says so
        try:
            key = (failure.service, str(Month.recorded(failure.month)))
        except ValueError as exc:
            rejected.append(Rejected("lake", "a failure record", _shown(failure.month), str(exc)))
            continue
        held = found.get(key)
        if failure.service in SERVICES and (held is None or _after(failure.at, held.at)):
            latest[key] = Record(
                "lake", *key, FAILED, None, failure.run_id or None, failure.at, failure.error
            )
    return TargetLog(latest, found, rejected=tuple(rejected))


def bigquery_records(
    client: Any, project: str, dataset: str, *, timeout: float | None = None
) -> TargetLog:
    """BigQuery's log (loads, and failed attempts with their error): the latest attempt and
    the latest load per table-month.

    The log is one small row per load, so it is read whole and reduced here rather than with
    window functions the emulator may not share with BigQuery. ``timeout`` bounds each request
    and the query job itself (no retries: the page shows the problem instead)."""
    from google.api_core.exceptions import NotFound
    from google.cloud import bigquery

    bounded: dict[str, Any] = {"timeout": timeout, "retry": None} if timeout else {}
    job_bounded = {**bounded, "job_retry": None} if timeout else {}
    table_id = f"{project}.{dataset}.{LOG_TABLE}"
    try:
        columns = {f.name for f in client.get_table(table_id, **bounded).schema}
    except NotFound:
        return TargetLog(problem=f"no {table_id} yet: nothing was loaded into BigQuery")
    warnings, error = (
        name if name in columns else f"CAST(NULL AS STRING) AS {name}"
        for name in ("warnings", "error")
    )
    query = (
        "SELECT service, month, status, rows_in_target, run_id, finished_at, source_sha256, "
        f"{warnings}, {error} FROM {bigquery_identifier(project, dataset, LOG_TABLE)}"
    )
    config = bigquery.QueryJobConfig(job_timeout_ms=int(timeout * 1000) if timeout else None)
    job = client.query(query, job_config=config, **job_bounded)
    found: dict[tuple[str, str], Record] = {}
    rejected: dict[str, Rejected] = {}
    loads: dict[tuple[str, str], Record] = {}
    for row in job.result(**job_bounded):
        if row["service"] not in SERVICES or row["month"] is None:
            continue
        try:
            month = str(Month.recorded(row["month"]))
        except ValueError as exc:
            where = f"{table_id}, {row['service']} rows of month {row['month']}"
            rejected[where] = Rejected("bigquery", where, _shown(row["month"]), _cut(str(exc)))
            continue
        record = Record(
            "bigquery",
            row["service"],
            month,
            row["status"],
            row["rows_in_target"],
            row["run_id"] or None,
            row["finished_at"],
            row["error"],
            None,
            row["source_sha256"],
            parse_warnings(row["warnings"]),
        )
        key = (record.service, record.month)
        for kept in (found, loads) if record.status == LOADED else (found,):
            if key not in kept or _after(record.at, kept[key].at):
                kept[key] = record
    return TargetLog(found, loads, rejected=tuple(rejected.values()))


def _after(a: datetime | None, b: datetime | None) -> bool:
    return b is None or (a is not None and _utc(a) > _utc(b))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- deciding the states -------------------------------------------------------------------


def _months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``; a ValueError past MAX_AXIS_MONTHS (the readers
    only pass parsed months, so that is a bug, never a page that builds forever)."""
    start = int(first[:4]) * 12 + int(first[5:7]) - 1
    stop = int(last[:4]) * 12 + int(last[5:7]) - 1
    if stop - start >= MAX_AXIS_MONTHS:
        raise ValueError(f"a month axis {first}..{last} is longer than {MAX_AXIS_MONTHS} months")
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(start, stop + 1)]


def _same(a: Version, b: Version) -> bool:
    """Same size and ETag (or, without ETags, Last-Modified), as SourceVersion.same_as."""
    if a[0] is None or a[0] != b[0]:
        return False
    if a[1] and b[1]:
        return a[1] == b[1]
    return bool(a[2] and a[2] == b[2])


def _newest_source(records: Iterable[Record]) -> Record | None:
    """The latest observation of the source file (by when it was logged) among the records."""
    newest = None
    for record in records:
        seen = record.version and record.version[0] is not None and record.at is not None
        if seen and (newest is None or _after(record.at, newest.at)):
            newest = record
    return newest


def _stale(
    target: str, held: Record, newest: Record | None, lake_load: Record | None
) -> str | None:
    """Why the month a target holds is out of date (None: it is not): BigQuery against the
    lake's file, the others against the newest source version any log saw."""
    if target == "bigquery":
        if lake_load and lake_load.sha256 and held.sha256 and lake_load.sha256 != held.sha256:
            return "the lake holds a newer file of this month than BigQuery loaded"
        return None
    if (
        newest is not None
        and held.version is not None
        and not _same(held.version, newest.version or (None, None, None))
        and _after(newest.at, held.at)
    ):
        seen = _utc(newest.at).isoformat(timespec="seconds") if newest.at else None
        return f"the {newest.target} log saw a newer source version on {seen}"
    return None


def _cell(
    target: str,
    latest: Record | None,
    load: Record | None,
    newest: Record | None,
    lake_load: Record | None,
) -> Cell | None:
    """The cell of a target that knows the month; None if it does not."""
    if latest is None and load is None:
        return None
    dag = DAG_OF_TARGET[target]
    at = lambda r: _utc(r.at).isoformat(timespec="seconds") if r and r.at else None  # noqa: E731
    if latest is not None and latest.status == FAILED:
        kept = f"; the load of {at(load)} ({load.rows} rows) is kept" if load else ""
        return Cell(
            FAILED,
            load.rows if load else None,
            latest.run_id,
            dag,
            at(latest),
            f"{latest.error or 'failed'}{kept}",
            load.warnings if load else (),
        )
    held = load or latest
    assert held is not None
    run_id = held.run_id
    if (reason := _stale(target, held, newest, lake_load)) is not None:
        return Cell(STALE, held.rows, run_id, dag, at(held), reason, held.warnings)
    if latest is not None and latest.status == UNCHANGED:
        return Cell(
            UNCHANGED,
            latest.rows if latest.rows is not None else held.rows,
            run_id,
            dag,
            at(held),
            f"loaded {at(held)}; found unchanged at the source {at(latest)}",
            held.warnings,
        )
    return Cell(LOADED, held.rows, run_id, dag, at(held), f"loaded {at(held)}", held.warnings)


def build(logs: dict[str, TargetLog], *, now: datetime | None = None) -> MonthsView:
    """Decide every cell. ``logs`` holds the targets that are configured (others are left out).

    Months run, for every service, from the first to the last month any log knows of any
    service, so the grids line up. A target without the month is *missing* when the month is
    known to be published (some target saw its file, or it lies between the service's first
    and newest loads), else *not published*.
    """
    targets = [t for t in TARGETS if t in logs]
    known = {key for t in targets for key in (*logs[t].latest, *logs[t].loads)}
    services = []
    axis = _months_between(min(m for _, m in known), max(m for _, m in known)) if known else []
    for service in SERVICES:
        mine = {m for s, m in known if s == service}
        if not mine:
            continue
        loaded = [m for t in targets for (s, m) in logs[t].loads if s == service]
        span = (min(loaded), max(loaded)) if loaded else None
        rows = []
        for month in axis:
            key = (service, month)
            observed = [
                r for t in targets for r in (logs[t].latest.get(key), logs[t].loads.get(key)) if r
            ]
            newest = _newest_source(observed)
            lake_load = logs["lake"].loads.get(key) if "lake" in logs else None
            cells = {}
            for target in targets:
                cell = _cell(
                    target,
                    logs[target].latest.get(key),
                    logs[target].loads.get(key),
                    newest,
                    lake_load,
                )
                if cell is None:
                    published = bool(observed) or (span is not None and span[0] < month < span[1])
                    cell = Cell(
                        MISSING if published else NOT_PUBLISHED,
                        detail=STATE_HELP[MISSING if published else NOT_PUBLISHED],
                    )
                cells[target] = cell
            rows.append(MonthRow(month, cells))
        services.append(ServiceView(service, rows))
    problems = {t: problem for t in targets if (problem := logs[t].problem)}
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    rejected = [r for t in targets for r in logs[t].rejected]
    shown = rejected[:MAX_REJECTED_SHOWN]
    return MonthsView(targets, services, problems, stamp, shown, len(rejected))


def _timed_out(exc: BaseException) -> bool:
    """Whether a read ended because a timeout fired (ours or the client's), not an answer."""
    import psycopg
    import requests

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return True
    if isinstance(exc, psycopg.OperationalError):
        return "timeout expired" in str(exc)
    from google.api_core.exceptions import DeadlineExceeded, RetryError

    timeouts = (TimeoutError, concurrent.futures.TimeoutError, requests.Timeout)
    return isinstance(exc, (*timeouts, DeadlineExceeded, RetryError))


def unreadable(target: str, exc: BaseException, timeout: float | None) -> str:
    """What the page says about a log it could not read: the kind of failure and what to do,
    never the exception's text (drivers put host names, ports and users in it); the
    api-server's log has the whole error."""
    name = TARGET_NAMES[target]
    if timeout is not None and _timed_out(exc):
        return (
            f"{name[:1].upper()}{name[1:]} did not answer within {timeout:g} s (a lock held by "
            "a load, or a slow or unreachable server); the other targets are shown. Reload "
            "later, or raise taxi_months_page_timeout_seconds"
        )
    return (
        f"{type(exc).__name__}: cannot read the {target} log (the api-server's log says why: "
        f"check the connection and that its server is up)"
    )


def collect(
    *,
    conninfo: str | None,
    schema: str,
    lake: Lake | None = None,
    bigquery: tuple[Any, str, str] | None = None,
    timeout: float | None = None,
) -> MonthsView:
    """Read every configured log and build the view; a log that cannot be read becomes a
    problem shown on the page (the other targets still show), never an error page.
    ``timeout`` bounds each read (seconds)."""
    logs: dict[str, TargetLog] = {}
    readers: list[tuple[str, Any]] = []
    if conninfo:
        readers.append(("postgres", lambda: postgres_records(conninfo, schema, timeout=timeout)))
    if lake is not None:
        readers.append(("lake", lambda: lake_records(lake, timeout=timeout)))
    if bigquery is not None:
        readers.append(("bigquery", lambda: bigquery_records(*bigquery, timeout=timeout)))
    for target, read in readers:
        try:
            logs[target] = read()
        except Exception as exc:  # one unreachable target must not hide the others
            log.warning("taxi months: cannot read the %s log: %s", target, exc)
            logs[target] = TargetLog(problem=unreadable(target, exc, timeout))
    return build(logs)


def _page_timeout() -> float:
    from include.taxi import settings
    from include.taxi.orchestration import config

    try:
        return config.months_page_timeout()
    except Exception as exc:  # a bad Variable: the page still answers, with the default
        log.warning("taxi months: %s; using %s s", exc, settings.DEFAULT_MONTHS_PAGE_TIMEOUT)
        return settings.DEFAULT_MONTHS_PAGE_TIMEOUT


def collect_configured(targets: Iterable[str] = TARGETS) -> MonthsView:
    """The view of whatever this Airflow is configured with (read at request time), limited
    to ``targets`` (those the user may read: the others are not even read).

    Postgres when the connection ``taxi_postgres`` resolves; the lake when ``taxi_lake_url`` is
    set or its default folder exists; BigQuery when the lake is in GCS (``lake_to_bigquery``
    loads only from there) and ``google_cloud_default`` resolves.
    """
    from include.taxi import settings
    from include.taxi.lake.store import GcsLake, open_lake
    from include.taxi.orchestration import config

    wanted = set(targets)
    conninfo: str | None = None
    if "postgres" in wanted:
        try:
            conninfo = config.postgres_conninfo()
        except Exception as exc:  # no such connection: this deployment has no Postgres target
            log.info("taxi months: no Postgres (%s)", exc)
    lake_url = config.lake_url()
    lake: Lake | None = open_lake(lake_url)
    default = lake_url == settings.DEFAULT_LAKE.as_uri()
    if default and not settings.DEFAULT_LAKE.exists():
        lake = None
    bigquery = None
    if isinstance(lake, GcsLake) and "bigquery" in wanted:
        try:
            from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

            hook = BigQueryHook(gcp_conn_id=settings.GCP_CONN_ID, use_legacy_sql=False)
            project = hook.project_id
            bigquery = (hook.get_client(project_id=project), project, config.bigquery_dataset())
        except Exception as exc:
            log.info("taxi months: no BigQuery (%s)", exc)
    return collect(
        conninfo=conninfo,
        schema=config.postgres_schema(),
        lake=lake if "lake" in wanted else None,
        bigquery=bigquery,
        timeout=_page_timeout(),
    )
