"""The project's Celery config: Airflow's own unchanged, plus a preload on ``worker_init``.

A real worker applying it is checked by tests/e2e/test_celery.py (its log); here, in a fresh
interpreter, the signal a worker sends before forking its pool does the preload.
"""

from __future__ import annotations

import json
import subprocess
import sys

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from dev.airflow_env import PROJECT
from include.taxi.orchestration import celery_worker
from include.taxi.settings import CELERY_CONFIG_OPTIONS

PROBE = """
import json, sys
from importlib import import_module
module, _, name = sys.argv[1].rpartition(".")
getattr(import_module(module), name)  # as Airflow loads the config
before = {m: m in sys.modules for m in ("pyarrow", "include.taxi.postgres.load")}
from celery.signals import worker_init
worker_init.send(sender=None)
from airflow.sdk.listener import get_listener_manager
after = {m: m in sys.modules for m in ("pyarrow", "include.taxi.postgres.load")}
print(json.dumps({"before": before, "after": after,
                  "listeners": get_listener_manager.cache_info().currsize}))
"""


def test_the_config_is_airflows_own() -> None:
    assert celery_worker.CELERY_CONFIG == DEFAULT_CELERY_CONFIG
    assert f"{celery_worker.__name__}.CELERY_CONFIG" == CELERY_CONFIG_OPTIONS


def test_worker_init_preloads_listeners_and_the_pipeline() -> None:
    """Loading the config (as the scheduler does) preloads nothing; worker_init does."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, CELERY_CONFIG_OPTIONS],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == {"pyarrow": False, "include.taxi.postgres.load": False}
    assert result["after"] == {"pyarrow": True, "include.taxi.postgres.load": True}
    assert result["listeners"] == 1, "the listener manager was not initialised"
