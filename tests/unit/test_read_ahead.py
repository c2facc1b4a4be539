"""The read-ahead thread: items in order, the producer's error in the consumer, a clean stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from include.taxi.sources.read_ahead import read_ahead


def test_items_arrive_complete_and_in_order() -> None:
    assert list(read_ahead(range(1000), depth=3)) == list(range(1000))


def test_the_producers_error_is_raised_in_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is bad")

    got = []
    with pytest.raises(ValueError, match="line 3 is bad"):
        got.extend(read_ahead(items(), depth=8))
    assert got == [1, 2]


def test_it_reads_ahead_at_most_depth_items() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    stream = read_ahead(items(), depth=4)
    assert next(stream) == 0
    threading.Event().wait(0.3)  # let the producer fill the queue
    assert len(produced) <= 1 + 4 + 1  # consumed, queued, and one waiting to be queued
    stream.close()


def test_stopping_early_ends_the_producer_thread() -> None:
    stream = read_ahead(iter(range(10**9)), depth=2)
    assert next(stream) == 0
    stream.close()
    assert all(t.name != "read-ahead" for t in threading.enumerate())
