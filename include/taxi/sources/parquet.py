"""Stream a TLC parquet file into Arrow batches that obey the contract, a row group at a time.

The TLC's files drift across the years (see README, "The TLC's parquet files"): names change
case (``Airport_fee``) or era (``Fare_Amt``), integer columns are published as double,
timestamps in ns or us, all-empty columns typed ``null``, ids as int32, columns added or
reordered. Each batch is mapped column by column onto the contract, so every month of a
service yields the same schema; what cannot be mapped without loss is refused with its place
(file, row group, row, column, value) and nothing is loaded.

Memory: ``iter_batches`` over one row group at a time, without pre-buffering, through a
buffered stream: a batch of ``BATCH_ROWS`` rows and the row group's current pages are resident,
never the file (an fhvhv month is 0.3-0.5 GB of parquet, ~20 M rows). ``read_table`` is never
used. No Python values are converted to Arrow here (that would import pandas, ~35 MB).

A hostile file of a few KB can declare far more than it holds. Before a row is read, its footer
must declare at most ``max_rows`` rows, and its footer and page headers (what Arrow allocates,
sources/parquet_pages.py) at most ``max_row_group_bytes`` uncompressed bytes per row group.
Text is read dictionary-encoded, so a value a dictionary repeats on every row is measured
once, per batch, against its column's ``max_length`` before it is copied onto each row. A NUL
byte in text (PostgreSQL cannot store it), text that is not UTF-8, and any other Arrow error
become a located ``BadSourceFile`` that no target loads. INT96 timestamps are read in
microseconds after a pass that refuses what lies outside years 1-9999 (Arrow would wrap such a
value silently).
"""

from __future__ import annotations

import copy
import itertools
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.taxi import settings
from include.taxi.contract import (
    FLOAT,
    INT,
    MAX_VALUE_BYTES,
    TEXT,
    TIMESTAMP,
    Column,
    Contract,
    Layout,
)
from include.taxi.errors import BadSourceFile
from include.taxi.redact import shown
from include.taxi.sources.batches import (
    CONTRACT_HINT,
    ContractBatches,
    date_scalar,
    reader_memory_pool,
)
from include.taxi.sources.csv import NUL
from include.taxi.sources.parquet_pages import PageHeaderError, row_group_pages

MAGIC = b"PAR1"
BATCH_ROWS = 32 * 1024
"""Rows per batch: ~6 MB of Arrow for an fhvhv batch; a TLC row group (~1 M rows) is cut into
~30 of them, so memory follows the batch, not the row group. Measured on a generated 2 M-row
fhvhv file (1 M-row groups), reader alone: peak RSS 170 MB at 32k rows, 190-209 MB at 64k,
the same for 300k-row groups; decoding (pyarrow, ~3 s per 2 M rows here) dominates, the
mapping onto the contract costs ~2% of it."""
READ_BUFFER = 1 << 20
"""Bytes per read of the buffered stream (``pre_buffer`` off): the reader never maps or buffers
a whole row group's column chunks."""
READ_AHEAD_BATCHES = 4
"""The lake writer's read-ahead for this reader: 4 × 32k rows, one lake row group (the CSV
reader's 16 batches are ~10k rows each; 16 fhvhv batches held ~100 MB more)."""
DAMAGED_HINT = "A truncated or corrupt download; nothing was loaded. Run the month again"


def _unreadable(file: str, group: int, exc: Exception, where: str = "") -> BadSourceFile:
    """Arrow could not decode a row group: a damaged download, named with its row group."""
    return BadSourceFile(
        file, f"cannot read the row group{where} ({exc})", row_group=group, hint=DAMAGED_HINT
    )


PANDAS_INDEX = "__index_level_"
"""Columns pandas writes for a DataFrame index: not data, skipped."""
HOSTILE_HINT = (
    "A hostile or broken file; nothing was loaded. If a real month is this large, raise the "
    "Variable {variable}"
)
INT96_UNIT = "us"
"""The unit INT96 timestamps are read in: the contract's (Arrow's default is ns, which wraps
for years past 2262)."""
INT96_RANGE = (-62_135_596_800, 253_402_300_800)
"""Seconds since 1970 of 0001-01-01 and 10000-01-01: an INT96 time outside is refused (every
target holds these years; Arrow would wrap a far larger one in microseconds)."""


