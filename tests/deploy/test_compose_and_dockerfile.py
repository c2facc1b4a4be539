"""Static checks of docker-compose.yaml, Dockerfile and .dockerignore, with no Docker engine.

No engine (and no `docker compose`) is available where the tests run, so the compose file is
read the way compose reads it: YAML with merge keys, then ${VARIABLES} interpolated with their
defaults, `:?` refusing to go on without a value. Each check is a function returning the
problems it finds, run on the real files and, to show it can fail, on a broken copy.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from include.taxi.settings import CELERY_CONFIG_OPTIONS

PROJECT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT / "docker-compose.yaml"
DOCKERFILE = PROJECT / "Dockerfile"
DOCKERIGNORE = PROJECT / ".dockerignore"
ENV_EXAMPLE = PROJECT / ".env.example"
REQUIREMENTS = PROJECT / "requirements.txt"

Compose = dict[str, Any]

# What `.env` must provide: the variables of the compose file that have no default.
REQUIRED_SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")
TEST_ENV = {name: f"test-value-of-{name.lower()}" for name in REQUIRED_SECRETS}
CELERY_SECRETS = ("REDIS_PASSWORD",)
"""What .env must add for docker-compose.celery.yaml."""
CELERY_ENV = {**TEST_ENV, **{name: f"test-value-of-{name.lower()}" for name in CELERY_SECRETS}}

EXPECTED_SERVICES = {
    "airflow-db": "postgres",
    "warehouse-db": "postgres",
    "pgadmin": "dpage/pgadmin4",
}
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
PROJECT_MOUNTS = {
    "dags": "/opt/airflow/dags",
    "include": "/opt/airflow/include",
    "plugins": "/opt/airflow/plugins",
}

# $$ is an escaped dollar; ${NAME}, ${NAME:-default}, ${NAME:?error}, ... and $NAME are variables.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A `${NAME:?error}` without a value: compose refuses to start."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """One string as compose interpolates it."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        is_set = bool(env.get(name)) if op.startswith(":") else name in env
        if op.endswith("-"):
            return env[name] if is_set else arg
        if op.endswith("?"):
            if not is_set:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op.endswith("+"):
            return arg if is_set else ""
        return env.get(name, "")

    return _VARIABLE.sub(replace, value)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """The parsed compose file with its string values interpolated (not its keys, as compose)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    return node


def references(raw: Compose) -> dict[str, set[str]]:
    """Each variable the compose file interpolates, with the operators it is used with."""
    found: dict[str, set[str]] = {}
    for text in _strings(raw):
        for match in _VARIABLE.finditer(text):
            if not match["escaped"]:
                found.setdefault(match["braced"] or match["bare"], set()).add(match["op"] or "")
    return found


def environment(service: Compose) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


CELERY_UI = "flower"
"""Runs the Airflow image as Celery's UI only: it gets the broker and none of Airflow's
settings (tests/deploy/test_celery_compose_security.py)."""


def airflow_services(compose: Compose) -> dict[str, Compose]:
    """The services running the Airflow image of x-airflow-common (not Celery's UI)."""
    image = compose["x-airflow-common"]["image"]
    return {
        name: s
        for name, s in compose["services"].items()
        if s.get("image") == image and name != CELERY_UI
    }


def depends_on(service: Compose) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def one_shot_services(compose: Compose) -> set[str]:
    """Services others wait for to *complete* (airflow-init): they are not meant to keep running."""
    return {
        target
        for service in compose["services"].values()
        for target, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }


def long_running_services(compose: Compose) -> dict[str, Compose]:
    """What `docker compose up` keeps running: not one-shot, not behind a profile (airflow-cli)."""
    skip = one_shot_services(compose)
    return {
        name: service
        for name, service in compose["services"].items()
        if name not in skip and not service.get("profiles")
    }


def ports(service: Compose) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port."""
    published = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published.append(
                (entry.get("host_ip", ""), str(entry.get("published", "")), str(entry["target"]))
            )
            continue
        parts = str(entry).split("/")[0].split(":")
        published.append(
            (":".join(parts[:-2]), *parts[-2:]) if len(parts) > 1 else ("", "", parts[0])
        )
    return published


def mounts(service: Compose) -> list[tuple[str, str]]:
    """(source, target) of each volume or bind mount."""
    found = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            found.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            found.append((source, target))
    return found


def is_named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~"))


# -- the checks ----------------------------------------------------------------------------------


def is_pinned(image: str) -> bool:
    """A tag that names a version: not missing, not `latest`, with a digit in it."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return tag != "latest" and "latest" not in tag.split("-") and any(c.isdigit() for c in tag)


def unpinned_images(compose: Compose) -> list[str]:
    return [
        f"{name}: image {service.get('image')!r} is not pinned to a version"
        for name, service in compose["services"].items()
        if not is_pinned(service.get("image", ""))
    ]


def missing_services(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = [
        f"{name}: missing, or not a {image} image"
        for name, image in EXPECTED_SERVICES.items()
        if not services.get(name, {}).get("image", "").startswith(image + ":")
    ]
    airflow = airflow_services(compose)
    for name, command in AIRFLOW_COMMANDS.items():
        if name not in airflow or airflow[name].get("command") != command:
            problems.append(f"{name}: missing, or not running `airflow {command}`")
    if "airflow-init" not in airflow or "airflow-init" not in one_shot_services(compose):
        problems.append("airflow-init: missing, or nothing waits for it to complete")
    if "_AIRFLOW_DB_MIGRATE" not in environment(airflow.get("airflow-init", {})):
        problems.append("airflow-init: does not migrate the metadata database")
    return problems


def missing_healthchecks(compose: Compose) -> list[str]:
    problems = []
    for name, service in long_running_services(compose).items():
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name}: runs for good but has no healthcheck")
    return problems


def wrong_executor(compose: Compose) -> list[str]:
    airflow = airflow_services(compose)
    problems = [
        f"{name}: executor {environment(service).get('AIRFLOW__CORE__EXECUTOR')!r}"
        for name, service in airflow.items()
        if environment(service).get("AIRFLOW__CORE__EXECUTOR") != "LocalExecutor"
    ]
    for name, service in airflow.items():
        if environment(service).get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() != "false":
            problems.append(f"{name}: loads Airflow's example DAGs")
    return problems or ([] if airflow else ["no service runs the Airflow image"])


def dangling_depends_on(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if target not in services:
                problems.append(f"{name}: depends on {target!r}, which does not exist")
            elif condition == "service_healthy" and not services[target].get("healthcheck"):
                problems.append(f"{name}: waits for {target!r} to be healthy; it has no check")
    return problems


def volume_problems(compose: Compose) -> list[str]:
    declared = set(compose.get("volumes") or {})
    used = {
        source
        for service in compose["services"].values()
        for source, _ in mounts(service)
        if is_named_volume(source)
    }
    return [f"volume {v!r} is used but not declared" for v in sorted(used - declared)] + [
        f"volume {v!r} is declared but not used" for v in sorted(declared - used)
    ]


def public_ports(compose: Compose) -> list[str]:
    return [
        f"{name}: port {host_port}->{target} is bound to {host_ip or 'every interface'}"
        for name, service in compose["services"].items()
        for host_ip, host_port, target in ports(service)
        if host_ip != "127.0.0.1"
    ]


def undocumented_variables(raw: Compose, env_example: str) -> list[str]:
    """Variables with no default must be in .env.example (commented out or not)."""
    documented = set(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", env_example, re.MULTILINE))
    return [
        f"${{{name}}} has no default and is not in .env.example"
        for name, ops in sorted(references(raw).items())
        if name not in documented and not all(op in (":-", "-") for op in ops)
    ]


def connection_problems(compose: Compose) -> list[str]:
    """AIRFLOW_CONN_TAXI_POSTGRES of each Airflow service points at the warehouse service."""
    problems = []
    services = compose["services"]
    for name, service in airflow_services(compose).items():
        raw = environment(service).get("AIRFLOW_CONN_TAXI_POSTGRES")
        if raw is None:
            problems.append(f"{name}: no AIRFLOW_CONN_TAXI_POSTGRES")
            continue
        try:
            conn = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: AIRFLOW_CONN_TAXI_POSTGRES is not JSON: {exc}")
            continue
        warehouse = services.get(conn.get("host"), {})
        if not warehouse.get("image", "").startswith("postgres:"):
            problems.append(f"{name}: the connection's host {conn.get('host')!r} is no postgres")
            continue
        pg = environment(warehouse)
        user = pg.get("POSTGRES_USER") or "postgres"
        expected = {
            "conn_type": "postgres",
            "port": 5432,
            "login": user,
            "password": pg.get("POSTGRES_PASSWORD"),
            "schema": pg.get("POSTGRES_DB") or user,
        }
        for key, value in expected.items():
            if conn.get(key) != value:
                problems.append(f"{name}: connection {key}={conn.get(key)!r}, expected {value!r}")
        if "PGPORT" in pg or "5432" not in {target for *_, target in ports(warehouse)}:
            problems.append(f"{conn['host']}: does not serve PostgreSQL on 5432")
    return problems


def shared_secret_problems(raw: Compose) -> list[str]:
    """Every Airflow component takes the Fernet key and JWT secret from one required variable."""
    problems = []
    for key in REQUIRED_SECRETS:
        sources = {
            name: environment(service).get(key, "")
            for name, service in airflow_services(raw).items()
        }
        for name, source in sources.items():
            match = _VARIABLE.fullmatch(source)
            if not match or match["braced"] != key or match["op"] != ":?":
                problems.append(f"{name}: {key} is {source!r}, not ${{{key}:?...}} from .env")
        if len(set(sources.values())) > 1:
            problems.append(f"{key}: differs between the Airflow services")
    return problems


PASSED_THROUGH = (
    "AIRFLOW_VAR_TAXI_SOURCE_URL",
    "AIRFLOW_VAR_TAXI_POSTGRES_SCHEMA",
    "AIRFLOW_VAR_TAXI_BQ_DATASET",
    "AIRFLOW_VAR_TAXI_DAILY_LOOKBACK_MONTHS",
    "AIRFLOW_VAR_TAXI_DAILY_TARGETS",
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
    "AIRFLOW_CONN_TAXI_ALERTS",
    "TAXI_START_MONTH",
    "TAXI_END_MONTH",
    "TAXI_CATCHUP",
    "TAXI_POSTGRES_COPY_STREAMS",
    "TAXI_POSTGRES_COPY_SLOTS",
)
"""What the pipeline reads that .env may set: passed to the Airflow containers by name only."""
OTHER_SERVICES_SECRETS = (
    "AIRFLOW_DB_PASSWORD",
    "WAREHOUSE_DB_PASSWORD",
    "PGADMIN_DEFAULT_PASSWORD",
    "POSTGRES_PASSWORD",
)


def environment_problems(compose: Compose) -> list[str]:
    """Each container gets only the variables it needs: no `env_file` (it passes every value of
    .env, pgAdmin's password and the database passwords included, into the container); the
    pipeline's settings are named one by one and left unset when .env does not set them."""
    problems = [
        f"{name}: env_file passes all of .env into the container"
        for name, service in compose["services"].items()
        if service.get("env_file")
    ]
    for name, service in airflow_services(compose).items():
        env = service.get("environment") or {}
        for key in PASSED_THROUGH:
            if key not in env or env[key] is not None:
                problems.append(f"{name}: {key} is not passed through by name (`{key}:`)")
        problems += [f"{name}: gets {key}" for key in OTHER_SERVICES_SECRETS if key in env]
    for name, service in compose["services"].items():
        if name not in airflow_services(compose):
            leaked = [
                key for key in (*REQUIRED_SECRETS, *PASSED_THROUGH) if key in environment(service)
            ]
            problems += [f"{name}: gets Airflow's {key}" for key in leaked]
    return problems


def project_mount_problems(compose: Compose) -> list[str]:
    """Every Airflow service imports `include.taxi` from /opt/airflow and sees the project."""
    problems = []
    for name, service in airflow_services(compose).items():
        env = environment(service)
        if "/opt/airflow" not in env.get("PYTHONPATH", "").split(":"):
            problems.append(f"{name}: PYTHONPATH {env.get('PYTHONPATH')!r} lacks /opt/airflow")
        targets = {target: source for source, target in mounts(service)}
        for folder, target in PROJECT_MOUNTS.items():
            source = targets.get(target, "")
            if Path(source).name != folder or not (PROJECT / folder).is_dir():
                problems.append(f"{name}: {folder}/ is not mounted at {target}")
        if "/opt/airflow/logs" not in targets:
            problems.append(f"{name}: no shared logs volume at /opt/airflow/logs")
        url = urlsplit(env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", ""))
        api = compose["services"].get(url.hostname or "", {})
        if api.get("command") != "api-server" or str(url.port) not in {
            target for *_, target in ports(api)
        }:
            problems.append(f"{name}: the execution API URL {url.geturl()!r} is not the api-server")
    return problems


def airflow_pin() -> str:
    match = re.search(r"^apache-airflow==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, "requirements.txt does not pin apache-airflow"
    return match[1]


def python_version() -> str:
    match = re.search(r"--python-version (\d+\.\d+)", REQUIREMENTS.read_text())
    assert match, "requirements.txt does not say which Python it was compiled for"
    return match[1]


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines())
        if parts
    ]


def dockerfile_problems(dockerfile: str, pin: str, python: str) -> list[str]:
    steps = instructions(dockerfile)
    args = {kind: [a for k, a in steps if k == kind] for kind in ("FROM", "COPY", "RUN", "ENV")}
    problems = []
    expected_from = f"apache/airflow:{pin}-python{python}"
    if args["FROM"] != [expected_from]:
        problems.append(f"FROM {args['FROM']}, expected [{expected_from!r}]")
    code = " ".join(a for _, a in steps).lower()
    for word in ("latest", "gcloud", "google-cloud-sdk", "google-cloud-cli"):
        if word in code:
            problems.append(f"mentions {word!r}")
    copied = {a.split()[-2]: a.split()[-1] for a in args["COPY"] if len(a.split()) >= 2}
    requirements_at = copied.get("requirements.txt")
    installs = [a for a in args["RUN"] if "pip install" in a and "--no-cache-dir" in a]
    if not requirements_at or not any(f"-r {requirements_at}" in a for a in installs):
        problems.append("does not COPY requirements.txt and `pip install --no-cache-dir -r` it")
    users = [a for k, a in steps if k == "USER"]
    if users and users[-1] not in ("airflow", "50000"):
        problems.append(f"pip runs as {users[-1]!r}, not the airflow user")
    for folder, target in PROJECT_MOUNTS.items():
        if copied.get(f"{folder}/", copied.get(folder, "")).rstrip("/") != target:
            problems.append(f"does not COPY {folder}/ to {target}")
    if not any(re.search(r"PYTHONPATH=(\S*:)?/opt/airflow(:|\s|$)", a) for a in args["ENV"]):
        problems.append("does not set PYTHONPATH=/opt/airflow")
    return problems


def dockerignore_problems(dockerignore: str) -> list[str]:
    patterns = [
        line.strip().lstrip("/")
        for line in dockerignore.splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch(path, p) or fnmatch(path, p.removeprefix("**/")) or path.startswith(p + "/")
            for p in patterns
            if not p.startswith("!")
        )

    must_ignore = [".env", ".git", ".venv", ".venv-bq", ".keys", ".airflow", ".data", "bench/data"]
    must_ignore.append("__pycache__")
    must_keep = ["requirements.txt", "dags", "include", "plugins", "include/taxi/postgres/load.py"]
    return [f"{p} is sent to the build" for p in must_ignore if not ignored(p)] + [
        f"{p} is ignored, but the Dockerfile copies it" for p in must_keep if ignored(p)
    ]


# -- tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> Compose:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw: Compose) -> Compose:
    return resolve(raw, TEST_ENV)


def test_images_are_pinned(compose: Compose) -> None:
    assert unpinned_images(compose) == []


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:latest", False),
        ("postgres", False),
        ("dpage/pgadmin4", False),
        ("localhost:5000/airflow", False),
        ("apache/airflow:latest-python3.11", False),
        ("postgres:16.14", True),
        ("apache/airflow:3.3.2-python3.11", True),
        ("localhost:5000/airflow:3.3.2", True),
    ],
)
def test_the_pin_check_rejects_floating_tags(image: str, pinned: bool) -> None:
    assert is_pinned(image) is pinned


def test_the_airflow_image_is_tagged_with_the_locked_airflow_version(compose: Compose) -> None:
    # an image built from an older lock keeps its tag; a new Airflow version gets a new tag
    assert compose["x-airflow-common"]["image"].endswith(f":{airflow_pin()}")
    assert compose["x-airflow-common"].get("build") in (".", {"context": "."})


def test_expected_services_exist(compose: Compose) -> None:
    assert missing_services(compose) == []


def test_long_running_services_have_healthchecks(compose: Compose) -> None:
    assert set(long_running_services(compose)) == {
        *EXPECTED_SERVICES,
        *AIRFLOW_COMMANDS,
    }
    assert missing_healthchecks(compose) == []


def test_the_executor_is_local(compose: Compose) -> None:
    assert wrong_executor(compose) == []
    assert not {"redis", "airflow-worker", "flower"} & set(compose["services"])


def test_depends_on_targets_exist(compose: Compose) -> None:
    assert dangling_depends_on(compose) == []


def test_named_volumes_are_declared_and_used(compose: Compose) -> None:
    assert volume_problems(compose) == []


def test_ports_are_bound_to_localhost(compose: Compose) -> None:
    assert public_ports(compose) == []


def test_every_variable_has_a_default_or_is_in_env_example(raw: Compose) -> None:
    assert undocumented_variables(raw, ENV_EXAMPLE.read_text()) == []
    assert {n for n, ops in references(raw).items() if ops & {":?", "?"}} == set(REQUIRED_SECRETS)


def test_compose_refuses_to_start_without_the_secrets(raw: Compose) -> None:
    for name in REQUIRED_SECRETS:
        env = {key: value for key, value in TEST_ENV.items() if key != name}
        with pytest.raises(MissingVariable, match=name):
            resolve(raw, env)


def test_airflow_services_share_the_secrets(raw: Compose, compose: Compose) -> None:
    assert shared_secret_problems(raw) == []
    for key in REQUIRED_SECRETS:
        values = {environment(s)[key] for s in airflow_services(compose).values()}
        assert values == {TEST_ENV[key]}


def test_the_connection_points_at_the_warehouse(compose: Compose) -> None:
    assert connection_problems(compose) == []
    conn = json.loads(
        environment(compose["services"]["airflow-scheduler"])["AIRFLOW_CONN_TAXI_POSTGRES"]
    )
    assert (conn["host"], conn["schema"]) == ("warehouse-db", "taxi")


def test_the_connection_follows_the_warehouse_settings(raw: Compose) -> None:
    env = {
        **TEST_ENV,
        "WAREHOUSE_DB_USER": "loader",
        "WAREHOUSE_DB_PASSWORD": "p@ss:w/rd#1",
        "WAREHOUSE_DB_NAME": "trips",
    }
    assert connection_problems(resolve(raw, env)) == []


def test_the_default_lake_is_a_named_volume_the_tasks_can_write(compose: Compose) -> None:
    scheduler = compose["services"]["airflow-scheduler"]
    lake = environment(scheduler)["AIRFLOW_VAR_TAXI_LAKE_URL"]
    assert lake.startswith("file:///")
    path = lake.removeprefix("file://")
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in scheduler["volumes"]}
    assert mounts.get(path) in compose["volumes"], f"{path} is not a named volume"
    init = compose["services"]["airflow-init"]
    assert path in {str(v).split(":")[1] for v in init["volumes"]}
    assert "chown -R" in init["command"][-1]
    assert path in init["command"][-1]


