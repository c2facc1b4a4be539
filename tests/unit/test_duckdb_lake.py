"""`make duckdb`'s views: one per raw table the lake folder holds files for."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.taxi.transform.duckdb_lake import create_views, lake_folder, view_globs


def test_views_only_for_tables_with_files(tmp_path) -> None:
    for month, rows in (("2021-01", 3), ("2021-02", 2)):
        folder = tmp_path / "green" / "2021"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.table({"x": list(range(rows))}), folder / f"green_tripdata_{month}.parquet"
        )
    assert set(view_globs(tmp_path)) == {"green_tripdata"}
    con = duckdb.connect()
    assert create_views(con, tmp_path) == ["green_tripdata"]
    assert con.sql("select count(*) from green_tripdata").fetchone() == (5,)


def test_the_lake_is_a_folder(tmp_path) -> None:
    assert lake_folder(tmp_path.as_uri()) == tmp_path
    with pytest.raises(ValueError, match="GCS lake"):
        lake_folder("gs://bucket/lake")
