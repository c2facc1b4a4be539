"""Replace one source month of a BigQuery trip table from its parquet file in GCS.

The file is loaded (explicit schema, no autodetect) into a staging table of its own (which
expires after a day, should the task die before dropping it), then one
multi-statement transaction deletes the month's rows by ``source_month``, inserts the staged
ones, asserts the count and writes the ingestion-log row: a failure anywhere leaves the
table as it was, a rerun leaves the same rows, and other months are never touched. (Partition
decorators such as ``table$202101`` would be cheaper, but the month is the *source* month, not
the pickup month, and the emulator cannot test decorators.)

Tables are partitioned by pickup month (DATETIME column, MONTH granularity: years of data stay
far below BigQuery's 4,000-partition limit, where daily partitions would not) and clustered by
source month and pickup zone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from include.taxi import redact
from include.taxi.bigquery.schema import (
    CLUSTERING,
    LOG_SCHEMA,
    PICKUP_COLUMNS,
    schema_fields,
)
from include.taxi.contract import ZONE_LOOKUP, Contract, table_name
from include.taxi.errors import LakeSchemaMismatch, LoadMismatch
from include.taxi.months import Month
from include.taxi.sql import bigquery_identifier, bigquery_script

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from google.cloud import bigquery

log = logging.getLogger(__name__)

LOG_TABLE = "taxi_ingestion_log"
ZONES_TABLE = table_name(ZONE_LOOKUP)
STAGE_TTL = timedelta(days=1)
"""A staging table deletes itself after this even if its task was killed before cleaning up."""


@dataclass(frozen=True)
class Replaced:
    table: str
    status: Literal["loaded"]
    """Always ``loaded``; an unchanged month is reported by bigquery.load without a load."""
    rows_loaded: int
    rows_in_target: int
    seconds: float


def _params(**values: Any) -> list[bigquery.ScalarQueryParameter]:
    from google.cloud import bigquery

    kinds = {int: "INT64", str: "STRING", date: "DATE"}
    return [
        bigquery.ScalarQueryParameter(name, kinds[type(value)], value)
        for name, value in values.items()
    ]


def _query(client: bigquery.Client, script: str, **values: Any) -> list[Any]:
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(query_parameters=_params(**values), use_legacy_sql=False)
    return list(client.query(script, job_config=config).result())


def ensure_dataset(client: bigquery.Client, project: str, dataset: str) -> None:
    from google.cloud import bigquery

    client.create_dataset(bigquery.Dataset(f"{project}.{dataset}"), exists_ok=True)


def ensure_tables(client: bigquery.Client, project: str, dataset: str, contract: Contract) -> None:
    """Dataset, trip table and log table, created once; a later contract column is added."""
    from google.cloud import bigquery

    ensure_dataset(client, project, dataset)
    wanted = [bigquery.SchemaField.from_api_repr(f) for f in schema_fields(contract)]
    table = bigquery.Table(f"{project}.{dataset}.{table_name(contract)}", schema=wanted)
    table.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.MONTH, field=PICKUP_COLUMNS[contract.name]
    )
    table.clustering_fields = CLUSTERING
    existing = client.create_table(table, exists_ok=True)
    have = {f.name: f.field_type for f in existing.schema}
    wrong = [
        f"{f.name} is {have[f.name]}, declared {f.field_type}"
        for f in wanted
        if f.name in have and _same_type(have[f.name]) != _same_type(f.field_type)
    ]
    if wrong:
        raise LakeSchemaMismatch(
            f"BigQuery table {existing.full_table_id} differs from the {contract.name} contract: "
            f"{'; '.join(wrong)}. Nothing was loaded; migrate or drop the table."
        )
    missing = [f for f in wanted if f.name not in have]
    if missing:
        existing.schema = [*existing.schema, *missing]
        client.update_table(existing, ["schema"])
        log.info("added column(s) %s to %s", [f.name for f in missing], existing.full_table_id)
    ensure_log(client, project, dataset)


def ensure_log(client: bigquery.Client, project: str, dataset: str) -> None:
    """The ingestion log table, created once; a log from an older version gains the columns
    added since (idempotent: only missing columns are added)."""
    from google.cloud import bigquery

    log_fields = [bigquery.SchemaField(n, t, mode=m) for n, t, m in LOG_SCHEMA]
    log_table = client.create_table(
        bigquery.Table(f"{project}.{dataset}.{LOG_TABLE}", schema=log_fields), exists_ok=True
    )
    logged = {f.name for f in log_table.schema}
    if missing_log := [f for f in log_fields if f.name not in logged]:  # a log from before
        log_table.schema = [*log_table.schema, *missing_log]
        client.update_table(log_table, ["schema"])


def record_failure(
    client: bigquery.Client,
    project: str,
    dataset: str,
    contract: Contract,
    month: date,
    *,
    source_uri: str,
    source_sha256: str,
    run_id: str,
    error: BaseException,
) -> None:
    """Log a failed attempt at the month (error redacted); best effort, never raises: BigQuery
    may be what failed, and the task's own error is the one to show."""
    try:
        ensure_dataset(client, project, dataset)
        ensure_log(client, project, dataset)
        script = bigquery_script(
            "bigquery/insert_failed.sql", log=bigquery_identifier(project, dataset, LOG_TABLE)
        )
        _query(
            client,
            script,
            target_table=table_name(contract),
            service=contract.name,
            month=month,
            source_uri=source_uri,
            source_sha256=source_sha256,
            run_id=run_id,
            contract_fingerprint=contract.fingerprint,
            error=redact.text(f"{type(error).__name__}: {error}", 2000),
        )
    except Exception as exc:
        log.warning("could not write to BigQuery's ingestion log: %s", redact.text(str(exc)))


