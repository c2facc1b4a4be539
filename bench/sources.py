"""The source files the benchmark loads: synthetic TLC months, generated once and cached.

Generating a full yellow month takes ~35 s of Python, so files are kept under ``bench/data/``
(gitignored), named by service, row count and seed: the same name always holds the same bytes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dev.synthetic import write_month

MONTH = date(2021, 1, 1)
YELLOW_MONTH_ROWS = 1_369_765
"""Rows of the real yellow_tripdata_2021-01.csv.gz."""
GREEN_MONTH_ROWS = 76_518
"""Rows of the real green_tripdata_2021-01.csv.gz."""


@dataclass(frozen=True)
class Source:
    """One benchmark input: which service and month, how many rows, and its cache key."""

    key: str
    service: str
    rows: int
    seed: int
    month: date = MONTH

    @property
    def filename(self) -> str:
        return f"{self.service}_{self.month:%Y-%m}_{self.rows}rows_seed{self.seed}.csv.gz"


def sources(quick: bool) -> dict[str, Source]:
    """The yellow month, the same month 4× as long (memory flatness) and a green month."""
    yellow = 20_000 if quick else YELLOW_MONTH_ROWS
    green = 5_000 if quick else GREEN_MONTH_ROWS
    return {
        s.key: s
        for s in (
            Source("yellow_1x", "yellow", yellow, seed=1),
            Source("yellow_4x", "yellow", 4 * yellow, seed=4),
            Source("green_1x", "green", green, seed=1),
        )
    }


def ensure(source: Source, data_dir: Path) -> Path:
    """The cached file of ``source``, generating it first if missing (written aside, renamed)."""
    path = data_dir / source.filename
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    print(f"generating {path.name} ({source.rows:,} rows) ...", flush=True)
    started = time.monotonic()
    write_month(partial, source.service, source.month, source.rows, seed=source.seed)
    partial.rename(path)
    print(f"  done in {time.monotonic() - started:.1f} s", flush=True)
    return path
