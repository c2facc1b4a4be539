"""What may be shown of a URL or a text in logs, exceptions and alerts.

A Slack webhook's path is its credential; a signed source URL carries its key in the query
string; a URL may hold ``user:password@``; a source file's first bytes, quoted in an error,
may hold anything, control characters included. Alerts and the ingestion log receive those
texts, so they pass through here first.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "…"
URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>|]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SECRET_PAIR = re.compile(
    r"(?i)\b([\w-]*(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|signature|sig|auth)[\w-]*)"
    r"(\s*[=:]\s*)[^\s&'\"<>,;]+"
)


def _netloc(parts) -> str:  # type: ignore[no-untyped-def]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def destination(url: str) -> str:
    """Where a message went, without the path (a webhook's secret): ``https://host:port/…``."""
    parts = urlsplit(url)
    path = f"/{HIDDEN}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{_netloc(parts)}{path}"


def source(url: str) -> str:
    """A source URL fit for a message: no ``user:password@``, the query string hidden."""
    try:
        parts = urlsplit(url)
        netloc = _netloc(parts)
    except ValueError:
        return HIDDEN
    return urlunsplit((parts.scheme, netloc, parts.path, HIDDEN if parts.query else "", ""))


def public_url(url: str) -> str:
    """A source URL as it may be stored and shown (logs, XCom, lineage, lake metadata): the
    same URL without ``user:password@``; ``token=…``-like pairs of its query hidden."""
    return split_credentials(url)[0]


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``(public URL, (user, password))`` of a URL with ``user:password@``, else ``(url,
    None)``: the credentials travel apart (as HTTP Basic auth), never inside a stored URL."""
    parts = urlsplit(url)
    query = SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", parts.query)
    if "@" not in parts.netloc:
        return urlunsplit(parts._replace(query=query)), None
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    public = urlunsplit(parts._replace(netloc=_netloc(parts), query=query))
    return public, auth


def text(value: str, limit: int = 500) -> str:
    """One line of a message: URLs redacted (:func:`source`), ``token=…``-like pairs hidden,
    control characters replaced by spaces, at most ``limit`` characters."""
    value = URL_IN_TEXT.sub(lambda m: source(m.group(0)), value)
    value = SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", value)
    value = CONTROL.sub(" ", value)
    return value if len(value) <= limit else value[: limit - 1] + HIDDEN


def shown(value: str | bytes, limit: int = 40) -> str:
    """A value from a source file, quoted in an error: at most ``limit`` characters, control
    characters escaped (``repr``), bytes decoded leniently."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    quoted = repr(value[:limit])
    return (
        quoted + f" (first {limit} of {len(value):,} characters)" if len(value) > limit else quoted
    )
