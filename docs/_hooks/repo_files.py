"""MkDocs hook: a docs page links a repository file outside docs/ the way GitHub resolves it
(`../bench/results/latest.png`), so the page reads right in both places. The site gets the
file under `repo/` (a Markdown file becomes a page, anything else is copied) and the link is
pointed there; a link to a file that does not exist is left alone, for the strict build to
refuse."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

# ](target) or ](target "title"), for links and images alike; the target leaves docs/
LINK = re.compile(r"\]\((?P<target>\.\./[^)\s#]+)(?P<rest>[^)]*)\)")
SITE_FOLDER = "repo"


def _repo_path(page_uri: str, target: str, docs_dir: Path) -> str | None:
    """The target as a path from the repository root, if it leaves docs/ and exists."""
    from_docs = posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), target))
    if not from_docs.startswith("../"):
        return None
    path = posixpath.normpath(posixpath.join(docs_dir.name, from_docs))
    if path.startswith("../") or not (docs_dir.parent / path).is_file():
        return None
    return path


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    docs_dir = Path(config.docs_dir)
    wanted: set[str] = set()
    for file in files.documentation_pages():
        for match in LINK.finditer(file.content_string):
            path = _repo_path(file.src_uri, match["target"], docs_dir)
            if path is not None:
                wanted.add(path)
    for path in sorted(wanted):
        files.append(
            File.generated(
                config,
                f"{SITE_FOLDER}/{path}",
                abs_src_path=str(docs_dir.parent / path),
                inclusion=InclusionLevel.NOT_IN_NAV,
            )
        )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: Any) -> str:
    docs_dir = Path(config.docs_dir)

    def point_into_site(match: re.Match[str]) -> str:
        path = _repo_path(page.file.src_uri, match["target"], docs_dir)
        if path is None:
            return match[0]
        here = posixpath.dirname(page.file.src_uri) or "."
        return f"]({posixpath.relpath(f'{SITE_FOLDER}/{path}', here)}{match['rest']})"

    return LINK.sub(point_into_site, markdown)
