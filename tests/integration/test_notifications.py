"""Failure notifications from a real failing DAG run, to a local webhook receiver or the log."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Connection

from dev.airflow_env import PROJECT
from include.taxi.orchestration.notify import deliver, failure_message
from tests.helpers.scripted_http import ScriptedServer


@pytest.fixture(scope="module")
def dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT / "dags" / "taxi_to_postgres.py")).dags["taxi_to_postgres"]


def test_a_failed_task_posts_dag_month_service_error_and_log_url(
    dag, monkeypatch, source_server, postgres_url, pg_schema
) -> None:
    base, root = source_server
    (root / "green").mkdir(exist_ok=True)
    (root / "green" / "green_tripdata_2019-03.csv.gz").write_text("<html>wrong</html>")
    parts = urlsplit(postgres_url)
    with ScriptedServer() as receiver:
        hook = urlsplit(receiver.url)
        monkeypatch.setenv(
            "AIRFLOW_CONN_TAXI_ALERTS",
            json.dumps({"conn_type": "http", "host": hook.hostname, "port": hook.port,
                        "schema": "http", "extra": {"path": "/alerts"}}),
        )  # fmt: skip
        monkeypatch.setenv(
            "AIRFLOW_CONN_TAXI_POSTGRES",
            json.dumps({"conn_type": "postgres", "host": parts.hostname, "port": parts.port,
                        "login": parts.username, "schema": parts.path.lstrip("/")}),
        )  # fmt: skip
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA", pg_schema)
        run = dag.test(
            logical_date=datetime(2019, 3, 1, tzinfo=UTC),
            run_conf={"service": "green", "month": "2019-03"},
        )
    assert run.state == "failed"
    assert len(receiver.posted) == 1, receiver.posted
    path, body = receiver.posted[0]
    message = json.loads(body)
    assert path == "/alerts"
    assert message["dag_id"] == "taxi_to_postgres"
    assert message["task_id"] == "load_trips"
    assert message["month"] == "2019-03"
    assert message["service"] == "green 2019-03"
    assert "not a gzip file" in message["error"]
    assert message["log_url"].startswith("http")
    assert "taxi_to_postgres.load_trips" in message["text"]


def test_slack_webhooks_get_slacks_payload_shape() -> None:
    message = failure_message(
        {"params": {"service": "fhv", "month": "2020-02"}, "exception": ValueError("boom\nmore")}
    )
    assert message["error"] == "boom"
    assert message["month"] == "2020-02"

    with ScriptedServer() as receiver:
        conn = Connection(
            conn_id="taxi_alerts", conn_type="http", host="127.0.0.1", schema="http",
            port=urlsplit(receiver.url).port,
            extra=json.dumps({"path": "/services/T0/B0/x", "format": "slack"}),
        )  # fmt: skip
        deliver(message, conn)
    assert receiver.posted == [
        ("/services/T0/B0/x", json.dumps({"text": message["text"]}).encode())
    ]


def test_without_a_destination_the_text_is_logged(caplog) -> None:
    message = failure_message({"params": {"month": "2021-01"}, "exception": RuntimeError("x")})
    with caplog.at_level(logging.ERROR, logger="include.taxi.orchestration.notify"):
        assert deliver(message, None) == "log"
    assert message["text"] in caplog.text


def test_a_month_published_with_warnings_sends_one_message_listing_them(
    dag, monkeypatch, source_server, postgres_url, pg_schema
) -> None:
    from dev.synthetic import write_troubled_month

    base, root = source_server
    write_troubled_month(
        root / "yellow" / "yellow_tripdata_2020-04.csv.gz", 2_000, every=31,
        month=datetime(2020, 4, 1).date(),
    )  # fmt: skip
    parts = urlsplit(postgres_url)
    with ScriptedServer() as receiver:
        hook = urlsplit(receiver.url)
        monkeypatch.setenv(
            "AIRFLOW_CONN_TAXI_ALERTS",
            json.dumps({"conn_type": "http", "host": hook.hostname, "port": hook.port,
                        "schema": "http", "extra": {"path": "/alerts"}}),
        )  # fmt: skip
        monkeypatch.setenv(
            "AIRFLOW_CONN_TAXI_POSTGRES",
            json.dumps({"conn_type": "postgres", "host": parts.hostname, "port": parts.port,
                        "login": parts.username, "schema": parts.path.lstrip("/")}),
        )  # fmt: skip
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA", pg_schema)
        run = dag.test(
            logical_date=datetime(2020, 4, 1, tzinfo=UTC),
            run_conf={"service": "yellow", "month": "2020-04"},
        )
    assert run.state == "success"
    assert len(receiver.posted) == 1, receiver.posted
    message = json.loads(receiver.posted[0][1])
    assert message["kind"] == "quality_warnings"
    assert (message["service"], message["month"], message["target"]) == (
        "yellow", "2020-04", "postgres",
    )  # fmt: skip
    rules = {w["rule"] for w in message["warnings"]}
    assert {"dropoff_before_pickup", "over_24h"} <= rules  # 0.8% negative totals: under 2%
    assert "dropoff before their pickup" in message["text"]
