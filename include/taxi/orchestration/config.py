"""Configuration read at run time (never at DAG parse time): Variables and Connections.

Every name comes from ``include.taxi.settings``; a value a task cannot use fails the task
without retries, naming the Variable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

from include.taxi import settings

if TYPE_CHECKING:
    from include.taxi.sources.http import DownloadLimits

DAILY_TARGETS = {"postgres": "taxi_to_postgres", "lake": "taxi_to_lake"}
"""What ``taxi_daily`` can feed: target name → the DAG it triggers."""
LAKE_TO_BIGQUERY = "lake_to_bigquery"
"""Triggered by ``taxi_daily`` (lake target) for lake months BigQuery's log does not hold."""


def source_kind() -> str:
    """Variable ``taxi_source``: ``mirror`` (default) or ``tlc``."""
    kind = str(Variable.get(settings.VAR_SOURCE, default=settings.DEFAULT_SOURCE)).strip().lower()
    if kind not in ("mirror", "tlc"):
        raise AirflowFailException(
            f"Variable {settings.VAR_SOURCE} is {kind!r}: use mirror (the course's csv.gz "
            "mirror at taxi_source_url) or tlc (the TLC's parquet files at taxi_tlc_url)"
        )
    return kind


def source_base(kind: str | None = None) -> str:
    """The base URL of the chosen source: ``taxi_source_url`` (mirror) or ``taxi_tlc_url``."""
    if (kind or source_kind()) == "tlc":
        return str(Variable.get(settings.VAR_TLC_URL, default=settings.DEFAULT_TLC_URL))
    return str(Variable.get(settings.VAR_SOURCE_URL, default=settings.DEFAULT_SOURCE_URL))


def postgres_schema() -> str:
    return str(Variable.get(settings.VAR_POSTGRES_SCHEMA, default=settings.DEFAULT_POSTGRES_SCHEMA))


def lake_url() -> str:
    """Variable ``taxi_lake_url``: ``gs://bucket/prefix``, or a folder (default .data/lake)."""
    return str(Variable.get(settings.VAR_LAKE_URL, default=settings.DEFAULT_LAKE.as_uri()))


def bigquery_dataset() -> str:
    return str(Variable.get(settings.VAR_BQ_DATASET, default=settings.DEFAULT_BQ_DATASET))


def postgres_conninfo(conn_id: str = settings.POSTGRES_CONN_ID) -> str:
    """A libpq URI for the Airflow connection, keeping libpq options (sslmode, ...) from extra."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id, sqlalchemy_scheme="postgresql")
    uri: str = hook.get_uri()
    extras = {
        key: value
        for key, value in hook.connection.extra_dejson.items()
        if key not in hook.ignored_extra_options
    }
    return f"{uri}?{urlencode(extras)}" if extras else uri


def _number(name: str, default: float) -> float:
    value = Variable.get(name, default=str(default))
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise AirflowFailException(f"Variable {name} is {value!r}: expected a positive number")
    return number


def download_limits() -> DownloadLimits:
    """What one source file may cost (sizes, deadline, redirect hosts); generous defaults in
    ``include/taxi/settings.py``, each overridable by its Variable."""
    from include.taxi.sources.http import DownloadLimits

    hosts = Variable.get(settings.VAR_REDIRECT_HOSTS, default=settings.DEFAULT_REDIRECT_HOSTS)
    return DownloadLimits(
        max_bytes=int(
            _number(settings.VAR_MAX_DOWNLOAD_BYTES, settings.DEFAULT_MAX_DOWNLOAD_BYTES)
        ),
        max_csv_bytes=int(_number(settings.VAR_MAX_CSV_BYTES, settings.DEFAULT_MAX_CSV_BYTES)),
        max_parquet_rows=int(
            _number(settings.VAR_MAX_PARQUET_ROWS, settings.DEFAULT_MAX_PARQUET_ROWS)
        ),
        max_row_group_bytes=int(
            _number(settings.VAR_MAX_ROW_GROUP_BYTES, settings.DEFAULT_MAX_ROW_GROUP_BYTES)
        ),
        deadline=_number(settings.VAR_DOWNLOAD_DEADLINE, settings.DEFAULT_DOWNLOAD_DEADLINE),
        redirect_hosts=tuple(h.strip() for h in str(hosts).split(",") if h.strip()),
    )


def source_settings() -> dict[str, Any]:
    """What every download takes, as keyword arguments: the source kind, its base URL, the
    download limits (read once per task, so all three come from the same Variables)."""
    kind = source_kind()
    return {"source_kind": kind, "source_base": source_base(kind), "limits": download_limits()}


def lookback_months() -> int:
    value = Variable.get(settings.VAR_DAILY_LOOKBACK, default=str(settings.DEFAULT_DAILY_LOOKBACK))
    try:
        return int(value)
    except ValueError:
        raise AirflowFailException(
            f"Variable {settings.VAR_DAILY_LOOKBACK} is {value!r}: expected a whole number"
        ) from None


def daily_targets() -> list[str]:
    """Variable ``taxi_daily_targets``: which monthly DAGs taxi_daily feeds (comma-separated)."""
    value = str(Variable.get(settings.VAR_DAILY_TARGETS, default=settings.DEFAULT_DAILY_TARGETS))
    targets = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in targets if t not in DAILY_TARGETS]
    if unknown:
        raise AirflowFailException(
            f"{settings.VAR_DAILY_TARGETS} names {', '.join(unknown)}: "
            f"use {', '.join(DAILY_TARGETS)}"
        )
    return targets


def months_page_timeout() -> float:
    """Variable ``taxi_months_page_timeout_seconds``: each read of the Taxi months page."""
    return _number(settings.VAR_MONTHS_PAGE_TIMEOUT, settings.DEFAULT_MONTHS_PAGE_TIMEOUT)
