"""Stream a source CSV (gzip or plain) into Arrow batches that obey the contract.

The file is parsed block by block with the contract's types, so memory stays flat however
large the month is, and nothing is inferred from the data. Integer columns are read as text
and cast to int64 in C++ (exact beyond 2**53, where the float64 parse of earlier versions
rounded); the source writes the same column as ``1`` in one month and ``1.0`` in another, so a
column whose cast fails goes through float64 (exact below 2**53; beyond, its ``.0`` is stripped
from the text); a fractional value is an error, not a truncation.

Hostile or broken files fail at once with file, line and column, in bounded memory: a line
longer than the block size (Arrow cannot parse it, and Python would read it whole) is reported
as such after reading at most one block of it; a quote left open names its column; a NUL byte in
a text field (PostgreSQL text cannot hold one) is refused for every target alike; and the
decompressed size is capped (``max_bytes``: a gzip bomb stops at the cap, not at a full disk).
Values quoted in messages are shortened and stripped of control characters.

Decompression is ISA-L's (``isal``): ~3× zlib's speed (0.23 s instead of 0.65 s for a yellow
month here).

When Arrow rejects a value it does not say on which line; a second, slow pass over the file
finds the first offending line so the error names file, line, column and value. That pass only
runs on the error path, reads no further than the bytes the fast pass decompressed before it
failed (so never past ``max_bytes``: a bomb whose bad value the pass misses is not scanned to
the task's timeout), and accepts only the text Arrow accepts (Python's ``int()`` and
``float()`` take ``1_000``, `` 1`` or Unicode digits; Arrow does not).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from isal import igzip

from include.taxi import settings
from include.taxi.contract import INT, TEXT, TIMESTAMP, Contract
from include.taxi.errors import BadSourceFile
from include.taxi.redact import shown
from include.taxi.sources.batches import (
    CONTRACT_HINT,
    ContractBatches,
    date_scalar,
    reader_memory_pool,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOCK_SIZE = 256 << 10
"""Bytes of CSV per block (~2,500 yellow rows). Arrow's streaming reader decompresses up to 32
blocks ahead on its I/O thread, so this sets most of the reader's memory: ~8 MiB in flight
here, ~32 MiB at 1 MiB blocks (-55 MB peak RSS for a load, measured by `make bench`), at no
measurable cost in rows/s."""


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    if _is_gzip(path):
        return igzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("rt", encoding="utf-8", newline="")


class _LineTooLong(Exception):
    """A line did not end within the reader's limit; carries what was read of it."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"a line longer than {len(prefix)} characters")
        self.prefix = prefix


def _lines(f: io.TextIOBase, limit: int) -> Iterator[str]:
    """The file's lines, never reading more than ``limit`` characters of one into memory."""
    while line := f.readline(limit + 1):
        if len(line) > limit:
            raise _LineTooLong(line[:limit])
        yield line


def _field_index(line: str, stop: int | None = None) -> tuple[int, bool]:
    """Which field ``line[:stop]`` ends in, and whether a quote is open there.

    Arrow's rules: a ``"`` opening a field quotes it, ``""`` inside is one quote. Only run on
    the error path (a Python loop per character)."""
    field, quoted, at_start, closed = 0, False, True, False
    for char in line[:stop]:
        if quoted:
            if char == '"':
                quoted, closed = False, True
            continue
        if char == '"' and (at_start or closed):
            quoted, closed, at_start = True, False, False
            continue
        closed = False
        if char == ",":
            field, at_start = field + 1, True
        else:
            at_start = False
    return field, quoted


def read_header(path: Path, limit: int = BLOCK_SIZE) -> list[str]:
    """The header row, lower-cased and stripped (also of a UTF-8 byte-order mark)."""
    try:
        with _open_text(path) as f:
            first = next(_lines(f, limit), "")
    except _LineTooLong:
        raise BadSourceFile(
            path.name,
            f"the first line is longer than {limit:,} characters: not a CSV header",
            line=1,
            hint="Check the source URL",
        ) from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BadSourceFile(path.name, f"cannot read the header ({exc})") from None
    if not first.strip():
        raise BadSourceFile(path.name, "the file is empty (no header row)")
    return [h.strip().lstrip("\ufeff").lower() for h in next(csv.reader([first]))]


