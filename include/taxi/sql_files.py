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
