"""What every source reader shares: the protocol the writers consume, the base class that turns
a reader's batches into an Arrow stream, and the helpers the csv and parquet readers both use.

The Postgres and lake writers consume a ``SourceReader``: contract-shaped Arrow batches of one
file, its row count once read, and the contract violation that stopped it (a consumer written
in C++ re-raises it as its own exception type). Kept apart from ``reader`` (which picks a reader
by format) so the readers import it without importing each other.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from include.taxi.contract import SOURCE_MONTH, Contract
from include.taxi.errors import BadSourceFile

CONTRACT_HINT = (
    "Nothing was loaded. If the source really changed, declare it in include/taxi/contract.py"
)


class SourceReader(Protocol):
    path: Path
    file: str
    contract: Contract
    month: date | None
    rows: int
    error: BadSourceFile | None

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def filled(self) -> list[str]: ...

    def record_batch_reader(self) -> pa.RecordBatchReader: ...

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...


class ContractBatches:
    """What the readers share: the contract's schema, their batches as an Arrow stream, and the
    violation that stopped them, kept for consumers written in C++ (which raise their own)."""

    contract: Contract
    error: BadSourceFile | None

    @property
    def schema(self) -> pa.Schema:
        return self.contract.arrow_schema

    @property
    def filled(self) -> list[str]:
        """The schema's columns this file can fill, in schema order; the others are NULL in
        every batch (an era without them). A writer may leave those out (the Postgres COPY
        does: a third fewer fields for an old yellow file). Default: all."""
        return list(self.schema.names)

    def _filled(self, provided: set[str]) -> list[str]:
        """``filled`` from the contract columns a reader's plan provides, plus source_month."""
        return [n for n in self.schema.names if n in provided or n == SOURCE_MONTH]

    def record_batch_reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, iter(self))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches()
        except BadSourceFile as exc:
            self.error = exc
            raise

    def _batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError


def reader_memory_pool() -> pa.MemoryPool:
    """Where the reader's buffers live: jemalloc if this pyarrow has it, else the default.

    The blocks are allocated on Arrow's I/O thread and freed on the consumer's; jemalloc gives
    that memory back sooner than the default mimalloc (-17 MB peak RSS of a Postgres load).
    """
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


def date_scalar(day: date) -> pa.Scalar:
    """A date32 scalar built from its bytes: ``pa.scalar(day)`` would import pandas (~35 MB)."""
    days = struct.pack("<i", (day - date(1970, 1, 1)).days)
    return pa.Array.from_buffers(pa.date32(), 1, [None, pa.py_buffer(days)])[0]
