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
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.taxi.contract import FLOAT, INT, TEXT, TIMESTAMP, Column, Contract
from include.taxi.errors import BadSourceFile
from include.taxi.sources.batches import (
    CONTRACT_HINT,
    ContractBatches,
    date_scalar,
    reader_memory_pool,
)

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
PANDAS_INDEX = "__index_level_"
"""Columns pandas writes for a DataFrame index: not data, skipped."""


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
    try:
        return pq.ParquetFile(path, buffer_size=READ_BUFFER, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise BadSourceFile(
            path.name,
            f"the parquet footer cannot be read, the file is truncated or damaged ({exc})",
            hint=DAMAGED_HINT,
        ) from None


def _plan(
    schema: pa.Schema, contract: Contract, month: date | None, file: str
) -> dict[str, tuple[str, pa.DataType]]:
    """contract column → (the file's column name, its type); refuses what cannot be mapped."""
    found: dict[str, tuple[str, pa.DataType]] = {}
    unknown = []
    for field in schema:
        if field.name.startswith(PANDAS_INDEX):
            continue
        col = contract.match(field.name)
        if col is None:
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
    missing = [name for name in contract.required_in(month) if name not in found]
    if missing:
        era = f" for a {month:%Y-%m} file" if month else ""
        raise BadSourceFile(
            file,
            f"required column(s) {', '.join(missing)} missing{era} (it has "
            f"{', '.join(schema.names)})",
            hint=CONTRACT_HINT,
        )
    return found


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
    ) -> None:
        """``decode_threads``: Arrow decodes the columns in parallel. Off for the Postgres load
        (~35 MB more peak RSS, jemalloc arenas per thread, and the COPY needs the other core);
        on for the lake, where the decoder would otherwise be the bottleneck."""
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
        self._parquet = _open(path)
        self._columns = _plan(self._parquet.schema_arrow, contract, month, self.file)
        self._month = date_scalar(month) if contract.monthly and month is not None else None

    @property
    def row_groups(self) -> int:
        return self._parquet.num_row_groups

    def _batches(self) -> Iterator[pa.RecordBatch]:
        names = [source for source, _ in self._columns.values()]
        for group in range(self._parquet.num_row_groups):
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
                    raise BadSourceFile(
                        self.file,
                        f"cannot read the row group after row {self.rows} ({exc})",
                        row_group=group,
                        hint=DAMAGED_HINT,
                    ) from None
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
            array = batch.column(source)
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            where = _Where(self.file, group, self.rows, source, col)
            values[col.name] = _convert(array, col, where, self.pool)
            if col.raw and _is_text(array.type) and col.raw not in self._columns:
                values[col.raw] = pc.cast(_plain(array), TEXT)
        arrays = [
            values[col.name] if col.name in values else pa.nulls(n, col.type, self.pool)
            for col in self.contract.columns
        ]
        if self._month is not None:
            arrays.append(pa.repeat(self._month, n, memory_pool=self.pool))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


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
