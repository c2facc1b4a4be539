"""The schema check BigQuery needs and the local emulator cannot do.

Real BigQuery rejects a parquet INT64 column loaded into a FLOAT64 column and vice versa;
local-bigquery silently coerces both, so no emulator test could catch a drifted file. The
project refuses such a file itself, before loading; these tests pin that check down.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.taxi.bigquery.schema import BIGQUERY_TYPES, check_parquet_schema, schema_fields
from include.taxi.contract import CONTRACTS, FHV, GREEN, YELLOW
from include.taxi.errors import LakeSchemaMismatch

URI = "gs://lake/green/2019/green_tripdata_2019-09.parquet"


def _with(schema: pa.Schema, name: str, type_: pa.DataType) -> pa.Schema:
    return schema.set(schema.get_field_index(name), pa.field(name, type_))


def test_the_contract_schema_passes():
    for contract in (YELLOW, GREEN, FHV):
        check_parquet_schema(contract.arrow_schema, contract, URI)


@pytest.mark.parametrize(
    ("column", "drifted"),
    [
        ("passenger_count", pa.float64()),  # the course's pandas files: int columns as double
        ("ehail_fee", pa.int32()),  # all-null months written as INT32
        ("lpep_pickup_datetime", pa.timestamp("ns")),  # pandas' default unit
        ("lpep_pickup_datetime", pa.timestamp("us", tz="UTC")),  # TIMESTAMP, not DATETIME
        ("trip_type", pa.float64()),
    ],
)
def test_a_drifted_column_is_refused_by_name(column, drifted):
    schema = _with(GREEN.arrow_schema, column, drifted)
    with pytest.raises(LakeSchemaMismatch) as caught:
        check_parquet_schema(schema, GREEN, URI)
    message = str(caught.value)
    assert URI in message
    assert f"column {column} is {drifted}" in message
    assert "nothing was loaded" in message


def test_missing_and_undeclared_columns_are_both_named():
    schema = GREEN.arrow_schema.remove(GREEN.arrow_schema.get_field_index("ehail_fee"))
    schema = schema.append(pa.field("airport_fee", pa.float64()))
    with pytest.raises(LakeSchemaMismatch) as caught:
        check_parquet_schema(schema, GREEN, URI)
    assert "column ehail_fee is missing" in str(caught.value)
    assert "undeclared column(s) airport_fee" in str(caught.value)


def test_bigquery_schema_follows_the_contract():
    for contract in CONTRACTS.values():
        fields = schema_fields(contract)
        assert [f["name"] for f in fields] == contract.arrow_schema.names
        assert {f["type"] for f in fields} <= set(BIGQUERY_TYPES.values())
    green = {f["name"]: f for f in schema_fields(GREEN)}
    assert green["passenger_count"]["type"] == "INTEGER"
    assert green["ehail_fee"]["type"] == "FLOAT"
    assert green["lpep_pickup_datetime"]["type"] == "DATETIME"
    assert green["source_month"] == {"name": "source_month", "type": "DATE", "mode": "REQUIRED"}
