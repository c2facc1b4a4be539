"""Iterate in a background thread, a bounded number of items ahead of the consumer.

Arrow's streaming CSV reader parses a block only when asked for it, on the asking thread. A
consumer that works in long C++ calls (the parquet writer encodes and compresses a whole row
group at once, with the GIL released) would leave the reader idle meanwhile; read ahead on a
second thread, the two overlap and a 2-core machine does both at once (a yellow month to
parquet: -25 to -40% wall time, measured by `make bench`). The queue bounds the memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Producer:
    """The daemon thread's side: it offers each item until the consumer stops listening."""

    def __init__(self, items: Iterable[object], depth: int) -> None:
        self.items = items
        self.pending: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def offer(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.pending.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self.items:
                if not self.offer(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self.offer(_Failed(exc))
            return
        self.offer(_DONE)


def read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield ``items``, produced up to ``depth`` ahead by a daemon thread; its exception is
    raised here, in the consumer. Stopping early stops the producer at its next item."""
    producer = _Producer(items, depth)
    thread = threading.Thread(target=producer.run, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = producer.pending.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        producer.stop.set()
        thread.join()
