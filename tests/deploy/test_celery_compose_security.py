"""The Celery compose stack keeps its broker and Flower closed (no Docker engine: the files are
read and resolved the way compose does, see test_compose_and_dockerfile.py).

A queued workload carries a token the api-server exchanges for an execution token that reads
any connection: whoever reads the broker or Flower's task list can act as a task. So Redis takes
a password from .env and the broker URL uses it, Flower is under a profile and refuses to start
without a login, and Flower's environment is the broker and nothing else.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.test_compose_and_dockerfile import (
    CELERY_ENV,
    CELERY_FILE,
    CELERY_SECRETS,
    CELERY_UI,
    ENV_EXAMPLE,
    OTHER_SERVICES_SECRETS,
    REQUIRED_SECRETS,
    Compose,
    MissingVariable,
    airflow_services,
    celery_stack,
    environment,
    ports,
    undocumented_variables,
)

FLOWER_ENV = {
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__FLOWER_BASIC_AUTH",
    "CONNECTION_CHECK_MAX_COUNT",
}
"""All Flower needs: the `airflow celery` commands exist only under the CeleryExecutor, the
broker it watches, its login, and no metadata database to wait for."""


def _requirepass(redis: Compose) -> str | None:
    """The password redis-server is started with, read from its command and environment."""
    command = redis.get("command") or []
    text = " ".join(command) if isinstance(command, list) else str(command)
    match = re.search(r"requirepass\s+\"?\$\{?(\w+)\}?\"?", text)
    if match:
        return environment(redis).get(match[1]) or None
    literal = re.search(r"requirepass\s+(\S+)", text)
    return literal[1] if literal else None


def broker_problems(compose: Compose) -> list[str]:
    """Redis demands a password; every broker URL presents it; redis-cli's check has it."""
    services = compose["services"]
    redis = services.get("redis", {})
    password = _requirepass(redis)
    problems = [] if password else ["redis: started without requirepass"]
    if "REDISCLI_AUTH" not in environment(redis) and "-a" not in (
        redis.get("healthcheck") or {}
    ).get("test", []):
        problems.append("redis: its healthcheck's redis-cli has no password")
    users = {**airflow_services(compose), CELERY_UI: services.get(CELERY_UI, {})}
    for name, service in users.items():
        broker = urlsplit(environment(service).get("AIRFLOW__CELERY__BROKER_URL", ""))
        if not password or broker.password != password:
            problems.append(f"{name}: the broker URL does not carry redis's password")
    for name, service in services.items():
        if name != "redis" and any(port == "6379" for *_, port in ports(service)):
            problems.append(f"{name}: publishes the broker's port")
    if ports(redis):
        problems.append("redis: published on the host")
    return problems


def flower_problems(compose: Compose) -> list[str]:
    """Flower: behind the profile, on 127.0.0.1, a login required, the broker its only secret."""
    flower = compose["services"].get(CELERY_UI)
    if flower is None:
        return []
    problems = []
    if CELERY_UI not in (flower.get("profiles") or []):
        problems.append("flower: not behind the profile `flower` (started by every `up`)")
    env = environment(flower)
    extra = set(env) - FLOWER_ENV
    if extra:
        problems.append(f"flower: gets {sorted(extra)}, more than the broker")
    leaked = [k for k in (*REQUIRED_SECRETS, *OTHER_SERVICES_SECRETS) if k in env]
    leaked += [k for k in env if k.startswith("AIRFLOW_CONN_") or "SQL_ALCHEMY" in k]
    if leaked:
        problems.append(f"flower: gets Airflow's secrets {leaked}")
    if "extends" in flower:
        problems.append("flower: extends another service (and takes its whole environment)")
    if flower.get("volumes"):
        problems.append("flower: mounts volumes it does not need")
    if not env.get("AIRFLOW__CELERY__FLOWER_BASIC_AUTH"):
        problems.append("flower: AIRFLOW__CELERY__FLOWER_BASIC_AUTH is not set from .env")
    return problems


