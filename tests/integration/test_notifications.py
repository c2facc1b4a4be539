"""Failure notifications from a real failing DAG run, to a local webhook receiver or the log."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Connection

from include.taxi.orchestration.notify import deliver, failure_message
from tests.helpers.scripted_http import ScriptedServer
from tests.helpers.smtp import StartTlsServer
from tests.helpers.tls import self_signed


@pytest.fixture(scope="module")
def dag(dag_bag):
    return dag_bag.dags["taxi_to_postgres"]


def _alerts_to(monkeypatch: pytest.MonkeyPatch, receiver: ScriptedServer) -> None:
    """The connection taxi_alerts: a JSON webhook at the local receiver's /alerts."""
    hook = urlsplit(receiver.url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_TAXI_ALERTS",
        json.dumps(
            {
                "conn_type": "http",
                "host": hook.hostname,
                "port": hook.port,
                "schema": "http",
                "extra": {"path": "/alerts"},
            }
        ),
    )


def test_a_failed_task_posts_dag_month_service_error_and_log_url(
    dag, monkeypatch, source_server, taxi_postgres
) -> None:
    base, root = source_server
    (root / "green").mkdir(exist_ok=True)
    (root / "green" / "green_tripdata_2019-03.csv.gz").write_text("<html>wrong</html>")
    with ScriptedServer() as receiver:
        _alerts_to(monkeypatch, receiver)
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
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
            conn_id="taxi_alerts",
            conn_type="http",
            host="127.0.0.1",
            schema="http",
            port=urlsplit(receiver.url).port,
            extra=json.dumps({"path": "/services/T0/B0/x", "format": "slack"}),
        )
        deliver(message, conn)
    assert receiver.posted == [
        ("/services/T0/B0/x", json.dumps({"text": message["text"]}).encode())
    ]


def test_without_a_destination_the_text_is_logged(caplog) -> None:
    message = failure_message({"params": {"month": "2021-01"}, "exception": RuntimeError("x")})
    with caplog.at_level(logging.ERROR, logger="include.taxi.orchestration.notify"):
        assert deliver(message, None) == "log"
    assert message["text"] in caplog.text


# --- secrets stay out of logs, exceptions and messages (issue 13, must-fix 5) -------------

SECRET = "xoxSECRETb7c1d9e3f5a7b9c1d3e5f7a9"
SLACK_PATH = f"/services/T0ABC/B0DEF/{SECRET}"


def _slack(port: int) -> Connection:
    return Connection(
        conn_id="taxi_alerts",
        conn_type="http",
        host="127.0.0.1",
        schema="http",
        port=port,
        extra=json.dumps({"path": SLACK_PATH, "format": "slack"}),
    )


def _context(error: Exception) -> dict:
    return {"params": {"service": "green", "month": "2021-05"}, "exception": error}


def test_webhook_secret_never_reaches_a_log_line(monkeypatch, caplog) -> None:
    """Slack's URL path is the credential; main logged "notification sent to <full url>"."""
    from include.taxi.orchestration import notify

    with ScriptedServer() as receiver:
        conn = _slack(urlsplit(receiver.url).port)
        monkeypatch.setattr(notify, "_alerts_connection", lambda: conn)
        with caplog.at_level(logging.DEBUG):
            notify.FailureNotifier().notify(_context(RuntimeError("boom")))
    assert [path for path, _ in receiver.posted] == [SLACK_PATH]
    assert "failure notification sent to http://127.0.0.1" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("answer", ["http 500", "refused"])
