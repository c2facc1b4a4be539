"""The errors a user can act on, each carrying what happened, where, and what to do.

Tasks turn ``SourceNotPublished`` into a skip and ``BadSourceFile`` into a failure without
retries (retrying cannot fix a bad file); anything else is treated as transient and retried.
"""

from __future__ import annotations

from include.taxi import redact


class SourceNotPublished(Exception):
    """The source answered 404 (or cannot have the month): it is not (yet) published there.

    ``hint`` says where else the month may be (e.g. the other source, see sources/catalogue).
    """

    def __init__(self, url: str, *, answer: str = "answered 404", hint: str = "") -> None:
        message = f"not published: {redact.source(url)} {answer}; nothing was loaded"
        if hint:
            message += f". {hint}"
        super().__init__(message)
        self.url = redact.public_url(url)
        self.hint = hint


class BadSourceFile(Exception):
    """The file breaks the schema contract or is not the file we asked for."""

    def __init__(
        self,
        file: str,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        hint: str = "",
        row_group: int | None = None,
        row: int | None = None,
    ) -> None:
        where = file
        if line is not None:
            where += f", line {line}"
        if row_group is not None:
            where += f", row group {row_group}"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column}"
        message = f"bad source file {where}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column
        self.problem = problem
        self.row_group = row_group
        self.row = row


class IncompleteDownload(Exception):
    """The connection ended before the announced size arrived; a retry may succeed."""


class LoadMismatch(Exception):
    """Rows read, written and present after a load disagree; nothing was committed."""


class LakeSchemaMismatch(Exception):
    """A parquet file in the lake does not have the declared schema; BigQuery would reject it
    (or, worse, coerce it), so it is refused before loading."""


class NotInLake(Exception):
    """The month has no parquet object in the lake yet: nothing to load into the warehouse."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"not in the lake: {uri} does not exist; run taxi_to_lake for this month first"
        )
        self.uri = uri


class LockWaitTimeout(Exception):
    """A month's swap could not get its table lock in time (another session holds the table);
    nothing was changed, and a retry later can succeed."""


class LakeObjectChanged(Exception):
    """The lake object changed between two steps that must see the same version of it (a
    concurrent write); nothing was replaced, and a retry works on the new version."""


class InsufficientSpace(Exception):
    """A folder lacks the room a download or a load needs; nothing was written. Retried (space
    may be freed), and the message says where and how much."""


class UnsafeRedirect(ValueError):
    """The source redirected off https, or to a host not allowed: refused without retries."""