def test_the_lake_url_follows_the_env_file(raw: Compose) -> None:
    resolved = resolve(raw, {**TEST_ENV, "TAXI_LAKE_URL": "gs://my-bucket/taxi"})
    env = environment(resolved["services"]["airflow-scheduler"])
    assert env["AIRFLOW_VAR_TAXI_LAKE_URL"] == "gs://my-bucket/taxi"


def test_the_project_is_mounted_and_importable(compose: Compose) -> None:
    assert project_mount_problems(compose) == []


def test_each_container_gets_only_the_variables_it_needs(compose: Compose) -> None:
    assert environment_problems(compose) == []
    documented = set(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert set(PASSED_THROUGH) <= documented, set(PASSED_THROUGH) - documented


def _drop_healthcheck(c: Compose) -> None:
    del c["services"]["airflow-scheduler"]["healthcheck"]


def _set_env(service: str, key: str, value: str) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        target = c["services"][service]
        target["environment"] = {**environment(target), key: value}

    return mutate


def _set(service: str, key: str, value: Any) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        c["services"][service][key] = value

    return mutate


def _add_volume(c: Compose) -> None:
    c["volumes"]["orphan"] = None


def _add_service(name: str, service: Compose) -> Callable[[Compose], None]:
    def mutate(c: Compose) -> None:
        c["services"][name] = service

    return mutate


BAD_CONN = '{"conn_type": "postgres", "host": "airflow-db", "port": 5432, "login": "taxi"}'
NO_MOUNTS = ["airflow-logs:/opt/airflow/logs"]


@pytest.mark.parametrize(
    ("check", "mutate"),
    [
        (unpinned_images, _set("pgadmin", "image", "dpage/pgadmin4:latest")),
        (unpinned_images, _set("warehouse-db", "image", "postgres")),
        (missing_services, _set("airflow-triggerer", "command", "scheduler")),
        (missing_healthchecks, _drop_healthcheck),
        (wrong_executor, _set_env("airflow-scheduler", "AIRFLOW__CORE__EXECUTOR", "Celery")),
        (dangling_depends_on, _set("airflow-scheduler", "depends_on", ["redis"])),
        (
            dangling_depends_on,
            _set(
                "pgadmin",
                "depends_on",
                {"airflow-cli": {"condition": "service_healthy"}},
            ),
        ),
        (volume_problems, _add_volume),
        (volume_problems, _set("pgadmin", "volumes", ["ghost:/var/lib/pgadmin"])),
        (public_ports, _set("pgadmin", "ports", ["8085:80"])),
        (public_ports, _set("warehouse-db", "ports", ["0.0.0.0:5432:5432"])),
        (
            connection_problems,
            _set_env("airflow-scheduler", "AIRFLOW_CONN_TAXI_POSTGRES", BAD_CONN),
        ),
        (connection_problems, _set_env("warehouse-db", "POSTGRES_DB", "other")),
        (project_mount_problems, _set_env("airflow-scheduler", "PYTHONPATH", "/opt/airflow/dags")),
        (project_mount_problems, _set("airflow-dag-processor", "volumes", NO_MOUNTS)),
        (shared_secret_problems, _set_env("airflow-triggerer", REQUIRED_SECRETS[1], "hard-coded")),
        (
            shared_secret_problems,
            _set_env("airflow-apiserver", REQUIRED_SECRETS[0], "${AIRFLOW__CORE__FERNET_KEY:-x}"),
        ),
        (missing_healthchecks, _add_service("cache", {"image": "redis:7.2"})),
        (environment_problems, _set("airflow-scheduler", "env_file", [".env"])),
        (environment_problems, _set_env("airflow-triggerer", "TAXI_CATCHUP", "true")),
        (environment_problems, _set_env("pgadmin", "AIRFLOW_CONN_TAXI_ALERTS", "x")),
    ],
)
def test_each_check_can_fail(
    raw: Compose,
    compose: Compose,
    check: Callable[[Compose], list[str]],
    mutate: Callable[[Compose], None],
) -> None:
    broken = copy.deepcopy(raw if check is shared_secret_problems else compose)
    mutate(broken)
    assert check(broken) != []


def test_the_variable_check_can_fail(raw: Compose) -> None:
    broken = copy.deepcopy(raw)
    broken["services"]["pgadmin"]["environment"] = {"A": "${NEW_SETTING}", "B": "${OTHER:-x}"}
    assert undocumented_variables(broken, ENV_EXAMPLE.read_text()) == [
        "${NEW_SETTING} has no default and is not in .env.example"
    ]


def test_interpolation_follows_compose() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("$${HOSTNAME} $$(id -u)", env) == "${HOSTNAME} $(id -u)"
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}", env) == "value d  d"
    assert interpolate("$SET ${SET:+alt} ${UNSET:+alt}", env) == "value alt "
    with pytest.raises(MissingVariable, match="EMPTY: say why"):
        interpolate("${EMPTY:?say why}", env)


