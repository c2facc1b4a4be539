"""The Celery app's configuration for this project: Airflow's own, plus a worker preload.

A Celery worker runs each task in a process forked from its pool, and every such process
first initialises Airflow's plugins and listeners (OpenLineage's among them) before it parses
its DAG, then imports this project's pipeline (pyarrow, psycopg). Airflow's own Celery setup
preloads a few modules (numpy, the standard operators) but not those. On the LocalExecutor
the task processes inherit the listeners from the scheduler they fork from; on Celery each
task set them up again: a median 1.3 s per task on a 2-core worker (``make bench-backfill``,
27 % of the tasks' work), then ~0.5 s of imports. ``preload`` does both once in the worker's
main process, before the pool forks, so every task process inherits them copy-on-write.

Enabled by ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`` =
``include.taxi.orchestration.celery_worker.CELERY_CONFIG`` (docker-compose.celery.yaml,
``make run`` on Celery, the Celery tests and the benchmark). The scheduler imports this module
too, to publish tasks; only a worker sends ``worker_init``, so only a worker preloads.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

log = logging.getLogger(__name__)

CELERY_CONFIG: dict[str, Any] = DEFAULT_CELERY_CONFIG
"""Airflow's own object, unchanged (so Airflow still recognises it as its default): this
module exists for its ``worker_init`` handler."""

PRELOAD = (
    "include.taxi.orchestration.tasks",
    "include.taxi.postgres.load",
    "include.taxi.lake.load",
    "include.taxi.bigquery.load",
)
"""The pipeline modules the DAGs' tasks import at run time (not at parse time)."""


def preload(**_: Any) -> None:
    """Initialise Airflow's listeners and import the pipeline once, before the pool forks."""
    from airflow.sdk.listener import get_listener_manager  # the task runner's (cached)

    get_listener_manager()
    for module in PRELOAD:
        importlib.import_module(module)
    log.info("preloaded Airflow's listeners and %s for the task processes", ", ".join(PRELOAD))


worker_init.connect(preload)
