"""The in-stream quality profile: exact counts against a plain-Python reference, the rules'
levels, and that profiling never imports pandas (the loads' memory budget)."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from dev.synthetic import write_month, write_troubled_month
from include.taxi.contract import FHV, YELLOW, ZONE_LOOKUP
from include.taxi.quality import RULES, Profile, QualityFailed, zone_id_array
from include.taxi.sources.csv import ContractReader

JAN = date(2021, 1, 1)
ZONES = range(1, 266)


def reference_profile(path: Path) -> dict:
    """The same figures, computed the slow obvious way, row by row."""
    counts = dict.fromkeys(
        (
            "rows",
            "out_of_month",
            "dropoff_before_pickup",
            "negative_total",
            "unknown_zone",
            "over_24h",
        ),
        0,
    )
    nulls: dict[str, int] = {}
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            counts["rows"] += 1
            for key, value in row.items():
                name = key.lower()
                if value == "":
                    nulls[name] = nulls.get(name, 0) + 1
                elif name in ("fare_amount", "total_amount", "trip_distance"):
                    low[name] = min(low.get(name, float(value)), float(value))
                    high[name] = max(high.get(name, float(value)), float(value))
            pickup = datetime.fromisoformat(row["tpep_pickup_datetime"])
            dropoff = datetime.fromisoformat(row["tpep_dropoff_datetime"])
            counts["out_of_month"] += not (datetime(2021, 1, 1) <= pickup < datetime(2021, 2, 1))
            counts["dropoff_before_pickup"] += dropoff < pickup
            counts["over_24h"] += dropoff - pickup > timedelta(hours=24)
            counts["negative_total"] += float(row["total_amount"]) < 0
            counts["unknown_zone"] += any(
                row[c] and int(row[c]) not in ZONES for c in ("PULocationID", "DOLocationID")
            )
            for name, value in (("pickup", pickup), ("dropoff", dropoff)):
                key = f"tpep_{name}_datetime"
                low[key] = min(low.get(key, value), value)
                high[key] = max(high.get(key, value), value)
    return {**counts, "nulls": nulls, "min": low, "max": high}


def profile_of(path: Path, **kwargs) -> Profile:
    profile = Profile(YELLOW, JAN, zone_ids=zone_id_array(ZONES), **kwargs)
    for _ in profile.observe(ContractReader(path, YELLOW, JAN, block_size=16 << 10)):
        pass
    return profile


def test_the_profile_counts_are_exact(tmp_path: Path) -> None:
    path = write_troubled_month(tmp_path / "yellow_tripdata_2021-01.csv.gz", 40_000)
    expected = reference_profile(path)
    got = profile_of(path).as_dict()
    for key in (
        "rows",
        "out_of_month",
        "dropoff_before_pickup",
        "negative_total",
        "unknown_zone",
        "over_24h",
    ):
        assert got[key] == expected[key], key
    assert all(expected[k] > 0 for k in ("dropoff_before_pickup", "negative_total", "over_24h"))
    with gzip.open(path, "rt") as f:
        header = {name.strip().lower() for name in f.readline().split(",")}
    absent = set(got["nulls"]) - header  # contract columns the file lacks: NULL on every row
    assert {k: got["nulls"][k] for k in absent} == dict.fromkeys(absent, got["rows"])
    assert {k: v for k, v in got["nulls"].items() if v and k not in absent} == {
        k: v for k, v in expected["nulls"].items() if k in got["nulls"] and v
    }
    assert got["nulls"]["airport_fee"] == expected["rows"]  # not in the file: all NULL
    for name in ("fare_amount", "total_amount", "trip_distance"):
        assert got["min"][name] == pytest.approx(expected["min"][name])
        assert got["max"][name] == pytest.approx(expected["max"][name])
    for name in ("tpep_pickup_datetime", "tpep_dropoff_datetime"):
        assert got["min"][name] == expected["min"][name].isoformat(sep=" ")
        assert got["max"][name] == expected["max"][name].isoformat(sep=" ")
    assert got["min"]["airport_fee"] is None
    assert got["out_of_month_share"] == pytest.approx(expected["out_of_month"] / expected["rows"])


def test_warnings_name_what_is_wrong_and_never_fail(tmp_path: Path) -> None:
    path = write_troubled_month(tmp_path / "yellow_tripdata_2021-01.csv.gz", 5_000, every=7)
    findings = profile_of(path).check(path.name)
    rules = {f.rule: f for f in findings}
    assert set(rules) >= {"dropoff_before_pickup", "negative_total", "unknown_zone", "over_24h"}
    assert all(f.level == "warn" for f in findings)
    assert "dropoff before their pickup" in rules["dropoff_before_pickup"].message


def test_a_clean_month_has_no_findings(tmp_path: Path) -> None:
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(path, "yellow", JAN, 3_000)
    assert profile_of(path).check(path.name) == []


def test_a_month_far_below_the_trailing_median_warns(tmp_path: Path) -> None:
    path = tmp_path / "yellow_tripdata_2021-01.csv.gz"
    write_month(path, "yellow", JAN, 1_000)
    assert profile_of(path, trailing_rows=[4_000, 5_000]).check(path.name) == []  # too few
    findings = profile_of(path, trailing_rows=[5_000, 6_000, 5_500]).check(path.name)
    assert [f.rule for f in findings] == ["far_below_trailing_median"]
    assert "median 5500" in findings[0].message


def test_zone_rule_is_skipped_with_a_note_without_a_lookup(tmp_path: Path) -> None:
    path = tmp_path / "fhv_tripdata_2021-01.csv.gz"
    write_month(path, "fhv", JAN, 2_000)
    profile = Profile(FHV, JAN, zone_source="schema.taxi_zone_lookup")
    list(profile.observe(ContractReader(path, FHV, JAN)))
    got = profile.as_dict()
    assert got["unknown_zone"] is None
    assert got["notes"] == ["zone ids not checked: no zone lookup in schema.taxi_zone_lookup yet"]


def test_a_non_contiguous_lookup_is_checked_by_membership(tmp_path: Path) -> None:
    path = tmp_path / "fhv_tripdata_2021-01.csv.gz"
    write_month(path, "fhv", JAN, 3_000)
    ids = [1, 2, 132, 138, 161, 264, 265]
    profile = Profile(FHV, JAN, zone_ids=zone_id_array(ids))
    batches = list(profile.observe(ContractReader(path, FHV, JAN)))
    expected = 0
    for batch in batches:
        for pu, do in zip(
            *(batch.column(c).to_pylist() for c in ("pulocationid", "dolocationid")), strict=True
        ):
            expected += (pu is not None and pu not in ids) or (do is not None and do not in ids)
    assert profile.as_dict()["unknown_zone"] == expected > 0


def test_fail_rules_are_structural_only() -> None:
    assert {r.name for r in RULES if r.level == "fail"} == {"no_rows", "time_column_empty"}


def test_an_empty_time_column_fails(tmp_path: Path) -> None:
    path = tmp_path / "fhv_tripdata_2021-01.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID\n")
        f.write("B00001,2021-01-01 10:00:00,,1,2\nB00002,2021-01-02 10:00:00,,,\n")
    profile = Profile(FHV, JAN)
    list(profile.observe(ContractReader(path, FHV, JAN)))
    with pytest.raises(QualityFailed, match=r"time_column_empty: column\(s\) dropoff_datetime"):
        profile.check(path.name)


def test_the_zone_lookup_is_profiled_too(tmp_path: Path) -> None:
    from dev.synthetic import write_zones

    path = tmp_path / "taxi_zone_lookup.csv"
    rows = write_zones(path)
    profile = Profile(ZONE_LOOKUP)
    list(profile.observe(ContractReader(path, ZONE_LOOKUP)))
    assert profile.check(path.name) == []
    assert profile.as_dict()["rows"] == rows
    assert profile.as_dict()["max"]["locationid"] == 265


def test_profiling_does_not_import_pandas(tmp_path: Path) -> None:
    path = write_troubled_month(tmp_path / "yellow_tripdata_2021-01.csv.gz", 2_000, every=7)
    code = (
        "import sys; from datetime import date; from pathlib import Path;"
        "from include.taxi.contract import YELLOW; from include.taxi.sources.csv import "
        "ContractReader; from include.taxi.quality import Profile, zone_id_array;"
        f"p = Profile(YELLOW, date(2021, 1, 1), zone_ids=zone_id_array(range(1, 266)));"
        f"list(p.observe(ContractReader(Path({str(path)!r}), YELLOW, date(2021, 1, 1))));"
        "p.findings(); p.as_dict(); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
