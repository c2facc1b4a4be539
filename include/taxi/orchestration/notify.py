"""Failure notifications: who failed, for which month and service, why, and where the log is.

The destination is the Airflow connection ``taxi_alerts`` (AIRFLOW_CONN_TAXI_ALERTS or a
secrets backend), so no webhook URL or password lives in code:

* ``http``/``https`` connection: a JSON POST to ``{schema}://{host}:{port}{extra.path}``; a
  Slack incoming webhook (host ``hooks.slack.com``, or extra ``"format": "slack"`` for
  Slack-compatible chats) gets ``{"text": ...}``, any other endpoint the structured message;
* ``smtp`` connection: an e-mail to ``extra.to`` (comma-separated) from ``extra.from``;
* no connection: the same text is logged at ERROR, so nothing is silently dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from include.taxi import settings

log = logging.getLogger(__name__)

ALERTS_CONN_ID = settings.ALERTS_CONN_ID
SLACK_HOST = "hooks.slack.com"


def failure_message(context: dict[str, Any]) -> dict[str, Any]:
    """The facts of a failure, from an Airflow callback context."""
    ti = context.get("ti") or context.get("task_instance")
    params = context.get("params") or {}
    interval = context.get("data_interval_start")
    month = params.get("month") or (f"{interval:%Y-%m}" if interval else None)
    service = params.get("service")
    if ti is not None and getattr(ti, "rendered_map_index", None):
        service = ti.rendered_map_index
    error = context.get("exception")
    summary = str(error).strip().splitlines()[0][:500] if error else "unknown error"
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
    scheme = conn.schema or ("https" if conn.conn_type == "https" else "http")
    port = f":{conn.port}" if conn.port else ""
    path = conn.extra_dejson.get("path", "")
    return f"{scheme}://{conn.host}{port}{path}"


def deliver(message: dict[str, Any], conn: Any | None) -> str:
    """Send ``message`` to the connection's destination; returns where it went."""
    if conn is None:
        log.error("%s (no connection %r: logged only)", message["text"], ALERTS_CONN_ID)
        return "log"
    if conn.conn_type in ("smtp", "email"):
        import smtplib
        from email.message import EmailMessage

        mail = EmailMessage()
        mail["Subject"] = message.get("subject") or (
            f"[airflow] {message['dag_id']} failed: {message['month']}"
        )
        mail["From"] = conn.extra_dejson.get("from", conn.login or "airflow@localhost")
        mail["To"] = conn.extra_dejson["to"]
        mail.set_content(json.dumps(message, indent=2, default=str))
        with smtplib.SMTP(conn.host, conn.port or 25, timeout=30) as smtp:
            if conn.login:
                smtp.starttls()
                smtp.login(conn.login, conn.password or "")
            smtp.send_message(mail)
        return f"smtp://{conn.host}"
    import requests

    url = _url(conn)
    slack = conn.extra_dejson.get("format") == "slack" or SLACK_HOST in (conn.host or "")
    payload = {"text": message["text"]} if slack else message
    response = requests.post(url, json=payload, timeout=30)
    response.raise_for_status()
    return url


def _alerts_connection() -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(ALERTS_CONN_ID)
    except AirflowNotFoundException:
        return None


class FailureNotifier(BaseNotifier):
    """``on_failure_callback`` for the taxi DAGs' tasks."""

    def notify(self, context: dict[str, Any]) -> None:
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
    log.info("%d quality warning(s) of %s %s sent to %s", len(warnings), service, month,
             destination)  # fmt: skip
    return destination
