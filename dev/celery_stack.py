"""What an e2e stack (or `make bench-backfill`) on the CeleryExecutor needs beside Airflow: a
Redis broker and a PostgreSQL metadata database, both private to one run.

Redis: the one on 127.0.0.1:6379 when it answers (CI machines start one), in a database
number this run claims atomically and empties afterwards, so parallel runs never share a
queue; otherwise a private ``redis-server`` (Debian's package, installed by ``make redis``)
on a free port, keeping nothing on disk. PostgreSQL: a fresh database on the session's server
(SQLite's one writer cannot take a scheduler and two workers), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

from dev.airflow_env import CELERY_PARALLELISM, CONNECT_ARGS
from dev.airflow_stack import fail, free_port
from include.taxi.settings import CELERY_CONFIG_OPTIONS

SHARED_REDIS = ("127.0.0.1", 6379)
CLAIM_KEY = "taxi:e2e:claim"
CLAIM_TTL_S = 3600
REDIS_DATABASES = range(1, 16)
"""Database 0 is left to whoever else uses the shared Redis."""
START_TIMEOUT_S = 10


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _claim_database(host: str, port: int, token: str) -> int | None:
    """The first empty database number this run could claim (SET NX), or None."""
    for number in REDIS_DATABASES:
        with redis.Redis(host=host, port=port, db=number) as client:
            if not client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_TTL_S):
                continue
            if client.dbsize() == 1:
                return number
            client.delete(CLAIM_KEY)  # someone's data is there: not ours to use or empty
    return None


@contextlib.contextmanager
def _private_redis(workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        fail(
            "no Redis answers on 127.0.0.1:6379 and redis-server is not installed: "
            "run `make redis` (as root: apt-get install redis-server) and rerun"
        )
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(workdir)]
    log = (workdir / "redis.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not redis_answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                fail(f"redis-server did not start: {(workdir / 'redis.log').read_text()}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def redis_broker(workdir: Path) -> Iterator[str]:
    """A broker URL only this run uses; emptied (or stopped) afterwards."""
    host, port = SHARED_REDIS
    if redis_answers(host, port):
        token = uuid.uuid4().hex
        number = _claim_database(host, port, token)
        if number is not None:
            try:
                yield f"redis://{host}:{port}/{number}"
            finally:
                with redis.Redis(host=host, port=port, db=number) as client:
                    client.flushdb()
            return
    with _private_redis(workdir) as url:
        yield url


def celery_env(broker_url: str, database_url: str) -> dict[str, str | None]:
    """Airflow on the CeleryExecutor with ``database_url`` as its metadata DB.

    The heartbeat timeout is cut from 300 s to 20 s (and checked every 5 s) so a task whose
    worker died is noticed, failed and retried within the test's patience. The workers
    preload the pipeline and the scheduler's cap is Celery's, as in every Celery stack of the
    project (CELERY_CONFIG_OPTIONS, CELERY_PARALLELISM).
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        CONNECT_ARGS: None,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
        "AIRFLOW__CORE__PARALLELISM": str(CELERY_PARALLELISM),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