def _strings(values: list[str]) -> pa.Array:
    """A string array built from bytes (``pa.array`` of Python values would import pandas)."""
    data = b"".join(v.encode() for v in values)
    offsets, at = [0], 0
    for v in values:
        at += len(v.encode())
        offsets.append(at)
    buffers = [None, pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets)), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def _ints(values: list[int]) -> pa.Array:
    raw = pa.py_buffer(struct.pack(f"<{len(values)}q", *values))
    return pa.Array.from_buffers(INT, len(values), [None, raw])


YES_NO = _strings(["Y", "N"])
ONE = _ints([1])[0]
BLANK = _strings([""])[0]
"""Scalars built from bytes: a Python value in a compute call would import pandas."""


def _open(path: Path) -> pq.ParquetFile:
    """The file's footer, or a BadSourceFile that says what the download really is."""
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        raise BadSourceFile(path.name, "the file is empty", hint="Check the source URL")
    if head[:4] != MAGIC:
        shown = head[:40].decode("utf-8", "replace").strip()
        raise BadSourceFile(
            path.name,
            f"not a parquet file (it starts with {shown!r})",
            hint="A wrong URL often returns an HTML page: check the Variables taxi_source and "
            "taxi_tlc_url (the TLC serves {base}/trip-data/{service}_tripdata_{YYYY-MM}.parquet)",
        )
    return _parquet_file(path)


def _parquet_file(path: Path, **options: object) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, buffer_size=READ_BUFFER, pre_buffer=False, **options)
    except (pa.ArrowException, OSError) as exc:
        raise BadSourceFile(
            path.name,
            f"the parquet footer cannot be read, the file is truncated or damaged ({exc})",
            hint=DAMAGED_HINT,
        ) from None


def _check_declared(
    path: Path, meta: pq.FileMetaData, max_rows: int, max_row_group_bytes: int
) -> None:
    """Refuse a file whose footer or page headers declare more rows or bytes than allowed."""
    file = path.name
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    rows = max(meta.num_rows, sum(g.num_rows for g in groups))
    if rows > max_rows:
        raise BadSourceFile(
            file,
            f"the footer declares {rows:,} rows, more than the limit of {max_rows:,}",
            hint=HOSTILE_HINT.format(variable=settings.VAR_MAX_PARQUET_ROWS),
        )
    for index, group in enumerate(groups):
        chunks = [group.column(i) for i in range(group.num_columns)]
        declared = max(group.total_byte_size, sum(c.total_uncompressed_size for c in chunks))
        if declared > max_row_group_bytes:
            biggest = max(chunks, key=lambda c: c.total_uncompressed_size)
            raise BadSourceFile(
                file,
                f"the row group declares {declared:,} bytes uncompressed (this column "
                f"{biggest.total_uncompressed_size:,}), more than the limit of "
                f"{max_row_group_bytes:,}",
                row_group=index,
                column=biggest.path_in_schema,
                hint=HOSTILE_HINT.format(variable=settings.VAR_MAX_ROW_GROUP_BYTES),
            )
    with path.open("rb") as f:
        for index, group in enumerate(groups):
            _check_pages(f.fileno(), group, index, file, max_row_group_bytes)


def _check_pages(fd: int, group: pq.RowGroupMetaData, index: int, file: str, limit: int) -> None:
    """The row group's pages as their own headers declare them (what Arrow allocates)."""
    declared = 0
    try:
        for column, size in row_group_pages(fd, group):
            declared += size
            if declared > limit:
                raise BadSourceFile(
                    file,
                    f"its page headers declare more than {limit:,} bytes uncompressed (the "
                    f"limit; this column's page {size:,})",
                    row_group=index,
                    column=column,
                    hint=HOSTILE_HINT.format(variable=settings.VAR_MAX_ROW_GROUP_BYTES),
                )
    except (PageHeaderError, OSError) as exc:
        raise BadSourceFile(
            file,
            f"a page header cannot be read, the file is truncated or damaged ({exc})",
            row_group=index,
            hint=DAMAGED_HINT,
        ) from None