def check_header(header: list[str], contract: Contract, file: str) -> None:
    """Every column is declared, none twice, and every required one is there."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise BadSourceFile(file, "the header names it twice", column=name, line=1)
        seen.add(name)
    unknown = [h for h in header if contract.column(h) is None]
    if unknown:
        raise BadSourceFile(
            file,
            f"unknown column(s) {', '.join(unknown)}: the {contract.name} contract does not "
            "declare them",
            line=1,
            hint=CONTRACT_HINT,
        )
    missing = [name for name in contract.required if name not in seen]
    if missing:
        raise BadSourceFile(
            file,
            f"required column(s) {', '.join(missing)} missing from the header",
            line=1,
            hint=CONTRACT_HINT,
        )


def _parse_type(type_: pa.DataType) -> pa.DataType:
    return pa.string() if type_ == INT else type_


WHOLE_FLOAT = r"^\+|\.0*$"
"""What is stripped from an integer's text when the plain cast fails (``1.0`` → ``1``; ``+1``,
which the float64 parse of earlier versions took, → ``1``)."""
NUL = "\x00"
EXACT_FLOAT = float(2**53)
"""float64 holds every integer below this exactly."""


READ_AHEAD_BATCHES = 4
"""Batches conformed (and profiled) ahead on a second thread while the load encodes and sends:
the text → int64 casts and the quality profile no longer wait for the COPY, nor it for them."""


class _Capped(io.RawIOBase):
    """The decompressed stream, refusing to give more than ``limit`` bytes (a gzip bomb).

    Arrow calls ``read`` once per block (256 KiB), so the count costs nothing per row."""

    def __init__(self, source: io.BufferedIOBase, limit: int) -> None:
        self.source = source
        self.limit = limit
        self.total = 0
        self.exceeded = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.total += len(data)
        if self.total > self.limit:
            self.exceeded = True
            raise OSError(f"more than {self.limit:,} bytes decompressed")
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _open_capped_text(path: Path, limit: int) -> Iterator[tuple[io.TextIOBase, _Capped]]:
    """The file as text, decompressed through the same cap as the fast pass."""
    opener = igzip.open if _is_gzip(path) else open
    with opener(path, "rb") as source:
        capped = _Capped(source, limit)
        buffered = io.BufferedReader(capped, BLOCK_SIZE)
        yield io.TextIOWrapper(buffered, encoding="utf-8", newline=""), capped


class _Unconformable(Exception):
    """A batch broke the contract in a way only the slow pass can locate."""


class ContractReader(ContractBatches):
    """Iterates contract-shaped record batches of one source file and counts its rows.

    ``error`` keeps the contract violation raised mid-stream: a consumer written in C++
    (Parquet) re-raises it as its own exception type, and the caller wants ours back.
    """

    def __init__(
        self,
        path: Path,
        contract: Contract,
        month: date | None = None,
        *,
        block_size: int = BLOCK_SIZE,
        memory_pool: pa.MemoryPool | None = None,
        max_bytes: int = settings.DEFAULT_MAX_CSV_BYTES,
    ) -> None:
        if contract.monthly and month is None:
            raise ValueError(f"{contract.name} rows need the month of their source file")
        self.path = path
        self.file = path.name
        self.contract = contract
        self.month = month
        self.block_size = block_size
        self.max_bytes = max_bytes
        self._decompressed = 0
        """Bytes the fast pass had decompressed when it stopped (what the slow pass may read)."""
        self._dotted: set[str] = set()
        self.pool = memory_pool or reader_memory_pool()
        self.read_ahead_batches = READ_AHEAD_BATCHES
        self.rows = 0
        self.error: BadSourceFile | None = None
        self.header = read_header(path, block_size)
        check_header(self.header, contract, self.file)
        self._month = date_scalar(month) if contract.monthly and month is not None else None

    @property
    def filled(self) -> list[str]:
        """The header's columns (``_conform`` fills the contract's others with NULL)."""
        return self._filled(set(self.header))

    def _arrow_reader(self, source: io.RawIOBase) -> pacsv.CSVStreamingReader:
        types = {
            name: _parse_type(self.contract.column(name).type)  # type: ignore[union-attr]
            for name in self.header
        }
        return pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=self.header, skip_rows=1, block_size=self.block_size
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                check_utf8=True,
            ),
            memory_pool=self.pool,
        )

    def _batches(self) -> Iterator[pa.RecordBatch]:
        opener = igzip.open if _is_gzip(self.path) else open
        capped: _Capped | None = None
        try:
            with opener(self.path, "rb") as source:
                capped = _Capped(source, self.max_bytes)
                for batch in self._arrow_reader(capped):
                    if batch.num_rows:
                        yield self._conform(batch)
                        self.rows += batch.num_rows
        except (pa.ArrowInvalid, OSError, EOFError, _Unconformable) as exc:
            if capped is not None:
                self._decompressed = capped.total
            if capped is not None and capped.exceeded:
                raise BadSourceFile(
                    self.file,
                    f"it decompresses to more than {self.max_bytes:,} bytes (the limit)",
                    hint="A gzip bomb or a runaway file; if a real month is this large, raise "
                    f"the Variable {settings.VAR_MAX_CSV_BYTES}",
                ) from None
            raise self._locate(exc) from None

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        arrays = []
        for col in self.contract.columns:
            if col.name not in batch.schema.names:
                arrays.append(pa.nulls(n, col.type, memory_pool=self.pool))
                continue
            values = batch.column(col.name)
            if col.type == INT:
                values = self._to_int(values, col.name)
            elif col.type == TEXT and pc.any(pc.match_substring(values, NUL)).as_py():
                raise _Unconformable(f"NUL byte in {col.name}")
            arrays.append(values)
        if self._month is not None:
            arrays.append(pa.repeat(self._month, n, memory_pool=self.pool))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _to_int(self, values: pa.Array, column: str) -> pa.Array:
        """Text → int64 in C++, exact; ``1.0`` accepted, anything else located.

        A column seen once with ``1.0`` goes, for the rest of the file, through float64 (a
        C++ parse as fast as the plain cast; a regex strip of ``.0`` took 2.4× the CPU of the
        whole green month), unless a value is beyond 2**53, where float64 rounds: then the
        exact strip."""
        pool = self.pool
        if column not in self._dotted:
            try:
                return pc.cast(values, INT, safe=True, memory_pool=pool)
            except pa.ArrowInvalid:
                self._dotted.add(column)
        try:
            floats = pc.cast(values, pa.float64(), memory_pool=pool)
            if (pc.max(pc.abs(floats)).as_py() or 0) < EXACT_FLOAT:
                return pc.cast(floats, INT, safe=True, memory_pool=pool)
            whole = pc.replace_substring_regex(values, WHOLE_FLOAT, "", memory_pool=pool)
            return pc.cast(whole, INT, safe=True, memory_pool=pool)
        except pa.ArrowInvalid:
            raise _Unconformable(f"not an integer in {column}") from None

    def _locate(self, exc: Exception) -> BadSourceFile:
        """Find the first line Arrow could not read, by re-reading the file with Python.

        Arrow can only have refused bytes it had decompressed: the pass reads those (and one
        block more, for the line they end in), never more than ``max_bytes``."""
        budget = min(self.max_bytes, self._decompressed + self.block_size)
        try:
            found = _first_bad_line(
                self.path, self.header, self.contract, self.block_size, max_bytes=budget
            )
        except (OSError, EOFError) as io_exc:
            return BadSourceFile(
                self.file,
                f"the file is damaged ({io_exc})",
                hint="A truncated or corrupt download; check the source file",
            )
        except UnicodeDecodeError as enc_exc:
            return BadSourceFile(self.file, f"the file is not UTF-8 text ({enc_exc})")
        if found is None:
            return BadSourceFile(self.file, f"unreadable ({shown(str(exc), 200)})")
        line, column, problem = found
        return BadSourceFile(self.file, problem, line=line, column=column, hint=CONTRACT_HINT)


# What Arrow's parsers accept, ASCII only (Python's own parsers take more: ``1_000``,
# surrounding spaces, Unicode digits, ``2021-01-01T10:00:00Z``).
CSV_FLOAT = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)[ \t]*",
    re.IGNORECASE,
)
"""A float column, as Arrow's CSV reader parses it (it trims spaces and tabs)."""
CAST_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""An integer column's text, as the reader's string → float64 cast parses it (no spaces)."""
ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?)?"
)
"""A timestamp[us] as Arrow's ISO-8601 parser takes it: no zone, at most microseconds."""


