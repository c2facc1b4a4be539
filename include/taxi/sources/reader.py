"""Which reader a downloaded file gets, by the format its name announces.

The course mirror's csv.gz files and the TLC's parquet files both produce exactly the
contract's schema (``batches.SourceReader``), so a month lands in one table and one parquet
schema whatever its source.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from include.taxi import settings
from include.taxi.contract import Contract
from include.taxi.sources.batches import SourceReader

PARQUET = "parquet"
CSV_GZ = "csv.gz"
CSV = "csv"


def source_format(name: str) -> str:
    """The format a source file name announces: ``parquet``, ``csv.gz`` or ``csv``."""
    if name.endswith(".parquet"):
        return PARQUET
    return CSV_GZ if name.endswith(".gz") else CSV


def split(reader: SourceReader, n: int) -> list[SourceReader]:
    """At most ``n`` readers that together read ``reader``'s file, each its own part: a
    parquet file's runs of row groups. A csv.gz is one gzip stream, read by one reader (split
    it and the decompression would still be one thread's work)."""
    slices = getattr(reader, "slices", None)
    return list(slices(n)) if slices is not None and n > 1 else [reader]


def open_source(
    path: Path,
    contract: Contract,
    month: date | None = None,
    *,
    block_size: int | None = None,
    parallel: bool = False,
    max_csv_bytes: int | None = None,
    max_parquet_rows: int = settings.DEFAULT_MAX_PARQUET_ROWS,
    max_row_group_bytes: int = settings.DEFAULT_MAX_ROW_GROUP_BYTES,
) -> SourceReader:
    """The reader for ``path``'s format (by its name, which the pipeline chose from the source).

    ``block_size`` tunes the CSV reader only (parquet is read a row group at a time);
    ``parallel`` lets the parquet reader decode columns on several threads (the lake path);
    ``max_csv_bytes`` bounds a CSV's decompressed size (a gzip bomb stops there);
    ``max_parquet_rows`` and ``max_row_group_bytes`` what a parquet footer may declare."""
    if source_format(path.name) == PARQUET:
        from include.taxi.sources.parquet import ParquetContractReader

        return ParquetContractReader(
            path,
            contract,
            month,
            decode_threads=parallel,
            max_rows=max_parquet_rows,
            max_row_group_bytes=max_row_group_bytes,
        )
    from include.taxi.sources.csv import BLOCK_SIZE, ContractReader

    if max_csv_bytes is None:
        return ContractReader(path, contract, month, block_size=block_size or BLOCK_SIZE)
    return ContractReader(
        path, contract, month, block_size=block_size or BLOCK_SIZE, max_bytes=max_csv_bytes
    )