def test_dockerfile_extends_the_locked_airflow_image() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text(), airflow_pin(), python_version()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("FROM apache/airflow:3.3.2-python3.11", "FROM apache/airflow:latest"),
        ("FROM apache/airflow:3.3.2-python3.11", "FROM apache/airflow:3.3.1-python3.11"),
        ("FROM apache/airflow:3.3.2-python3.11", "FROM apache/airflow:3.3.2-python3.12"),
        ("-r /requirements.txt", "apache-airflow-providers-postgres"),
        ("COPY --chown=airflow:root include/ /opt/airflow/include/\n", ""),
        ("COPY --chown=airflow:root dags/ /opt/airflow/dags/\n", ""),
        ("ENV PYTHONPATH=/opt/airflow", "ENV PYTHONPATH=/opt/airflow/dags"),
        ("USER airflow", "USER root"),
        ("RUN pip", "RUN curl -sSL https://sdk.cloud.google.com | bash && gcloud version && pip"),
    ],
)
def test_the_dockerfile_check_can_fail(old: str, new: str) -> None:
    dockerfile = DOCKERFILE.read_text()
    assert old in dockerfile
    broken = dockerfile.replace(old, new)
    assert dockerfile_problems(broken, airflow_pin(), python_version()) != []


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    assert dockerignore_problems(DOCKERIGNORE.read_text()) == []
    assert dockerignore_problems(".venv\ninclude\n") != []