def _value_error(value: str, type_: pa.DataType) -> str | None:
    if value == "":
        return None
    try:
        if type_ == TIMESTAMP:
            if not ISO_TIMESTAMP.fullmatch(value):
                raise ValueError(value)
            datetime.fromisoformat(value)
        elif type_ == INT:
            return _int_error(value)
        elif pa.types.is_floating(type_):
            if not CSV_FLOAT.fullmatch(value):
                raise ValueError(value)
        elif NUL in value:
            return f"value {shown(value)} holds a NUL byte, which PostgreSQL text cannot store"
    except ValueError:
        return f"value {shown(value)} does not parse as {type_}"
    return None


INT64 = range(-(2**63), 2**63)
DIGITS = re.compile(r"-?[0-9]+")
HEX = re.compile(r"0[xX][0-9a-fA-F]{1,16}")
"""Arrow's string → int64 cast also takes hexadecimal (the slow pass must not call it bad)."""


def _int_error(value: str) -> str | None:
    """What the reader's integer cast refuses (``ContractReader._to_int``, in Python)."""
    if HEX.fullmatch(value):
        return None
    text = re.sub(WHOLE_FLOAT, "", value)
    if DIGITS.fullmatch(text):
        return None if int(text) in INT64 else f"value {shown(value)} does not fit in int64"
    if not CAST_FLOAT.fullmatch(value):
        raise ValueError(value)  # "does not parse"
    number = float(value)
    if math.isfinite(number) and number.is_integer() and abs(number) < EXACT_FLOAT:
        return None
    return f"value {shown(value)} is not a whole number (declared integer)"


