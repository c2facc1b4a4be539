"""The docs' Layout section (docs/development.md) and the tree agree: every module of
include/taxi is listed at its place, and everything listed exists."""

from __future__ import annotations

import re

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
