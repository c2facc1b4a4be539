"""Alerts go encrypted unless the connection says otherwise: a webhook connection without a
scheme posts over https, and SMTP uses STARTTLS even without a login (the message names hosts,
files and errors). Real local servers: https with a self-signed certificate the client is told
to trust, and a small SMTP server speaking STARTTLS."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Connection

from include.taxi.orchestration.notify import NotificationFailed, deliver, failure_message
from tests.helpers.scripted_http import ScriptedServer
from tests.helpers.smtp import StartTlsServer
from tests.helpers.tls import self_signed

EXTRA = {"to": "ops@example.com", "from": "airflow@example.com"}


def _message() -> dict:
    return failure_message(
        {"params": {"service": "green", "month": "2021-05"}, "exception": RuntimeError("boom")}
    )


def test_a_webhook_without_a_scheme_posts_over_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main posted `http://` when the connection named no schema: the alert (and a webhook
    path that is itself a credential) crossed the network in clear."""
    with ScriptedServer(tls_dir=tmp_path) as receiver:
        assert receiver.cert is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(receiver.cert))
        conn = Connection(
            conn_id="taxi_alerts",
            conn_type="http",
            host="127.0.0.1",
            port=urlsplit(receiver.url).port,
            extra=json.dumps({"path": "/hooks/airflow"}),
        )
        assert deliver(_message(), conn).startswith("https://127.0.0.1:")
    assert [path for path, _ in receiver.posted] == ["/hooks/airflow"]


def test_a_webhook_that_says_http_still_gets_http() -> None:
    with ScriptedServer() as receiver:
        conn = Connection(
            conn_id="taxi_alerts",
            conn_type="http",
            host="127.0.0.1",
            schema="http",
            port=urlsplit(receiver.url).port,
            extra=json.dumps({"path": "/plain"}),
        )
        deliver(_message(), conn)
    assert [path for path, _ in receiver.posted] == ["/plain"]


@pytest.fixture
def smtp_server(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    server = StartTlsServer(str(cert), str(key))
    try:
        yield server, cert
    finally:
        server.close()


def _smtp(port: int, **extra: object) -> Connection:
    return Connection(
        conn_id="taxi_alerts",
        conn_type="smtp",
        host="127.0.0.1",
        port=port,
        extra=json.dumps({**EXTRA, **extra}),
    )


def test_smtp_without_a_login_still_uses_starttls(smtp_server) -> None:
    """main sent the mail in clear when the connection had no login."""
    server, cert = smtp_server
    assert deliver(_message(), _smtp(server.port, ca_file=str(cert))) == "smtp://127.0.0.1"
    assert server.mails_over_tls == [True]
    assert server.logins == []


def test_smtp_without_a_login_verifies_the_certificate(smtp_server) -> None:
    import ssl

    server, _ = smtp_server
    with pytest.raises(ssl.SSLCertVerificationError):
        deliver(_message(), _smtp(server.port))
    assert server.mails == []


@pytest.mark.parametrize("off", [False, "false"])
def test_a_relay_without_tls_needs_the_connection_to_say_so(smtp_server, off: object) -> None:
    server, _ = smtp_server
    server.offer_starttls = False
    with pytest.raises(smtplib.SMTPNotSupportedError):
        deliver(_message(), _smtp(server.port))
    assert server.mails == []
    deliver(_message(), _smtp(server.port, starttls=off))
    assert server.mails_over_tls == [False]


def test_a_login_never_goes_in_clear_whatever_the_extra_says(smtp_server) -> None:
    server, _ = smtp_server
    server.offer_starttls = False
    conn = _smtp(server.port, starttls=False)
    conn.login, conn.password = "airflow", "s3cret-password"
    with pytest.raises((smtplib.SMTPException, NotificationFailed)):
        deliver(_message(), conn)
    assert server.logins == []
    assert server.mails == []
