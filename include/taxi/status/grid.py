"""The state of every service-month in every target, decided from what the logs say.

What the "Taxi months" page (``plugins/taxi_months.py``, ``status/page.py``) and its JSON
show: for each service a month × target grid (Postgres, lake, BigQuery, and the dbt models
built over Postgres) whose cells say
*loaded*, *unchanged*, *stale*, *failed*, *missing* or *not published*, with row counts,
quality warnings and the Airflow run that wrote them. The logs are read by each target's own
reader (``status/targets.py`` picks them); ``build`` here is pure, no I/O, so the rules are
tested without any database. The source is never asked (no HEAD per view): *stale* means a
log has already seen a newer source version than the one the target holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.taxi.load_record import (
    FAILED,
    LOADED,
    UNCHANGED,
    LoadRecord,
    QualityWarning,
    Rejected,
    TargetLog,
    after,
    utc,
)
from include.taxi.months import Month
from include.taxi.services import Service

LOAD_TARGETS = ("postgres", "lake", "bigquery")
"""Where the loads put a month's raw trips (``make report`` counts these)."""
TARGETS = (*LOAD_TARGETS, "models")
"""``models``: taxi_models' dbt models of the month in Postgres (postgres/models_log.py)."""
DAG_OF_TARGET = {
    "postgres": "taxi_to_postgres",
    "lake": "taxi_to_lake",
    "bigquery": "lake_to_bigquery",
    "models": "taxi_models",
}
"""The DAG whose runs write each target: a cell's run link is ``/dags/{dag}/runs/{run_id}``."""
UPSTREAM = {"bigquery": "lake", "models": "postgres"}
"""The target each one is built from: its month is stale once that one loaded it again."""

STALE, MISSING, NOT_PUBLISHED = "stale", "missing", "not_published"
STATES = (LOADED, UNCHANGED, STALE, FAILED, MISSING, NOT_PUBLISHED)
STATE_HELP = {
    LOADED: "the month's rows are in the target, from the newest source version any log has seen",
    UNCHANGED: "loaded; the latest run found the source unchanged and left it alone",
    STALE: "loaded, but a log has since seen a newer version of the source (republished)",
    FAILED: "the latest attempt failed; any earlier load of the month is kept as it was",
    MISSING: "published (another target or the neighbouring months have it) but not loaded here",
    NOT_PUBLISHED: "no log and no lake object knows this month: not published when last asked",
}
MAX_AXIS_MONTHS = 1200
"""A hundred years: far above any real axis (2009-01 to next month), a guard against a loop."""
MAX_REJECTED_SHOWN = 100
"""A bucket full of foreign objects lists the first ones and a count, not a page per object."""


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


def _axis(known: Iterable[tuple[Service, Month]]) -> list[Month]:
    """Every month from the first to the last any log knows; a ValueError past
    MAX_AXIS_MONTHS (the readers only pass recorded months, so that is a bug, never a page
    that builds forever)."""
    months = [month for _, month in known]
    if not months:
        return []
    first, last = min(months), max(months)
    if last.index - first.index >= MAX_AXIS_MONTHS:
        raise ValueError(f"a month axis {first}..{last} is longer than {MAX_AXIS_MONTHS} months")
    return Month.span(first, last)


def _newest_source(records: Iterable[LoadRecord]) -> LoadRecord | None:
    """The latest observation of the source file (by when it was logged) among the records."""
    newest = None
    for record in records:
        seen = record.source and record.source.bytes is not None and record.at is not None
        if seen and (newest is None or after(record.at, newest.at)):
            newest = record
    return newest


def _stamp(record: LoadRecord | None) -> str | None:
    return utc(record.at).isoformat(timespec="seconds") if record and record.at else None


def _stale(
    target: str, held: LoadRecord, newest: LoadRecord | None, upstream: LoadRecord | None
) -> str | None:
    """Why the month a target holds is out of date (None: it is not): BigQuery against the
    lake's file, the models against Postgres' load, the others against the newest source
    version any log saw."""
    if target == "models":
        if upstream and upstream.at and after(upstream.at, held.at):
            return f"Postgres reloaded the month on {_stamp(upstream)}, after its models were built"
        return None
    lake_load = upstream
    if target == "bigquery":
        if lake_load and lake_load.sha256 and held.sha256 and lake_load.sha256 != held.sha256:
            return "the lake holds a newer file of this month than BigQuery loaded"
        return None
    if newest is None or newest.source is None or held.source is None:
        return None
    seen = newest.source
    if not held.source.same_as(seen.bytes, seen.etag, seen.last_modified) and after(
        newest.at, held.at
    ):
        return f"the {newest.target} log saw a newer source version on {_stamp(newest)}"
    return None


