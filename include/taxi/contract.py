"""The declared schema contract: which columns each source file has and what type each holds.

One contract serves every target (Postgres today, parquet and BigQuery later), so a type is
decided here once and never re-inferred from the data. Column names are the source's names,
lower-cased: header matching is case-insensitive because the TLC renames by case
(``Airport_fee``/``airport_fee``, ``PULocationID``/``PUlocationID``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa

SERVICES: tuple[str, ...] = ("yellow", "green", "fhv")
ZONES = "zones"

INT = pa.int64()
FLOAT = pa.float64()
TEXT = pa.string()
TIMESTAMP = pa.timestamp("us")

SOURCE_MONTH = "source_month"
"""Added to every trip row: the month of the source file it came from (first day, a date).

Real monthly files carry trips whose pickup lies outside their month, so the pickup time
cannot say which file a row belongs to; this column can, and the month is replaced by it."""


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool = True


@dataclass(frozen=True)
class Contract:
    """The columns of one kind of source file, in the order the tables store them."""

    name: str
    columns: tuple[Column, ...]
    monthly: bool = True

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name.lower():
                return col
        return None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def arrow_schema(self) -> pa.Schema:
        """Schema of every batch the reader hands on (and of the table it lands in)."""
        fields = [pa.field(c.name, c.type) for c in self.columns]
        if self.monthly:
            fields.append(pa.field(SOURCE_MONTH, pa.date32(), nullable=False))
        return pa.schema(fields)

    @property
    def fingerprint(self) -> str:
        """Changes when the contract changes, so a target can tell its months are out of date."""
        return hashlib.sha256(self.arrow_schema.to_string().encode()).hexdigest()[:16]


def _money(*names: str, required: bool = True) -> tuple[Column, ...]:
    return tuple(Column(n, FLOAT, required) for n in names)


YELLOW = Contract(
    "yellow",
    (
        Column("vendorid", INT),
        Column("tpep_pickup_datetime", TIMESTAMP),
        Column("tpep_dropoff_datetime", TIMESTAMP),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        Column("ratecodeid", INT),
        Column("store_and_fwd_flag", TEXT),
        Column("pulocationid", INT),
        Column("dolocationid", INT),
        Column("payment_type", INT),
        *_money("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount"),
        *_money("improvement_surcharge", "total_amount"),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("airport_fee", FLOAT, required=False),
    ),
)

GREEN = Contract(
    "green",
    (
        Column("vendorid", INT),
        Column("lpep_pickup_datetime", TIMESTAMP),
        Column("lpep_dropoff_datetime", TIMESTAMP),
        Column("store_and_fwd_flag", TEXT),
        Column("ratecodeid", INT),
        Column("pulocationid", INT),
        Column("dolocationid", INT),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        *_money("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount"),
        Column("ehail_fee", FLOAT, required=False),
        *_money("improvement_surcharge", "total_amount"),
        Column("payment_type", INT),
        Column("trip_type", INT),
        Column("congestion_surcharge", FLOAT, required=False),
    ),
)

FHV = Contract(
    "fhv",
    (
        Column("dispatching_base_num", TEXT),
        Column("pickup_datetime", TIMESTAMP),
        Column("dropoff_datetime", TIMESTAMP),
        Column("pulocationid", INT),
        Column("dolocationid", INT),
        Column("sr_flag", INT, required=False),
        Column("affiliated_base_number", TEXT, required=False),
    ),
)

ZONE_LOOKUP = Contract(
    ZONES,
    (
        Column("locationid", INT),
        Column("borough", TEXT),
        Column("zone", TEXT),
        Column("service_zone", TEXT),
    ),
    monthly=False,
)

CONTRACTS: dict[str, Contract] = {c.name: c for c in (YELLOW, GREEN, FHV, ZONE_LOOKUP)}


def table_name(contract: Contract) -> str:
    """The warehouse table of a contract, the same in Postgres and BigQuery."""
    return "taxi_zone_lookup" if not contract.monthly else f"{contract.name}_tripdata"


def contract_for(service: str) -> Contract:
    """The contract of a service; the only way a service name reaches a table or object name."""
    try:
        return CONTRACTS[service]
    except KeyError:
        raise ValueError(
            f"unknown service {service!r}: expected one of {', '.join(SERVICES)}"
        ) from None