def _same_type(name: str) -> str:
    return {"INT64": "INTEGER", "FLOAT64": "FLOAT"}.get(name, name)


def month_rows(
    client: bigquery.Client, project: str, dataset: str, contract: Contract, month: date
) -> int:
    table = bigquery_identifier(project, dataset, table_name(contract))
    (row,) = _query(client, bigquery_script("bigquery/count_month.sql", table=table), month=month)
    return int(row["n"])


def last_load(
    client: bigquery.Client, project: str, dataset: str, contract: Contract, month: date
) -> dict[str, Any] | None:
    """The log's last successful load of the month, or None."""
    script = bigquery_script(
        "bigquery/last_load.sql", log=bigquery_identifier(project, dataset, LOG_TABLE)
    )
    rows = _query(client, script, target_table=table_name(contract), month=month)
    return dict(rows[0].items()) if rows else None


def create_stage(
    client: bigquery.Client, project: str, dataset: str, name: str, contract: Contract
) -> bigquery.Table:
    """An empty table with the contract's schema that BigQuery deletes after ``STAGE_TTL``."""
    from google.cloud import bigquery

    table = bigquery.Table(
        f"{project}.{dataset}.{name}",
        schema=[bigquery.SchemaField.from_api_repr(f) for f in schema_fields(contract)],
    )
    table.expires = datetime.now(UTC) + STAGE_TTL
    return client.create_table(table)


def _load_job(
    hook: BigQueryHook,
    project: str,
    dataset: str,
    table: str,
    uri: str,
    contract: Contract,
    *,
    write: str = "WRITE_TRUNCATE",
) -> None:
    """A parquet load with the contract's schema (never autodetect) into ``table``."""
    hook.insert_job(
        configuration={
            "load": {
                "sourceUris": [uri],
                "sourceFormat": "PARQUET",
                "schema": {"fields": schema_fields(contract)},
                "destinationTable": {"projectId": project, "datasetId": dataset, "tableId": table},
                "writeDisposition": write,
                "createDisposition": "CREATE_IF_NEEDED",
            }
        },
        project_id=project,
    )


