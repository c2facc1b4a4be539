"""DuckDB views over a folder lake: the laptop analytics path, no warehouse needed.

A view per raw table the lake holds (``yellow_tripdata`` ... ``taxi_zone_lookup``), named as
in Postgres and BigQuery, so a query written for the warehouse runs here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from psycopg import sql

from include.taxi import settings
from include.taxi.contract import SERVICES
from include.taxi.lake.store import ZONES_OBJECT
from include.taxi.sql import statements


def lake_folder(url: str | None = None) -> Path:
    """The lake folder: ``url`` (a path or file:// URL), else taxi_lake_url's, else .data/lake.

    A GCS lake is refused: these views read local files."""
    raw = url or os.environ.get("AIRFLOW_VAR_" + settings.VAR_LAKE_URL.upper()) or ""
    if not raw:
        return settings.DEFAULT_LAKE
    if raw.startswith("gs://"):
        raise ValueError(f"{raw} is a GCS lake: make duckdb reads a folder (LAKE=/path/to/lake)")
    return Path(raw.removeprefix("file://"))


def view_globs(lake: Path) -> dict[str, str]:
    """Each raw table the lake holds files for, and the glob of its files."""
    globs = {f"{s}_tripdata": str(lake / s / "*" / f"{s}_tripdata_*.parquet") for s in SERVICES}
    globs["taxi_zone_lookup"] = str(lake / ZONES_OBJECT)
    return {
        name: pattern
        for name, pattern in globs.items()
        if list(lake.glob(_relative(lake, pattern)))
    }


def _relative(lake: Path, pattern: str) -> str:
    return str(Path(pattern).relative_to(lake))


def create_views(con: Any, lake: Path) -> list[str]:
    """Create the views on a DuckDB connection; returns their names."""
    globs = view_globs(lake)
    for name, pattern in globs.items():
        for statement in statements(
            "duckdb/lake_view.sql", view=sql.Identifier(name), files=sql.Literal(pattern)
        ):
            con.execute(statement)
    return sorted(globs)
