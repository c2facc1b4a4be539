"""The docs' Layout section (docs/development.md) and the tree agree: every module of
include/taxi is listed at its place, and everything listed exists."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from dev.airflow_env import PROJECT

PACKAGE = PROJECT / "include" / "taxi"
LAYOUT_PAGE = PROJECT / "docs" / "development.md"


def _listed() -> set[str]:
    """Paths under include/taxi/ named in the Layout block (indentation gives the folder)."""
    text = LAYOUT_PAGE.read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed, folders = set(), {}
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if not match or match.group(2).startswith(("#", "`")):
            continue
        depth, name = len(match.group(1)), match.group(2)
        parent = next((folders[d] for d in sorted(folders, reverse=True) if d < depth), "")
        folders = {d: f for d, f in folders.items() if d < depth}
        path = parent + name
        if name.endswith("/"):
            folders[depth] = path
        listed.add(path.rstrip("/"))
    return {p.removeprefix("include/taxi/") for p in listed if p.startswith("include/taxi/")}


def _modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(PACKAGE)
        found.add(str(relative))
        found.update(str(parent) for parent in relative.parents if str(parent) != ".")
    return found


def test_every_module_is_in_the_docs_layout() -> None:
    missing = sorted(_modules() - _listed())
    assert missing == [], f"add these to the Layout section of docs/development.md: {missing}"


def test_everything_in_the_docs_layout_exists() -> None:
    stale = sorted(_listed() - _modules())
    assert stale == [], f"docs/development.md's Layout section names what is not there: {stale}"


TOP_LAYER = (
    "include.taxi.orchestration",
    "include.taxi.transform",
    "include.taxi.settings",
    "include.taxi.results",
    "include.taxi.status",
)
"""What a DAG file or a plugin may import from the project: the thin Airflow layer, the
transform layer (Cosmos's task group), the settings (names and defaults), the types of the
tasks' results and the status modules (the Taxi months page)."""


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("include", "dev", "bench", "tests")}


def test_dags_and_plugins_import_only_the_top_layer() -> None:
    """import-linter checks packages; dags/ and plugins/ are folders of files Airflow loads, so
    this checks them: nothing below orchestration/status, no tool and no test code."""
    files = sorted((PROJECT / "dags").glob("*.py")) + sorted((PROJECT / "plugins").glob("*.py"))
    assert len(files) >= 5
    wrong = {
        f"{path.relative_to(PROJECT)}: {name}"
        for path in files
        for name in _project_imports(path)
        if not name.startswith(TOP_LAYER)
    }
    assert not wrong, f"imports below the top layer: {sorted(wrong)}"


MAX_FUNCTION_LINES = 60
"""What a reader holds in mind at once (ruff's statement and branch counts miss long calls)."""


def _functions(folder: str) -> Iterator[tuple[str, int]]:
    """``path:name`` and the length in lines of every function under ``folder``."""
    for path in sorted((PROJECT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                yield f"{path.relative_to(PROJECT)}:{node.name}", lines


def test_no_function_is_longer_than_a_screen() -> None:
    long = {
        f"{name} ({lines} lines)"
        for folder in ("include", "dags", "plugins", "dev", "bench")
        for name, lines in _functions(folder)
        if lines > MAX_FUNCTION_LINES
    }
    assert not long, f"over {MAX_FUNCTION_LINES} lines: {sorted(long)}"
