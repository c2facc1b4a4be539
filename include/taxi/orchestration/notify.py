"""Failure notifications: who failed, for which month and service, why, and where the log is.

The destination is the Airflow connection ``taxi_alerts`` (AIRFLOW_CONN_TAXI_ALERTS or a
secrets backend), so no webhook URL or password lives in code:

* ``http``/``https`` connection: a JSON POST to ``{schema}://{host}:{port}{extra.path}``,
  https when the connection names no schema (plain http only if it says ``http``); a
  Slack incoming webhook (host ``hooks.slack.com``, or extra ``"format": "slack"`` for
  Slack-compatible chats) gets ``{"text": ...}``, any other endpoint the structured message;
* ``smtp`` connection: an e-mail to ``extra.to`` (comma-separated) from ``extra.from``, over
  STARTTLS with the server's certificate verified (system CAs, or ``extra.ca_file``) before
  anything is sent: the message names hosts, files and errors. Only a connection without a
  login may turn it off (extra ``"starttls": false``, a relay that offers no TLS); a
  password never goes in clear;
* no connection: the same text is logged at ERROR, so nothing is silently dropped.

A webhook URL's path is a credential (Slack's is): it is never logged, and a failed POST raises
an error naming only scheme, host and port. The error text sent is one line, its URLs
redacted and control characters removed (``include.taxi.redact``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from include.taxi import redact, settings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

ALERTS_CONN_ID = settings.ALERTS_CONN_ID
SLACK_HOST = "hooks.slack.com"


def failure_message(context: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a failure, from an Airflow callback context."""
    ti = context.get("ti") or context.get("task_instance")
    params = context.get("params") or {}
    interval = context.get("data_interval_start")
    month = params.get("month") or (f"{interval:%Y-%m}" if interval else None)
    service = params.get("service")
    if ti is not None and getattr(ti, "rendered_map_index", None):
        service = ti.rendered_map_index
    error = context.get("exception")
    lines = str(error).strip().splitlines() if error else []
    summary = redact.text(lines[0]) if lines else "unknown error"
    message = {
        "dag_id": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id"),
        "month": month,
        "service": service,
        "error": summary,
        "log_url": getattr(ti, "log_url", None),
    }
    message["text"] = (
        f"Airflow task failed: {message['dag_id']}.{message['task_id']} "
        f"(service {service}, month {month}): {summary} | log: {message['log_url']}"
    )
    return message


def _url(conn: Any) -> str:
    scheme = conn.schema or "https"
    port = f":{conn.port}" if conn.port else ""
    path = conn.extra_dejson.get("path", "")
    return f"{scheme}://{conn.host}{port}{path}"


class NotificationFailed(Exception):
    """The destination refused or did not answer; the text names no secret."""


class _HidePath(logging.Filter):
    """Rewrites records that would carry the webhook's path (urllib3 logs it at DEBUG)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        if self.path and self.path in record.getMessage():
            record.msg, record.args = record.getMessage().replace(self.path, redact.HIDDEN), ()
        return True


@contextlib.contextmanager
def _path_hidden(path: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("urllib3.connectionpool", "requests")]
    hide = _HidePath(path)
    for logger in loggers:
        logger.addFilter(hide)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(hide)


def _post(url: str, payload: dict[str, Any], path: str) -> None:
    import requests

    where = redact.destination(url)
    try:
        with _path_hidden(path):
            response = requests.post(url, json=payload, timeout=30, allow_redirects=False)
    except requests.RequestException as exc:
        # requests' own text holds the whole URL: name the failure, never the path
        raise NotificationFailed(f"failure notification to {where}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise NotificationFailed(
            f"failure notification to {where} answered HTTP {response.status_code}"
        )


def _send_mail(conn: Any, message: dict[str, Any]) -> None:
    import smtplib
    import ssl
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = message.get("subject") or (
        f"[airflow] {message['dag_id']} failed: {message['month']}"
    )
    mail["From"] = conn.extra_dejson.get("from", conn.login or "airflow@localhost")
    mail["To"] = conn.extra_dejson["to"]
    mail.set_content(json.dumps(message, indent=2, default=str))
    tls = ssl.create_default_context(cafile=conn.extra_dejson.get("ca_file"))
    with smtplib.SMTP(conn.host, conn.port or 25, timeout=30) as smtp:
        if conn.login or _wants_starttls(conn.extra_dejson.get("starttls", True)):
            smtp.starttls(context=tls)
        if conn.login:
            smtp.login(conn.login, conn.password or "")
        smtp.send_message(mail)


def _wants_starttls(value: Any) -> bool:
    """The extra ``starttls``: on unless it says false (a JSON false, or the text)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


def deliver(message: dict[str, Any], conn: Any | None) -> str:
    """Send ``message`` to the connection's destination; returns where it went (no path)."""
    if conn is None:
        log.error("%s (no connection %r: logged only)", message["text"], ALERTS_CONN_ID)
        return "log"
    if conn.conn_type in ("smtp", "email"):
        _send_mail(conn, message)
        return f"smtp://{conn.host}"
    url = _url(conn)
    slack = conn.extra_dejson.get("format") == "slack" or SLACK_HOST in (conn.host or "")
    payload = {"text": message["text"]} if slack else message
    _post(url, payload, conn.extra_dejson.get("path", ""))
    return redact.destination(url)


def _alerts_connection() -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(ALERTS_CONN_ID)
    except AirflowNotFoundException:
        return None


class FailureNotifier(BaseNotifier):
    """``on_failure_callback`` for the taxi DAGs' tasks."""

    def notify(self, context: Context) -> None:
        message = failure_message(context)
        destination = deliver(message, _alerts_connection())
        log.info("failure notification sent to %s", destination)


def warning_message(
    context: dict[str, Any], target: str, service: str, month: str, warnings: list[dict[str, str]]
) -> dict[str, Any]:
    """One message for a month published with quality warnings: every warning, one line each."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None)
    lines = [f"- {w['rule']}: {w['message']}" for w in warnings]
    text = (
        f"Quality warnings for {service} {month} in {target} (published; {dag_id}, run "
        f"{context.get('run_id')}):\n" + "\n".join(lines) + f"\nlog: {getattr(ti, 'log_url', None)}"
    )
    return {
        "kind": "quality_warnings",
        "subject": f"[airflow] {service} {month}: {len(warnings)} quality warning(s) in {target}",
        "dag_id": dag_id,
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id"),
        "target": target,
        "month": month,
        "service": service,
        "warnings": warnings,
        "log_url": getattr(ti, "log_url", None),
        "text": text,
    }


def notify_warnings(
    context: dict[str, Any], target: str, service: str, month: str, warnings: list[dict[str, str]]
) -> str | None:
    """Send the month's warnings to ``taxi_alerts`` (once per month and target); the data is
    already published, so a destination that fails is logged, never fails the task."""
    if not warnings:
        return None
    message = warning_message(context, target, service, month, warnings)
    try:
        destination = deliver(message, _alerts_connection())
    except Exception as exc:
        log.warning("could not send the quality warnings of %s %s: %s", service, month, exc)
        return None
    log.info(
        "%d quality warning(s) of %s %s sent to %s", len(warnings), service, month, destination
    )
    return destination