def _first_bad_line(
    path: Path, header: list[str], contract: Contract, limit: int, *, max_bytes: int
) -> tuple[int, str | None, str] | None:
    """The first line the fast path refuses, reading at most ``limit`` characters of a line
    and ``max_bytes`` decompressed bytes of the file (None: not found within them)."""
    types = [contract.column(name).type for name in header]  # type: ignore[union-attr]
    line = 0
    with _open_capped_text(path, max_bytes) as (f, capped):
        try:
            for line, text in enumerate(_lines(f, limit), start=1):
                if line == 1 or not text.strip("\r\n"):
                    continue
                if problem := _line_error(text, header, types):
                    return (line, *problem)
        except OSError:
            if capped.exceeded:
                return None
            raise
        except _LineTooLong as too_long:
            field, _ = _field_index(too_long.prefix)
            column = header[field] if field < len(header) else None
            return (
                line + 1,
                column,
                f"the line is longer than {limit:,} characters (no line end): not a trip record",
            )
    return None


def _line_error(
    text: str, header: list[str], types: list[pa.DataType]
) -> tuple[str | None, str] | None:
    """What is wrong with one line (column, problem), or None."""
    if '"' in text:
        field, open_quote = _field_index(text)
        if open_quote:
            column = header[field] if field < len(header) else None
            return column, "unterminated quote (a field opens a quote the line never closes)"
    saved = csv.field_size_limit()
    csv.field_size_limit(max(saved, len(text) + 1))  # the line itself is bounded already
    try:
        row = next(csv.reader([text]))
    finally:
        csv.field_size_limit(saved)
    if len(row) != len(header):
        return None, f"has {len(row)} fields, the header has {len(header)}"
    for name, type_, value in zip(header, types, row, strict=True):
        if problem := _value_error(value, type_):
            return name, problem
    return None
