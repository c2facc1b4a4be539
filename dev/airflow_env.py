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

from cryptography.fernet import Fernet

PROJECT = Path(__file__).resolve().parent.parent
ADMIN_USER = "admin"


def _secrets(home: Path) -> dict[str, str]:
    path = home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": secrets.token_urlsafe(64),
        "admin_password": secrets.token_urlsafe(12),
    }
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def admin_password(home: Path) -> str:
    """The UI password, also written where Airflow's simple auth manager reads it."""
    password = _secrets(home)["admin_password"]
    passwords = home / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({ADMIN_USER: password}))
    return password


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


def airflow_env(
    home: Path, *, api_port: int = 8080, parallelism: int = 4, use_dotenv: bool = True
) -> dict[str, str]:
    """``os.environ`` plus .env plus this project's settings; earlier sources win."""
    home = home.resolve()
    values = _secrets(home)
    defaults = {
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(PROJECT),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__FERNET_KEY": values["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "dev.airflow_settings.SQLITE_CONNECT_ARGS",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        # OpenLineage stays off until a transport is set (AIRFLOW__OPENLINEAGE__TRANSPORT, see
        # README); this only names the extractor that gives the taxi loads their datasets.
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": (
            "include.taxi.orchestration.lineage_extractor.TaxiLoadExtractor"
        ),
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
    env = dict(os.environ)
    from_file = dotenv(PROJECT / ".env") if use_dotenv else {}
    for key, value in {**defaults, **from_file}.items():
        env.setdefault(key, value)
    if "PYTHONPATH" in os.environ and str(PROJECT) not in os.environ["PYTHONPATH"].split(":"):
        env["PYTHONPATH"] = f"{PROJECT}:{os.environ['PYTHONPATH']}"
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
