"""Fill a month's stage table by binary COPY: one stream on the load's own transaction, or
several at once, each on its own session and thread, fed by its own slice of the source.

One stream writes into a stage created in the same transaction, with FREEZE. Several cannot
(FREEZE needs the table created in the COPY's own transaction, which no other session sees):
the stage is committed empty first, each stream COPYs its slice and commits, and a plain
``VACUUM`` sets the rows' hint bits before the swap, so the month's first reader does not pay
for them (docs/performance.md, "Parallel COPY of one month", has the measurements).

The first stream that fails stops the others at their next batch; its error (a contract
violation names file, row group, row and column) is the one raised, and the load drops the
stage without swapping anything.

Threads, not processes: reading, encoding and sending release the GIL in their long calls,
and one process keeps the memory of two streams at ~one reader's plus their batches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import pyarrow as pa
from psycopg import sql

from include.taxi.postgres import session
from include.taxi.quality import Profile
from include.taxi.sources.batches import SourceReader
from include.taxi.sources.read_ahead import read_ahead


class StreamCancelled(Exception):
    """Another stream of the same month failed; this one stopped at its next batch."""


def ingest(
    cur: session.Session,
    reader: SourceReader,
    schema: str,
    table: str,
    profile: Profile,
    *,
    freeze: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Binary COPY of the reader's batches, profiled on the way; a contract violation ends it
    and propagates. Only the columns the file can fill are sent.

    A reader that says how far to read ahead (parquet, csv.gz) decodes and conforms its next
    batches on a second thread while this one encodes and sends."""
    depth = getattr(reader, "read_ahead_batches", 0)
    observed = profile.observe(reader)
    batches = read_ahead(observed, depth) if depth else observed
    if stop is not None:
        batches = _until(stop, batches)
    columns = reader.filled
    if len(columns) < len(reader.schema.names):
        batches = (_only(batch, columns, reader.file) for batch in batches)
    return cur.ingest(schema, table, columns, batches, freeze=freeze)


def _only(batch: pa.RecordBatch, columns: list[str], file: str) -> pa.RecordBatch:
    """The batch's ``columns``; the COPY leaves the others out (NULL, the tables' default),
    which saves encoding, sending and parsing them. Checked per batch, as it costs nothing
    (a null count): a left-out column that holds a value would be a reader's bug, and the load
    stops rather than drop it."""
    for name in batch.schema.names:
        if name not in columns and batch.column(name).null_count != batch.num_rows:
            raise RuntimeError(
                f"{file}: column {name} has values but its reader said the file cannot fill "
                "it; nothing was loaded (a bug: please report it)"
            )
    return batch.select(columns)


def _until(stop: threading.Event, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if stop.is_set():
            raise StreamCancelled("another COPY stream of this month failed")
        yield batch


def _stream(
    conninfo: str,
    schema: str,
    table: str,
    reader: SourceReader,
    profile: Profile,
    stop: threading.Event,
) -> int:
    """One stream: its slice COPYed and committed on a session of its own."""
    try:
        with session.connect(conninfo) as cur:
            written = ingest(cur, reader, schema, table, profile, stop=stop)
            session.run(cur, "postgres/flush_stream_commit.sql")
            cur.commit()
            return written
    except BaseException:
        stop.set()
        raise


def copy_streams(
    conninfo: str, schema: str, table: str, readers: Sequence[SourceReader], profile: Profile
) -> int:
    """COPY each reader into the committed ``table`` on its own stream; rows written in all.

    Waits for every stream before it returns or raises: no session still writes when the
    caller drops or swaps the table."""
    stop = threading.Event()
    pool = ThreadPoolExecutor(len(readers), thread_name_prefix="copy-stream")
    try:
        futures = [
            pool.submit(_stream, conninfo, schema, table, reader, profile, stop)
            for reader in readers
        ]
        wait(futures)
    except BaseException:  # the task was killed (SIGTERM): the streams stop too
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
    if error := _first_error(futures):
        raise error
    return sum(future.result() for future in futures)


def _first_error(futures: Sequence[Future[int]]) -> BaseException | None:
    """The failure that stopped the streams, not the cancellations it caused."""
    errors = [e for f in futures if (e := f.exception()) is not None]
    causes = [e for e in errors if not isinstance(e, StreamCancelled)]
    return next(iter(causes or errors), None)


def vacuum(conninfo: str, schema: str, table: str) -> None:
    """Set the hint bits of the rows the streams wrote (VACUUM refuses a transaction block)."""
    with session.connect(conninfo) as cur:
        cur.autocommit()
        session.run(cur, "postgres/vacuum_stage.sql", stage=sql.Identifier(schema, table))
