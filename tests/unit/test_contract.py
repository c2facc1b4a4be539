"""The schema contract: the real column lists, header matching and the Arrow schema."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dev.synthetic import HEADERS
from include.taxi.contract import CONTRACTS, FHV, GREEN, SOURCE_MONTH, YELLOW, contract_for
from include.taxi.errors import BadSourceFile
from include.taxi.sources.csv import check_header

YELLOW_FACTS = (
    "VendorID, tpep_pickup_datetime, tpep_dropoff_datetime, passenger_count, trip_distance, "
    "RatecodeID, store_and_fwd_flag, PULocationID, DOLocationID, payment_type, fare_amount, "
    "extra, mta_tax, tip_amount, tolls_amount, improvement_surcharge, total_amount, "
    "congestion_surcharge"
)
GREEN_FACTS = (
    "VendorID, lpep_pickup_datetime, lpep_dropoff_datetime, store_and_fwd_flag, RatecodeID, "
    "PULocationID, DOLocationID, passenger_count, trip_distance, fare_amount, extra, mta_tax, "
    "tip_amount, tolls_amount, ehail_fee, improvement_surcharge, total_amount, payment_type, "
    "trip_type, congestion_surcharge"
)
FHV_FACTS = (
    "dispatching_base_num, pickup_datetime, dropOff_datetime, PUlocationID, DOlocationID, "
    "SR_Flag, Affiliated_base_number"
)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.replace(",", " ").split()]


@pytest.mark.parametrize(
    ("contract", "facts"), [(YELLOW, YELLOW_FACTS), (GREEN, GREEN_FACTS), (FHV, FHV_FACTS)]
)
def test_real_headers_match_the_contract(contract, facts) -> None:
    header = [n.lower() for n in _names(facts)]
    check_header(header, contract, "real.csv.gz")
    assert [n for n in contract.names if n in header] == header


@pytest.mark.parametrize("service", ["yellow", "green", "fhv"])
def test_generated_headers_are_the_real_ones(service) -> None:
    facts = {"yellow": YELLOW_FACTS, "green": GREEN_FACTS, "fhv": FHV_FACTS}[service]
    assert HEADERS[service].split(",") == _names(facts)


def test_yellow_2022_parquet_era_columns_are_optional() -> None:
    header = [n.lower() for n in _names(YELLOW_FACTS)] + ["airport_fee"]
    check_header(header, YELLOW, "yellow_tripdata_2023-02.csv.gz")
    check_header([h for h in header if h != "congestion_surcharge"], YELLOW, "y.csv.gz")


def test_header_matching_is_case_insensitive_via_lowercasing() -> None:
    assert YELLOW.column("Airport_fee") is YELLOW.column("airport_fee") is not None
    assert FHV.column("PUlocationID") is FHV.column("PULocationID") is not None


def test_missing_required_column_names_it() -> None:
    header = [n.lower() for n in _names(YELLOW_FACTS) if n != "tpep_dropoff_datetime"]
    with pytest.raises(BadSourceFile) as err:
        check_header(header, YELLOW, "yellow_tripdata_2021-01.csv.gz")
    assert "tpep_dropoff_datetime" in str(err.value)
    assert "yellow_tripdata_2021-01.csv.gz" in str(err.value)
    assert "missing" in str(err.value)


def test_unknown_column_is_refused() -> None:
    header = [n.lower() for n in _names(GREEN_FACTS)] + ["surprise_fee"]
    with pytest.raises(BadSourceFile, match=r"unknown column.*surprise_fee"):
        check_header(header, GREEN, "green.csv.gz")


def test_duplicate_column_is_refused() -> None:
    header = [n.lower() for n in _names(FHV_FACTS)] + ["sr_flag"]
    with pytest.raises(BadSourceFile, match="twice"):
        check_header(header, FHV, "fhv.csv.gz")


def test_arrow_schema_has_source_month_and_declared_types() -> None:
    schema = YELLOW.arrow_schema
    assert schema.field(SOURCE_MONTH).type == pa.date32()
    assert not schema.field(SOURCE_MONTH).nullable
    assert schema.field("passenger_count").type == pa.int64()
    assert schema.field("tpep_pickup_datetime").type == pa.timestamp("us")
    assert schema.field("store_and_fwd_flag").type == pa.string()
    assert SOURCE_MONTH not in CONTRACTS["zones"].arrow_schema.names


@pytest.mark.parametrize("bad", ["purple", "yellow; DROP TABLE x", "../../etc", ""])
def test_unknown_service_is_rejected(bad) -> None:
    with pytest.raises(ValueError, match="unknown service"):
        contract_for(bad)
