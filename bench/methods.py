"""The bench's shared types: the setup a run builds, a method it times, the samples it keeps.

``run`` builds and times them, ``report`` reads them: both import this module, not each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import postgres
from bench.harness import Measured
from bench.sources import Source


@dataclass
class Setup:
    """Everything a method needs to build its command and reset its state."""

    url: str
    files: dict[str, Path]
    sources: dict[str, Source]
    work: Path
    psql: postgres.Psql | None
    env: dict[str, str]
    parse_env: dict[str, str]

    def worker(self, method: str, result: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "bench.worker", method, "--result", str(result), *args]

    def source_args(self, key: str) -> list[str]:
        src = self.sources[key]
        return ["--file", str(self.files[key]), "--service", src.service, "--month", str(src.month)]


def _no_reset(_: Setup) -> None:
    """Methods that write no table start from nothing to reset."""


def _json_result(_: Measured, result: Path) -> dict[str, Any]:
    return json.loads(result.read_text())


@dataclass(frozen=True)
class Method:
    """One way of moving one source file, run as a child process per repeat."""

    key: str
    label: str
    group: str
    source: str
    argv: Callable[[Setup, Path], list[str]]
    repeats: int
    prepare: Callable[[Setup], object] = _no_reset
    parse_result: Callable[[Measured, Path], dict[str, Any]] = _json_result
    env: str = "env"
    """Which of Setup's environments the child gets: ``env`` or ``parse_env`` (Airflow's)."""
    notes: str = ""


@dataclass
class Outcome:
    method: Method
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