def flower_start(flower: Compose, basic_auth: str) -> subprocess.CompletedProcess[str]:
    """Flower's start script as its container runs it, with ``basic_auth`` as the login; the
    image's /entrypoint does not exist here, so a script that gets that far exits 127."""
    entrypoint, command = flower.get("entrypoint"), flower.get("command") or []
    assert entrypoint == "/bin/bash", entrypoint
    assert command[0] == "-c", command
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": basic_auth}
    return subprocess.run(
        ["bash", "-c", command[1]], env=env, capture_output=True, text=True, timeout=10
    )


@pytest.fixture(scope="module")
def celery() -> Compose:
    return celery_stack({**CELERY_ENV, "FLOWER_BASIC_AUTH": "ops:flower-secret"})


def test_redis_requires_a_password_that_every_broker_url_uses(celery: Compose) -> None:
    assert broker_problems(celery) == []
    broker = environment(celery["services"]["airflow-worker"])["AIRFLOW__CELERY__BROKER_URL"]
    assert urlsplit(broker).password == CELERY_ENV["REDIS_PASSWORD"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NO_REDIS = shutil.which("redis-server") is None


@pytest.fixture
def redis_server(celery: Compose, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """The compose file's own redis command run by a real redis-server, on a free port of
    127.0.0.1 (the only change to it); (port, process) once it refuses PING without login."""
    import redis as redis_client

    service = celery["services"]["redis"]
    shell, flag, script = service["command"]
    port = _free_port()
    local = script.replace("redis-server ", f"redis-server --port {port} --bind 127.0.0.1 ", 1)
    assert local != script
    server = subprocess.Popen(
        [shell, flag, local],
        env={"PATH": os.environ["PATH"], **environment(service)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        anonymous = redis_client.Redis(port=port, socket_timeout=5)
        deadline = time.monotonic() + 15
        while True:
            try:
                anonymous.ping()
            except redis_client.AuthenticationError:
                break  # up, and refusing
            except redis_client.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
            else:
                pytest.fail("redis answered PING without the password")
        yield port, server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)


def _broker(celery: Compose, service: str, port: int) -> str:
    url = environment(celery["services"][service])["AIRFLOW__CELERY__BROKER_URL"]
    return url.replace("@redis:6379", f"@127.0.0.1:{port}")


@pytest.mark.skipif(NO_REDIS, reason="no redis-server (make redis)")
def test_the_redis_command_really_requires_the_password(celery: Compose, redis_server) -> None:
    """No answer without the password (the fixture), the broker URL's password works, the
    healthcheck passes, and the password is in no process's command line."""
    import redis as redis_client

    port, server = redis_server
    service = celery["services"]["redis"]
    assert redis_client.Redis.from_url(_broker(celery, "airflow-worker", port)).ping()
    check = [*service["healthcheck"]["test"][1:2], "-p", str(port), "ping"]
    env = {"PATH": os.environ["PATH"], **environment(service)}
    assert subprocess.run(check, env=env, capture_output=True, text=True).stdout == "PONG\n"
    password = CELERY_ENV["REDIS_PASSWORD"].encode()
    assert password not in Path(f"/proc/{server.pid}/cmdline").read_bytes()


@pytest.mark.integration
@pytest.mark.skipif(NO_REDIS, reason="no redis-server (make redis)")
def test_flower_with_its_compose_environment_asks_for_the_login(
    celery: Compose, redis_server, tmp_path: Path
) -> None:
    """The compose file's Flower script and environment (the broker pointed at the local
    redis, `airflow` for the image's /entrypoint, a free port): Celery's UI answers 401
    without the login and 200 with it; the healthcheck path needs none."""
    import requests

    port, _ = redis_server
    flower = celery["services"][CELERY_UI]
    _, script = flower["command"]
    local = script.replace("/entrypoint celery", f"{sys.executable} -m airflow celery", 1)
    assert local != script
    ui_port = _free_port()
    env = {
        **environment(flower),
        "AIRFLOW__CELERY__BROKER_URL": _broker(celery, CELERY_UI, port),
        "AIRFLOW__CELERY__FLOWER_PORT": str(ui_port),
        "AIRFLOW__CELERY__FLOWER_HOST": "127.0.0.1",
        "AIRFLOW_HOME": str(tmp_path),
        "HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    ui = subprocess.Popen(
        ["bash", "-c", local],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = requests.get(f"{base}/healthcheck", timeout=5)
                break
            except requests.ConnectionError:
                assert ui.poll() is None, "flower exited"
                assert time.monotonic() < deadline, "flower did not start"
                time.sleep(0.5)
        assert (health.status_code, health.text) == (200, "OK")
        assert requests.get(f"{base}/", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401
        login = tuple(env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"].split(":", 1))
        assert requests.get(f"{base}/", auth=login, timeout=10).status_code == 200
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)


def test_the_celery_stack_refuses_to_start_without_a_redis_password() -> None:
    for name in CELERY_SECRETS:
        with pytest.raises(MissingVariable, match=name):
            celery_stack({k: v for k, v in CELERY_ENV.items() if k != name})


def test_flower_gets_the_broker_and_a_login_only(celery: Compose) -> None:
    assert flower_problems(celery) == []
    env = environment(celery["services"][CELERY_UI])
    assert env["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == "ops:flower-secret"
    assert ports(celery["services"][CELERY_UI]) == [("127.0.0.1", "5555", "5555")]
    assert celery["services"][CELERY_UI]["healthcheck"]["test"][-1].endswith("/healthcheck")


@pytest.mark.parametrize("login", ["", "no-colon"])
def test_flower_does_not_start_without_a_login(celery: Compose, login: str) -> None:
    started = flower_start(celery["services"][CELERY_UI], login)
    assert started.returncode == 1, started
    assert "FLOWER_BASIC_AUTH" in started.stderr


def test_flower_starts_with_a_login(celery: Compose) -> None:
    started = flower_start(celery["services"][CELERY_UI], "ops:flower-secret")
    assert started.returncode == 127, started  # it went on to exec the image's /entrypoint
    assert "FLOWER_BASIC_AUTH" not in started.stderr


def test_env_example_documents_the_celery_variables() -> None:
    raw = yaml.safe_load(CELERY_FILE.read_text())
    text = ENV_EXAMPLE.read_text()
    assert undocumented_variables(raw, text) == []
    for name in (*CELERY_SECRETS, "FLOWER_BASIC_AUTH"):
        assert re.search(rf"^#?\s*{name}=<", text, re.MULTILINE), f"{name}: no placeholder"


def _set(service: str, key: str, value: object) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        c["services"][service][key] = value

    return mutate


def _set_env(service: str, key: str, value: str) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        target = c["services"][service]
        target["environment"] = {**environment(target), key: value}

    return mutate


def _extends_scheduler(c: Compose) -> None:
    """What the file did before: Flower took the scheduler's whole environment."""
    scheduler = c["services"]["airflow-scheduler"]
    c["services"][CELERY_UI]["environment"] = {
        **environment(scheduler),
        **environment(c["services"][CELERY_UI]),
    }


@pytest.mark.parametrize(
    ("check", "mutate"),
    [
        (broker_problems, _set("redis", "command", ["redis-server", "--save", ""])),
        (
            broker_problems,
            _set_env("airflow-worker", "AIRFLOW__CELERY__BROKER_URL", "redis://redis:6379/0"),
        ),
        (broker_problems, _set_env(CELERY_UI, "AIRFLOW__CELERY__BROKER_URL", "redis://redis/0")),
        (broker_problems, _set("redis", "ports", ["127.0.0.1:6379:6379"])),
        (flower_problems, _extends_scheduler),
        (flower_problems, _set(CELERY_UI, "profiles", [])),
        (flower_problems, _set_env(CELERY_UI, "AIRFLOW__CELERY__FLOWER_BASIC_AUTH", "")),
        (flower_problems, _set_env(CELERY_UI, "AIRFLOW__CORE__FERNET_KEY", "x")),
    ],
)
def test_each_check_can_fail(
    celery: Compose, check: Callable[[Compose], list[str]], mutate: Callable[[Compose], None]
) -> None:
    broken = copy.deepcopy(celery)
    mutate(broken)
    assert check(broken) != []
