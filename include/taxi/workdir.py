"""Private temp directories for one service-month's work, and the cleanup of killed ones.

A task killed by SIGKILL (OOM, a lost worker, a timeout) never runs its ``finally``: its temp
directory (the downloaded csv.gz, the parquet file: hundreds of MB for a big month) stays in
/tmp forever. Each directory's name says which month and which process it belongs to, so
the next run of the same month removes those whose process is gone before it starts.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from include.taxi.months import Month

log = logging.getLogger(__name__)

STALE_SECONDS = 3600.0
"""A temp file or directory older than this belongs to a killed run (a month takes minutes)."""


def is_stale(path: Path, pid: str) -> bool:
    """Left by a dead process: its ``pid`` (from the name) is gone on this host; a name with no
    pid counts as stale once older than ``STALE_SECONDS``. (A folder lake shared by several
    hosts: another host's live temp file can look stale here; removing it makes that put fail
    and be retried, it never damages the object.)"""
    if pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False
    try:
        return time.time() - path.stat().st_mtime >= STALE_SECONDS
    except FileNotFoundError:
        return False


def _prefix(kind: str, service: str, month: Month | None) -> str:
    return f"taxi-{kind}-{service}-{month or 'all'}-"


def remove_stale(
    kind: str, service: str, month: Month | None, parent: str | None = None
) -> list[Path]:
    """Temp directories of this month left by processes that are gone."""
    root = Path(parent or tempfile.gettempdir())
    prefix = _prefix(kind, service, month)
    removed = []
    for path in root.glob(f"{prefix}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if path.is_dir() and is_stale(path, pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d temp dir(s) of a killed run: %s", len(removed), removed)
    return removed


@contextmanager
def month_workdir(
    kind: str, service: str, month: Month | None, parent: str | None = None
) -> Iterator[str]:
    """A private temp directory for this month's work (``month`` None: a whole-table load, the
    zones), after removing a killed run's."""
    remove_stale(kind, service, month, parent)
    prefix = f"{_prefix(kind, service, month)}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as tmp:
        yield tmp