def replace_zones(
    hook: BigQueryHook, *, project: str, dataset: str, source_uri: str, rows_expected: int
) -> Replaced:
    """Replace ``taxi_zone_lookup`` whole: a WRITE_TRUNCATE load job is atomic in BigQuery."""
    started = time.monotonic()
    client = hook.get_client(project_id=project)
    ensure_dataset(client, project, dataset)
    _load_job(hook, project, dataset, ZONES_TABLE, source_uri, ZONE_LOOKUP)
    present = client.get_table(f"{project}.{dataset}.{ZONES_TABLE}").num_rows
    if present != rows_expected:
        raise LoadMismatch(
            f"{project}.{dataset}.{ZONES_TABLE} holds {present} rows after the load, "
            f"{source_uri} {rows_expected}"
        )
    elapsed = round(time.monotonic() - started, 2)
    return Replaced(f"{project}.{dataset}.{ZONES_TABLE}", "loaded", rows_expected, present, elapsed)


def _replace_script(project: str, dataset: str, stage_name: str, contract: Contract) -> str:
    """The script that swaps the staged month in and logs it, in one transaction."""
    return bigquery_script(
        "bigquery/replace_month.sql",
        table=bigquery_identifier(project, dataset, table_name(contract)),
        stage=bigquery_identifier(project, dataset, stage_name),
        log=bigquery_identifier(project, dataset, LOG_TABLE),
        columns=", ".join(f.name for f in contract.arrow_schema),
    )


def _expect(rows: int | None, expected: int, what: str, untouched: str) -> None:
    """Rows BigQuery holds against the parquet footer's count: a mismatch stops the load
    (before the swap, ``untouched`` names what was left as it was)."""
    if rows == expected:
        return
    after = f"; {untouched} was not touched" if untouched else "; check for a concurrent writer"
    raise LoadMismatch(f"{what} {rows} rows, the parquet file says {expected}{after}")


def replace_month(
    hook: BigQueryHook,
    *,
    project: str,
    dataset: str,
    contract: Contract,
    month: date,
    source_uri: str,
    rows_expected: int,
    source_sha256: str = "",
    run_id: str = "",
    still_same: Callable[[], None] | None = None,
    source_kind: str = "",
    source_format: str = "",
    quality: str = "",
    warnings: str = "",
) -> Replaced:
    """Load ``source_uri`` (gs://) as ``contract``'s ``month``, replacing what was there.

    ``still_same`` (if given) is asked after the file is staged and before the month is
    replaced: it raises if the lake object is no longer the one whose footer was checked.
    ``quality`` and ``warnings`` (JSON text from the lake object's metadata) go on the log row."""
    started = time.monotonic()
    client = hook.get_client(project_id=project)
    ensure_tables(client, project, dataset, contract)
    target = table_name(contract)
    stage_name = f"_stage_{target}_{Month.of(month).suffix}_{uuid.uuid4().hex[:8]}"
    stage_id = f"{project}.{dataset}.{stage_name}"
    create_stage(client, project, dataset, stage_name, contract)
    try:
        _load_job(hook, project, dataset, stage_name, source_uri, contract, write="WRITE_APPEND")
        staged = client.get_table(stage_id).num_rows
        _expect(staged, rows_expected, f"{source_uri}: staged", f"{target} {month:%Y-%m}")
        if still_same is not None:
            still_same()
        _query(
            client,
            _replace_script(project, dataset, stage_name, contract),
            month=month,
            rows_loaded=rows_expected,
            target_table=target,
            service=contract.name,
            source_uri=source_uri,
            source_sha256=source_sha256,
            run_id=run_id,
            contract_fingerprint=contract.fingerprint,
            source_kind=source_kind,
            source_format=source_format,
            quality=quality,
            warnings=warnings,
        )
    finally:
        client.delete_table(stage_id, not_found_ok=True)
    present = month_rows(client, project, dataset, contract, month)
    _expect(present, rows_expected, f"{project}.{dataset}.{target} {month:%Y-%m}: holds", "")
    seconds = round(time.monotonic() - started, 2)
    return Replaced(f"{project}.{dataset}.{target}", "loaded", rows_expected, present, seconds)