def _is_bytes(type_: pa.DataType) -> bool:
    """Text or binary, the types whose values have a length of their own."""
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
    )


def _int96_columns(parquet: pq.ParquetFile) -> list[str]:
    schema = parquet.schema
    return [
        schema.column(i).name
        for i in range(len(schema))
        if schema.column(i).physical_type == "INT96" and schema.column(i).max_repetition_level == 0
    ]


def _check_int96(path: Path, parquet: pq.ParquetFile, columns: list[str], batch_rows: int) -> None:
    """Refuse an INT96 time outside years 1-9999 before anything is loaded.

    Read in seconds, an INT96 value cannot wrap (at most 2**32 days); in microseconds, as the
    load reads it, a value beyond ~292,000 years would wrap silently. A pass over these columns
    only, which real files rarely have (Spark and Hive wrote them)."""
    seconds = _parquet_file(path, metadata=parquet.metadata, coerce_int96_timestamp_unit="s")
    low, high = (_ints([bound])[0] for bound in INT96_RANGE)
    before = 0
    for group in range(seconds.num_row_groups):
        try:
            for batch in seconds.iter_batches(
                batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=False
            ):
                for name in columns:
                    values = batch.column(name).cast(pa.int64())
                    outside = pc.or_(pc.less(values, low), pc.greater_equal(values, high))
                    if pc.any(outside).as_py():
                        index = pc.index(outside, True).as_py()
                        raise BadSourceFile(
                            path.name,
                            f"INT96 timestamp {values[index].as_py():,} s since 1970 is outside "
                            "years 1-9999, which no target can hold",
                            row_group=group,
                            row=before + index + 1,
                            column=name,
                            hint=CONTRACT_HINT,
                        )
                before += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable(path.name, group, exc) from None


def _plan(
    schema: pa.Schema, contract: Contract, month: date | None, file: str
) -> tuple[dict[str, tuple[str, pa.DataType]], tuple[Layout, str] | None]:
    """contract column → (the file's column name, its type), and the older layout the file
    has with its marker column's name, if any; refuses what cannot be mapped."""
    found: dict[str, tuple[str, pa.DataType]] = {}
    unknown = []
    older: tuple[Layout, str] | None = None
    for field in schema:
        if field.name.startswith(PANDAS_INDEX):
            continue
        col = contract.match(field.name)
        layout = contract.layout(field.name) if col is None else None
        if layout is not None:
            older = (layout, field.name)
        elif col is None:
            unknown.append(field.name)
        elif col.name in found:
            raise BadSourceFile(
                file,
                f"columns {found[col.name][0]!r} and {field.name!r} are both the contract's "
                f"{col.name}",
                hint=CONTRACT_HINT,
            )
        else:
            found[col.name] = (field.name, field.type)
    if unknown:
        raise BadSourceFile(
            file,
            f"unknown column(s) {', '.join(unknown)}: the {contract.name} contract does not "
            "declare them (nor as an older era's name)",
            hint=CONTRACT_HINT,
        )
    required = contract.required_in(month)
    if older is not None:
        layout, marker = older
        both = [found[flag][0] for flag in layout.flags if flag in found]
        if both:
            raise BadSourceFile(
                file,
                f"column {marker!r} (an older layout's) and {', '.join(both)} both hold "
                "the shared-ride flags",
                hint=CONTRACT_HINT,
            )
        required = list(layout.required)
    missing = [name for name in required if name not in found]
    if missing:
        era = f" for a {month:%Y-%m} file" if month else ""
        raise BadSourceFile(
            file,
            f"required column(s) {', '.join(missing)} missing{era} (it has "
            f"{', '.join(schema.names)})",
            hint=CONTRACT_HINT,
        )
    return found, older


