"""Where a local Airflow keeps its own metadata: a PostgreSQL database by default.

SQLite admits one writer at a time, while the scheduler, the dag-processor, the triggerer and
the api-server all write: `airflow backfill create` beside a running `make run` died on
"database is locked", and the UI's "Unpause on trigger" stalled. So `make run`, `make month`,
`make cloud-month` keep Airflow's metadata in the embedded PostgreSQL, beside the warehouse, in
a database per Airflow home (``airflow`` for the project's ``.airflow``: homes have their own
Fernet keys and must not share one). Two settings change that:

- ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (shell or .env): the metadata DB you name, as is;
- ``TAXI_METADATA_DB=sqlite``: SQLite in the home, for one process at a time (not with
  `make run`'s services, and never with Celery).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy.engine import URL

from dev.airflow_env import CONNECT_ARGS, PROJECT

CONN_SETTING = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
CHOICE_SETTING = "TAXI_METADATA_DB"
DEFAULT_HOME = PROJECT / ".airflow"


def database_name(home: Path) -> str:
    """``airflow`` for the project's default home, ``airflow_<hash of the path>`` for others."""
    if home.resolve() == DEFAULT_HOME.resolve():
        return "airflow"
    return f"airflow_{hashlib.sha1(str(home.resolve()).encode()).hexdigest()[:10]}"


def wants_sqlite(user: Mapping[str, str]) -> bool:
    """Whether the user asked for SQLite (``TAXI_METADATA_DB``); exits on an unknown value."""
    raw = (user.get(CHOICE_SETTING) or "postgres").strip().lower()
    if raw not in ("postgres", "sqlite"):
        raise SystemExit(f"{CHOICE_SETTING}={raw!r}: expected postgres (the default) or sqlite")
    return raw == "sqlite"


def configure(
    env: dict[str, str], home: Path, user: Mapping[str, str], server: Callable[[], str]
) -> str:
    """Point ``env`` at the metadata DB and say where it is (one line for the user).

    ``user``: the settings the user made (shell and .env); ``server``: starts the embedded
    PostgreSQL if needed and returns its ``postgresql://`` URL (called only when used).
    """
    if user.get(CONN_SETTING):
        return "Airflow's metadata: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (as you set it)"
    if wants_sqlite(user):
        return f"Airflow's metadata: SQLite, {home}/airflow.db ({CHOICE_SETTING}=sqlite)"
    name = database_name(home)
    env[CONN_SETTING] = create_database(server(), name)
    env.pop(CONNECT_ARGS, None)  # SQLite's busy timeout means nothing to PostgreSQL
    where = f"Airflow's metadata: database {name} in the embedded PostgreSQL"
    if (home / "airflow.db").exists():
        where += (
            f"\n  note: {home}/airflow.db, the SQLite metadata of an older make run, is left as "
            "it was and no longer used: run history, pools and Variables or Connections set in "
            "the UI start afresh here. The warehouse and its ingestion log are untouched, so "
            f"Taxi months still shows every loaded month. {CHOICE_SETTING}=sqlite goes back to it."
        )
    return where


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server if missing; its SQLAlchemy URL for Airflow."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a parallel start
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        info = conn.info
        url = URL.create(
            "postgresql+psycopg2",
            username=info.user,
            password=info.password or None,
            host=info.host,
            port=info.port,
            database=name,
        )
    return url.render_as_string(hide_password=False)
