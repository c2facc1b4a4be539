"""Local secrets are private from their first byte, and the embedded PostgreSQL wants a password.

A secret file chmod-ed after it was written is readable by everyone in between (under a
permissive umask); a ``trust`` cluster on 127.0.0.1 lets any local user in as the superuser
(``COPY ... TO PROGRAM`` runs commands as the developer). Real files, a real cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dev import local_postgres
from dev.airflow_env import admin_password, local_secrets

_WATCHED: list[Path] = []
_SEEN: list[tuple[str, str, int]] = []


def _audit(event: str, args: tuple) -> None:
    """Before every chmod, rename and open: the mode of each watched secret file, if it exists
    (an audit hook sees the file *between* its write and any chmod that follows)."""
    if not _WATCHED or event not in ("os.chmod", "os.rename", "open"):
        return
    paths = list(_WATCHED)
    if event == "os.rename":
        paths.append(Path(os.fsdecode(args[0])))
    for path in paths:
        try:
            info = path.lstat()
        except (FileNotFoundError, TypeError, ValueError):
            continue
        if info.st_size:  # a secret is in it
            _SEEN.append((event, path.name, stat.S_IMODE(info.st_mode)))


sys.addaudithook(_audit)  # hooks cannot be removed; it does nothing unless _WATCHED is set


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: the files' own creation modes are all that protect them."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_secret_files_are_0600_from_their_first_byte(tmp_path, open_umask):
    home = tmp_path / "airflow-home"
    _WATCHED[:] = [home / "secrets.json", home / "simple_auth_manager_passwords.json.generated"]
    _SEEN.clear()
    try:
        values = local_secrets(home)
        password = admin_password(home)
        (home / "secrets.json").write_text(json.dumps({"fernet_key": values["fernet_key"]}))
        (home / "secrets.json").chmod(0o600)
        upgraded = local_secrets(home)  # an older secrets.json gains the missing secrets
    finally:
        watched, _WATCHED[:] = list(_WATCHED), []
    for path in watched:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    exposed = [seen for seen in _SEEN if seen[2] & 0o077]
    assert exposed == [], "a secret was readable by others while it was being written"
    assert upgraded["fernet_key"] == values["fernet_key"]
    assert set(upgraded) >= {"jwt_secret", "admin_password"}
    assert "postgres_password" not in upgraded, "the cluster's password lives with its data"
    assert password == values["admin_password"]


def test_the_embedded_postgres_refuses_a_connection_without_its_password(tmp_path):
    data, port = tmp_path / "pg", local_postgres.free_port()
    password = secrets.token_urlsafe(16)
    url = local_postgres.start(data, port, password=password, durable=False)
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        for wrong in ("", "not-the-password"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(
                    host="127.0.0.1",
                    port=port,
                    user="postgres",
                    password=wrong,
                    dbname="postgres",
                    connect_timeout=5,
                )
        hba = (local_postgres.data_dir_for(data) / "pg_hba.conf").read_text()
        rules = [line.split() for line in hba.splitlines() if line.strip() and line[0] != "#"]
        assert rules, hba
        assert all(rule[-1] == "scram-sha-256" for rule in rules), rules
    finally:
        local_postgres.stop(data)


def test_a_trust_cluster_of_an_older_version_is_switched_to_the_password(tmp_path):
    """``.data/postgres`` created before this change (``initdb --auth=trust``) is not left open."""
    data, port = tmp_path / "pg", local_postgres.free_port()
    password = secrets.token_urlsafe(16)
    local_postgres.start(data, port, password=password, durable=False)
    try:
        hba = local_postgres.data_dir_for(data) / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))  # as initdb --auth=trust
        local_postgres._run(
            [str(local_postgres._bin_dir() / "pg_ctl"), "-D", str(hba.parent), "reload"]
        )
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
        url = local_postgres.start(data, port, password=password, durable=False)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        local_postgres.stop(data)


def test_the_password_lives_with_the_cluster_and_any_home_finds_it(tmp_path, open_umask):
    """Created with the cluster (0600 from its first byte), next to its data: a start that
    brings no password (another Airflow home, `make month`) uses it; removing the data removes
    it. A cluster an older version created takes the password its home kept."""
    data, port = tmp_path / "pg", local_postgres.free_port()
    stored = local_postgres.data_dir_for(data) / local_postgres.PASSWORD_FILE
    _WATCHED[:] = [stored]
    _SEEN.clear()
    try:
        url = local_postgres.start(data, port, durable=False)
    finally:
        watched, _WATCHED[:] = list(_WATCHED), []
    try:
        assert [seen for seen in _SEEN if seen[2] & 0o077] == []
        assert stat.S_IMODE(watched[0].stat().st_mode) == 0o600
        password = local_postgres.stored_password(data)
        assert password
        assert password in url
        local_postgres.stop(data)
        assert local_postgres.start(data, port, durable=False) == url  # no password brought
        stored.unlink()  # as a cluster of an older version: its password was in a home
        with pytest.raises(RuntimeError, match="created by an older version"):
            local_postgres.start(data, port, durable=False)
        local_postgres.adopt_password(data, password)
        assert local_postgres.start(data, port, durable=False) == url
    finally:
        local_postgres.stop(data)
