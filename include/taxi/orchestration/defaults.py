"""What every monthly DAG shares: default task arguments and the manual-run Params form.

Imported at parse time, so it holds declarations only (no Variables, no I/O).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import Param

from include.taxi.orchestration.notify import FailureNotifier
from include.taxi.settings import SERVICES

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"

RETRY_DELAY_S = int(os.environ.get("TAXI_RETRY_DELAY_SECONDS") or 30)
"""First retry delay (then doubling, up to 10 min). Read at parse time like TAXI_CATCHUP; the
Celery e2e test shortens it so a task lost with a killed worker is retried within seconds."""

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-eng",
    "retries": 3,
    "retry_delay": timedelta(seconds=RETRY_DELAY_S),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": FailureNotifier(),
}

DAILY_ARGS: dict[str, Any] = {
    **DEFAULT_ARGS,
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": False,
}
"""taxi_daily: a failed discovery is retried twice, 5 minutes apart; the next day tries anyway."""


def month_params(month_help: str, force_help: str) -> dict[str, Param]:
    """The typed form of a manual run: a service dropdown, a validated month, a force flag."""
    return {
        "service": Param(
            "all",
            type="string",
            enum=["all", *SERVICES],
            title="Service",
            description="Which trip files to load; 'all' loads yellow, green, fhv and fhvhv "
            "(high-volume for-hire: Uber, Lyft, Via; from 2019-02, TLC source only).",
        ),
        "month": Param(
            None,
            type=["null", "string"],
            pattern=MONTH_PATTERN,
            title="Month (YYYY-MM)",
            description=f"The month to load, e.g. 2021-01. Empty: {month_help}.",
        ),
        "force_reload": Param(
            False,
            type="boolean",
            title="Force reload",
            description=force_help,
        ),
    }
