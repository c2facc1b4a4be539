"""The declared schema contract: which columns each source file has and what type each holds.

One contract serves every target (Postgres today, parquet and BigQuery later), so a type is
decided here once and never re-inferred from the data. Column names are the source's names,
lower-cased: header matching is case-insensitive because the TLC renames by case
(``Airport_fee``/``airport_fee``, ``PULocationID``/``PUlocationID``).

Across the years the TLC published a column under other names (yellow 2009: ``Fare_Amt``;
2010-2014: ``fare_amount``) and some only from a certain month (zone ids from 2016-07). A
column's ``aliases`` are its names in earlier eras and ``since`` the first month it is
required: one contract per service maps every era into one table and one parquet schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from include.taxi.settings import SERVICES as SERVICES

ZONES = "zones"

INT = pa.int64()
FLOAT = pa.float64()
TEXT = pa.string()
TIMESTAMP = pa.timestamp("us")

MAX_VALUE_BYTES = 64
"""The longest text a source value may have unless its column declares ``max_length``: a
number, a date and time or a code written out (``2009-01-01 00:00:00``, ``No Charge``) is far
shorter. A longer one is a hostile or broken file (a parquet dictionary can repeat one huge
value on every row), refused before it is copied onto each row."""
FLAG_BYTES = 1
"""A Y/N flag."""
ID_BYTES = 12
"""A TLC licence or base number (``B02510``, ``HV0003``), with room to spare."""

SOURCE_MONTH = "source_month"
"""Added to every trip row: the month of the source file it came from (first day, a date).

Real monthly files carry trips whose pickup lies outside their month, so the pickup time
cannot say which file a row belongs to; this column can, and the month is replaced by it."""


@dataclass(frozen=True)
class Column:
    """One declared column. ``aliases``: lower-case names of the same column in older files.

    ``since``: a required column is only required in files of this month or later (older
    eras lack it and load it as NULL). ``codes``/``raw``: an integer column some eras publish
    as text (yellow 2009 ``Payment_Type`` ``CASH``): the text maps to the documented code and
    is also kept verbatim in the text column ``raw``, so nothing is lost or invented.
    ``max_length``: the most bytes a value may have where the file stores the column as text.
    """

    name: str
    type: pa.DataType
    required: bool = True
    aliases: tuple[str, ...] = ()
    since: date | None = None
    codes: dict[str, int] = field(default_factory=dict, hash=False, compare=False)
    raw: str | None = None
    max_length: int = MAX_VALUE_BYTES

    def required_in(self, month: date | None) -> bool:
        if not self.required:
            return False
        return self.since is None or month is None or month >= self.since


@dataclass(frozen=True)
class Layout:
    """A superseded layout of a service's files, told apart by a column only it has.

    A file with the column ``marker`` needs only the columns ``required``; the rest load as
    NULL, except ``flags``: each is 'Y' where the marker is 1 and 'N' where it is empty."""

    marker: str
    required: tuple[str, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Contract:
    """The columns of one kind of source file, in the order the tables store them.

    ``layouts``: older layouts of the same files that map onto these columns (``Layout``)."""

    name: str
    columns: tuple[Column, ...]
    monthly: bool = True
    layouts: tuple[Layout, ...] = ()

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

    def required_in(self, month: date | None) -> list[str]:
        """The columns a file of ``month`` must have (older eras lack some)."""
        return [c.name for c in self.columns if c.required_in(month)]

    def layout(self, name: str) -> Layout | None:
        """The older layout whose marker column a source file's column ``name`` is."""
        key = name.strip().lower()
        return next((layout for layout in self.layouts if layout.marker == key), None)

    def match(self, name: str) -> Column | None:
        """The column a source file's column ``name`` is, by name or by an older era's name."""
        key = name.strip().lower()
        for col in self.columns:
            if col.name == key:
                return col
        for col in self.columns:
            if key in col.aliases:
                return col
        return None

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


