"""Realistic TLC source files, generated: the real headers and the real quirks.

Used by the tests (served over a local HTTP server) and the benchmark. Quirks reproduced from
the real files (see shared FACTS): empty cells as NULLs, with VendorID, passenger_count,
RatecodeID, store_and_fwd_flag and payment_type empty together on rows at the END of the
file; decimals written as ``.20``; trips whose pickup lies outside the file's month; fhv's
mixed-case header and empty location ids. Optional drift: integers written as ``1.0`` and an
fhv dropoff in year 3019.
"""

from __future__ import annotations

import csv
import gzip
import random
from datetime import date, datetime, timedelta
from pathlib import Path

HEADERS = {
    "yellow": (
        "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,"
        "RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,"
        "mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,congestion_surcharge"
    ),
    "green": (
        "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime,store_and_fwd_flag,RatecodeID,"
        "PULocationID,DOLocationID,passenger_count,trip_distance,fare_amount,extra,mta_tax,"
        "tip_amount,tolls_amount,ehail_fee,improvement_surcharge,total_amount,payment_type,"
        "trip_type,congestion_surcharge"
    ),
    "fhv": (
        "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,"
        "SR_Flag,Affiliated_base_number"
    ),
}
ZONES_CSV = (
    '"LocationID","Borough","Zone","service_zone"\n'
    '1,"EWR","Newark Airport","EWR"\n'
    '2,"Queens","Jamaica Bay","Boro Zone"\n'
    '132,"Queens","JFK Airport","Airports"\n'
    '138,"Queens","LaGuardia Airport","Airports"\n'
    '161,"Manhattan","Midtown Center","Yellow Zone"\n'
    '264,"Unknown","NV","N/A"\n'
    '265,"Unknown","NA","N/A"\n'
)
NULL_TAIL = 0.01
OUT_OF_MONTH_EVERY = 20_000


def _money(value: float, dotted: bool) -> str:
    text = f"{value:.2f}"
    return text[1:] if dotted and text.startswith("0.") else text


def _trip(service: str, month: date, i: int, n: int, rnd: random.Random, float_ints: bool) -> str:
    if i == 1 or i % OUT_OF_MONTH_EVERY == 7:
        pickup = datetime(month.year, month.month, 1) - timedelta(minutes=rnd.randint(1, 600))
    else:
        pickup = datetime(month.year, month.month, 1) + timedelta(
            seconds=rnd.randint(0, 27 * 86400)
        )
    dropoff = pickup + timedelta(seconds=rnd.randint(60, 3600))
    pu, do = rnd.randint(1, 265), rnd.randint(1, 265)
    if service == "fhv":
        pu_s = "" if i % 3 else str(pu)
        do_s = "" if i % 4 == 1 else str(do)
        return f"B{i % 3000:05d},{pickup},{dropoff},{pu_s},{do_s},,B{(i * 7) % 3000:05d}"
    dotted = i % 10 == 3
    fare = rnd.randint(250, 6000) / 100
    tip = rnd.choice((0.0, 0.2, 1.0, 2.5))
    total = fare + 0.5 + 0.5 + tip + 0.3 + 2.5
    if i >= n - max(1, int(n * NULL_TAIL)):
        vendor = passengers = ratecode = flag = payment = ""
    else:
        fmt = "{}.0" if float_ints else "{}"
        vendor = fmt.format(1 + i % 2)
        passengers = fmt.format(rnd.randint(0, 6))
        ratecode = fmt.format(1)
        flag = "N" if i % 50 else "Y"
        payment = fmt.format(1 + i % 2)
    distance = _money(rnd.randint(10, 2000) / 100, dotted)
    money = ",".join(_money(v, dotted) for v in (fare, 0.5, 0.5, tip, 0.0))
    if service == "yellow":
        return (
            f"{vendor},{pickup},{dropoff},{passengers},{distance},{ratecode},{flag},{pu},{do},"
            f"{payment},{money},{_money(0.3, dotted)},{total:.2f},2.5"
        )
    trip_type = "" if vendor == "" else ("1.0" if float_ints else "1")
    return (
        f"{vendor},{pickup},{dropoff},{flag},{ratecode},{pu},{do},{passengers},{distance},"
        f"{money},,{_money(0.3, dotted)},{total:.2f},{payment},{trip_type},0"
    )


def write_month(
    path: Path,
    service: str,
    month: date,
    rows: int,
    *,
    seed: int = 0,
    float_ints: bool = False,
    year_3019: bool = False,
) -> int:
    """Write ``rows`` trips of ``service`` for ``month`` as csv.gz at ``path``; returns rows."""
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        out.write(HEADERS[service] + "\n")
        for i in range(rows):
            line = _trip(service, month, i, rows, rnd, float_ints)
            if year_3019 and i == rows // 2 and service == "fhv":
                start = f"{month.year}-{month.month:02d}-15 10:00:00"
                line = f"B00001,{start},3019-{month.month:02d}-15 10:30:00,,,,B00001"
            out.write(line + "\n")
    return rows


def write_zones(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ZONES_CSV)
    return ZONES_CSV.count("\n") - 1


ALL_ZONE_BOROUGHS = ("Bronx", "Brooklyn", "EWR", "Manhattan", "Queens", "Staten Island")


def write_all_zones(path: Path) -> int:
    """A zone lookup with every id 1..265 the trips here use (write_zones has 7), for builds
    whose relationship tests must pass (the dbt models); 264 and 265 are "Unknown", as in the
    real file."""
    boroughs = ALL_ZONE_BOROUGHS
    rows = "".join(
        f'{i},"{boroughs[i % len(boroughs)] if i < 264 else "Unknown"}","Zone {i}","Boro Zone"\n'
        for i in range(1, 266)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('"LocationID","Borough","Zone","service_zone"\n' + rows)
    return 265


def write_troubled_month(
    path: Path, rows: int, *, every: int = 97, month: date = date(2021, 1, 1)
) -> Path:
    """A yellow month with trouble injected every ``every`` rows, in turn: the dropoff before
    the pickup, a negative total, zone id 300 (not in the lookup), a 25-hour trip. For the
    quality rules' tests (include/taxi/quality.py)."""
    source = path.with_suffix(".plain.csv.gz")
    write_month(source, "yellow", month, rows)
    with gzip.open(source, "rt", newline="") as f, gzip.open(path, "wt", newline="") as out:
        reader, writer = csv.reader(f), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            kind = (i // every) % 4 if i % every == 0 else None
            if kind == 0:
                row[1], row[2] = row[2], row[1]
            elif kind == 1:
                row[16] = f"-{row[16]}"
            elif kind == 2:
                row[7] = "300"
            elif kind == 3:
                pickup = datetime.fromisoformat(row[1])
                row[2] = str(pickup + timedelta(hours=25))
            writer.writerow(row)
    source.unlink()
    return path
