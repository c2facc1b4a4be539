"""Months loaded by the pipeline itself (source files served over HTTP), then dbt over them."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from dev.synthetic import write_all_zones as _write_all_zones
from dev.synthetic import write_month


def served_folder(source_server: tuple[str, Path], name: str) -> tuple[str, Path]:
    """A source of its own under the session's web server, so its zone lookup (every id) does
    not replace the 7-zone one other tests serve from the root."""
    base, root = source_server
    (root / name).mkdir(exist_ok=True)
    return f"{base}/{name}", root / name


def write_all_zones(root: Path) -> None:
    """The zone lookup with every id 1..265 the synthetic trips use (dev.synthetic's has 7)."""
    _write_all_zones(root / "misc" / "taxi_zone_lookup.csv")


def write_source_month(root: Path, service: str, month: str, rows: int, seed: int = 0) -> Path:
    """One csv.gz where the mirror keeps it: {service}/{service}_tripdata_{month}.csv.gz."""
    path = root / service / f"{service}_tripdata_{month}.csv.gz"
    write_month(path, service, date.fromisoformat(f"{month}-01"), rows, seed=seed)
    return path


def break_zone_id(path: Path, column: int, zone_id: int = 999) -> None:
    """Give the first trip of a csv.gz a zone id the lookup does not have."""
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    cells = lines[1].split(",")
    cells[column] = str(zone_id)
    lines[1] = ",".join(cells)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def postgres_profile_env(url: str, schema: str) -> dict[str, str]:
    """The TAXI_PG_* settings transform/profiles.yml reads, for a PostgreSQL URL."""
    parts = urlsplit(url)
    return {
        "TAXI_PG_HOST": parts.hostname or "127.0.0.1",
        "TAXI_PG_PORT": str(parts.port or 5432),
        "TAXI_PG_USER": parts.username or "postgres",
        "TAXI_PG_PASSWORD": parts.password or "",
        "TAXI_PG_DATABASE": parts.path.lstrip("/") or "postgres",
        "TAXI_PG_SCHEMA": schema,
    }


def month_loader(
    source_server: tuple[str, Path], name: str, url: str, schema: str
) -> Callable[..., Path]:
    """A served folder of its own with every zone, the zones loaded into ``schema``; returns
    ``load(service, month, rows, seed=0, edit=None)``: writes the month's csv.gz (``edit`` may
    change it first) and loads it with the pipeline's own month_to_postgres (forced)."""
    from include.taxi.months import Month
    from include.taxi.postgres.load import month_to_postgres, zones_to_postgres

    base, root = served_folder(source_server, name)
    write_all_zones(root)
    zones_to_postgres(source_base=base, conninfo=url, schema=schema)

    def load(
        service: str,
        month: str,
        rows: int,
        seed: int = 0,
        edit: Callable[[Path], None] | None = None,
    ) -> Path:
        path = write_source_month(root, service, month, rows, seed)
        if edit is not None:
            edit(path)
        month_to_postgres(
            service, Month.parse(month), source_base=base, conninfo=url, schema=schema, force=True
        )
        return path

    return load