ZONE_IDS_SINCE = date(2016, 7, 1)
"""Taxi files carry zone ids from 2016-07 on and coordinates before (toddwschneider/nyc-taxi-data
PR #33: "lat/lon are not available for trips since July 2016")."""
IMPROVEMENT_SURCHARGE_SINCE = date(2015, 1, 1)
"""The $0.30 improvement surcharge "began being levied in 2015" (TLC data dictionary)."""

VENDOR_CODES = {"CMT": 1, "VTS": 2}
"""Yellow data dictionary: 1 = Creative Mobile Technologies, 2 = VeriFone Inc. (VTS).
2009-2010 files name the vendor (``CMT``, ``VTS``, ``DDS``); DDS has no documented code, so
its ``vendorid`` is NULL and its name survives in ``vendor_text``."""
PAYMENT_CODES = {
    "CREDIT": 1,
    "CRE": 1,
    "CRD": 1,
    "CASH": 2,
    "CAS": 2,
    "CSH": 2,
    "NO CHARGE": 3,
    "NOC": 3,
    "NO": 3,
    "DISPUTE": 4,
    "DIS": 4,
    "UNK": 5,
    "NA": 5,
}
"""Data dictionary: 1 = Credit card, 2 = Cash, 3 = No charge, 4 = Dispute, 5 = Unknown. Old
files spell these out (``CASH``, ``Credit``, ``CAS``, ``CRD``; matched case-insensitively);
anything else gets NULL here and keeps its text in ``payment_type_text``."""


COORDINATES = ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude")


def _coordinates(*aliases: str) -> tuple[Column, ...]:
    """Where a trip began and ended, in files from before zone ids (optional columns);
    ``aliases``: yellow 2009's names for them, in the order of ``COORDINATES``."""
    return tuple(
        Column(name, FLOAT, required=False, aliases=(alias,) if alias else ())
        for name, alias in zip(COORDINATES, aliases or ("",) * 4, strict=True)
    )


YELLOW = Contract(
    "yellow",
    (
        Column(
            "vendorid",
            INT,
            aliases=("vendor_name", "vendor_id"),
            codes=VENDOR_CODES,
            raw="vendor_text",
        ),
        Column(
            "tpep_pickup_datetime", TIMESTAMP, aliases=("trip_pickup_datetime", "pickup_datetime")
        ),
        Column(
            "tpep_dropoff_datetime",
            TIMESTAMP,
            aliases=("trip_dropoff_datetime", "dropoff_datetime"),
        ),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        Column("ratecodeid", INT, aliases=("rate_code",)),
        Column("store_and_fwd_flag", TEXT, aliases=("store_and_forward",), max_length=FLAG_BYTES),
        Column("pulocationid", INT, since=ZONE_IDS_SINCE),
        Column("dolocationid", INT, since=ZONE_IDS_SINCE),
        Column("payment_type", INT, codes=PAYMENT_CODES, raw="payment_type_text"),
        Column("fare_amount", FLOAT, aliases=("fare_amt",)),
        Column("extra", FLOAT, aliases=("surcharge",)),
        Column("mta_tax", FLOAT),
        Column("tip_amount", FLOAT, aliases=("tip_amt",)),
        Column("tolls_amount", FLOAT, aliases=("tolls_amt",)),
        Column("improvement_surcharge", FLOAT, since=IMPROVEMENT_SURCHARGE_SINCE),
        Column("total_amount", FLOAT, aliases=("total_amt",)),
        Column("congestion_surcharge", FLOAT, required=False),
        Column("airport_fee", FLOAT, required=False),
        # added for the TLC's parquet files (issue 11), after the mirror's columns
        Column("cbd_congestion_fee", FLOAT, required=False),
        *_coordinates("start_lon", "start_lat", "end_lon", "end_lat"),
        Column("vendor_text", TEXT, required=False),
        Column("payment_type_text", TEXT, required=False),
    ),
)

