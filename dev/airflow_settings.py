"""Values Airflow imports by dotted path from its configuration."""

SQLITE_CONNECT_ARGS = {"timeout": 30}
"""SQLite waits 30 s for a lock instead of failing with `database is locked` during backfills."""


def worker_hostname() -> str:
    """The hostname a worker reports (``[core] hostname_callable``): TAXI_WORKER_HOSTNAME if set.

    Two Celery workers on one machine (the e2e test, `make run` with workers) would otherwise
    both report the machine's FQDN, and a task instance would not say which worker ran it.
    """
    import os

    from airflow.utils.net import getfqdn

    return os.environ.get("TAXI_WORKER_HOSTNAME") or getfqdn()
