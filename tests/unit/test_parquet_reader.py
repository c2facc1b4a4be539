"""The parquet source reader: every era's names and types become the one contract schema, and
what cannot be mapped without loss is refused with its place in the file.

Files are written with pyarrow using each era's published names and types (dev/tlc_parquet.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dev.tlc_parquet import ERAS, ORIGINAL_FHVHV, _num, _time, expected, write_era
from include.taxi.contract import contract_for
from include.taxi.errors import BadSourceFile
from include.taxi.sources.parquet import ParquetContractReader
from include.taxi.sources.reader import open_source

ROWS = 2_500


def _read(path: Path, service: str, month: date) -> pa.Table:
    reader = open_source(path, contract_for(service), month)
    assert isinstance(reader, ParquetContractReader)
    table = pa.Table.from_batches(list(reader), schema=reader.schema)
    assert reader.rows == table.num_rows
    return table


@pytest.mark.parametrize("era", sorted(ERAS))
def test_every_era_reads_into_the_one_contract_schema(tmp_path: Path, era: str) -> None:
    service, year = era.split("-")
    month = date(int(year), 3, 1)
    path = write_era(tmp_path / f"{service}_tripdata_{year}-03.parquet", era, month, ROWS)
    assert pq.ParquetFile(path).num_row_groups == 3  # the reader walks every row group
    table = _read(path, service, month)
    want = expected(ROWS)
    assert table.schema == contract_for(service).arrow_schema
    assert table.num_rows == ROWS
    money = {"fhvhv": "base_passenger_fare"}.get(service, "fare_amount")
    if service != "fhv":
        assert pa.compute.sum(table[money]).as_py() == pytest.approx(want["fare"])
    assert pa.compute.sum(table["pulocationid"]).as_py() in (want["pu"], None)


def test_yellow_2009_maps_names_text_codes_and_coordinates(tmp_path: Path) -> None:
    month = date(2009, 1, 1)
    path = write_era(tmp_path / "yellow_tripdata_2009-01.parquet", "yellow-2009", month, 12)
    rows = _read(path, "yellow", month).to_pylist()
    first, second, third = rows[:3]
    # vendor_name VTS/CMT/DDS → documented codes 2/1, DDS has none: NULL, text kept
    assert [r["vendorid"] for r in rows[:3]] == [2, 1, None]
    assert [r["vendor_text"] for r in rows[:3]] == ["VTS", "CMT", "DDS"]
    # Payment_Type CASH/Credit/No Charge/Dispute → 2/1/3/4, the text kept verbatim
    assert [r["payment_type"] for r in rows[:4]] == [2, 1, 3, 4]
    assert [r["payment_type_text"] for r in rows[:4]] == ["CASH", "Credit", "No Charge", "Dispute"]
    assert first["tpep_pickup_datetime"] == datetime(2009, 1, 1, 0, 0, 0)
    assert second["tpep_dropoff_datetime"] == datetime(2009, 1, 1, 0, 10, 38)
    assert third["pickup_longitude"] == pytest.approx(-73.9998)
    assert third["dropoff_latitude"] == pytest.approx(40.7002)
    assert first["pulocationid"] is None
    assert first["dolocationid"] is None
    assert first["extra"] == 0.5  # 2009's "surcharge"
    assert first["mta_tax"] is None  # typed null in the file
    assert first["improvement_surcharge"] is None  # levied from 2015 only
    assert first["total_amount"] == pytest.approx(3.5)


def test_yellow_2014_names_with_a_leading_space_and_other_payment_words(tmp_path: Path) -> None:
    month = date(2014, 6, 1)
    path = write_era(tmp_path / "yellow_tripdata_2014-06.parquet", "yellow-2014", month, 8)
    rows = _read(path, "yellow", month).to_pylist()
    assert [r["payment_type"] for r in rows[:4]] == [1, 2, 3, 5]  # CRD CSH NOC UNK
    assert rows[1]["pickup_latitude"] == pytest.approx(40.7001)
    assert rows[0]["tpep_pickup_datetime"] == datetime(2014, 6, 1)


def test_modern_drift_double_ints_null_types_airport_fee_case_and_cbd(tmp_path: Path) -> None:
    months = {
        "yellow-2019": date(2019, 5, 1),
        "yellow-2023": date(2023, 5, 1),
        "yellow-2025": date(2025, 5, 1),
    }
    got = {}
    for era, month in months.items():
        path = write_era(tmp_path / f"{era}.parquet", era, month, 4)
        got[era] = _read(path, "yellow", month).to_pylist()[1]
    assert got["yellow-2019"]["passenger_count"] == 2  # published as double 2.0
    assert got["yellow-2019"]["airport_fee"] is None  # typed null
    assert got["yellow-2023"]["airport_fee"] == 0.0  # "Airport_fee"
    assert got["yellow-2023"]["pulocationid"] == 2  # int32
    assert got["yellow-2025"]["cbd_congestion_fee"] == 0.0
    assert got["yellow-2019"]["cbd_congestion_fee"] is None


def test_green_null_typed_ehail_fee_and_fhv_double_location_ids(tmp_path: Path) -> None:
    green = write_era(tmp_path / "g.parquet", "green-2019", date(2019, 2, 1), 5)
    row = _read(green, "green", date(2019, 2, 1)).to_pylist()[3]
    assert row["ehail_fee"] is None
    assert row["trip_type"] == 1
    assert row["payment_type"] == 2
    fhv = write_era(tmp_path / "f.parquet", "fhv-2019", date(2019, 2, 1), 5)
    row = _read(fhv, "fhv", date(2019, 2, 1)).to_pylist()[3]
    assert (row["pulocationid"], row["dolocationid"], row["sr_flag"]) == (4, 22, None)


def test_fhvhv_all_columns_with_their_types(tmp_path: Path) -> None:
    month = date(2024, 1, 1)
    path = write_era(tmp_path / "fhvhv_tripdata_2024-01.parquet", "fhvhv-2024", month, 10)
    rows = _read(path, "fhvhv", month).to_pylist()
    assert rows[0]["on_scene_datetime"] is None
    assert rows[1]["on_scene_datetime"] is not None
    assert rows[1]["request_datetime"] == datetime(2024, 1, 1, 0, 0, 37) - (
        datetime(2024, 1, 1, 0, 5) - datetime(2024, 1, 1, 0, 0, 1)
    )
    assert rows[2]["shared_request_flag"] == "Y"
    assert rows[1]["wav_match_flag"] == "Y"
    assert rows[3]["trip_time"] == 603
    assert rows[3]["driver_pay"] == pytest.approx(5.5 * 0.75)
    assert rows[3]["cbd_congestion_fee"] is None


def test_a_timestamp_far_outside_the_nanosecond_range_is_kept(tmp_path: Path) -> None:
    """fhv's dropoff in year 3019: stored as us it overflows ns; it must load, not crash."""
    far = int((datetime(3019, 2, 1) - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
    spec = [
        *[c for c in ERAS["fhv-2019"] if c[0] != "dropOff_datetime"],
        ("dropOff_datetime", lambda i, m: pa.array(np.full(len(i), far), pa.timestamp("us"))),
    ]
    path = write_era(tmp_path / "f.parquet", "", date(2019, 2, 1), 3, columns=spec)
    assert _read(path, "fhv", date(2019, 2, 1))["dropoff_datetime"][0].as_py().year == 3019


def _bad(tmp_path: Path, era: str, month: date, change: dict) -> Path:
    spec = [(n, change.get(n, m)) for n, m in ERAS[era] if change.get(n, m) is not None]
    return write_era(tmp_path / f"{era}.parquet", "", month, ROWS, columns=spec)


def test_a_fractional_value_in_an_integer_column_is_located(tmp_path: Path) -> None:
    def passengers(i: np.ndarray, month: date) -> pa.Array:
        return pa.array(np.where(i == 2_345, 1.5, 1 + i % 4).astype(float))

    month = date(2022, 4, 1)
    path = _bad(tmp_path, "yellow-2022", month, {"passenger_count": passengers})
    reader = ParquetContractReader(path, contract_for("yellow"), month)
    with pytest.raises(BadSourceFile) as caught:
        list(reader)
    message = str(caught.value)
    for part in (
        "yellow-2022.parquet",
        "row group 2",
        "row 2346",
        "column passenger_count",
        "1.5",
        "not a whole number",
        "contract.py",
    ):
        assert part in message, message
    assert reader.error is caught.value


def test_an_unparseable_text_time_is_located(tmp_path: Path) -> None:
    def pickup(i: np.ndarray, month: date) -> pa.Array:
        values = _time("us", text=True)(i, month).to_pylist()
        if len(values) > 7:
            values[7] = "01/02/2009 10:00"
        return pa.array(values)

    month = date(2009, 1, 1)
    path = _bad(tmp_path, "yellow-2009", month, {"Trip_Pickup_DateTime": pickup})
    with pytest.raises(BadSourceFile, match=r"row group 0, row 8, column Trip_Pickup_DateTime"):
        list(ParquetContractReader(path, contract_for("yellow"), month))


def test_a_missing_required_column_names_it_and_the_era(tmp_path: Path) -> None:
    month = date(2024, 1, 1)
    path = _bad(tmp_path, "fhvhv-2024", month, {"trip_miles": None})
    with pytest.raises(BadSourceFile, match=r"trip_miles missing for a 2024-01 file"):
        ParquetContractReader(path, contract_for("fhvhv"), month)
    # zone ids are required from 2016-07, the surcharge from 2015: a 2014 file lacks both
    old = write_era(tmp_path / "y.parquet", "yellow-2010", date(2014, 12, 1), 3)
    reader = ParquetContractReader(old, contract_for("yellow"), date(2014, 12, 1))
    assert len(list(reader)) == 1
    assert reader.rows == 3
    with pytest.raises(BadSourceFile, match="pulocationid, dolocationid, improvement_surcharge m"):
        ParquetContractReader(old, contract_for("yellow"), date(2016, 7, 1))


def test_unknown_and_doubled_columns_are_refused(tmp_path: Path) -> None:
    month = date(2023, 3, 1)
    extra = [*ERAS["yellow-2023"], ("surprise", _num(lambda i: i * 1.0, pa.float64()))]
    path = write_era(tmp_path / "u.parquet", "", month, 3, columns=extra)
    with pytest.raises(BadSourceFile, match=r"unknown column.*surprise"):
        ParquetContractReader(path, contract_for("yellow"), month)
    twice = [*ERAS["yellow-2023"], ("airport_fee", _num(lambda i: i * 1.0, pa.float64()))]
    path = write_era(tmp_path / "d.parquet", "", month, 3, columns=twice)
    with pytest.raises(BadSourceFile, match="'Airport_fee' and 'airport_fee' are both"):
        ParquetContractReader(path, contract_for("yellow"), month)


def test_truncated_html_and_empty_files_say_what_they_are(tmp_path: Path) -> None:
    month = date(2024, 1, 1)
    good = write_era(tmp_path / "good.parquet", "fhvhv-2024", month, ROWS)
    truncated = tmp_path / "fhvhv_tripdata_2024-01.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadSourceFile, match=r"fhvhv_tripdata_2024-01.parquet: .*truncated"):
        ParquetContractReader(truncated, contract_for("fhvhv"), month)
    html = tmp_path / "html.parquet"
    html.write_text("<!DOCTYPE html><html><body>AccessDenied</body></html>")
    with pytest.raises(BadSourceFile, match=r"not a parquet file.*<!DOCTYPE html>.*taxi_tlc_url"):
        ParquetContractReader(html, contract_for("fhvhv"), month)
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(BadSourceFile, match="empty"):
        ParquetContractReader(empty, contract_for("fhvhv"), month)


def _original(tmp_path: Path, flag: Callable[[np.ndarray, date], pa.Array], **more: Any) -> Path:
    spec = [(n, flag if n == "SR_Flag" else m) for n, m in ORIGINAL_FHVHV]
    spec += list(more.items())
    return write_era(tmp_path / "o.parquet", "", date(2020, 5, 1), 6, columns=spec)


SR_FLAGS = {  # 1 on every third row, empty on the others, as each writer stores it
    "int": lambda i, m: pa.array(np.where(i % 3 == 2, 1, 0), pa.int64(), mask=i % 3 != 2),
    "double": lambda i, m: pa.array(np.where(i % 3 == 2, 1.0, 0.0), mask=i % 3 != 2),
    "text": lambda i, m: pa.array(np.where(i % 3 == 2, "1", np.where(i % 3, " ", "")), pa.string()),
    "all empty": lambda i, m: pa.nulls(len(i)),
}


@pytest.mark.parametrize("kind", sorted(SR_FLAGS))
def test_sr_flag_of_every_type_becomes_the_shared_ride_flags(tmp_path: Path, kind: str) -> None:
    rows = _read(_original(tmp_path, SR_FLAGS[kind]), "fhvhv", date(2020, 5, 1)).to_pylist()
    want = ["N"] * 6 if kind == "all empty" else ["N", "N", "Y", "N", "N", "Y"]
    assert [r["shared_request_flag"] for r in rows] == want
    assert [r["shared_match_flag"] for r in rows] == want
    assert {r["base_passenger_fare"] for r in rows} == {None}
    assert {r["wav_request_flag"] for r in rows} == {None}


def test_sr_flag_other_than_one_or_empty_and_doubled_flags_are_refused(tmp_path: Path) -> None:
    month = date(2020, 5, 1)
    two = _original(tmp_path, lambda i, m: pa.array(np.where(i == 4, 2, 1)))
    with pytest.raises(BadSourceFile, match=r"row 5, column SR_Flag: value 2 is neither 1 nor"):
        list(ParquetContractReader(two, contract_for("fhvhv"), month))
    today = dict(ERAS["fhvhv-2024"])["shared_request_flag"]
    both = _original(tmp_path, SR_FLAGS["int"], shared_request_flag=today)
    with pytest.raises(BadSourceFile, match=r"'SR_Flag' .* and shared_request_flag both hold"):
        ParquetContractReader(both, contract_for("fhvhv"), month)
    spec = [(n, m) for n, m in ORIGINAL_FHVHV if n != "dropoff_datetime"]
    short = write_era(tmp_path / "s.parquet", "", month, 3, columns=spec)
    with pytest.raises(BadSourceFile, match=r"required column\(s\) dropoff_datetime missing"):
        ParquetContractReader(short, contract_for("fhvhv"), month)


def test_every_text_column_declares_a_short_bound() -> None:
    """Flags 1 byte, licence and base numbers 12: the bound a hostile dictionary meets."""
    fhvhv = contract_for("fhvhv")
    assert {c.max_length for c in fhvhv.columns if c.name.endswith("_flag")} == {1}
    assert fhvhv.column("dispatching_base_num").max_length == 12  # type: ignore[union-attr]
    for contract in map(contract_for, ("yellow", "green", "fhv", "fhvhv", "zones")):
        assert all(0 < c.max_length <= 128 for c in contract.columns), contract.name


def test_a_damaged_page_header_is_refused_before_reading(tmp_path: Path) -> None:
    month = date(2024, 1, 1)
    path = write_era(tmp_path / "fhvhv_tripdata_2024-01.parquet", "fhvhv-2024", month, ROWS)
    chunk = pq.read_metadata(path).row_group(1).column(9)
    raw = bytearray(path.read_bytes())
    raw[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(raw))
    with pytest.raises(BadSourceFile, match=r"row group 1: a page header cannot be read"):
        ParquetContractReader(path, contract_for("fhvhv"), month)


@pytest.mark.parametrize(
    ("sizes", "n", "cuts"),
    [
        ([1] * 7, 3, [0, 3, 5, 7]),  # about equal rows
        ([4, 4, 0, 0], 2, [0, 1, 4]),  # trailing empty groups join the last run
        ([5, 0, 0], 2, [0, 3]),  # no run of empty groups only: one stream
        ([3, 1], 3, [0, 1, 2]),  # never more runs than row groups
        ([], 2, [0, 0]),
    ],
)
def test_row_groups_are_cut_into_runs_of_about_equal_rows(sizes, n, cuts) -> None:
    """How a file is split between COPY streams (``ParquetContractReader.slices``)."""
    from include.taxi.sources.parquet import _balanced_cuts

    assert _balanced_cuts(sizes, n) == cuts
