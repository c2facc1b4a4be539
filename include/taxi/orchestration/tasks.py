"""One entry point per DAG task: configuration in, the pipeline called, outcomes out.

A DAG file calls exactly one function of this module per task, with the task's arguments and
its context. Configuration is read here at run time (``config``), never at DAG parse time;
Params are validated before any I/O; and ``@outcome`` maps the pipeline's errors to the Airflow
outcome they deserve: a month the source has not published (or that is not in the lake) is
*skipped*, a bad file *fails without retries* (a retry cannot fix it), anything else (network,
database) fails and is retried with backoff.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.taxi.errors import BadSourceFile, LakeSchemaMismatch, NotInLake, SourceNotPublished
from include.taxi.orchestration import config, lineage
from include.taxi.orchestration.assets import (
    LAKE_TRIP_MONTHS,
    LAKE_TRIP_YEARS,
    Target,
    announce_table,
)
from include.taxi.orchestration.plan import parse_pair, year_months
from include.taxi.results import BigQueryMonth, LakeMonth, PostgresMonth, ZonesLoad
from include.taxi.services import Service
from include.taxi.settings import GCP_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def outcome(work: Callable[P, T]) -> Callable[P, T]:
    """Turn the pipeline's errors into Airflow outcomes: skip, fail for good, or retry."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        except (SourceNotPublished, NotInLake) as exc:
            raise AirflowSkipException(str(exc)) from None
        except (BadSourceFile, LakeSchemaMismatch, ValueError) as exc:
            raise AirflowFailException(str(exc)) from None

    return run


def _force(context: Context) -> bool:
    return bool(context["params"].get("force_reload"))


def _warn(context: Context, target: str, result: PostgresMonth | LakeMonth) -> None:
    """One message per month published with quality warnings (include/taxi/quality.py)."""
    if warnings := result.get("warnings"):
        from include.taxi.orchestration.notify import notify_warnings

        callback_context: dict[str, Any] = dict(context)
        notify_warnings(callback_context, target, result["service"], result["month"], warnings)


def _name_map_index(context: Context, service: str, month: str) -> None:
    """The mapped task's label in the UI (``map_index_template="{{ service_month }}"``)."""
    context["service_month"] = f"{service} {month}"  # type: ignore[typeddict-unknown-key]


# --- the tables' events (taxi_to_postgres, taxi_to_lake, lake_to_bigquery) ---------------

CHANGED: dict[Target, dict[str, str]] = {
    "postgres": {"loaded": "rows_in_target"},
    "lake": {"written": "rows", "announced": "rows"},
    "bigquery": {"loaded": "rows_in_target"},
}
"""Per target, the load statuses that changed a month (or re-announce it), and the result's key
holding the rows its table has for the month now."""


def announce_tables(context: Context, target: Target) -> list[str]:
    """The DAG's ``announce_tables``: an event on each table a load of this run changed, from
    the results of the task's upstream tasks (the loads).

    Not in the loads themselves: the first event an alias gives an asset links the two, and
    Airflow 3.3.2 races there: two tasks giving green's table its first event at once both
    insert the link (a duplicate key in ``asset_alias_asset``), and one task is marked
    failed although its load committed. This task runs one at a time across runs
    (``max_active_tis_per_dag=1``), as a teardown: after every load, failed or not (a service
    that loaded is announced though another failed), leaving the run's state to the loads."""
    announced = []
    loads = sorted(context["task"].upstream_task_ids)
    for result in context["ti"].xcom_pull(task_ids=loads) or []:
        rows_key = CHANGED[target].get((result or {}).get("status", ""))
        if rows_key is None:  # unchanged, superseded, skipped or failed: nothing changed
            continue
        pair = parse_pair(result["service"], result["month"])
        announce_table(context, target, *pair, result[rows_key] or 0)
        announced.append(f"{pair[0]} {pair[1]}")
    log.info("%s tables changed by this run: %s", target, ", ".join(announced) or "none")
    return announced


# --- taxi_to_postgres ----------------------------------------------------------------------


