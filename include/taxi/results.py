"""What each load task returns (its XCom): one ``TypedDict`` per kind of load.

Plain dicts on the wire, so XCom stores them as JSON and the UI shows them; typed here so a
reader knows every key a task can return and a checker finds a misspelt one. ``status`` says
what happened to the month; the ``source_*`` keys name the source version a load read.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Required, TypedDict

PostgresStatus = Literal["loaded", "unchanged", "superseded"]
"""``unchanged``: the source and the warehouse still match the last load (or a concurrent run
had just loaded the same file); ``superseded``: the month holds a newer version (kept)."""
LakeStatus = Literal["written", "unchanged", "superseded", "announced"]
"""``announced``: unchanged in the lake but not yet in BigQuery, so its event is sent again."""
BigQueryStatus = Literal["loaded", "unchanged"]
SUPERSEDED: Final = "superseded"
"""A run's status when the target holds a newer version of the month's source (kept)."""


class SourceFacts(TypedDict, total=False):
    """The source version a load read, as its lineage names it."""

    source_bytes: int | None
    source_sha256: str | None
    source_etag: str | None
    source_last_modified: str | None


class Quality(TypedDict, total=False):
    quality: dict[str, Any] | None
    """The month's profile (include/taxi/quality.py)."""
    warnings: list[dict[str, str]]
    """The ``warn`` findings the month was published with."""


class PostgresMonth(SourceFacts, Quality, total=False):
    """``load_trips``: one service-month replaced in Postgres (or left as it was)."""

    service: Required[str]
    month: Required[str]
    url: Required[str]
    source: Required[str]
    status: Required[PostgresStatus]
    rows_in_target: Required[int]
    table: str
    bytes: int
    rows_read: int
    rows_written: int
    seconds: float


class LakeMonth(SourceFacts, Quality, total=False):
    """``write_month``: one service-month written to the lake as parquet (or left as it was)."""

    service: Required[str]
    month: Required[str]
    url: Required[str]
    status: Required[LakeStatus]
    uri: Required[str]
    rows: int | None
    bytes: int
    row_groups: int
    seconds: float


class BigQueryMonth(Quality, total=False):
    """``load_<service>``: one service-month replaced in BigQuery from its lake object."""

    service: Required[str]
    month: Required[str]
    uri: Required[str]
    lake_bytes: Required[int]
    source_sha256: Required[str | None]
    project: Required[str]
    status: Required[BigQueryStatus]
    rows_in_target: Required[int]
    table: str
    rows_loaded: int
    seconds: float


class ZonesLoad(TypedDict, total=False):
    """``load_zones`` / ``write_zones``: the zone lookup replaced whole in one target."""

    url: str
    uri: str
    bytes: int
    rows: int
    table: str
    status: str
    rows_read: int
    rows_written: int
    rows_in_target: int
    rows_loaded: int
    seconds: float
    quality: dict[str, Any] | None
    warnings: list[dict[str, str]]
