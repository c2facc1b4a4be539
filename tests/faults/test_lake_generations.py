"""One version of a lake object per step: GCS generations pin what is written over and read.

A put is conditional on the generation its run saw first, so two writers of one month cannot
silently overwrite each other; BigQuery checks the footer of one generation and refuses to
replace the month if the object changed before the load's transaction. fake-gcs-server
(which honours ``ifGenerationMatch``) and local-bigquery.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from dev.synthetic import write_month
from include.taxi.errors import LakeObjectChanged
from include.taxi.months import Month

NOVEMBER = date(2019, 11, 1)
NAME = "green/2019/green_tripdata_2019-11.parquet"


@pytest.fixture
def green_in_lake(source_server, gcs_bucket) -> tuple[str, str, object]:
    from include.taxi.lake.load import month_to_lake

    base, root = source_server
    source = root / "green" / "green_tripdata_2019-11.csv.gz"
    write_month(source, "green", NOVEMBER, 500, seed=1)
    lake = f"gs://{gcs_bucket}/lake"
    month_to_lake("green", Month(2019, 11), source_base=base, lake_url=lake)
    return base, lake, source


def test_a_put_over_a_generation_another_writer_replaced_is_refused(green_in_lake, tmp_path):
    from include.taxi.lake.load import month_to_lake
    from include.taxi.lake.store import open_lake

    base, lake_url, source = green_in_lake
    lake = open_lake(lake_url)
    seen = lake.stat(NAME)  # what a slow writer saw before it started
    write_month(source, "green", NOVEMBER, 600, seed=2)
    month_to_lake("green", Month(2019, 11), source_base=base, lake_url=lake_url)  # a faster writer
    other = lake.stat(NAME)
    stale = tmp_path / "stale.parquet"
    stale.write_bytes(b"PAR1 not really")
    with pytest.raises(LakeObjectChanged, match="replaced by another writer"):
        lake.put(stale, NAME, {"taxi.rows": "1"}, replaces=seen.generation)
    assert lake.stat(NAME) == other


def test_bigquery_does_not_replace_a_month_whose_object_changed_during_the_load(
    green_in_lake, monkeypatch
):
    from include.taxi.bigquery import month as bigquery_month
    from include.taxi.bigquery.load import month_to_bigquery
    from include.taxi.lake.load import month_to_lake

    base, lake_url, source = green_in_lake
    dataset = f"gen_{uuid.uuid4().hex[:8]}"
    assert month_to_bigquery("green", Month(2019, 11), lake_url=lake_url, dataset=dataset)[
        "status"
    ] == ("loaded")
    real_load = bigquery_month._load_job

    def load_then_replace(*args, **kwargs):
        real_load(*args, **kwargs)  # staged from the object as it was
        write_month(source, "green", NOVEMBER, 650, seed=3)
        month_to_lake("green", Month(2019, 11), source_base=base, lake_url=lake_url)

    monkeypatch.setattr(bigquery_month, "_load_job", load_then_replace)
    with pytest.raises(LakeObjectChanged, match="changed while it was being loaded"):
        month_to_bigquery("green", Month(2019, 11), lake_url=lake_url, dataset=dataset, force=True)
    monkeypatch.setattr(bigquery_month, "_load_job", real_load)
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    hook = BigQueryHook(gcp_conn_id="google_cloud_default", use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    (row,) = client.query(
        f"SELECT COUNT(*) AS n FROM `{hook.project_id}.{dataset}.green_tripdata`"
    ).result()
    assert row["n"] == 500, "the month was replaced from an object that changed meanwhile"
    retry = month_to_bigquery("green", Month(2019, 11), lake_url=lake_url, dataset=dataset)
    assert (retry["status"], retry["rows_in_target"]) == ("loaded", 650)
