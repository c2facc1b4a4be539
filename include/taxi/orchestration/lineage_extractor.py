"""The OpenLineage extractor of the taxi tasks (TaskFlow ``@task`` → ``_PythonDecoratedOperator``).

Registered with ``[openlineage] extractors = include.taxi.orchestration.lineage_extractor.
TaxiLoadExtractor`` (dev/airflow_env.py sets it; it only matters once a transport is set).
It turns what a load recorded (``lineage.record``) into OpenLineage datasets with facets:
``schema`` (SchemaDatasetFacet), ``outputStatistics`` (rows, bytes) and ``taxi_source`` (the
source file's SHA-256, ETag, Last-Modified and size). A task that recorded nothing (plan,
discovery) gets what the provider's Python extractor gives it.
"""

from __future__ import annotations

from typing import Any

import attr
from airflow.providers.openlineage.extractors.base import OperatorLineage
from airflow.providers.openlineage.extractors.python import PythonExtractor
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.generated.base import OutputDatasetFacet

from include.taxi.orchestration.lineage import LineageDataset, LoadLineage, planned, recorded

FACET_SCHEMA_URL = "urn:nyc-taxi-airflow:facet:TaxiSourceDatasetFacet:1"
"""Where the facet's JSON schema would live; the class below is its definition."""


@attr.define
class TaxiSourceDatasetFacet(DatasetFacet):
    """The version of a source file a load read: checksum and the HTTP validators."""

    sha256: str | None = attr.field(default=None)
    etag: str | None = attr.field(default=None)
    lastModified: str | None = attr.field(default=None)
    bytes: int | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_URL


def _facets(dataset: LineageDataset) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if dataset.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=type_)
                for name, type_ in dataset.schema
            ]
        )
    if dataset.source:
        facets["taxi_source"] = TaxiSourceDatasetFacet(
            sha256=dataset.source.get("sha256"),
            etag=dataset.source.get("etag"),
            lastModified=dataset.source.get("last_modified"),
            bytes=dataset.source.get("bytes"),
        )
    return facets


def _input(dataset: LineageDataset) -> InputDataset:
    return InputDataset(namespace=dataset.namespace, name=dataset.name, facets=_facets(dataset))


def _output(dataset: LineageDataset) -> OutputDataset:
    statistics: dict[str, OutputDatasetFacet] = {}
    if dataset.rows is not None:
        statistics["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=dataset.rows, size=dataset.bytes
            )
        )
    return OutputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets=_facets(dataset),
        outputFacets=statistics,
    )


def _lineage(lineage: LoadLineage) -> OperatorLineage:
    return OperatorLineage(
        inputs=[_input(d) for d in lineage.inputs],
        outputs=[_output(d) for d in lineage.outputs],
    )


class TaxiLoadExtractor(PythonExtractor):
    """Datasets of a taxi load, from what the task recorded in this process."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        """START: the datasets a load is about to touch (from its expanded arguments)."""
        task = self.operator
        try:
            lineage = planned(task.dag_id, task.task_id, dict(getattr(task, "op_kwargs", {})))
        except Exception as exc:  # a START without datasets beats no START
            self.log.warning("taxi lineage: cannot name the datasets at START: %s", exc)
            lineage = None
        return _lineage(lineage) if lineage else super()._execute_extraction()

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        lineage = recorded(task_instance)
        return _lineage(lineage) if lineage else super()._execute_extraction()

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return self.extract_on_complete(task_instance)


__all__ = ["TaxiLoadExtractor", "TaxiSourceDatasetFacet"]
