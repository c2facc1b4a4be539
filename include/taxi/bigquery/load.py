"""One unit of work, without Airflow: load a service-month from the lake into BigQuery.

The lake object is checked before anything is loaded: it must exist (else the month is
skipped as "not in the lake"), live in GCS (BigQuery loads from gs://), and carry exactly the
contract's schema (read from its footer, see bigquery_schema). Unless forced, a month whose
ingestion log names this same file and whose row count still matches is left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from include.taxi.bigquery import month as bigquery_month
from include.taxi.bigquery.schema import check_parquet_schema
from include.taxi.contract import ZONE_LOOKUP, Contract, contract_for
from include.taxi.errors import NotInLake
from include.taxi.lake.ingestion_log import stored_quality
from include.taxi.lake.store import ZONES_OBJECT, GcsLake, Lake, LakeObject, object_name, open_lake
from include.taxi.months import parse_month
from include.taxi.quality import footer_profile, to_json
from include.taxi.settings import GCP_CONN_ID

if TYPE_CHECKING:
    import pyarrow.parquet as pq

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
    """(URI, stat, parquet footer) of a lake object that exists and has the contract's schema."""
    uri = lake.uri(name)
    stored = lake.stat(name)
    if stored is None:
        raise NotInLake(uri)
    footer = lake.parquet_footer(name)
    check_parquet_schema(footer.schema.to_arrow_schema(), contract, uri)
    return uri, stored, footer


def month_to_bigquery(
    service: str,
    month: str,
    *,
    lake_url: str,
    dataset: str,
    gcp_conn_id: str = GCP_CONN_ID,
    force: bool = False,
    run_id: str = "",
) -> dict[str, Any]:
    """Replace ``service``'s ``month`` in ``{dataset}.{service}_tripdata``; returns what moved."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.api_core.exceptions import NotFound

    contract = contract_for(service)
    first_day = parse_month(month)
    lake = _gcs_lake(lake_url, gcp_conn_id)
    uri, stored, footer = _checked_object(lake, object_name(service, first_day), contract)
    sha256 = stored.metadata.get("taxi.source_sha256", "")
    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    project = hook.project_id
    summary = {"service": service, "month": month, "uri": uri, "lake_bytes": stored.bytes,
               "source_sha256": sha256 or None, "project": project}  # fmt: skip
    if not force and sha256:
        client = hook.get_client(project_id=project)
        try:
            last = bigquery_month.last_load(client, project, dataset, contract, first_day)
        except NotFound:  # no dataset or log table yet: the first load
            last = None
        if last and last["source_uri"] == uri and last["source_sha256"] == sha256:
            present = bigquery_month.month_rows(client, project, dataset, contract, first_day)
            if present == last["rows_in_target"]:
                log.info(
                    "%s %s: %s is already loaded (%d rows present): nothing to do; trigger "
                    "with force_reload to reload anyway", service, month, uri, present,
                )  # fmt: skip
                return {**summary, "status": "unchanged", "rows_in_target": present}
    log.info("loading %s into %s.%s.%s_tripdata", uri, project, dataset, service)
    quality, warnings = stored_quality(stored.metadata)
    if quality is None:  # written before profiles: the footer's statistics are a profile too
        quality = to_json(footer_profile(footer, contract))
    result = bigquery_month.replace_month(
        hook,
        project=project,
        dataset=dataset,
        contract=contract,
        month=first_day,
        source_uri=uri,
        rows_expected=footer.num_rows,
        source_sha256=sha256,
        run_id=run_id,
        quality=quality,
        warnings=warnings or "[]",
    )
    log.info(
        "%s %s: %d rows from %s (%d bytes) → %s; the month now holds %d rows (%.1f s)",
        service, month, result.rows_loaded, uri, stored.bytes, result.table,
        result.rows_in_target, result.seconds,
    )  # fmt: skip
    return {
        **summary,
        **asdict(result),
        "quality": json.loads(quality),
        "warnings": json.loads(warnings or "[]"),
    }


def zones_to_bigquery(
    *, lake_url: str, dataset: str, gcp_conn_id: str = GCP_CONN_ID
) -> dict[str, Any]:
    """Replace ``{dataset}.taxi_zone_lookup`` with the lake's zone lookup."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    lake = _gcs_lake(lake_url, gcp_conn_id)
    uri, _, footer = _checked_object(lake, ZONES_OBJECT, ZONE_LOOKUP)
    hook = BigQueryHook(gcp_conn_id=gcp_conn_id, use_legacy_sql=False)
    result = bigquery_month.replace_zones(
        hook, project=hook.project_id, dataset=dataset, source_uri=uri,
        rows_expected=footer.num_rows,
    )  # fmt: skip
    log.info("zones: %d rows from %s → %s", result.rows_in_target, uri, result.table)
    return {"uri": uri, **asdict(result)}
