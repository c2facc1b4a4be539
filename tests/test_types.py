"""The type checker runs clean over the project (part of `make test`, and of `make lint`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dev.airflow_env import PROJECT


@pytest.mark.typecheck
def test_mypy_is_clean() -> None:
    """mypy, strict as configured in pyproject.toml (unused ``type: ignore`` comments fail)."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout
