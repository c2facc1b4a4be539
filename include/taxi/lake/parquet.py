"""Write a source file's contract-shaped batches to one parquet file, in bounded memory.

Every file of a service gets the same Arrow schema (the contract's), whatever the month's
drift, so BigQuery and DuckDB see one table shape. Choices, for warehouse readers:

- zstd: about the speed of snappy here and ~10% smaller (make bench); BigQuery,
  DuckDB, Spark and pandas all read it.
- row groups of ``ROW_GROUP_ROWS`` rows: big enough for good column compression and few
  footer entries, small enough that DuckDB and BigQuery split a month across workers and that
  the writer's buffer stays a few tens of MB.
- timestamps in microseconds, no time zone (the TLC times are New York wall-clock times).

The file is written under a temporary name by the caller and only then put in the lake, so a
reader never sees half a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from include.taxi.errors import BadSourceFile, LoadMismatch
from include.taxi.quality import Profile, findings_json, lake_metadata
from include.taxi.sources.batches import SourceReader
from include.taxi.sources.read_ahead import read_ahead

COMPRESSION = "zstd"
ROW_GROUP_ROWS = 128 * 1024  # as DuckDB's 122,880; 256k: +110 MB peak, noisy (make bench)
ROWS_KEY = "taxi.rows"
READ_BLOCK_SIZE = 1 << 20
"""The lake path reads 1 MiB blocks, not the reader's default 256 KiB: -25% CPU per month (a
parquet write has a cost per batch), for ~30 MB more peak memory (make bench)."""
READ_AHEAD_BATCHES = 16
"""Batches parsed ahead while a row group is written: ~160k yellow rows, a row group and then
some, so the parser never waits for the writer."""


@dataclass(frozen=True)
class ParquetFile:
    path: Path
    rows: int
    bytes: int
    row_groups: int
    quality: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


def _write_row_groups(
    writer: pq.ParquetWriter, reader: SourceReader, profile: Profile, row_group_rows: int
) -> None:
    """The reader's batches, profiled on the read-ahead thread, as row groups of exactly
    ``row_group_rows`` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # a reader with bigger batches (parquet) says how many to hold ahead
    depth = getattr(reader, "read_ahead_batches", READ_AHEAD_BATCHES)
    for batch in read_ahead(profile.observe(reader), depth):
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= row_group_rows:
            table = pa.Table.from_batches(pending, schema=reader.schema)
            writer.write_table(table.slice(0, row_group_rows), row_group_rows)
            rest = table.slice(row_group_rows)
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if pending_rows:
        writer.write_table(pa.Table.from_batches(pending, schema=reader.schema), row_group_rows)


def write_parquet(
    reader: SourceReader,
    path: Path,
    *,
    metadata: dict[str, str] | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    profile: Profile | None = None,
) -> ParquetFile:
    """Stream ``reader`` into ``path``; the row count of the footer must equal rows read.

    ``metadata`` goes into the footer with the row count, so the file says what it holds.
    The batches are profiled on the read-ahead thread (``profile``, a fresh one if not given);
    a ``fail`` rule raises ``QualityFailed`` before the file is finished, so it never reaches
    the lake; the profile and the warnings go into the footer (``taxi.quality``,
    ``taxi.warnings``)."""
    profile = profile or Profile(reader.contract, reader.month)
    findings = []
    with pq.ParquetWriter(
        path,
        reader.schema,
        compression=COMPRESSION,
        coerce_timestamps="us",
        write_statistics=True,
    ) as writer:
        try:
            _write_row_groups(writer, reader, profile, row_group_rows)
            findings = profile.check(reader.file)
            writer.add_key_value_metadata(
                {**(metadata or {}), ROWS_KEY: str(reader.rows), **lake_metadata(profile, findings)}
            )
        except BadSourceFile:
            raise
        except (pa.ArrowException, OSError) as exc:
            raise reader.error or exc from None
    meta = pq.read_metadata(path)
    if meta.num_rows != reader.rows:
        raise LoadMismatch(
            f"{path.name}: read {reader.rows} rows from {reader.file} but the parquet footer "
            f"says {meta.num_rows}; nothing was put in the lake"
        )
    return ParquetFile(
        path,
        meta.num_rows,
        path.stat().st_size,
        meta.num_row_groups,
        profile.as_dict(),
        findings_json(findings),
    )
