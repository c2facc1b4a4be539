"""The TLC's parquet files, generated: each era's published column names and types.

Used by the tests (each era loads into every target with exact values) and by the benchmark
(an fhvhv-sized month). The names and types per era are those recorded in README ("The TLC's
parquet files"); values are a deterministic function of the row number ``i``, so a test can
compute what must arrive (``expected``). Written with numpy and Arrow a row group at a time:
a 20 M-row month never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

Maker = Callable[[np.ndarray, date], pa.Array]


def _text(choices: list[str]) -> Callable[[np.ndarray, date], pa.Array]:
    def make(i: np.ndarray, month: date) -> pa.Array:
        indices = pa.array((i % len(choices)).astype(np.int32))
        return pa.DictionaryArray.from_arrays(indices, pa.array(choices)).cast(pa.string())

    return make


def _pickup_seconds(i: np.ndarray, month: date) -> np.ndarray:
    start = int(datetime(month.year, month.month, 1).timestamp() - datetime(1970, 1, 1).timestamp())
    return start + (i * 37) % (27 * 86400)


def _time(unit: str, offset: int = 0, *, text: bool = False, null_every: int = 0) -> Maker:
    def make(i: np.ndarray, month: date) -> pa.Array:
        seconds = _pickup_seconds(i, month) + (offset + i % 300 if offset else 0)
        mask = (i % null_every == 0) if null_every else None
        if text:
            values = seconds.astype("datetime64[s]").astype(str)
            return pa.array(
                np.char.replace(values, "T", " ").astype(object), pa.string(), mask=mask
            )
        scale = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
        return pa.array(seconds * scale, pa.timestamp(unit), mask=mask)

    return make


def _num(fn: Callable[[np.ndarray], np.ndarray], type_: pa.DataType) -> Maker:
    def make(i: np.ndarray, month: date) -> pa.Array:
        values = fn(i)
        if pa.types.is_integer(type_):
            values = values.astype(np.int64)
        return pa.array(values, pa.float64() if pa.types.is_floating(type_) else pa.int64()).cast(
            type_
        )

    return make


def _null() -> Maker:
    return lambda i, month: pa.nulls(len(i))


# Row i's values (what the tests check):
PASSENGERS = lambda i: 1 + i % 4  # noqa: E731
DISTANCE = lambda i: 0.5 + (i % 100) / 10  # noqa: E731
FARE = lambda i: 2.5 + i % 50  # noqa: E731
TIP = lambda i: (i % 7) * 0.5  # noqa: E731
TOTAL = lambda i: 2.5 + i % 50 + (i % 7) * 0.5 + 1.0  # noqa: E731
PU = lambda i: 1 + i % 265  # noqa: E731
DO = lambda i: 1 + (i * 7) % 265  # noqa: E731
LON = lambda i: -74.0 + (i % 1000) / 10000  # noqa: E731
LAT = lambda i: 40.7 + (i % 1000) / 10000  # noqa: E731
HALF = lambda i: np.full(len(i), 0.5)  # noqa: E731
ZERO = lambda i: np.zeros(len(i))  # noqa: E731
ONE = lambda i: np.ones(len(i))  # noqa: E731
F64, I64, I32 = pa.float64(), pa.int64(), pa.int32()

VENDORS_2009 = ["VTS", "CMT", "DDS"]
PAYMENTS_2009 = ["CASH", "Credit", "No Charge", "Dispute"]
PAYMENTS_2010 = ["CAS", "CRD", "NOC", "DIS"]
PAYMENTS_2014 = ["CRD", "CSH", "NOC", "UNK"]

_YELLOW_2010 = [
    ("vendor_id", _text(["VTS", "CMT"])),
    ("pickup_datetime", _time("ns")),
    ("dropoff_datetime", _time("ns", 600)),
    ("passenger_count", _num(PASSENGERS, I64)),
    ("trip_distance", _num(DISTANCE, F64)),
    ("pickup_longitude", _num(LON, F64)),
    ("pickup_latitude", _num(LAT, F64)),
    ("rate_code", _num(ONE, I64)),
    ("store_and_fwd_flag", _null()),
    ("dropoff_longitude", _num(LON, F64)),
    ("dropoff_latitude", _num(LAT, F64)),
    ("payment_type", _text(PAYMENTS_2010)),
    ("fare_amount", _num(FARE, F64)),
    ("surcharge", _num(HALF, F64)),
    ("mta_tax", _num(HALF, F64)),
    ("tip_amount", _num(TIP, F64)),
    ("tolls_amount", _num(ZERO, F64)),
    ("total_amount", _num(TOTAL, F64)),
]


def _modern_yellow(ids: pa.DataType, times: str, counts: pa.DataType, airport: str) -> list:
    return [
        ("VendorID", _num(lambda i: 1 + i % 2, ids)),
        ("tpep_pickup_datetime", _time(times)),
        ("tpep_dropoff_datetime", _time(times, 600)),
        ("passenger_count", _num(PASSENGERS, counts)),
        ("trip_distance", _num(DISTANCE, F64)),
        ("RatecodeID", _num(ONE, counts)),
        ("store_and_fwd_flag", _text(["N", "Y"])),
        ("PULocationID", _num(PU, ids)),
        ("DOLocationID", _num(DO, ids)),
        ("payment_type", _num(lambda i: 1 + i % 2, I64)),
        ("fare_amount", _num(FARE, F64)),
        ("extra", _num(HALF, F64)),
        ("mta_tax", _num(HALF, F64)),
        ("tip_amount", _num(TIP, F64)),
        ("tolls_amount", _num(ZERO, F64)),
        ("improvement_surcharge", _num(lambda i: np.full(len(i), 0.3), F64)),
        ("total_amount", _num(TOTAL, F64)),
        ("congestion_surcharge", _num(lambda i: np.full(len(i), 2.5), F64)),
        (airport, _null() if airport == "airport_fee_null" else _num(ZERO, F64)),
    ]


ERAS: dict[str, list[tuple[str, Maker]]] = {
    # 2009: names of their own, text vendor and payment type, coordinates, times as text
    "yellow-2009": [
        ("vendor_name", _text(VENDORS_2009)),
        ("Trip_Pickup_DateTime", _time("us", text=True)),
        ("Trip_Dropoff_DateTime", _time("us", 600, text=True)),
        ("Passenger_Count", _num(PASSENGERS, I64)),
        ("Trip_Distance", _num(DISTANCE, F64)),
        ("Start_Lon", _num(LON, F64)),
        ("Start_Lat", _num(LAT, F64)),
        ("Rate_Code", _null()),
        ("store_and_forward", _null()),
        ("End_Lon", _num(LON, F64)),
        ("End_Lat", _num(LAT, F64)),
        ("Payment_Type", _text(PAYMENTS_2009)),
        ("Fare_Amt", _num(FARE, F64)),
        ("surcharge", _num(HALF, F64)),
        ("mta_tax", _null()),
        ("Tip_Amt", _num(TIP, F64)),
        ("Tolls_Amt", _num(ZERO, F64)),
        ("Total_Amt", _num(TOTAL, F64)),
    ],
    "yellow-2010": _YELLOW_2010,
    # 2014: the 2010 names, some with the original CSVs' leading space, other payment words
    "yellow-2014": [
        (f" {name}" if name.endswith(("datetime", "longitude", "latitude")) else name, make)
        for name, make in _YELLOW_2010
        if name != "payment_type"
    ]
    + [("payment_type", _text(PAYMENTS_2014))],
    # 2015-2016-06: today's names, but coordinates instead of zone ids
    "yellow-2016": [
        *_modern_yellow(I64, "us", F64, "airport_fee")[:5],
        ("pickup_longitude", _num(LON, F64)),
        ("pickup_latitude", _num(LAT, F64)),
        ("RatecodeID", _num(ONE, F64)),
        ("store_and_fwd_flag", _text(["N", "Y"])),
        ("dropoff_longitude", _num(LON, F64)),
        ("dropoff_latitude", _num(LAT, F64)),
        *_modern_yellow(I64, "us", F64, "airport_fee")[9:17],
    ],
    # 2019: zone ids; passenger_count/RatecodeID as double; airport_fee typed null
    "yellow-2019": [
        (n if n != "airport_fee_null" else "airport_fee", m)
        for n, m in _modern_yellow(I64, "us", F64, "airport_fee_null")
    ],
    "yellow-2022": _modern_yellow(I64, "ns", F64, "airport_fee"),
    "yellow-2023": _modern_yellow(I32, "us", I64, "Airport_fee"),
    "yellow-2025": [
        *_modern_yellow(I32, "us", I64, "Airport_fee"),
        ("cbd_congestion_fee", _num(lambda i: np.where(i % 2 == 0, 0.75, 0.0), F64)),
    ],
    "green-2019": [
        ("VendorID", _num(lambda i: 1 + i % 2, I64)),
        ("lpep_pickup_datetime", _time("us")),
        ("lpep_dropoff_datetime", _time("us", 600)),
        ("store_and_fwd_flag", _text(["N"])),
        ("RatecodeID", _num(ONE, F64)),
        ("PULocationID", _num(PU, I64)),
        ("DOLocationID", _num(DO, I64)),
        ("passenger_count", _num(PASSENGERS, F64)),
        ("trip_distance", _num(DISTANCE, F64)),
        ("fare_amount", _num(FARE, F64)),
        ("extra", _num(HALF, F64)),
        ("mta_tax", _num(HALF, F64)),
        ("tip_amount", _num(TIP, F64)),
        ("tolls_amount", _num(ZERO, F64)),
        ("ehail_fee", _null()),
        ("improvement_surcharge", _num(lambda i: np.full(len(i), 0.3), F64)),
        ("total_amount", _num(TOTAL, F64)),
        ("payment_type", _num(lambda i: 1 + i % 2, F64)),
        ("trip_type", _num(ONE, F64)),
        ("congestion_surcharge", _num(ZERO, F64)),
    ],
    # 2015-2016 (the original CSVs' names): no dropoff time or zone, the pickup zone as locationID
    "fhv-2015": [
        ("Dispatching_base_num", _text(["B00013", "B02510"])),
        ("Pickup_date", _time("us")),
        ("locationID", _num(PU, F64)),
    ],
    "fhv-2019": [
        ("dispatching_base_num", _text(["B00013", "B02510"])),
        ("pickup_datetime", _time("us")),
        ("dropOff_datetime", _time("us", 600)),
        ("PUlocationID", _num(PU, F64)),
        ("DOlocationID", _num(DO, F64)),
        ("SR_Flag", _null()),
        ("Affiliated_base_number", _text(["B00013", "B02510"])),
    ],
    "fhvhv-2024": [
        ("hvfhs_license_num", _text(["HV0003", "HV0005"])),
        ("dispatching_base_num", _text(["B03404", "B03406"])),
        ("originating_base_num", _text(["B03404", "B03406"])),
        ("request_datetime", _time("us", -300 + 0)),
        ("on_scene_datetime", _time("us", -60 + 0, null_every=5)),
        ("pickup_datetime", _time("us")),
        ("dropoff_datetime", _time("us", 600)),
        ("PULocationID", _num(PU, I32)),
        ("DOLocationID", _num(DO, I32)),
        ("trip_miles", _num(DISTANCE, F64)),
        ("trip_time", _num(lambda i: 600 + i % 300, I64)),
        ("base_passenger_fare", _num(FARE, F64)),
        ("tolls", _num(ZERO, F64)),
        ("bcf", _num(lambda i: np.full(len(i), 0.5), F64)),
        ("sales_tax", _num(lambda i: np.full(len(i), 1.5), F64)),
        ("congestion_surcharge", _num(lambda i: np.full(len(i), 2.75), F64)),
        ("airport_fee", _num(ZERO, F64)),
        ("tips", _num(TIP, F64)),
        ("driver_pay", _num(lambda i: (2.5 + i % 50) * 0.75, F64)),
        ("shared_request_flag", _text(["N", "N", "Y"])),
        ("shared_match_flag", _text(["N"])),
        ("access_a_ride_flag", _text([" "])),
        ("wav_request_flag", _text(["N"])),
        ("wav_match_flag", _text(["N", "Y"])),
    ],
}
ERAS["fhvhv-2025"] = [*ERAS["fhvhv-2024"], ("cbd_congestion_fee", _num(HALF, F64))]

SHARED = lambda i: np.where(i % 3 == 2, 1.0, np.nan)  # noqa: E731


def _shared_ride(i: np.ndarray, month: date) -> pa.Array:
    """``SR_Flag``: 1 on every third row, empty elsewhere (as pandas writes it: a double)."""
    values = SHARED(i)
    return pa.array(values, pa.float64(), mask=np.isnan(values))


ORIGINAL_FHVHV = [
    ("hvfhs_license_num", _text(["HV0003", "HV0005"])),
    ("dispatching_base_num", _text(["B02764", "B02510"])),
    ("pickup_datetime", _time("us")),
    ("dropoff_datetime", _time("us", 600)),
    ("PULocationID", _num(PU, I64)),
    ("DOLocationID", _num(DO, I64)),
    ("SR_Flag", _shared_ride),
]
"""The HVFHV layout as first published (2019-02 until the TLC's 2022 republish): no times
besides pickup and dropoff, no fares, one shared-ride flag. Not an era of ``ERAS``: archived
copies and mirrors carry it for months whose TLC file now has today's layout."""


def era_schema(era: str) -> pa.Schema:
    i = np.arange(1)
    return pa.schema([pa.field(n, m(i, date(2020, 1, 1)).type) for n, m in ERAS[era]])


def write_era(
    path: Path,
    era: str,
    month: date,
    rows: int,
    *,
    row_group_rows: int = 1000,
    columns: list[tuple[str, Maker]] | None = None,
) -> Path:
    """A parquet file of ``rows`` rows with the era's names and types, ``row_group_rows`` a group
    (the TLC's files: ~1 M rows a group, snappy)."""
    spec = columns or ERAS[era]
    schema = pa.schema([pa.field(n, m(np.arange(1), month).type) for n, m in spec])
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for start in range(0, rows, row_group_rows):
            i = np.arange(start, min(rows, start + row_group_rows), dtype=np.int64)
            writer.write_table(pa.table([m(i, month) for _, m in spec], schema=schema))
    return path


def expected(rows: int) -> dict[str, float]:
    """Sums the tests check, from the same formulas the files were written with."""
    i = np.arange(rows, dtype=np.int64)
    return {
        "rows": rows,
        "fare": float(FARE(i).sum()),
        "tip": float(TIP(i).sum()),
        "total": float(TOTAL(i).sum()),
        "passengers": int(PASSENGERS(i).sum()),
        "pu": int(PU(i).sum()),
    }