# -- the Celery stack: docker-compose.yaml + docker-compose.celery.yaml ------------------------

CELERY_FILE = PROJECT / "docker-compose.celery.yaml"
UNION_LISTS = ("ports", "expose", "env_file", "profiles")


def _volume_target(entry: Any) -> str:
    return str(entry["target"]) if isinstance(entry, dict) else str(entry).split(":")[1]


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` over ``base`` the way compose merges files: mappings key by key, volumes
    by target, ports and the like as a union, anything else (command, test) replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key == "volumes":
            targets = {_volume_target(v) for v in override}
            return [v for v in base if _volume_target(v) not in targets] + override
        if key in UNION_LISTS:
            return base + [v for v in override if v not in base]
    return override


def celery_stack(env: Mapping[str, str]) -> Compose:
    """`docker compose -f docker-compose.yaml -f docker-compose.celery.yaml config`, roughly:
    both files interpolated, `extends` resolved (without depends_on, which a service must
    state itself), the second merged over the first."""
    base = resolve(yaml.safe_load(COMPOSE_FILE.read_text()), env)
    override = resolve(yaml.safe_load(CELERY_FILE.read_text()), env)
    services = dict(override["services"])
    for name, service in services.items():
        if extends := service.get("extends"):
            assert Path(extends["file"]).name == COMPOSE_FILE.name, extends
            parent = {
                k: v for k, v in base["services"][extends["service"]].items() if k != "depends_on"
            }
            own = {k: v for k, v in service.items() if k != "extends"}
            services[name] = merge(parent, own)
    return merge(base, {**override, "services": services})


def celery_problems(compose: Compose) -> list[str]:
    """Every Airflow service on Celery with one broker; a worker that `--scale` can multiply."""
    services = compose["services"]
    problems = []
    redis = services.get("redis", {})
    if not redis.get("image", "").startswith("redis:"):
        problems.append("redis: missing, or not a redis image")
    airflow = airflow_services(compose)
    brokers = set()
    for name, service in airflow.items():
        env = environment(service)
        if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(f"{name}: executor {env.get('AIRFLOW__CORE__EXECUTOR')!r}")
        brokers.add(env.get("AIRFLOW__CELERY__BROKER_URL"))
        if env.get("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS") != CELERY_CONFIG_OPTIONS:
            problems.append(f"{name}: not the project's Celery config (the worker preload)")
        backend = urlsplit(env.get("AIRFLOW__CELERY__RESULT_BACKEND", "").removeprefix("db+"))
        db = environment(services.get(backend.hostname or "", {}))
        if (backend.username, backend.password) != (
            db.get("POSTGRES_USER"),
            db.get("POSTGRES_PASSWORD"),
        ):
            problems.append(f"{name}: the result backend is not the metadata database")
    broker = urlsplit(next(iter(brokers)) or "") if len(brokers) == 1 else None
    if broker is None or broker.hostname != "redis" or broker.port != 6379:
        problems.append(f"the Airflow services do not share the redis broker: {brokers}")
    worker = airflow.get("airflow-worker", {})
    if worker.get("command") != "celery worker":
        problems.append("airflow-worker: missing, or not running `airflow celery worker`")
    for key in ("container_name", "hostname", "ports"):
        if worker.get(key):
            problems.append(f"airflow-worker: sets {key}, so `--scale airflow-worker=3` cannot run")
    if depends_on(worker).get("redis") != "service_healthy":
        problems.append("airflow-worker: does not wait for a healthy redis")
    flower = services.get(CELERY_UI, {})
    command = " ".join(flower.get("command") or [])
    if "celery flower" not in command or "flower" not in (flower.get("profiles") or []):
        problems.append("flower: missing, not `airflow celery flower`, or not under profile flower")
    return problems


def pool_problems(compose: Compose) -> list[str]:
    """airflow-init creates each pool of include/taxi/settings.py, sized from its variable
    with the same default."""
    from include.taxi.settings import (
        BIGQUERY_TABLES,
        ENV_BIGQUERY_MONTH_SLOTS,
        ENV_POSTGRES_COPY_SLOTS,
        POOL_POSTGRES_COPY,
        bigquery_pool,
        pool_sizes,
    )

    variables = {
        POOL_POSTGRES_COPY: ENV_POSTGRES_COPY_SLOTS,
        **{bigquery_pool(s): ENV_BIGQUERY_MONTH_SLOTS for s in BIGQUERY_TABLES},
    }
    script = compose["services"]["airflow-init"]["command"][-1]
    created = {
        name: (variable, int(default))
        for name, variable, default in re.findall(
            r'airflow pools set (\S+) "\$\{(\w+):-(\d+)\}"', script
        )
    }
    expected = {name: (variables[name], slots) for name, (slots, _) in pool_sizes({}).items()}
    return [] if created == expected else [f"airflow-init creates {created}, expected {expected}"]


@pytest.fixture(scope="module")
def celery() -> Compose:
    return celery_stack(CELERY_ENV)


def test_the_celery_stack_runs_every_airflow_service_on_celery(celery: Compose) -> None:
    assert celery_problems(celery) == []
    assert environment(celery["services"]["airflow-worker"])["DUMB_INIT_SETSID"] == "0"


def test_the_celery_stack_passes_the_local_stack_checks(celery: Compose) -> None:
    """What holds for the LocalExecutor stack holds with the Celery file on top."""
    assert unpinned_images(celery) == []
    assert missing_healthchecks(celery) == []
    assert set(long_running_services(celery)) == {
        *EXPECTED_SERVICES,
        *AIRFLOW_COMMANDS,
        "redis",
        "airflow-worker",
    }
    assert dangling_depends_on(celery) == []
    assert volume_problems(celery) == []
    assert public_ports(celery) == []
    assert connection_problems(celery) == []
    assert project_mount_problems(celery) == []


def test_the_celery_stack_needs_the_same_secrets() -> None:
    with pytest.raises(MissingVariable, match=REQUIRED_SECRETS[0]):
        celery_stack({k: v for k, v in CELERY_ENV.items() if k != REQUIRED_SECRETS[0]})
    assert celery_problems(celery_stack({**CELERY_ENV, "AIRFLOW_DB_PASSWORD": "s3cret"})) == []


def test_the_api_server_listens_on_8080_whatever_env_says(compose: Compose) -> None:
    """AIRFLOW__API__PORT in .env (for `make run`) must not move the api-server in compose."""
    for name, service in airflow_services(compose).items():
        assert environment(service).get("AIRFLOW__API__PORT") == "8080", name


def test_airflow_init_creates_the_pools(compose: Compose, celery: Compose) -> None:
    assert pool_problems(compose) == []
    assert pool_problems(celery) == []


@pytest.mark.parametrize(
    ("check", "mutate"),
    [
        (celery_problems, _set("airflow-worker", "container_name", "worker")),
        (celery_problems, _set("airflow-worker", "ports", ["127.0.0.1:8793:8793"])),
        (celery_problems, _set_env("airflow-worker", "AIRFLOW__CORE__EXECUTOR", "LocalExecutor")),
        (
            celery_problems,
            _set_env("airflow-scheduler", "AIRFLOW__CELERY__BROKER_URL", "redis://x:6379/0"),
        ),
        (celery_problems, _set("airflow-worker", "depends_on", {})),
        (celery_problems, _set("flower", "profiles", [])),
        (celery_problems, _set("redis", "image", "valkey/valkey:8.0")),
        (pool_problems, _set("airflow-init", "command", ["-c", "airflow version"])),
    ],
)
def test_each_celery_check_can_fail(
    celery: Compose, check: Callable[[Compose], list[str]], mutate: Callable[[Compose], None]
) -> None:
    broken = copy.deepcopy(celery)
    mutate(broken)
    assert check(broken) != []
