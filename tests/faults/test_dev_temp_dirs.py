"""Dev tooling run as root does not reuse what another user planted at its fixed temp paths.

As root, the embedded PostgreSQL keeps a copy of its binaries at /tmp/taxi-pginstall-<hash>
and, when the requested data folder is out of the service user's reach, its cluster at
/var/tmp/taxi-postgres-<hash>. On main an existing folder there was used as found: one made by
another user (writable by all) was chmod-ed, chown-ed and initialised, and a symlink was
followed, so the folder it points at was taken over. Real folders, real uids, real initdb.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev import local_postgres

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fallback paths are root's only")

STRANGER = 54_321
"""A uid that is neither root nor the server's user: someone else on the machine."""


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(requested data folder out of the service user's reach, the shared path it maps to);
    the shared path is removed afterwards, with any server a failed run started in it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    requested = private / "pg"
    shared = local_postgres.data_dir_for(requested)
    assert shared.parent == Path("/var/tmp"), shared
    try:
        yield requested, shared
    finally:
        if (shared / "postmaster.pid").exists():
            pg_ctl = local_postgres._bin_dir() / "pg_ctl"
            local_postgres._run([str(pg_ctl), "-D", str(shared), "-m", "immediate", "stop"], False)
        if shared.is_symlink():
            shared.unlink()
        else:
            shutil.rmtree(shared, ignore_errors=True)


def _owner_and_mode(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_uid, stat.S_IMODE(info.st_mode)


def test_a_cluster_folder_made_by_another_user_is_not_used(planted) -> None:
    requested, shared = planted
    shared.mkdir()
    shared.chmod(0o777)
    os.chown(shared, STRANGER, STRANGER)
    with pytest.raises(RuntimeError, match=rf"{shared} is owned by uid {STRANGER}.*rm -rf"):
        local_postgres.start(requested, local_postgres.free_port(), password="pw", durable=False)
    assert _owner_and_mode(shared) == (STRANGER, 0o777)
    assert list(shared.iterdir()) == []


def test_a_symlink_at_the_cluster_path_is_not_followed(planted, tmp_path: Path) -> None:
    requested, shared = planted
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    shared.symlink_to(victim)
    os.lchown(shared, STRANGER, STRANGER)
    with pytest.raises(RuntimeError, match=rf"{shared} is a symlink"):
        local_postgres.start(requested, local_postgres.free_port(), password="pw", durable=False)
    assert _owner_and_mode(victim) == (0, 0o755)
    assert list(victim.iterdir()) == []


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """A stand-in for the wheel's pginstall folder (a copy is a copy, whatever it holds)."""
    folder = tmp_path / "pginstall"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "postgres").write_text("#!/bin/sh\n")
    return folder


def test_the_binaries_copy_is_made_once_private_then_reused(install: Path, tmp_path: Path):
    copy = tmp_path / "shared" / "taxi-pginstall-x"
    copy.parent.mkdir()
    assert local_postgres.install_copy(install, copy) == copy
    assert _owner_and_mode(copy) == (0, 0o755)
    assert (copy / "bin" / "postgres").read_text() == "#!/bin/sh\n"
    assert local_postgres.install_copy(install, copy) == copy
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no staging left behind


@pytest.mark.parametrize("planted_as", ["stranger", "writable by all", "symlink"])
def test_a_planted_binaries_copy_is_refused(install: Path, tmp_path: Path, planted_as: str):
    copy = tmp_path / "shared" / "taxi-pginstall-x"
    copy.parent.mkdir()
    if planted_as == "symlink":
        copy.symlink_to(install)
    else:
        shutil.copytree(install, copy)
        if planted_as == "stranger":
            subprocess.run(["chown", "-R", f"{STRANGER}:{STRANGER}", str(copy)], check=True)
        else:
            copy.chmod(0o777)
    with pytest.raises(RuntimeError, match="another user may have made it"):
        local_postgres.install_copy(install, copy)
