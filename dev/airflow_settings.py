"""Values Airflow imports by dotted path from its configuration."""

SQLITE_CONNECT_ARGS = {"timeout": 30}
"""SQLite waits 30 s for a lock instead of failing with `database is locked` during backfills."""
