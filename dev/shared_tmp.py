"""Folders the dev tooling keeps at predictable paths in shared temp folders (/tmp, /var/tmp).

Run as root, the embedded PostgreSQL needs a copy of its binaries and a data directory that
its service user can reach; they live at fixed names under the system's temp folders so that
the next run finds them. Anyone can create a name there first (a folder of their own, one
writable by all, or a symlink to somewhere else): reusing it would run their binaries, or
chmod/chown what the symlink points at, as root. So an existing folder is used only if it is a
real folder (not a symlink), owned by an expected user and writable by no one else; a missing
one is created atomically with mode 0700.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path


class UnsafeTempDir(RuntimeError):
    """A folder at one of the tooling's fixed temp paths that it did not make for itself."""


def check_owned(path: Path, owners: Collection[int]) -> Path:
    """``path`` if it is a folder (not a symlink) owned by one of ``owners`` that no group or
    other user can write; else UnsafeTempDir naming what is wrong and what to do."""
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = f"is a symlink (to {os.readlink(path)})"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif info.st_uid not in owners:
        problem = f"is owned by uid {info.st_uid}, not by uid {' or '.join(map(str, owners))}"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by others (mode {stat.filemode(info.st_mode)})"
    if problem:
        raise UnsafeTempDir(
            f"{path} {problem}: another user may have made it, so it is not used. Check it, "
            f"remove it (rm -rf {path}) and run again"
        )
    return path


def private_dir(path: Path, owners: Collection[int]) -> Path:
    """``path`` created now with mode 0700, or an existing one that passes ``check_owned``."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return check_owned(path, owners)
    return path
