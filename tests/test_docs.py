"""The docs build strictly and the README stays a page a newcomer finishes.

`mkdocs build --strict` fails on a link to a missing page, file or anchor and on a page left
out of the nav (mkdocs.yml's `validation`), so a broken link fails CI here, not in a reader's
browser. MkDocs never reads the README beyond its intro, so its links are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dev.airflow_env import PROJECT

README = PROJECT / "README.md"
README_MAX_LINES = 250
# [text](target) and ![alt](target), the target up to a space, ")" or "#"
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s#]+)[^)]*\)")


def test_docs_build_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = [line for line in build.stderr.splitlines() if not line.startswith("INFO")]
    assert build.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems)
    assert (tmp_path / "index.html").is_file()


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move the detail to a page "
        "under docs/ and link it"
    )


def test_readme_links_resolve() -> None:
    """Relative links and images, as GitHub resolves them from the repository root."""
    targets = [m["target"] for m in LINK.finditer(README.read_text())]
    relative = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert any(t.startswith("docs/") for t in relative), "the README links no docs page"
    missing = sorted({t for t in relative if not (PROJECT / t).exists()})
    assert missing == [], f"README.md links what is not there: {missing}"


def test_readme_names_every_dag_and_make_target() -> None:
    """The README's DAG table and make-target table keep up with dags/ and the Makefile."""
    text = README.read_text()
    dags_section = text.split("## The DAGs", 1)[1].split("\n## ", 1)[0]
    dag_ids = sorted(p.stem for p in (PROJECT / "dags").glob("*.py") if p.stem != "__init__")
    assert dag_ids, "no DAG files found"
    assert [d for d in dag_ids if f"`{d}`" not in dags_section] == []
    phony = re.search(r"^\.PHONY:(.*)$", (PROJECT / "Makefile").read_text(), re.MULTILINE)
    assert phony is not None
    unnamed = [t for t in phony[1].split() if not re.search(rf"`make {re.escape(t)}[` ]", text)]
    assert unnamed == [], f"make targets the README does not name: {unnamed}"


def test_every_dag_has_its_section_in_the_docs() -> None:
    headings = re.findall(r"^## `(\w+)`$", (PROJECT / "docs" / "dags.md").read_text(), re.M)
    dag_ids = sorted(p.stem for p in (PROJECT / "dags").glob("*.py") if p.stem != "__init__")
    assert sorted(headings) == dag_ids
