"""The HVFHV files as first published (``SR_Flag``, no fares) load into the one fhvhv table:
the flag becomes the shared-ride flags, the columns the layout lacks are NULL.

A generated file (dev/tlc_parquet.py ``ORIGINAL_FHVHV``) served as the TLC's, loaded into the
real PostgreSQL next to a month of today's layout.
"""

from __future__ import annotations

import secrets
from datetime import date

import psycopg

from dev.tlc_parquet import ORIGINAL_FHVHV, write_era
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres

ROWS = 1_200


def test_the_original_layout_loads_beside_todays(source_server, postgres_url, pg_schema) -> None:
    base, root = source_server
    folder = root / f"tlc-{secrets.token_hex(4)}" / "trip-data"
    write_era(
        folder / "fhvhv_tripdata_2021-01.parquet",
        "",
        date(2021, 1, 1),
        ROWS,
        row_group_rows=500,
        columns=ORIGINAL_FHVHV,
    )
    write_era(folder / "fhvhv_tripdata_2024-01.parquet", "fhvhv-2024", date(2024, 1, 1), ROWS)
    load = {
        "source_base": f"{base}/{folder.parent.name}",
        "source_kind": "tlc",
        "conninfo": postgres_url,
        "schema": pg_schema,
    }
    for month in ("2021-01", "2024-01"):
        result = month_to_postgres("fhvhv", Month.parse(month), **load)
        assert result["rows_read"] == result["rows_in_target"] == ROWS
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT shared_request_flag, shared_match_flag, count(*), count(base_passenger_fare),"
            " count(request_datetime), count(access_a_ride_flag), count(trip_miles),"
            " sum(pulocationid), min(hvfhs_license_num) "
            f'FROM "{pg_schema}".fhvhv_tripdata WHERE source_month = %s GROUP BY 1, 2 ORDER BY 1',
            (date(2021, 1, 1),),
        ).fetchall()
    # SR_Flag is 1 on every third row (i % 3 == 2), empty on the others
    assert [r[:3] for r in rows] == [("N", "N", ROWS * 2 // 3), ("Y", "Y", ROWS // 3)]
    assert all(r[3:7] == (0, 0, 0, 0) for r in rows)  # columns the layout lacks: NULL
    assert sum(r[7] for r in rows) == sum(1 + i % 265 for i in range(ROWS))
    assert rows[0][8] == "HV0003"
