"""One unit of work, without Airflow: load a service-month from the lake into BigQuery.

The lake object is checked before anything is loaded: it must exist (else the month is
skipped as "not in the lake"), live in GCS (BigQuery loads from gs://), and carry exactly the
contract's schema (read from its footer, see bigquery_schema). Unless forced, a month whose
ingestion log names this same file and whose row count still matches is left alone.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from include.taxi import redact
from include.taxi.bigquery import month as bigquery_month
from include.taxi.bigquery.ingestion_log import BigQueryLog
from include.taxi.bigquery.schema import check_parquet_schema
from include.taxi.contract import ZONE_LOOKUP, Contract, contract_for
from include.taxi.errors import LakeObjectChanged, NotInLake
from include.taxi.lake.ingestion_log import (
    SOURCE_FORMAT_KEY,
    SOURCE_KIND_KEY,
    SOURCE_SHA256_KEY,
    stored_quality,
)
from include.taxi.lake.store import ZONES_OBJECT, GcsLake, Lake, LakeObject, object_name, open_lake
from include.taxi.months import Month
from include.taxi.quality import footer_profile, to_json
from include.taxi.results import BigQueryMonth, ZonesLoad
from include.taxi.services import Service
from include.taxi.settings import GCP_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    import pyarrow.parquet as pq
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import bigquery

log = logging.getLogger(__name__)


def _gcs_lake(lake_url: str, gcp_conn_id: str) -> Lake:
    lake = open_lake(lake_url, gcp_conn_id=gcp_conn_id)
    if not isinstance(lake, GcsLake):
        raise ValueError(
            f"taxi_lake_url is {lake_url!r}: BigQuery loads from GCS, so lake_to_bigquery needs "
            "a gs://bucket/prefix lake"
        )
    return lake


def _checked_object(
    lake: Lake, name: str, contract: Contract
) -> tuple[str, LakeObject, pq.FileMetaData]:
    """(URI, stat, parquet footer) of a lake object that exists and has the contract's schema.

    The footer is read from the generation the stat saw, so metadata, schema and row count
    describe one version of the object."""
    uri = lake.uri(name)
    stored = lake.stat(name)
    if stored is None:
        raise NotInLake(uri)
    footer = lake.parquet_footer(name, stored.generation)
    check_parquet_schema(footer.schema.to_arrow_schema(), contract, uri)
    return uri, stored, footer


def _still_same(lake: Lake, name: str, stored: LakeObject) -> Callable[[], None]:
    """A check that the object is still the generation whose footer was checked (BigQuery's
    load job cannot pin a generation: it reads whatever is there when it runs)."""

    def check() -> None:
        now = lake.stat(name)
        if now is None or now.generation != stored.generation:
            raise LakeObjectChanged(
                f"{stored.uri} changed while it was being loaded (generation "
                f"{stored.generation} → {now.generation if now else 'deleted'}); the month was "
                "not replaced, a retry loads the new version"
            )

    return check


def _already_loaded(
    client: bigquery.Client,
    project: str,
    dataset: str,
    contract: Contract,
    month: date,
    uri: str,
    sha256: str,
) -> int | None:
    """Rows of the month if BigQuery's log shows this lake file (same source, same contract)
    loaded and the month still holds what that load left; None otherwise."""
    if not sha256:
        return None
    last = BigQueryLog(client, project, dataset).last_load(
        Service.parse(contract.name), Month.of(month)
    )
    if (
        last is None
        or last.source is None
        or last.source.url != uri
        or last.sha256 != sha256
        or last.contract != contract.fingerprint
    ):
        return None
    present = bigquery_month.month_rows(client, project, dataset, contract, month)
    return present if present == last.rows else None


def in_bigquery(
    service: Service, month: Month, *, lake_url: str, dataset: str, gcp_conn_id: str = GCP_CONN_ID
) -> bool:
    """Whether BigQuery holds the lake's current object of the month, by its ingestion log:
    asked by taxi_to_lake and taxi_daily so a month in the lake is never left unloaded."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    contract = contract_for(service)
    lake = _gcs_lake(lake_url, gcp_conn_id)
    name = object_name(service, month)
    stored = lake.stat(name)
    if stored is None:
        return False
    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    sha256 = stored.metadata.get(SOURCE_SHA256_KEY, "")
    return (
        _already_loaded(
            client, hook.project_id, dataset, contract, month.first_day, lake.uri(name), sha256
        )
        is not None
    )