class ParquetContractReader(ContractBatches):
    """Iterates contract-shaped record batches of one parquet file and counts its rows.

    The same interface as the CSV reader (``SourceReader``): ``schema``, ``rows``, ``error``,
    ``record_batch_reader()``, iteration."""

    def __init__(
        self,
        path: Path,
        contract: Contract,
        month: date | None = None,
        *,
        batch_rows: int = BATCH_ROWS,
        memory_pool: pa.MemoryPool | None = None,
        decode_threads: bool = False,
        max_rows: int = settings.DEFAULT_MAX_PARQUET_ROWS,
        max_row_group_bytes: int = settings.DEFAULT_MAX_ROW_GROUP_BYTES,
    ) -> None:
        """``decode_threads``: Arrow decodes the columns in parallel. Off for the Postgres load
        (~35 MB more peak RSS, jemalloc arenas per thread, and the COPY needs the other core);
        on for the lake, where the decoder would otherwise be the bottleneck.
        ``max_rows``/``max_row_group_bytes``: what the footer and the page headers may
        declare (settings.py)."""
        if contract.monthly and month is None:
            raise ValueError(f"{contract.name} rows need the month of their source file")
        self.path = path
        self.file = path.name
        self.contract = contract
        self.month = month
        self.batch_rows = batch_rows
        self.decode_threads = decode_threads
        self.read_ahead_batches = READ_AHEAD_BATCHES
        self.pool = memory_pool or reader_memory_pool()
        self.rows = 0
        self.error: BadSourceFile | None = None
        footer = _open(path)
        _check_declared(path, footer.metadata, max_rows, max_row_group_bytes)
        self._columns, self._older = _plan(footer.schema_arrow, contract, month, self.file)
        self._texts = [field.name for field in footer.schema_arrow if _is_bytes(field.type)]
        self._parquet = _parquet_file(
            path,
            metadata=footer.metadata,
            read_dictionary=self._texts,
            coerce_int96_timestamp_unit=INT96_UNIT,
        )
        if int96 := _int96_columns(footer):
            _check_int96(path, footer, int96, batch_rows)
        self._month = date_scalar(month) if contract.monthly and month is not None else None
        self._groups = range(self._parquet.num_row_groups)
        self._first_row = 0
        """Rows of the file before this reader's first row group (a slice's rows are numbered
        as in the whole file, in errors)."""

    @property
    def row_groups(self) -> int:
        return self._parquet.num_row_groups

    @property
    def filled(self) -> list[str]:
        """What ``_conform`` fills: the mapped columns, the verbatim text beside a coded column
        the file has as text, an older layout's flags; the contract's others are NULL."""
        provided = set(self._columns)
        for col in self.contract.columns:
            source = self._columns.get(col.name)
            if col.raw and source and col.raw not in self._columns and _is_text(source[1]):
                provided.add(col.raw)
        if self._older is not None:
            provided.update(self._older[0].flags)
        return self._filled(provided)

    def slices(self, n: int) -> list[ParquetContractReader]:
        """At most ``n`` readers of disjoint runs of whole row groups, of about equal rows, that
        together read the file: one per COPY stream. Each opens the file on its own (a
        ParquetFile is not shared between threads); the footer checks are not repeated.

        The streams share one memory budget: each reads batches and reads ahead 1/n of what
        one reader would (2 streams of a 2 M-row fhvhv month: peak RSS 341 MB with full-size
        batches, 249 MB with these; one stream 221 MB)."""
        meta = self._parquet.metadata
        sizes = [meta.row_group(i).num_rows for i in self._groups]
        cuts = _balanced_cuts(sizes, n)
        if len(cuts) <= 2:
            return [self]
        parts = []
        for start, end in itertools.pairwise(cuts):
            part = copy.copy(self)
            part._groups = range(self._groups.start + start, self._groups.start + end)
            part._first_row = self._first_row + sum(sizes[:start])
            part._parquet = _parquet_file(
                self.path,
                metadata=meta,
                read_dictionary=self._texts,
                coerce_int96_timestamp_unit=INT96_UNIT,
            )
            part.rows, part.error = 0, None
            part.read_ahead_batches = max(1, self.read_ahead_batches // (len(cuts) - 1))
            part.batch_rows = max(8192, self.batch_rows // (len(cuts) - 1))
            parts.append(part)
        return parts

    def _batches(self) -> Iterator[pa.RecordBatch]:
        names = [source for source, _ in self._columns.values()]
        if self._older is not None:
            names.append(self._older[1])
        for group in self._groups:
            batches = self._parquet.iter_batches(
                batch_size=self.batch_rows,
                row_groups=[group],
                columns=names,
                use_threads=self.decode_threads,
            )
            while True:
                try:
                    batch = next(batches, None)
                except (pa.ArrowException, OSError) as exc:
                    after = f" after row {self._first_row + self.rows}"
                    raise _unreadable(self.file, group, exc, after) from None
                if batch is None:
                    break
                if batch.num_rows:
                    yield self._conform(batch, group)
                    self.rows += batch.num_rows
        if self.rows == 0:
            raise BadSourceFile(
                self.file,
                "the file has no rows",
                hint="Refusing to replace a month with nothing; check the source",
            )

    def _conform(self, batch: pa.RecordBatch, group: int) -> pa.RecordBatch:
        n = batch.num_rows
        values: dict[str, pa.Array] = {}
        for col in self.contract.columns:
            if col.name not in self._columns:
                continue
            source, _ = self._columns[col.name]
            where = _Where(self.file, group, self._first_row + self.rows, source, col)
            array = _bounded(batch.column(source), where)
            with _located(where):
                values[col.name] = _convert(array, col, where, self.pool)
                if col.raw and _is_text(array.type) and col.raw not in self._columns:
                    values[col.raw] = pc.cast(_plain(array), TEXT)
        if self._older is not None:
            layout, marker = self._older
            where = _Where(self.file, group, self._first_row + self.rows, marker, MARKER)
            array = _bounded(batch.column(marker), where)
            with _located(where):
                values.update(dict.fromkeys(layout.flags, _shared_ride(array, where, self.pool)))
        arrays = [
            values[col.name] if col.name in values else pa.nulls(n, col.type, self.pool)
            for col in self.contract.columns
        ]
        if self._month is not None:
            arrays.append(pa.repeat(self._month, n, memory_pool=self.pool))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _balanced_cuts(sizes: list[int], n: int) -> list[int]:
    """Cut points (0, ..., len(sizes)) into at most ``n`` runs of about equal rows; a run never
    holds only empty row groups (a slice must not fail as "the file has no rows")."""
    total = sum(sizes)
    cuts, at = [0], 0
    for index, size in enumerate(sizes[:-1], start=1):
        at += size
        if len(cuts) < n and size and at >= total * len(cuts) / n:
            cuts.append(index)
    cuts.append(len(sizes))
    if len(cuts) > 2 and not any(sizes[cuts[-2] :]):
        cuts.pop(-2)
    return cuts


MARKER = Column("sr_flag", INT)
"""How an older layout's marker column is read (``SR_Flag``: 1 or empty)."""


def _bounded(array: pa.Array | pa.ChunkedArray, where: _Where) -> pa.Array:
    """The column of a batch, once its longest value is within the contract's bound.

    Text arrives dictionary-encoded: the dictionary is measured, so a huge value repeated on
    every row costs its own size once, never rows × size."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    values = array.dictionary if pa.types.is_dictionary(array.type) else array
    if not _is_bytes(values.type) or not len(values):
        return array
    limit = where.col.max_length if where.col is not MARKER else MAX_VALUE_BYTES
    longest = pc.max(pc.binary_length(values)).as_py() or 0
    if longest > limit:
        raise BadSourceFile(
            where.file,
            f"a value of {longest:,} bytes, longer than the {limit} the contract allows "
            f"({where.col.name})",
            row_group=where.group,
            column=where.source,
            hint="A hostile or broken file; nothing was loaded. If the source really changed, "
            "declare the column's max_length in include/taxi/contract.py",
        )
    if _is_text(values.type):
        _check_text(array, values, where)
    return array


@contextmanager
def _located(where: _Where) -> Iterator[None]:
    """Any Arrow error of a column's conversion as a located ``BadSourceFile``."""
    try:
        yield
    except (pa.ArrowException, OverflowError) as exc:
        raise BadSourceFile(
            where.file,
            f"cannot convert it to {_kind(where.col.type)} ({shown(str(exc), 200)})",
            row_group=where.group,
            column=where.source,
            hint=CONTRACT_HINT,
        ) from None


def _check_text(array: pa.Array, values: pa.Array, where: _Where) -> None:
    """Text every target stores alike: valid UTF-8 (the parquet reader does not check it)
    and no NUL byte (PostgreSQL text cannot hold one; the lake and BigQuery would). Checked on
    ``values``, the dictionary of a dictionary-encoded ``array``: each distinct value once."""
    try:
        values.validate(full=True)
    except pa.ArrowInvalid:
        raise BadSourceFile(
            where.file,
            "a value is not valid UTF-8 text",
            row_group=where.group,
            column=where.source,
            hint=CONTRACT_HINT,
        ) from None
    found = pc.match_substring(values, NUL)
    if not pc.any(found).as_py():
        return
    first = pc.index(pc.fill_null(found, False), True).as_py()
    row = pc.index(array.indices, first).as_py() if values is not array else first
    if row >= 0:  # a dictionary value no row of this batch uses is not loaded
        problem = "holds a NUL byte, which PostgreSQL text cannot store"
        raise where.error(row, shown(values[first].as_py()), problem)


def _shared_ride(array: pa.Array, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    """``SR_Flag`` (1 for a shared ride, empty otherwise) as the Y/N flags of today's files;
    stored as text, a blank value is empty too."""
    if _is_text(array.type):
        array = _plain(array)
        blank = pc.equal(pc.utf8_trim_whitespace(array), BLANK)
        array = pc.if_else(blank, pa.nulls(1, array.type)[0], array)
    numbers = _convert(array, MARKER, where, pool)
    other = pc.not_equal(numbers, ONE)  # NULL where empty
    if pc.any(other).as_py():
        index = pc.index(other, True).as_py()
        raise where.error(index, _show(array, index), "is neither 1 nor empty")
    return pc.if_else(pc.is_valid(numbers), YES_NO[0], YES_NO[1], memory_pool=pool)


class _Where:
    """Where a batch's column comes from, to name it in an error."""

    def __init__(self, file: str, group: int, before: int, source: str, col: Column) -> None:
        self.file, self.group, self.before, self.source, self.col = file, group, before, source, col

    def error(self, index: int, value: object, problem: str) -> BadSourceFile:
        return BadSourceFile(
            self.file,
            f"value {value!r} {problem} (declared {_kind(self.col.type)})",
            row_group=self.group,
            row=self.before + index + 1,
            column=self.source,
            hint=CONTRACT_HINT,
        )


def _kind(type_: pa.DataType) -> str:
    return {INT: "integer", FLOAT: "float", TEXT: "text", TIMESTAMP: "timestamp"}.get(
        type_, str(type_)
    )


def _is_text(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_text(type_.value_type)
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _plain(array: pa.Array) -> pa.Array:
    """Dictionary-encoded columns decoded, large strings as strings."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type):
        array = pc.cast(array, TEXT)
    return array


def _show(array: pa.Array, index: int) -> object:
    try:
        return array[index].as_py()
    except (ValueError, OverflowError, pa.ArrowException):
        return str(array.slice(index, 1).to_pylist())


def _first_failure(array: pa.Array, convert: Callable[[pa.Array], pa.Array]) -> int:
    """Index of the first value ``convert`` rejects (the error path only: one value at a time)."""
    for index in range(len(array)):
        try:
            convert(array.slice(index, 1))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return index
    return -1


def _checked(
    array: pa.Array, convert: Callable[[pa.Array], pa.Array], where: _Where, problem: str
) -> pa.Array:
    try:
        return convert(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index = _first_failure(array, convert)
        raise where.error(max(index, 0), _show(array, max(index, 0)), problem) from None


def _refuse(array: pa.Array, where: _Where) -> BadSourceFile:
    return BadSourceFile(
        where.file,
        f"the file stores it as {array.type}, which cannot become {_kind(where.col.type)} "
        "without loss",
        row_group=where.group,
        column=where.source,
        hint=CONTRACT_HINT,
    )


def _convert(array: pa.Array, col: Column, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    """One column of a batch in its contract type, or a located BadSourceFile."""
    type_ = array.type
    if pa.types.is_null(type_):  # an all-empty column the writer typed ``null``
        return pa.nulls(len(array), col.type, pool)
    array = _plain(array)
    type_ = array.type
    if col.type == INT:
        return _to_int(array, col, where, pool)
    if col.type == FLOAT:
        if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
            return pc.cast(array, FLOAT, safe=False, memory_pool=pool)
        if pa.types.is_string(type_):
            return _checked(array, lambda a: pc.cast(a, FLOAT), where, "is not a number")
        raise _refuse(array, where)
    if col.type == TEXT:
        return _to_text(array, where, pool)
    if col.type == TIMESTAMP:
        return _to_timestamp(array, where, pool)
    raise _refuse(array, where)


def _whole(array: pa.Array, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    """A float column as int64, only if every value is a whole number that fits."""
    try:
        return pc.cast(array, INT, safe=True, memory_pool=pool)
    except pa.ArrowInvalid:
        fractional = pc.fill_null(pc.not_equal(array, pc.floor(array)), False)
        too_big = pc.fill_null(pc.greater(pc.abs(array), 2.0**62), False)
        index = max(pc.index(pc.or_(fractional, too_big), True).as_py(), 0)
        raise where.error(index, _show(array, index), "is not a whole number") from None


def _to_int(array: pa.Array, col: Column, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    type_ = array.type
    if pa.types.is_integer(type_) or pa.types.is_boolean(type_):
        return _checked(array, lambda a: pc.cast(a, INT, memory_pool=pool), where, "overflows")
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return _whole(pc.cast(array, FLOAT, safe=False), where, pool)
    if pa.types.is_string(type_):
        if col.codes:
            names = pc.utf8_upper(pc.utf8_trim_whitespace(array))
            keys = list(col.codes)
            positions = pc.index_in(names, value_set=_strings(keys))
            return pc.take(_ints([col.codes[k] for k in keys]), positions)
        numbers = _checked(array, lambda a: pc.cast(a, FLOAT), where, "is not a number")
        return _whole(numbers, where, pool)
    raise _refuse(array, where)


def _to_text(array: pa.Array, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    type_ = array.type
    if pa.types.is_string(type_):
        return array
    if pa.types.is_boolean(type_):  # the data dictionaries' Y/N flags
        return pc.if_else(array, YES_NO[0], YES_NO[1])
    if pa.types.is_floating(type_):  # 1.0 → "1", as the flag was written in other months
        whole = pc.equal(array, pc.floor(array))
        if pc.all(pc.fill_null(whole, True)).as_py():
            return pc.cast(pc.cast(array, INT), TEXT, memory_pool=pool)
        return pc.cast(array, TEXT, memory_pool=pool)
    if pa.types.is_integer(type_):
        return pc.cast(array, TEXT, memory_pool=pool)
    raise _refuse(array, where)


def _to_timestamp(array: pa.Array, where: _Where, pool: pa.MemoryPool) -> pa.Array:
    """ns/ms/s → us (safe: a sub-microsecond part is refused, never rounded away); strings and
    dates parsed. Values far outside the ns range (fhv's year 3019) stay exact in us."""
    type_ = array.type
    if pa.types.is_timestamp(type_):
        if type_.tz is not None:
            raise _refuse(array, where)
        return _checked(
            array,
            lambda a: pc.cast(a, TIMESTAMP, memory_pool=pool),
            where,
            "has a sub-microsecond part",
        )
    if pa.types.is_date(type_):
        return pc.cast(array, TIMESTAMP, memory_pool=pool)
    if pa.types.is_string(type_):
        return _checked(
            array,
            lambda a: pc.cast(a, TIMESTAMP, memory_pool=pool),
            where,
            "is not a date and time (YYYY-MM-DD HH:MM:SS)",
        )
    raise _refuse(array, where)