def _failed_cell(latest: LoadRecord, load: LoadRecord | None, dag: str) -> Cell:
    kept = f"; the load of {_stamp(load)} ({load.rows} rows) is kept" if load else ""
    return Cell(
        FAILED,
        load.rows if load else None,
        latest.run_id,
        dag,
        _stamp(latest),
        f"{latest.error or 'failed'}{kept}",
        load.warnings if load else (),
    )


def _cell(
    target: str,
    latest: LoadRecord | None,
    load: LoadRecord | None,
    newest: LoadRecord | None,
    upstream: LoadRecord | None,
) -> Cell | None:
    """The cell of a target that knows the month; None if it does not. ``upstream``: the load
    a target is built from (BigQuery: the lake's, the models: Postgres')."""
    dag = DAG_OF_TARGET[target]
    if latest is not None and latest.status == FAILED:
        return _failed_cell(latest, load, dag)
    held = load or latest
    if held is None:
        return None
    at = _stamp(held)
    if (reason := _stale(target, held, newest, upstream)) is not None:
        return Cell(STALE, held.rows, held.run_id, dag, at, reason, held.warnings)
    if latest is not None and latest.status == UNCHANGED:
        return Cell(
            UNCHANGED,
            latest.rows if latest.rows is not None else held.rows,
            held.run_id,
            dag,
            at,
            f"loaded {at}; found unchanged at the source {_stamp(latest)}",
            held.warnings,
        )
    return Cell(LOADED, held.rows, held.run_id, dag, at, f"loaded {at}", held.warnings)


def _missing_detail(target: str, state: str, upstream: LoadRecord | None) -> str:
    """What a cell without the month says; the models' says whether Postgres could feed them."""
    if target != "models" or state != MISSING:
        return STATE_HELP[state]
    if upstream is None:
        return "Postgres does not hold this month, so no models can be built from it"
    return "Postgres holds this month; no taxi_models run built its models yet"


def _row(
    logs: dict[str, TargetLog], service: Service, month: Month, span: tuple[Month, Month] | None
) -> MonthRow:
    """One month of a service across the targets (``span``: its first and last load)."""
    key = (service, month)
    observed = [r for log in logs.values() for r in (log.latest.get(key), log.loads.get(key)) if r]
    newest = _newest_source(observed)
    upstream = {
        downstream: logs[source].loads.get(key) if source in logs else None
        for downstream, source in UPSTREAM.items()
    }
    cells = {}
    for target, log in logs.items():
        cell = _cell(target, log.latest.get(key), log.loads.get(key), newest, upstream.get(target))
        if cell is None:
            published = bool(observed) or (span is not None and span[0] < month < span[1])
            state = MISSING if published else NOT_PUBLISHED
            cell = Cell(state, detail=_missing_detail(target, state, upstream.get(target)))
        cells[target] = cell
    return MonthRow(str(month), cells)


def build(logs: dict[str, TargetLog], *, now: datetime | None = None) -> MonthsView:
    """Decide every cell. ``logs`` holds the targets that are configured (others are left out).

    Months run, for every service, from the first to the last month any log knows of any
    service, so the grids line up. A target without the month is *missing* when the month is
    known to be published (some target saw its file, or it lies between the service's first
    and newest loads), else *not published*.
    """
    ordered = {t: logs[t] for t in TARGETS if t in logs}
    known = {key for log in ordered.values() for key in (*log.latest, *log.loads)}
    axis = _axis(known)
    services = []
    for service in Service:
        if not any(s == service for s, _ in known):
            continue
        loaded = [m for log in ordered.values() for (s, m) in log.loads if s == service]
        span = (min(loaded), max(loaded)) if loaded else None
        rows = [_row(ordered, service, month, span) for month in axis]
        services.append(ServiceView(str(service), rows))
    problems = {t: problem for t, log in ordered.items() if (problem := log.problem)}
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    rejected = [r for log in ordered.values() for r in log.rejected]
    shown = rejected[:MAX_REJECTED_SHOWN]
    return MonthsView(list(ordered), services, problems, stamp, shown, len(rejected))