def month_to_bigquery(
    service: Service,
    month: Month,
    *,
    lake_url: str,
    dataset: str,
    gcp_conn_id: str = GCP_CONN_ID,
    force: bool = False,
    run_id: str = "",
) -> BigQueryMonth:
    """Replace ``service``'s ``month`` in ``{dataset}.{service}_tripdata; returns what moved.

    Every failed attempt (a refused lake file, a failed load) gets a ``failed`` row in
    BigQuery's ingestion log; a month not in the lake is a skip, not a failure."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    lake = _gcs_lake(lake_url, gcp_conn_id)
    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    try:
        return _month_to_bigquery(hook, lake, service, month, dataset, force, run_id)
    except NotInLake:
        raise
    except Exception as exc:
        _record_failure(hook, lake, service, month, dataset, run_id, exc)
        raise


def _record_failure(
    hook: BigQueryHook,
    lake: Lake,
    service: Service,
    month: Month,
    dataset: str,
    run_id: str,
    error: BaseException,
) -> None:
    """The failed row in BigQuery's log; best effort: BigQuery or the lake may be what failed,
    and the task's own error is the one to show."""
    name = object_name(service, month)
    try:
        stored = lake.stat(name)
        sha256 = stored.metadata.get(SOURCE_SHA256_KEY, "") if stored else ""
    except Exception:  # the lake may be what failed: the row is written without its checksum
        sha256 = ""
    try:
        client = hook.get_client(project_id=hook.project_id)
    except Exception as exc:
        log.warning("could not write to BigQuery's ingestion log: %s", redact.text(str(exc)))
        return
    bigquery_month.record_failure(
        client,
        hook.project_id,
        dataset,
        contract_for(service),
        month.first_day,
        source_uri=lake.uri(name),
        source_sha256=sha256,
        run_id=run_id,
        error=error,
    )


def _present(
    hook: BigQueryHook, dataset: str, contract: Contract, month: Month, uri: str, sha256: str
) -> int | None:
    """The month's rows when this very lake object is already loaded under this contract."""
    project = hook.project_id
    client = hook.get_client(project_id=project)
    present = _already_loaded(client, project, dataset, contract, month.first_day, uri, sha256)
    if present is not None:
        log.info(
            "%s %s: %s is already loaded under this contract (%d rows present): nothing "
            "to do; trigger with force_reload to reload anyway",
            contract.name,
            month,
            uri,
            present,
        )
    return present


def _quality(stored: LakeObject, footer: pq.FileMetaData, contract: Contract) -> tuple[str, str]:
    """The month's profile and warnings (JSON text) the lake object carries; for an object
    written before profiles, the footer's statistics stand in as its profile."""
    quality, warnings = stored_quality(stored.metadata)
    if quality is None:
        quality = to_json(footer_profile(footer, contract))
    return quality, warnings or "[]"


def _month_to_bigquery(
    hook: BigQueryHook,
    lake: Lake,
    service: Service,
    month: Month,
    dataset: str,
    force: bool,
    run_id: str,
) -> BigQueryMonth:
    contract = contract_for(service)
    name = object_name(service, month)
    uri, stored, footer = _checked_object(lake, name, contract)
    sha256 = stored.metadata.get(SOURCE_SHA256_KEY, "")
    project = hook.project_id
    present = None if force else _present(hook, dataset, contract, month, uri, sha256)
    summary = BigQueryMonth(
        service=service,
        month=str(month),
        uri=uri,
        lake_bytes=stored.bytes,
        source_sha256=sha256 or None,
        project=project,
        status="unchanged",
        rows_in_target=present or 0,
    )
    if present is not None:
        return summary
    log.info("loading %s into %s.%s.%s_tripdata", uri, project, dataset, service)
    quality, warnings = _quality(stored, footer, contract)
    result = bigquery_month.replace_month(
        hook,
        project=project,
        dataset=dataset,
        contract=contract,
        month=month.first_day,
        source_uri=uri,
        rows_expected=footer.num_rows,
        source_sha256=sha256,
        run_id=run_id,
        still_same=_still_same(lake, name, stored),
        source_kind=stored.metadata.get(SOURCE_KIND_KEY, ""),
        source_format=stored.metadata.get(SOURCE_FORMAT_KEY, ""),
        quality=quality,
        warnings=warnings,
    )
    return _loaded(summary, result, quality, warnings)


def _loaded(
    summary: BigQueryMonth, result: bigquery_month.Replaced, quality: str, warnings: str
) -> BigQueryMonth:
    """What a load returns (its XCom) and says in the log."""
    log.info(
        "%s %s: %d rows from %s (%d bytes) → %s; the month now holds %d rows (%.1f s)",
        summary["service"],
        summary["month"],
        result.rows_loaded,
        summary["uri"],
        summary["lake_bytes"],
        result.table,
        result.rows_in_target,
        result.seconds,
    )
    return summary | {
        "status": result.status,
        "rows_in_target": result.rows_in_target,
        "table": result.table,
        "rows_loaded": result.rows_loaded,
        "seconds": result.seconds,
        "quality": json.loads(quality),
        "warnings": json.loads(warnings),
    }


def zones_to_bigquery(*, lake_url: str, dataset: str, gcp_conn_id: str = GCP_CONN_ID) -> ZonesLoad:
    """Replace ``{dataset}.taxi_zone_lookup`` with the lake's zone lookup."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    lake = _gcs_lake(lake_url, gcp_conn_id)
    uri, _, footer = _checked_object(lake, ZONES_OBJECT, ZONE_LOOKUP)
    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    result = bigquery_month.replace_zones(
        hook,
        project=hook.project_id,
        dataset=dataset,
        source_uri=uri,
        rows_expected=footer.num_rows,
    )
    log.info("zones: %d rows from %s → %s", result.rows_in_target, uri, result.table)
    return ZonesLoad(
        uri=uri,
        table=result.table,
        status=result.status,
        rows_loaded=result.rows_loaded,
        rows_in_target=result.rows_in_target,
        seconds=result.seconds,
    )
