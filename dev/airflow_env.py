"""The environment a local Airflow runs in: one definition for `make run/month/backfill` and tests.

Settings the caller already exported win over these defaults. The Fernet key and the JWT
secret are generated into the Airflow home on first use and never committed.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

from dev.private_file import write_private

PROJECT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"
CONNECT_ARGS = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"
"""SQLite's busy timeout (dev/airflow_settings.py): dropped on a PostgreSQL metadata DB."""


_GENERATED = {
    "fernet_key": lambda: Fernet.generate_key().decode(),
    "jwt_secret": lambda: secrets.token_urlsafe(64),
    "admin_password": lambda: secrets.token_urlsafe(12),
}
"""Every secret of one Airflow home, generated on first use; a secrets.json from an older
version gains the ones it lacks. The embedded PostgreSQL's password is not here: it lives with
the cluster's data (dev/local_postgres.py), which several Airflow homes may share."""


def local_secrets(home: Path) -> dict[str, str]:
    """The secrets of the local Airflow in ``home``, from ``home/secrets.json``."""
    path = home / "secrets.json"
    values = json.loads(path.read_text()) if path.exists() else {}
    missing = {key: make() for key, make in _GENERATED.items() if key not in values}
    if missing:
        values.update(missing)
        write_private(path, json.dumps(values))
    return values


def admin_password(home: Path) -> str:
    """The UI password, also written (0600) where Airflow's simple auth manager reads it."""
    password = local_secrets(home)["admin_password"]
    passwords = home / "simple_auth_manager_passwords.json.generated"
    write_private(passwords, json.dumps({ADMIN_USER: password}))
    return password


def postgres_connection(url: str) -> str:
    """An Airflow connection (JSON form) for a postgresql:// URL."""
    parts = urlsplit(url)
    conn = {
        "conn_type": "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "login": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "schema": parts.path.lstrip("/") or "postgres",
    }
    return json.dumps(conn)


def dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a .env file (comments and blanks skipped, one level of quotes)."""
    if not path.exists():
        return {}
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


PORT_SETTING = "AIRFLOW__API__PORT"
"""The one setting that moves the UI: base URL, execution API URL and log-server port follow."""
DEFAULT_API_PORT = 8080


def api_port_from(env: dict[str, str]) -> int:
    """AIRFLOW__API__PORT from ``env`` (shell, then .env), else 8080; exits if not a port."""
    raw = (env.get(PORT_SETTING) or "").strip() or str(DEFAULT_API_PORT)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{PORT_SETTING}={raw!r}: expected a TCP port (1-65535), e.g. 8081")
    return int(raw)


WORKERS_SETTING = "TAXI_CELERY_WORKERS"
"""`make run` on Celery with this many `airflow celery worker` processes (0: LocalExecutor)."""
LOCAL_PARALLELISM = 4
"""LocalExecutor: its task processes at once."""
CELERY_PARALLELISM = 32
"""CeleryExecutor: Airflow's default. The workers' slots cap what runs; a scheduler cap equal
to their total (4 for 2 × 2) also counts tasks that have finished but whose result has not
come back through the result backend yet, and holds the next task back ("Executor parallelism
limit reached. 0 open slots": `make bench-backfill`, 0.76 → 0.57 s idle per COPY-pool turn)."""
CELERY_WORKER_CONCURRENCY = 4
"""Task slots per `make run` Celery worker, as docker-compose.celery.yaml's default."""


def celery_workers(env: dict[str, str]) -> int:
    """TAXI_CELERY_WORKERS from ``env`` (0 if unset); exits if not a number."""
    raw = (env.get(WORKERS_SETTING) or "0").strip()
    if not raw.isdigit():
        raise SystemExit(f"{WORKERS_SETTING}={raw!r}: expected a number of Celery workers, e.g. 2")
    return int(raw)


def airflow_env(
    home: Path,
    *,
    api_port: int | None = None,
    parallelism: int | None = None,
    use_dotenv: bool = True,
) -> dict[str, str]:
    """``os.environ`` plus .env plus this project's settings; earlier sources win.

    ``api_port`` None: AIRFLOW__API__PORT from the shell or .env (default 8080), and every URL
    derived from it (AIRFLOW__API__BASE_URL, AIRFLOW__CORE__EXECUTION_API_SERVER_URL) follows
    unless set explicitly too. ``parallelism`` None: the executor's (TAXI_CELERY_WORKERS).
    """
    home = home.resolve()
    from_file = dotenv(PROJECT / ".env") if use_dotenv else {}
    if api_port is None:
        api_port = api_port_from({**from_file, **os.environ})
    if parallelism is None:
        celery = celery_workers({**from_file, **os.environ})
        parallelism = CELERY_PARALLELISM if celery else LOCAL_PARALLELISM
    defaults = _defaults(home, local_secrets(home), api_port, parallelism)
    return _with_user_values(defaults, from_file)


def _defaults(
    home: Path, values: dict[str, str], api_port: int, parallelism: int
) -> dict[str, str]:
    """This project's settings for a local Airflow in ``home``: what the user has not set."""
    return {
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(PROJECT),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Cosmos (taxi_models) would report every DAG run and task to its vendor's endpoint
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__FERNET_KEY": values["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        CONNECT_ARGS: "dev.airflow_settings.SQLITE_CONNECT_ARGS",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        # OpenLineage stays off until a transport is set (AIRFLOW__OPENLINEAGE__TRANSPORT, see
        # README); this only names the extractor that gives the taxi loads their datasets.
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": (
            "include.taxi.orchestration.lineage_extractor.TaxiLoadExtractor"
        ),
        # The extractor reads Variables (which source, which schema): in a forked emitter a
        # Variable the environment does not hold waits on the task's supervisor channel until
        # the 10 s emission timeout kills it, and the START event is lost; a thread asks fine.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": values["jwt_secret"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # the scheduler's log server: 8793 beside the default 8080, elsewhere for other ports
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(
            api_port + 713 if api_port + 713 <= 65535 else api_port - 713
        ),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "NO_PROXY": "*",
    }


def _with_user_values(defaults: dict[str, str], from_file: dict[str, str]) -> dict[str, str]:
    """``os.environ`` first, then .env, then the defaults; the project always on PYTHONPATH
    and this interpreter's bin on PATH."""
    env = dict(os.environ)
    for key, value in {**defaults, **from_file}.items():
        env.setdefault(key, value)
    if "PYTHONPATH" in os.environ and str(PROJECT) not in os.environ["PYTHONPATH"].split(":"):
        env["PYTHONPATH"] = f"{PROJECT}:{os.environ['PYTHONPATH']}"
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    user = {**from_file, **os.environ}
    if not env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite") and not user.get(
        CONNECT_ARGS
    ):
        env.pop(CONNECT_ARGS)  # SQLite's busy timeout is no option of a PostgreSQL driver
    return env
