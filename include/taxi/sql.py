"""The SQL in include/sql/, rendered with safely quoted identifiers and literals.

Placeholders are psycopg ``sql`` composables (Identifier, Literal), never raw strings, so a
name or value can never change the statement's shape.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from psycopg import sql

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@cache
def _text(name: str) -> str:
    return (SQL_DIR / name).read_text()


def statements(name: str, **parts: sql.Composable) -> list[str]:
    """The statements of ``include/sql/<name>``, split before rendering, so no value can add one."""
    body = "\n".join(
        line for line in _text(name).splitlines() if not line.lstrip().startswith("--")
    )
    templates = [t.strip() for t in re.split(r";\s*(?:\n|$)", body) if t.strip()]
    return [sql.SQL(t).format(**parts).as_string(None) for t in templates]


_BQ_NAME = re.compile(r"^[A-Za-z0-9_:.-]+$")


def bigquery_identifier(*parts: str) -> str:
    """```project.dataset.table``` from checked parts; anything else is refused, not escaped."""
    for part in parts:
        if not _BQ_NAME.match(part) or ".." in part:
            raise ValueError(f"{part!r} is not a BigQuery project, dataset or table name")
    return "`" + ".".join(parts) + "`"


def bigquery_script(name: str, **identifiers: str) -> str:
    """The script ``include/sql/<name>`` with its ``{placeholders}`` set to identifiers.

    Only identifiers (built by ``bigquery_identifier`` or from the contract's column names) are
    placed in the text; every value is a query parameter (``@month``).
    """
    body = "\n".join(
        line for line in _text(name).splitlines() if not line.lstrip().startswith("--")
    )
    return body.format(**identifiers).strip()