GREEN = Contract(
    "green",
    (
        Column("vendorid", INT),
        Column("lpep_pickup_datetime", TIMESTAMP),
        Column("lpep_dropoff_datetime", TIMESTAMP),
        Column("store_and_fwd_flag", TEXT, max_length=FLAG_BYTES),
        Column("ratecodeid", INT),
        Column("pulocationid", INT, since=ZONE_IDS_SINCE),
        Column("dolocationid", INT, since=ZONE_IDS_SINCE),
        Column("passenger_count", INT),
        Column("trip_distance", FLOAT),
        *_money("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount"),
        Column("ehail_fee", FLOAT, required=False),
        Column("improvement_surcharge", FLOAT, since=IMPROVEMENT_SURCHARGE_SINCE),
        Column("total_amount", FLOAT),
        Column("payment_type", INT),
        Column("trip_type", INT),
        Column("congestion_surcharge", FLOAT, required=False),
        # added for the TLC's parquet files (issue 11), after the mirror's columns
        Column("cbd_congestion_fee", FLOAT, required=False),
        *_coordinates(),
    ),
)

FHV_DROPOFF_SINCE = date(2017, 6, 1)
"""FHV files before 2017-06 carry only the base, the pickup time and the pickup zone, named
``Pickup_date`` and ``locationID`` (toddwschneider/nyc-taxi-data import_fhv_trip_data.sh:
``fhv_schema_pre_2017_06``); the dropoff time and zone come with 2017-06."""

FHV = Contract(
    "fhv",
    (
        Column("dispatching_base_num", TEXT, max_length=ID_BYTES),
        Column("pickup_datetime", TIMESTAMP, aliases=("pickup_date",)),
        Column("dropoff_datetime", TIMESTAMP, since=FHV_DROPOFF_SINCE),
        Column("pulocationid", INT, aliases=("locationid",)),
        Column("dolocationid", INT, since=FHV_DROPOFF_SINCE),
        Column("sr_flag", INT, required=False),
        Column("affiliated_base_number", TEXT, required=False, max_length=ID_BYTES),
    ),
)

FHVHV_FLAGS = (
    "shared_request_flag",
    "shared_match_flag",
    "access_a_ride_flag",
    "wav_request_flag",
    "wav_match_flag",
)

ORIGINAL_FHVHV = Layout(
    "sr_flag",
    required=(
        "hvfhs_license_num",
        "dispatching_base_num",
        "pickup_datetime",
        "dropoff_datetime",
        "pulocationid",
        "dolocationid",
    ),
    flags=("shared_request_flag", "shared_match_flag"),
)
"""The HVFHV files as first published (2019-02 on, until the TLC's 2022 republish): these
columns and ``SR_Flag`` (1 for a shared ride, empty otherwise), none of the times, fares or
other flags added since (HVFHV data dictionary; the course's fhvhv_tripdata_2021-01)."""

FHVHV = Contract(
    "fhvhv",
    (
        Column("hvfhs_license_num", TEXT, max_length=ID_BYTES),
        Column("dispatching_base_num", TEXT, max_length=ID_BYTES),
        Column("originating_base_num", TEXT, max_length=ID_BYTES),
        Column("request_datetime", TIMESTAMP),
        Column("on_scene_datetime", TIMESTAMP),
        Column("pickup_datetime", TIMESTAMP),
        Column("dropoff_datetime", TIMESTAMP),
        Column("pulocationid", INT),
        Column("dolocationid", INT),
        Column("trip_miles", FLOAT),
        Column("trip_time", INT),
        *_money("base_passenger_fare", "tolls", "bcf", "sales_tax", "congestion_surcharge"),
        *_money("airport_fee", "tips", "driver_pay"),
        *(Column(flag, TEXT, max_length=FLAG_BYTES) for flag in FHVHV_FLAGS),
        Column("cbd_congestion_fee", FLOAT, required=False),
    ),
    layouts=(ORIGINAL_FHVHV,),
)

ZONE_LOOKUP = Contract(
    ZONES,
    (
        Column("locationid", INT),
        Column("borough", TEXT),
        Column("zone", TEXT, max_length=128),
        Column("service_zone", TEXT),
    ),
    monthly=False,
)

CONTRACTS: dict[str, Contract] = {c.name: c for c in (YELLOW, GREEN, FHV, FHVHV, ZONE_LOOKUP)}


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
