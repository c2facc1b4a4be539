"""What a load read and wrote, for OpenLineage: datasets named per the OpenLineage naming
conventions, with their facets, recorded by the task and read by the extractor.

Route (Airflow 3, provider apache-airflow-providers-openlineage): the provider's listener
emits START / COMPLETE / FAIL for every task; for a TaskFlow ``@task`` it asks the extractor
registered for ``_PythonDecoratedOperator`` (``[openlineage] extractors``, set by
dev/airflow_env.py) for the datasets. The hook-lineage collector could name datasets too,
but it keeps only Asset URIs: no row count, no source checksum, no schema. So each load
records here what it touched (``record``) and ``lineage_extractor.TaxiLoadExtractor`` turns
the record into OpenLineage datasets in the task's process (the listener runs there, after
the task, or in a fork of it).

This module imports nothing from OpenLineage: the DAG files import tasks.py, which imports it.

Naming (https://openlineage.io/docs/spec/naming): Postgres ``postgres://host:port`` +
``database.schema.table``; GCS ``gs://bucket`` + object path; a local file ``file`` + absolute
path; BigQuery ``bigquery`` + ``project.dataset.table``; an HTTP(S) source ``scheme://host``
+ path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from include.taxi.contract import SERVICES, Contract
from include.taxi.months import Month
from include.taxi.services import Service


@dataclass
class LineageDataset:
    namespace: str
    name: str
    schema: list[tuple[str, str]] = field(default_factory=list)
    """(column, type) pairs: the SchemaDatasetFacet."""
    rows: int | None = None
    """Rows written (outputs): the outputStatistics facet."""
    bytes: int | None = None
    source: dict[str, Any] = field(default_factory=dict)
    """sha256 / etag / last_modified / bytes of a source file: the custom ``taxi_source`` facet."""


@dataclass
class LoadLineage:
    inputs: list[LineageDataset]
    outputs: list[LineageDataset]


_RECORDED: dict[tuple[str, str, str, int], LoadLineage] = {}
"""Per task instance (dag, task, run, map index): one process may run several (dag.test)."""


def task_key(ti: Any) -> tuple[str, str, str, int]:
    return (ti.dag_id, ti.task_id, ti.run_id, int(getattr(ti, "map_index", -1) or -1))


def record(context: Any, lineage: LoadLineage) -> tuple[LineageDataset, LineageDataset]:
    """Say what this task instance reads and writes (before the load, so a FAIL names them);
    returns its (input, output), for the load to add its facts to."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is not None:
        _RECORDED[task_key(ti)] = lineage
    return lineage.inputs[0], lineage.outputs[0]


def recorded(ti: Any) -> LoadLineage | None:
    return _RECORDED.get(task_key(ti))


def from_uri(uri: str, schema: list[tuple[str, str]] | None = None) -> LineageDataset:
    """A file or object by URI: ``gs://bucket`` + path, ``file`` + path, ``https://host`` + path."""
    parts = urlsplit(uri)
    if parts.scheme == "file" or not parts.scheme:
        return LineageDataset("file", unquote(parts.path), schema or [])
    if parts.scheme == "gs":
        return LineageDataset(f"gs://{parts.netloc}", parts.path.lstrip("/"), schema or [])
    return LineageDataset(f"{parts.scheme}://{parts.netloc}", parts.path, schema or [])


def postgres_table(
    conninfo: str, schema: str, table: str, columns: list[tuple[str, str]]
) -> LineageDataset:
    """``postgres://host:port`` + ``database.schema.table`` (the password never appears)."""
    parts = urlsplit(conninfo)
    host = parts.hostname or "localhost"
    database = unquote(parts.path.lstrip("/")) or "postgres"
    return LineageDataset(
        f"postgres://{host}:{parts.port or 5432}", f"{database}.{schema}.{table}", columns
    )


def bigquery_table(
    project: str, dataset: str, table: str, columns: list[tuple[str, str]]
) -> LineageDataset:
    return LineageDataset("bigquery", f"{project}.{dataset}.{table}", columns)


def arrow_columns(
    contract: Contract, types: dict[pa.DataType, str] | None = None
) -> list[tuple[str, str]]:
    """The contract's columns with their type in a target's words (Arrow's by default)."""
    return [(f.name, types[f.type] if types else str(f.type)) for f in contract.arrow_schema]


def source_facts(result: Mapping[str, Any]) -> dict[str, Any]:
    """The source version a task's result names (keys ``source_*``)."""
    keys = ("source_sha256", "source_etag", "source_last_modified", "source_bytes")
    return {k.removeprefix("source_"): result[k] for k in keys if result.get(k) is not None}


# --- what each load touches, from its arguments and the configuration ----------------------


def postgres_load(service: Service, month: Month) -> LoadLineage:
    """taxi_to_postgres.load_trips: the source file → the service's Postgres table."""
    from include.taxi.contract import contract_for, table_name
    from include.taxi.orchestration import config
    from include.taxi.postgres.month import PG_TYPES
    from include.taxi.sources.catalogue import Source

    contract = contract_for(service)
    source = from_uri(Source(config.source_kind(), config.source_base()).url(service, month))
    target = postgres_table(
        config.postgres_conninfo(),
        config.postgres_schema(),
        table_name(contract),
        arrow_columns(contract, PG_TYPES),
    )
    return LoadLineage([source], [target])


def lake_write(service: Service, month: Month) -> LoadLineage:
    """taxi_to_lake.write_month: the source file → the month's lake object."""
    from include.taxi.contract import contract_for
    from include.taxi.lake.store import object_name, open_lake
    from include.taxi.orchestration import config
    from include.taxi.sources.catalogue import Source

    source = from_uri(Source(config.source_kind(), config.source_base()).url(service, month))
    uri = open_lake(config.lake_url()).uri(object_name(service, month))
    return LoadLineage([source], [from_uri(uri, arrow_columns(contract_for(service)))])


def bigquery_load(service: Service, month: Month) -> LoadLineage:
    """lake_to_bigquery.load_<service>: the month's lake object → the service's BigQuery table."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from include.taxi.bigquery.schema import BIGQUERY_TYPES
    from include.taxi.contract import contract_for, table_name
    from include.taxi.lake.store import object_name, open_lake
    from include.taxi.orchestration import config
    from include.taxi.settings import GCP_CONN_ID

    contract = contract_for(service)
    uri = open_lake(config.lake_url()).uri(object_name(service, month))
    try:  # only to name the output dataset; the load itself decides what a missing one means
        project = BigQueryHook(gcp_conn_id=GCP_CONN_ID, use_legacy_sql=False).project_id
    except Exception:
        project = "unknown-project"
    target = bigquery_table(
        project,
        config.bigquery_dataset(),
        table_name(contract),
        arrow_columns(contract, BIGQUERY_TYPES),
    )
    return LoadLineage([from_uri(uri, arrow_columns(contract))], [target])


PLANNED = {
    ("taxi_to_postgres", "load_trips"): postgres_load,
    ("taxi_to_lake", "write_month"): lake_write,
    **{("lake_to_bigquery", f"load_{service}"): bigquery_load for service in SERVICES},
}
"""The loads by (DAG, task): their START event names the datasets before they run."""


def planned(dag_id: str, task_id: str, kwargs: dict[str, Any]) -> LoadLineage | None:
    """What a load task is about to touch, from its (expanded) arguments; None for others."""
    plan = PLANNED.get((dag_id, task_id))
    if plan is None:
        return None
    try:
        return plan(Service.parse(kwargs.get("service")), Month.parse(kwargs.get("month")))
    except ValueError:  # the task itself fails on these, with the message
        return None
