"""`make run` on another port: one setting (AIRFLOW__API__PORT) moves the UI and every URL
derived from it, and a busy port stops `make run` at once with a message naming the setting;
on Celery (TAXI_CELERY_WORKERS) the scheduler's cap is Celery's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.airflow_env import PROJECT, airflow_env


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A shell without the AIRFLOW_* values conftest exported for the test home."""
    for key in list(os.environ):
        if key.startswith("AIRFLOW_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_default_port_is_8080(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = airflow_env(tmp_path, use_dotenv=False)
    assert env["AIRFLOW__API__PORT"] == "8080"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8793"


def test_the_port_setting_moves_every_url(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shell.setenv("AIRFLOW__API__PORT", "8181")
    env = airflow_env(tmp_path, use_dotenv=False)
    assert env["AIRFLOW__API__PORT"] == "8181"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8181"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8181/execution/"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8894"


def test_an_explicit_base_url_still_wins(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Behind a proxy the public URL differs from the listening port: the user's value stays."""
    shell.setenv("AIRFLOW__API__PORT", "8181")
    shell.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org")
    env = airflow_env(tmp_path, use_dotenv=False)
    assert env["AIRFLOW__API__BASE_URL"] == "https://airflow.example.org"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8181/execution/"


def test_a_bad_port_names_the_setting(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shell.setenv("AIRFLOW__API__PORT", "80a")
    with pytest.raises(SystemExit, match="AIRFLOW__API__PORT='80a'"):
        airflow_env(tmp_path, use_dotenv=False)


def test_make_run_on_a_busy_port_says_which_setting_to_change(tmp_path: Path) -> None:
    """The real `python -m dev.local run` (what `make run` runs) against a port in use: it
    exits before starting Postgres or Airflow, naming AIRFLOW__API__PORT and a free-ish port."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "TAXI_"))}
        env.update(
            AIRFLOW_HOME=str(tmp_path), AIRFLOW__API__PORT=str(port), PYTHONPATH=str(PROJECT)
        )
        result = subprocess.run(
            [sys.executable, "-m", "dev.local", "run"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr, result.stderr
    assert f"AIRFLOW__API__PORT={port + 1} make run" in result.stderr, result.stderr
    assert not list(tmp_path.glob("*.log")), "an Airflow process was started anyway"


def test_a_stopped_servers_closed_connections_are_no_listener() -> None:
    """A restart right after a stop meets the old server's TIME_WAIT connections on its port:
    they must not count as a server (Airflow's own server binds with SO_REUSEADDR too)."""
    from dev.supervisor import listening

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's listener
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert listening("127.0.0.1", port)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection waits (TIME_WAIT)
    client.recv(1)
    client.close()
    server.close()
    with socket.socket() as plain, pytest.raises(OSError, match="in use"):
        plain.bind(("127.0.0.1", port))  # without SO_REUSEADDR the port still looks taken
    assert not listening("127.0.0.1", port)


def test_celery_without_a_broker_says_what_to_do(tmp_path: Path) -> None:
    """`TAXI_CELERY_WORKERS=2 make run` with no Redis answering: a message, not a hang."""
    from dev.local import celery_env

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///x.db",
    }
    with pytest.raises(
        SystemExit, match=r"(?s)TAXI_CELERY_WORKERS asks for Celery workers.*make redis"
    ):
        celery_env(env)


def test_the_executor_sets_the_scheduler_cap(shell: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """LocalExecutor: 4 task processes. Celery: Airflow's 32 (the workers' slots cap what
    runs); a parallelism the user sets wins either way."""
    assert airflow_env(tmp_path, use_dotenv=False)["AIRFLOW__CORE__PARALLELISM"] == "4"
    shell.setenv("TAXI_CELERY_WORKERS", "2")
    assert airflow_env(tmp_path, use_dotenv=False)["AIRFLOW__CORE__PARALLELISM"] == "32"
    shell.setenv("AIRFLOW__CORE__PARALLELISM", "8")
    assert airflow_env(tmp_path, use_dotenv=False)["AIRFLOW__CORE__PARALLELISM"] == "8"
    shell.setenv("TAXI_CELERY_WORKERS", "two")
    with pytest.raises(SystemExit, match="TAXI_CELERY_WORKERS='two'"):
        airflow_env(tmp_path, use_dotenv=False)
