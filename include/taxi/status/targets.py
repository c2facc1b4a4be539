"""Which targets this deployment is configured with, and what their logs say.

The one place that decides which targets exist here (``configured``): the Taxi months page and
``make report`` both ask it, then read each target's log through its own reader.

The page runs in the api-server, whose threads also serve the Execution API, and what it reads
is outside input (anyone who can write to the bucket writes lake metadata). So every month read
is parsed strictly (``Month.recorded``: a log row or object with a month that is not
``YYYY-MM`` from 2009-01 to next month is listed as *rejected*, the rest still shows), the month
axis is bounded, each read has a short timeout (``taxi_months_page_timeout_seconds``), and a
target that cannot be read shows a problem that names no host.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterable, Mapping

from include.taxi.load_record import IngestionLog, TargetLog
from include.taxi.status.grid import TARGETS, MonthsView, build

log = logging.getLogger(__name__)

TARGET_NAMES = {
    "postgres": "Postgres",
    "lake": "the lake",
    "bigquery": "BigQuery",
    "models": "the models",
}


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


def collect(logs: Mapping[str, IngestionLog], *, timeout: float | None = None) -> MonthsView:
    """Read every log and build the view; a log that cannot be read becomes a problem shown
    on the page (the other targets still show), never an error page. ``timeout`` bounds each
    read (seconds)."""
    return build(read(logs, timeout=timeout))


def read(logs: Mapping[str, IngestionLog], *, timeout: float | None = None) -> dict[str, TargetLog]:
    """What each log says; one that cannot be read says why (``problem``), naming no host."""
    found: dict[str, TargetLog] = {}
    for target, reader in logs.items():
        try:
            found[target] = reader.records(timeout=timeout)
        except Exception as exc:  # one unreachable target must not hide the others
            log.warning("taxi months: cannot read the %s log: %s", target, exc)
            found[target] = TargetLog(problem=unreadable(target, exc, timeout))
    return found


def page_timeout() -> float:
    from include.taxi import settings
    from include.taxi.orchestration import config

    try:
        return config.months_page_timeout()
    except Exception as exc:  # a bad Variable: the page still answers, with the default
        log.warning("taxi months: %s; using %s s", exc, settings.DEFAULT_MONTHS_PAGE_TIMEOUT)
        return settings.DEFAULT_MONTHS_PAGE_TIMEOUT


def configured(targets: Iterable[str] = TARGETS) -> dict[str, IngestionLog]:
    """The logs of the targets this Airflow is configured with (read when asked), among
    ``targets`` (for the page: those the user may read; the others are not even opened).

    Postgres, and the models taxi_models builds there, when the connection ``taxi_postgres``
    resolves; the lake when ``taxi_lake_url`` is set or its default folder exists; BigQuery
    when the lake is in GCS (``lake_to_bigquery`` loads only from there) and a client for
    ``google_cloud_default`` can be made.
    """
    from include.taxi import settings
    from include.taxi.lake.ingestion_log import LakeLog
    from include.taxi.lake.store import GcsLake, open_lake
    from include.taxi.orchestration import config

    wanted = set(targets)
    logs = _postgres_logs(wanted)
    lake_url = config.lake_url()
    lake = open_lake(lake_url)
    if lake_url == settings.DEFAULT_LAKE.as_uri() and not settings.DEFAULT_LAKE.exists():
        return logs
    if "lake" in wanted:
        logs["lake"] = LakeLog(lake)
    if isinstance(lake, GcsLake) and "bigquery" in wanted:
        try:
            logs["bigquery"] = _bigquery_log(config.bigquery_dataset())
        except Exception as exc:
            log.info("taxi months: no BigQuery (%s)", exc)
    return logs


def _postgres_logs(wanted: set[str]) -> dict[str, IngestionLog]:
    """Postgres' ingestion log and the models log beside it, those of them ``wanted``."""
    from include.taxi.orchestration import config
    from include.taxi.postgres.ingestion_log import PostgresLog
    from include.taxi.postgres.models_log import ModelsLog

    if not wanted & {"postgres", "models"}:
        return {}
    try:
        conninfo, schema = config.postgres_conninfo(), config.postgres_schema()
    except Exception as exc:  # no such connection: this deployment has no Postgres target
        log.info("taxi months: no Postgres (%s)", exc)
        return {}
    found: dict[str, IngestionLog] = {}
    if "postgres" in wanted:
        found["postgres"] = PostgresLog(conninfo, schema)
    if "models" in wanted:
        found["models"] = ModelsLog(conninfo, schema)
    return found


def _bigquery_log(dataset: str) -> IngestionLog:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.taxi import settings
    from include.taxi.bigquery.ingestion_log import BigQueryLog

    hook = BigQueryHook(gcp_conn_id=settings.GCP_CONN_ID, use_legacy_sql=False)
    project = hook.project_id
    return BigQueryLog(hook.get_client(project_id=project), project, dataset)


def collect_configured(targets: Iterable[str] = TARGETS) -> MonthsView:
    """The view of whatever this Airflow is configured with (read at request time), limited
    to ``targets`` (those the user may read: the others are not even read)."""
    return collect(configured(targets), timeout=page_timeout())