@outcome
def load_trips_to_postgres(service: str, month: str, context: Context) -> PostgresMonth:
    """Download one source file and replace its month in Postgres (unless unchanged)."""
    from include.taxi.postgres.load import month_to_postgres

    _name_map_index(context, service, month)
    pair = parse_pair(service, month)
    source, target = lineage.record(context, lineage.postgres_load(*pair))
    result = month_to_postgres(
        *pair,
        **config.source_settings(),
        conninfo=config.postgres_conninfo(),
        schema=config.postgres_schema(),
        force=_force(context),
        run_id=context["run_id"],
    )
    source.source = lineage.source_facts(result)
    target.rows = result.get("rows_written") if result["status"] == "loaded" else 0
    _warn(context, "postgres", result)
    return result


@outcome
def load_zones_to_postgres(context: Context) -> ZonesLoad:
    """Replace the taxi-zone lookup table (small; reloaded with every month)."""
    from include.taxi.postgres.load import zones_to_postgres

    return zones_to_postgres(
        **config.source_settings(),
        conninfo=config.postgres_conninfo(),
        schema=config.postgres_schema(),
    )


# --- taxi_to_lake --------------------------------------------------------------------------


@outcome
def write_month_to_lake(service: str, month: str, context: Context) -> LakeMonth:
    """Source file → contract → parquet → lake; the asset event names the month written.

    A month the lake already holds from this source (and contract) is skipped with no event,
    unless BigQuery's ingestion log does not hold it yet (a GCS lake): then the event is
    emitted again, so a month put by a try that died before its event still gets loaded.
    """
    from include.taxi.lake.load import month_to_lake
    from include.taxi.orchestration.discovery import in_bigquery

    _name_map_index(context, service, month)
    pair = parse_pair(service, month)
    lake_url = config.lake_url()
    source, target = lineage.record(context, lineage.lake_write(*pair))
    result = month_to_lake(
        *pair,
        **config.source_settings(),
        lake_url=lake_url,
        force=_force(context),
        run_id=context["run_id"],
    )
    if result["status"] == "superseded":
        raise AirflowSkipException(
            f"{service} {month}: {result['uri']} holds a newer version of the source than this "
            "run downloaded (an older copy: a lagging mirror, or another run wrote meanwhile); "
            "kept it"
        )
    source.source = lineage.source_facts(result)
    if result["status"] == "written":
        target.rows, target.bytes = result["rows"], result["bytes"]
    _warn(context, "lake", result)
    if result["status"] == "unchanged":
        if in_bigquery(*pair, lake_url=lake_url, dataset=config.bigquery_dataset()):
            raise AirflowSkipException(
                f"{service} {month} unchanged at the source; {result['uri']} already holds it"
            )
        # e.g. an earlier try put the object and died before its event: announce it again
        log.info(
            "%s %s: unchanged in the lake but not in BigQuery's log: announcing it", service, month
        )
        result = result | {"status": "announced", "rows": result["rows"] or 0}
    lake_event = context["outlet_events"][LAKE_TRIP_MONTHS]
    lake_event.extra = {key: result[key] for key in ("service", "month", "uri", "rows")}
    # The event's partition is the month written, also in a manual run (no partition key of
    # its own), or lake_to_bigquery (partitioned) is not triggered by it.
    lake_event.add_partitions(str(pair[1]))
    return result


@outcome
def write_zones_to_lake(context: Context) -> ZonesLoad:
    """Replace the lake's taxi-zone lookup (small; rewritten with every month)."""
    from include.taxi.lake.load import zones_to_lake

    return zones_to_lake(**config.source_settings(), lake_url=config.lake_url())


# --- taxi_year_complete --------------------------------------------------------------------


