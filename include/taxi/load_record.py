"""What a target's ingestion log says about one service-month, in the same shape for every target.

Postgres keeps a log table, the lake keeps metadata on each object (and a note per failed
write), BigQuery keeps a log table of its own: each target reads its own log
(``postgres.ingestion_log.PostgresLog``, ``lake.ingestion_log.LakeLog``,
``bigquery.ingestion_log.BigQueryLog``) into these records, so the Taxi months page,
``make report`` and ``taxi_daily``'s discovery ask every target the same two questions
(``IngestionLog``) and none of them knows another target's SQL or keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.source_version import SourceVersion

LOADED, UNCHANGED, FAILED = "loaded", "unchanged", "failed"
"""The statuses a log records: the month's rows were replaced, left alone, or not replaced."""
SHOWN_VALUE_CHARS = 80


@dataclass(frozen=True)
class QualityWarning:
    rule: str
    level: str
    message: str


@dataclass(frozen=True)
class LoadRecord:
    """One target's knowledge of one service-month, as its log tells it."""

    target: str
    service: Service
    month: Month
    status: str
    """``loaded``, ``unchanged`` or ``failed`` (a lake object or BigQuery log row: ``loaded``)."""
    rows: int | None = None
    run_id: str | None = None
    at: datetime | None = None
    error: str | None = None
    source: SourceVersion | None = None
    """The source file loaded (Postgres, lake) or the lake file BigQuery loaded (its ``url``
    and the ``sha256`` of the source file; no size or dates: HEAD never sees a lake file)."""
    warnings: tuple[QualityWarning, ...] = ()
    contract: str | None = None
    """The fingerprint of the contract the rows were shaped by (None in older logs)."""

    @property
    def sha256(self) -> str | None:
        return self.source.sha256 if self.source else None


@dataclass(frozen=True)
class Rejected:
    """A log row or lake object left off the grid because what it says is not readable."""

    target: str
    where: str
    """Which object or log row, e.g. ``yellow/2021/yellow_tripdata_2021-01.parquet``."""
    value: str
    """The month as stored (shortened), e.g. ``'9999-12'``; empty if it has none."""
    reason: str


Key = tuple[Service, Month]


@dataclass(frozen=True)
class TargetLog:
    """What one target's log says: per (service, month) the latest attempt and latest load."""

    latest: dict[Key, LoadRecord] = field(default_factory=dict)
    loads: dict[Key, LoadRecord] = field(default_factory=dict)
    problem: str | None = None
    """Why the log could not be read (shown on the page), None if it was."""
    rejected: tuple[Rejected, ...] = ()


class IngestionLog(Protocol):
    """One target's log, read; the same two questions of every target."""

    target: str

    def last_load(self, service: Service, month: Month) -> LoadRecord | None:
        """The month's last successful load, None if it was never loaded."""
        ...

    def records(self, *, timeout: float | None = None) -> TargetLog:
        """Every month's latest attempt and latest load; ``timeout`` bounds each read."""
        ...


def parse_warnings(value: object) -> tuple[QualityWarning, ...]:
    """Warnings as any writer stored them: a list (or JSON text of one) of {rule, level,
    message} objects or plain strings; anything unreadable becomes one message, not an error."""
    if value is None or value == "":
        return ()
    if isinstance(value, str | bytes):
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


def cut(text: str, limit: int = 4 * SHOWN_VALUE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def shown(value: object) -> str:
    """A stored value as the page lists it: its repr, cut short (it may be any size)."""
    return cut(repr(value), SHOWN_VALUE_CHARS)


def after(a: datetime | None, b: datetime | None) -> bool:
    """``a`` is later than ``b`` (anything is later than an unknown ``b``)."""
    return b is None or (a is not None and utc(a) > utc(b))


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
