"""The contract as BigQuery sees it, and the parquet check BigQuery needs before a load.

Real BigQuery rejects a parquet column whose physical type differs from the table's (an INT64
``passenger_count`` file into a FLOAT64 column: "Parquet column ... has type INT64 which does
not match the target cpp_type DOUBLE"); the local emulator silently coerces it, and a
hand-written file in the lake could carry any drift. So every file is checked against the
contract here, before any load, with a message that names the column.

Trip times are New York wall-clock times without a zone: parquet writes them with
``isAdjustedToUTC=false`` and BigQuery's matching type is DATETIME (TIMESTAMP would claim UTC).
"""

from __future__ import annotations

import pyarrow as pa

from include.taxi.contract import FLOAT, INT, SOURCE_MONTH, TEXT, TIMESTAMP, Contract
from include.taxi.errors import LakeSchemaMismatch

BIGQUERY_TYPES: dict[pa.DataType, str] = {
    INT: "INTEGER",
    FLOAT: "FLOAT",
    TEXT: "STRING",
    TIMESTAMP: "DATETIME",
    pa.date32(): "DATE",
}

PICKUP_COLUMNS = {
    "yellow": "tpep_pickup_datetime",
    "green": "lpep_pickup_datetime",
    "fhv": "pickup_datetime",
    "fhvhv": "pickup_datetime",
}
CLUSTERING = [SOURCE_MONTH, "pulocationid"]
"""Clustered first by source month, so replacing a month reads only that month's blocks."""

LOG_SCHEMA = [
    ("target_table", "STRING", "REQUIRED"),
    ("service", "STRING", "REQUIRED"),
    ("month", "DATE", "REQUIRED"),
    ("source_uri", "STRING", "REQUIRED"),
    ("source_sha256", "STRING", "NULLABLE"),
    ("rows_loaded", "INTEGER", "REQUIRED"),
    ("rows_in_target", "INTEGER", "REQUIRED"),
    ("run_id", "STRING", "NULLABLE"),
    ("status", "STRING", "REQUIRED"),
    ("finished_at", "TIMESTAMP", "REQUIRED"),
    ("contract_fingerprint", "STRING", "NULLABLE"),
    # added with the TLC source (issue 11): an older log table gains them (ensure_tables)
    ("source_kind", "STRING", "NULLABLE"),
    ("source_format", "STRING", "NULLABLE"),
    ("quality", "STRING", "NULLABLE"),
    ("warnings", "STRING", "NULLABLE"),
    # a failed attempt's error (redacted), on its 'failed' row
    ("error", "STRING", "NULLABLE"),
]
"""A column added here later is added to an existing log table by ``ensure_tables``.
``quality`` and ``warnings`` are JSON text: the profile the lake writer computed in-stream and
stored in the object's metadata (BigQuery loads the file itself, no batch passes through us)."""


def schema_fields(contract: Contract) -> list[dict[str, str]]:
    """The table's columns in the REST form a load job's ``schema.fields`` takes."""
    return [
        {
            "name": field.name,
            "type": BIGQUERY_TYPES[field.type],
            "mode": "NULLABLE" if field.nullable else "REQUIRED",
        }
        for field in contract.arrow_schema
    ]


def check_parquet_schema(found: pa.Schema, contract: Contract, uri: str) -> None:
    """Refuse a file whose columns are not exactly the contract's, naming each difference."""
    expected = contract.arrow_schema
    problems = []
    for field in expected:
        if field.name not in found.names:
            problems.append(f"column {field.name} is missing (declared {field.type})")
            continue
        actual = found.field(field.name).type
        if actual != field.type:
            problems.append(
                f"column {field.name} is {actual} in the file, the contract declares "
                f"{field.type} (BigQuery {BIGQUERY_TYPES[field.type]})"
            )
    extra = [name for name in found.names if expected.get_field_index(name) < 0]
    if extra:
        problems.append(f"undeclared column(s) {', '.join(extra)}")
    if problems:
        raise LakeSchemaMismatch(
            f"{uri} does not match the {contract.name} contract: {'; '.join(problems)}. "
            "BigQuery would reject or silently coerce it, so nothing was loaded. Rewrite the "
            "month with taxi_to_lake (force_reload), which writes the declared schema."
        )
