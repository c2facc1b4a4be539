"""Repository hygiene that CI enforces: lint-clean code and no credentials in the tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from dev.airflow_env import PROJECT

RUFF = str(Path(sys.executable).parent / "ruff")
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
    "service-account key": re.compile(r'"private_key_id"\s*:\s*"[0-9a-f]{20,}"'),
    "AWS key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/[0-9A-Za-z]+"),
    "Fernet key": re.compile(r"FERNET_KEY\s*=\s*[A-Za-z0-9_-]{43}="),
    "password in a URL": re.compile(r"postgres(?:ql)?://[^:/\s]+:(?!<)[^@\s<]{3,}@"),
}


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [PROJECT / line for line in out.splitlines() if line]


def test_ruff_lint_is_clean() -> None:
    result = subprocess.run([RUFF, "check", "."], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_ruff_format_is_clean() -> None:
    result = subprocess.run(
        [RUFF, "format", "--check", "."], cwd=PROJECT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_no_credentials_in_the_repository() -> None:
    found = []
    for path in _tracked_files():
        if not path.is_file() or path.suffix in {".png", ".gz", ".parquet"}:
            continue
        text = path.read_text(errors="ignore")
        for name, pattern in SECRET_PATTERNS.items():
            if pattern.search(text):
                found.append(f"{path.relative_to(PROJECT)}: {name}")
    assert found == []


def test_the_secret_scan_would_catch_a_key() -> None:
    # assembled at run time so that this file itself does not trip the scan
    leaked = (
        "-----BEGIN " + "PRIVATE KEY-----\nMIIE" + "\nAIRFLOW__CORE__FERNET_KEY=" + "a" * 43 + "="
    )
    assert SECRET_PATTERNS["private key"].search(leaked)
    assert SECRET_PATTERNS["Fernet key"].search(leaked)
    assert SECRET_PATTERNS["password in a URL"].search("postgresql://u:" + "hunter2@db/x")
    assert not SECRET_PATTERNS["password in a URL"].search("postgresql://u:<password>@db/x")