def test_webhook_secret_never_reaches_an_exception(answer: str) -> None:
    """`raise_for_status` and requests' connection errors put the whole URL in their text,
    which Airflow logs with the traceback."""
    message = failure_message(_context(RuntimeError("boom")))
    with ScriptedServer() as receiver:
        receiver.post_status = 500
        port = urlsplit(receiver.url).port
        if answer == "http 500":
            with pytest.raises(Exception) as failed:  # noqa: PT011 - any error, checked below
                deliver(message, _slack(port))
    if answer == "refused":  # the receiver is gone: nothing listens on its port
        with pytest.raises(Exception) as failed:  # noqa: PT011 - any error, checked below
            deliver(message, _slack(port))
    texts = [str(failed.value), repr(failed.value)]
    cause = failed.value.__cause__ or failed.value.__context__
    if cause is not None and not failed.value.__suppress_context__:
        texts.append(str(cause))
    assert all(SECRET not in text for text in texts), texts
    assert "500" in texts[0] if answer == "http 500" else "127.0.0.1" in texts[0]


def test_error_text_sent_is_stripped_of_urls_credentials_and_control_characters() -> None:
    """The source's first bytes and URLs land in error texts that go to Slack and the log."""
    error = RuntimeError(
        f"bad source file x.csv.gz: not a gzip file (it starts with '\x1b[31mtoken={SECRET}\x07') "
        f"from https://user:{SECRET}@example.com/y.csv.gz?X-Amz-Signature={SECRET}"
    )
    with ScriptedServer() as receiver:
        deliver(failure_message(_context(error)), _slack(urlsplit(receiver.url).port))
    sent = receiver.posted[0][1].decode()
    text = json.loads(sent)["text"]
    assert "x.csv.gz: not a gzip file" in text
    assert "https://example.com/y.csv.gz" in text
    assert SECRET not in sent
    assert not any(ord(c) < 32 for c in text), text


def test_smtp_starttls_verifies_the_servers_certificate(tmp_path) -> None:
    """main called `starttls()` without a context: any certificate was taken and the password
    sent to whoever answered. A self-signed certificate must be refused before AUTH; with the
    certificate named as trusted (extra `ca_file`) the mail goes."""
    import ssl

    cert, key = self_signed(tmp_path)
    server = StartTlsServer(str(cert), str(key))
    extra = {"to": "ops@example.com", "from": "airflow@example.com"}
    conn = Connection(
        conn_id="taxi_alerts",
        conn_type="smtp",
        host="127.0.0.1",
        port=server.port,
        login="airflow",
        password=SECRET,
        extra=json.dumps(extra),
    )
    message = failure_message(_context(RuntimeError("boom")))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            deliver(message, conn)
        assert server.logins == []
        conn.extra = json.dumps({**extra, "ca_file": str(cert)})
        assert deliver(message, conn) == "smtp://127.0.0.1"
    finally:
        server.close()
    assert len(server.logins) == 1
    assert len(server.mails) == 1


def test_a_month_published_with_warnings_sends_one_message_listing_them(
    dag, monkeypatch, source_server, taxi_postgres
) -> None:
    from dev.synthetic import write_troubled_month

    base, root = source_server
    write_troubled_month(
        root / "yellow" / "yellow_tripdata_2020-04.csv.gz",
        2_000,
        every=31,
        month=datetime(2020, 4, 1).date(),
    )
    with ScriptedServer() as receiver:
        _alerts_to(monkeypatch, receiver)
        monkeypatch.setenv("AIRFLOW_VAR_TAXI_SOURCE_URL", base)
        run = dag.test(
            logical_date=datetime(2020, 4, 1, tzinfo=UTC),
            run_conf={"service": "yellow", "month": "2020-04"},
        )
    assert run.state == "success"
    assert len(receiver.posted) == 1, receiver.posted
    message = json.loads(receiver.posted[0][1])
    assert message["kind"] == "quality_warnings"
    assert (message["service"], message["month"], message["target"]) == (
        "yellow",
        "2020-04",
        "postgres",
    )
    rules = {w["rule"] for w in message["warnings"]}
    assert {"dropoff_before_pickup", "over_24h"} <= rules  # 0.8% negative totals: under 2%
    assert "dropoff before their pickup" in message["text"]