def lake_year(context: Context) -> dict[str, Any]:
    """taxi_year_complete's ``summarise``: the scheduler saw all twelve month keys of the run's
    year land in the lake; say, per service, which of them the lake holds now, and announce the
    year on LAKE_TRIP_YEARS with the services that are complete."""
    from include.taxi.lake.ingestion_log import LakeLog
    from include.taxi.lake.store import open_lake

    months = year_months(context["dag_run"].partition_key)
    lake = LakeLog(open_lake(config.lake_url()))
    held = {
        str(service): [str(m) for m in months if lake.last_load(service, m) is not None]
        for service in Service
    }
    complete = sorted(service for service, found in held.items() if len(found) == len(months))
    year = str(months[0])[:4]
    log.info("%s: complete in the lake for %s", year, ", ".join(complete) or "no service")
    extra: dict[str, Any] = {"year": year, "complete": complete}
    context["outlet_events"][LAKE_TRIP_YEARS].extra = extra
    return {**extra, "months": held}


# --- lake_to_bigquery ----------------------------------------------------------------------


@outcome
def load_month_to_bigquery(service: str, month: str, context: Context) -> BigQueryMonth:
    """Replace one month of {dataset}.{service}_tripdata from its lake object."""
    from include.taxi.bigquery.load import month_to_bigquery

    _name_map_index(context, service, month)
    pair = parse_pair(service, month)
    lake_url, dataset = config.lake_url(), config.bigquery_dataset()
    source, target = lineage.record(context, lineage.bigquery_load(*pair))
    result = month_to_bigquery(
        *pair,
        lake_url=lake_url,
        dataset=dataset,
        gcp_conn_id=GCP_CONN_ID,
        force=_force(context),
        run_id=context["run_id"],
    )
    source.source = lineage.source_facts(result)
    target.rows = result.get("rows_loaded", 0)
    return result


@outcome
def load_zones_to_bigquery(context: Context) -> ZonesLoad:
    """Replace {dataset}.taxi_zone_lookup from the lake (skipped until it is there)."""
    from include.taxi.bigquery.load import zones_to_bigquery

    return zones_to_bigquery(
        lake_url=config.lake_url(), dataset=config.bigquery_dataset(), gcp_conn_id=GCP_CONN_ID
    )


# --- taxi_daily ----------------------------------------------------------------------------


def months_to_trigger(today: datetime, run_id: str) -> list[dict[str, Any]]:
    """TriggerDagRunOperator kwargs, one per (target DAG, service, month) new or republished at
    the source since that target last took it; with the lake target, also one
    ``lake_to_bigquery`` run per lake month that BigQuery's ingestion log does not hold."""
    from include.taxi.orchestration import discovery

    found = []
    months_back = discovery.recent_months(today.date(), config.lookback_months())
    source = config.source_settings()
    for target in config.daily_targets():
        held = (
            discovery.postgres_versions(config.postgres_conninfo(), config.postgres_schema())
            if target == "postgres"
            else discovery.lake_versions(config.lake_url())
        )
        months = discovery.changed_months(
            list(Service),
            months_back,
            **source,
            held=held,
        )
        found += [
            {
                "trigger_dag_id": config.DAILY_TARGETS[target],
                "conf": {"service": m["service"], "month": m["month"]},
                "trigger_run_id": f"{run_id}__{target}_{m['service']}_{m['month']}",
            }
            for m in months
        ]
        if target == "lake":
            # months whose write's event was lost: load them from the lake directly
            written = {(m["service"], m["month"]) for m in months}
            missing = discovery.missing_in_bigquery(
                list(Service),
                months_back,
                lake_url=config.lake_url(),
                dataset=config.bigquery_dataset(),
            )
            found += [
                {
                    "trigger_dag_id": config.LAKE_TO_BIGQUERY,
                    "conf": {"service": m["service"], "month": m["month"]},
                    "trigger_run_id": f"{run_id}__bigquery_{m['service']}_{m['month']}",
                }
                for m in missing
                if (m["service"], m["month"]) not in written
            ]
    return found


def find_changed_months(context: Context) -> list[dict[str, Any]]:
    """taxi_daily's ``find_changed_months``: HEAD recent months, compare with each target."""
    today = context.get("logical_date") or context["dag_run"].run_after
    return months_to_trigger(today, context["run_id"])
