"""What identifies one published version of a source file, and how two versions compare.

Every target's log stores one (``url`` without credentials, size, ETag, Last-Modified, sha256);
"is this month unchanged at the source?" is ``same_as`` on it, wherever it is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from include.taxi import redact


@dataclass(frozen=True)
class SourceVersion:
    """What identifies one published version of a source file; ``url`` without credentials
    (redact.public_url): it is stored in every target's log."""

    url: str
    bytes: int | None
    etag: str | None
    last_modified: str | None
    sha256: str | None = None

    def same_as(self, bytes_: int | None, etag: str | None, last_modified: str | None) -> bool:
        """Same size and the same ETag (or, without ETags, Last-Modified): what HEAD can tell."""
        if self.bytes is None or self.bytes != bytes_:
            return False
        if self.etag and etag:
            return self.etag == etag
        return bool(self.last_modified and self.last_modified == last_modified)

    def same_file(self, url: str | None) -> bool:
        """``url`` names the same source file (scheme, host and path; login and query aside)."""
        return bool(url) and redact.source(url or "") == redact.source(self.url)

    def older_than(self, last_modified: str | None) -> bool:
        """Published before a version whose Last-Modified is ``last_modified``: the only
        order HTTP gives (an ETag or a size says "different", never "newer"). False when
        either date is missing or unreadable: then nothing can be said."""
        mine, theirs = _http_date(self.last_modified), _http_date(last_modified)
        return mine is not None and theirs is not None and mine < theirs


def _http_date(text: str | None) -> datetime | None:
    """An HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``), aware; None if absent or unreadable."""
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
