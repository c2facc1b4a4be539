"""A quality profile of every month, computed in-stream, and the rules that judge it.

The profile is accumulated from the Arrow batches on their way to a target (Postgres' COPY,
the parquet writer): a few vectorised ``pyarrow.compute`` kernels per batch, no per-row
Python and no second pass over the data. Every value it compares with is an Arrow scalar
built from its bytes, because ``pa.scalar(...)`` or a Python number handed to a compute
function imports pandas (~35 MB of RSS the loads never pay).

The rules are declared once, in ``RULES``, each with a level:

* ``fail``: structural facts only (no rows; the pickup or dropoff time column entirely NULL).
  The month is not published: the swap does not happen, the previous month stays.
* ``warn``: the month is published, and the failure notifier's destination gets one message
  per month listing the warnings. Real months carry garbage (2008 pickups, refunds, meters
  left running), so the shares below are thresholds, not zero tolerance, except where any
  single row is already a contradiction (a dropoff before its pickup, a zone id the lookup
  does not know).
"""

from __future__ import annotations

import json
import math
import statistics
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.taxi.contract import FLOAT, INT, TIMESTAMP, Contract
from include.taxi.errors import BadSourceFile

Level = Literal["fail", "warn"]

QUALITY_KEY = "taxi.quality"
WARNINGS_KEY = "taxi.warnings"
"""Keys of the lake object's metadata (JSON text), beside ``taxi.rows``."""

OUT_OF_MONTH_SHARE = 0.01
"""Pickups outside the file's month: real files carry a few (68 in a synthetic yellow month,
2008 pickups in real ones); above 1% the file is probably another month's."""
NEGATIVE_TOTAL_SHARE = 0.02
"""Refunds and disputes have negative totals; above 2% of a month something else happened."""
OVER_24H_SHARE = 0.001
"""Meters left running make a few trips over a day long; more than 0.1% is suspicious."""
TRAILING_MONTHS = 12
MIN_TRAILING_MONTHS = 3
TRAILING_MEDIAN_SHARE = 0.2
"""A month with fewer rows than 20% of the median of its service's previous (up to 12) loaded
months is probably a truncated republish."""
DAY_US = 86_400 * 1_000_000
GROUP_ROWS = 8 * 1024
"""Batches are profiled in groups of at least this many rows: the Postgres path reads
~2,500-row batches, and kernel calls per column per batch cost more in Python overhead than in
work. A group keeps its batches (and the parser blocks they point into) alive a little longer:
peak RSS of a yellow Postgres load, profile off → on, was 128 → 133 MB profiling every batch,
~134 MB with 8k-row groups, 141 MB with 16k, 146 MB with 64k (A/B in one session)."""


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "level": self.level, "message": self.message}


class QualityFailed(BadSourceFile):
    """A ``fail`` rule broke: the month is not published and the previous one stays.

    A ``BadSourceFile``: the task fails without retries, since a retry reads the same file."""

    def __init__(self, file: str, findings: Sequence[Finding], profile: dict[str, Any]) -> None:
        problems = "; ".join(f"{f.rule}: {f.message}" for f in findings)
        super().__init__(
            file,
            f"quality rule(s) failed: {problems}",
            hint="The month was not published; the previous data of the month is unchanged",
        )
        self.findings = list(findings)
        self.profile = profile


def _scalar(type_: pa.DataType, fmt: str, value: float) -> pa.Scalar:
    """An Arrow scalar from its bytes (``pa.scalar`` would import pandas)."""
    return pa.Array.from_buffers(type_, 1, [None, pa.py_buffer(struct.pack(fmt, value))])[0]


_EPOCH = datetime(1970, 1, 1)


def _micros(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY_US


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _count(mask: pa.Array) -> int:
    """True values of a boolean array (NULLs are not counted)."""
    return int(pc.sum(mask).as_py() or 0)


def _numpy(array: pa.Array) -> np.ndarray:
    """The values of a NULL-free int64/float64/timestamp[us] array, as numpy (no copy)."""
    dtype = np.float64 if pa.types.is_floating(array.type) else np.int64
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * 8)


def _bounds(values: pa.ChunkedArray) -> tuple[Any, Any]:
    """(min, max) of a column as Python values; (None, None) if it is all NULL."""
    if values.null_count == len(values):
        return None, None
    if values.null_count == 0:  # one copy of the group's chunks beats a reduction per chunk
        data = _numpy(values.combine_chunks() if values.num_chunks != 1 else values.chunk(0))
        low, high = data.min(), data.max()
        if values.type == TIMESTAMP:
            return _EPOCH + timedelta(microseconds=int(low)), _EPOCH + timedelta(
                microseconds=int(high)
            )
        if low == low and high == high:  # not NaN
            return low.item(), high.item()
    bounds = pc.min_max(values)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _durations(pickup: pa.ChunkedArray, dropoff: pa.ChunkedArray) -> tuple[int, int]:
    """(trips whose dropoff is before the pickup, trips over 24 h)."""
    if pickup.null_count == 0 and dropoff.null_count == 0:
        before = over = 0
        for start, end in zip(pickup.chunks, dropoff.chunks, strict=True):
            spent = _numpy(end) - _numpy(start)
            before += int(np.count_nonzero(spent < 0))
            over += int(np.count_nonzero(spent > DAY_US))
        return before, over
    spent = pc.subtract(dropoff, pickup)
    zero = _scalar(pa.duration("us"), "<q", 0)
    day = _scalar(pa.duration("us"), "<q", DAY_US)
    return _count(pc.less(spent, zero)), _count(pc.greater(spent, day))


def zone_id_array(ids: Iterable[int]) -> pa.Array:
    """The lookup's zone ids as an int64 array (built from bytes: no pandas)."""
    values = sorted(set(ids))
    return pa.Array.from_buffers(
        INT, len(values), [None, pa.py_buffer(struct.pack(f"<{len(values)}q", *values))]
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):  # jsonb refuses NaN/Infinity
        return None if value != value else str(value)
    return value


class Profile:
    """Accumulates a month's profile batch by batch (``add``), then judges it (``check``).

    ``zone_ids``: the zone lookup's ids, or None when ``zone_source`` has no lookup to compare
    with (the rule is then skipped, with a note). ``trailing_rows``: the row counts of the service's
    previous loaded months, newest first, from the target's log.
    """

    def __init__(
        self,
        contract: Contract,
        month: date | None = None,
        *,
        zone_ids: pa.Array | None = None,
        trailing_rows: Sequence[int] = (),
        zone_source: str = "the target",
    ) -> None:
        self.contract = contract
        self.month = month
        self.zone_ids = zone_ids if zone_ids is not None and len(zone_ids) else None
        self.trailing_rows = list(trailing_rows)[:TRAILING_MONTHS]
        self.notes: list[str] = []
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._lock = threading.Lock()
        names = contract.names
        self.nulls = dict.fromkeys(names, 0)
        self.ranged = [c.name for c in contract.columns if c.type in (INT, FLOAT, TIMESTAMP)]
        self.min: dict[str, Any] = dict.fromkeys(self.ranged)
        self.max: dict[str, Any] = dict.fromkeys(self.ranged)
        times = [c.name for c in contract.columns if c.type == TIMESTAMP]
        self.pickup = next((n for n in times if "pickup" in n), None)
        self.dropoff = next((n for n in times if "dropoff" in n), None)
        self.total = "total_amount" if "total_amount" in names else None
        self.zones = [n for n in ("pulocationid", "dolocationid") if n in names]
        self.counts = {
            "out_of_month": 0,
            "dropoff_before_pickup": 0,
            "negative_total": 0,
            "unknown_zone": 0,
            "over_24h": 0,
        }
        if self.zone_ids is None and self.zones:
            self.notes.append(f"zone ids not checked: no zone lookup in {zone_source} yet")
        self._zero = _scalar(FLOAT, "<d", 0.0)
        self._zone_range: tuple[pa.Scalar, pa.Scalar] | None = None
        if self.zone_ids is not None:
            low, high = pc.min_max(self.zone_ids).values()
            if high.as_py() - low.as_py() + 1 == len(self.zone_ids):  # contiguous ids
                self._zone_range = (low, high)
        if month is not None:
            self._start = _scalar(TIMESTAMP, "<q", _micros(month))
            self._end = _scalar(TIMESTAMP, "<q", _micros(_next_month(month)))

    def observe(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Pass ``batches`` on unchanged, profiling each on the way. Several streams of one
        month (parallel COPY) observe into one profile, one batch at a time."""
        for batch in batches:
            with self._lock:
                self.add(batch)
            yield batch

    def add(self, batch: pa.RecordBatch) -> None:
        """Take one batch; batches are profiled in groups of ``GROUP_ROWS`` rows."""
        self.rows += batch.num_rows
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Profile the pending batches as one table: a few kernels per column, whatever its
        length. Columns without NULLs (most) take numpy's min/max on the Arrow buffer, ~5× faster
        than ``pc.min_max`` on doubles and timestamps here."""
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending)
        self._pending, self._pending_rows = [], 0
        self._profile_columns(table)
        self._count_rules(table)

    def _profile_columns(self, table: pa.Table) -> None:
        """NULLs per column, and the lowest and highest value of the ranged ones."""
        for name in self.nulls:
            self.nulls[name] += table.column(name).null_count
        for name in self.ranged:
            low, high = _bounds(table.column(name))
            if low is not None and (self.min[name] is None or low < self.min[name]):
                self.min[name] = low
            if high is not None and (self.max[name] is None or high > self.max[name]):
                self.max[name] = high

    def _count_rules(self, table: pa.Table) -> None:
        """The rows breaking each rule the contract's columns allow (counted, not refused)."""
        counts = self.counts
        if self.pickup and self.month is not None:
            pickup = table.column(self.pickup)
            outside = pc.or_(pc.less(pickup, self._start), pc.greater_equal(pickup, self._end))
            counts["out_of_month"] += _count(outside)
        if self.pickup and self.dropoff:
            before, over = _durations(table.column(self.pickup), table.column(self.dropoff))
            counts["dropoff_before_pickup"] += before
            counts["over_24h"] += over
        if self.total:
            counts["negative_total"] += _count(pc.less(table.column(self.total), self._zero))
        if self.zones and self.zone_ids is not None:
            unknown = None
            for name in self.zones:
                bad = self._unknown(table.column(name))
                unknown = bad if unknown is None else pc.or_kleene(unknown, bad)
            counts["unknown_zone"] += _count(unknown)

    def _unknown(self, ids: pa.ChunkedArray) -> pa.ChunkedArray:
        """True where an id is not in the lookup (a NULL id is not counted)."""
        if self._zone_range is not None:  # 1..265: two comparisons, not a hash lookup
            low, high = self._zone_range
            return pc.or_(pc.less(ids, low), pc.greater(ids, high))
        return pc.and_(pc.is_valid(ids), pc.invert(pc.is_in(ids, self.zone_ids)))

    def as_dict(self) -> dict[str, Any]:
        """The profile as stored in every target's log (JSON-ready)."""
        self._flush()
        rows = self.rows
        profile: dict[str, Any] = {
            "rows": rows,
            "nulls": dict(self.nulls),
            "min": {k: _json_value(v) for k, v in self.min.items()},
            "max": {k: _json_value(v) for k, v in self.max.items()},
        }
        if self.contract.monthly:
            counts: dict[str, int | None] = dict(self.counts)
            if self.zone_ids is None:
                counts["unknown_zone"] = None
            profile.update(counts)
            out = counts["out_of_month"] or 0
            profile["out_of_month_share"] = round(out / rows, 6) if rows else 0
            profile["trailing_median_rows"] = self.trailing_median()
        profile["notes"] = list(self.notes)
        return profile

    def trailing_median(self) -> float | None:
        if len(self.trailing_rows) < MIN_TRAILING_MONTHS:
            return None
        return float(statistics.median(self.trailing_rows))

    def findings(self) -> list[Finding]:
        profile = self.as_dict()
        found = []
        for rule in RULES:
            if rule.monthly_only and not self.contract.monthly:
                continue
            message = rule.test(self, profile)
            if message:
                found.append(Finding(rule.name, rule.level, message))
        return found

    def check(self, file: str) -> list[Finding]:
        """The findings; raises ``QualityFailed`` if any is a ``fail``, before publication."""
        found = self.findings()
        failed = [f for f in found if f.level == "fail"]
        if failed:
            raise QualityFailed(file, failed, self.as_dict())
        return found


# --- the rules, in one place -------------------------------------------------------------


RuleTest = Callable[["Profile", dict[str, Any]], str | None]


@dataclass(frozen=True)
class Rule:
    name: str
    level: Level
    test: RuleTest = field(repr=False)
    monthly_only: bool = True


def _no_rows(p: Profile, d: dict[str, Any]) -> str | None:
    if d["rows"] == 0:
        return "the file has a header but no data rows; refusing to replace a month with nothing"
    return None


def _time_column_empty(p: Profile, d: dict[str, Any]) -> str | None:
    empty = [
        n
        for n in (p.pickup, p.dropoff)
        if n and _required(p, n) and d["rows"] and d["nulls"][n] == d["rows"]
    ]
    if empty:
        return f"column(s) {', '.join(empty)} NULL on every one of the {d['rows']} rows"
    return None


def _required(p: Profile, name: str) -> bool:
    """Whether the month's era has the column (fhv has no dropoff time before 2017-06)."""
    column = p.contract.column(name)
    return column is not None and column.required_in(p.month)


def _share(n: int, rows: int) -> str:
    return f"{n} of {rows} rows ({100 * n / rows:.2f}%)" if rows else f"{n} rows"


def _counted(name: str, share: float, what: str) -> Rule:
    """A ``warn`` rule on the in-stream count of the same name: a finding when more than
    ``share`` of the month's rows (0: any row at all) were counted. ``what`` may name
    ``{month}``."""

    def test(p: Profile, d: dict[str, Any]) -> str | None:
        n, rows = d.get(name, 0), d["rows"]
        if n and rows and n / rows > share:
            return f"{_share(n, rows)} {what.format(month=p.month)}"
        return None

    return Rule(name, "warn", test)


def _far_below_median(p: Profile, d: dict[str, Any]) -> str | None:
    median = d.get("trailing_median_rows")
    if median and d["rows"] < TRAILING_MEDIAN_SHARE * median:
        return (
            f"{d['rows']} rows, under {TRAILING_MEDIAN_SHARE:.0%} of the median "
            f"{median:.0f} of the previous {len(p.trailing_rows)} loaded months (truncated?)"
        )
    return None


RULES: tuple[Rule, ...] = (
    Rule("no_rows", "fail", _no_rows, monthly_only=False),
    Rule("time_column_empty", "fail", _time_column_empty),
    _counted("out_of_month", OUT_OF_MONTH_SHARE, "have a pickup outside {month:%Y-%m}"),
    _counted("dropoff_before_pickup", 0, "have their dropoff before their pickup"),
    _counted("negative_total", NEGATIVE_TOTAL_SHARE, "have a negative total_amount"),
    _counted("unknown_zone", 0, "name a zone id that is not in the zone lookup"),
    _counted("over_24h", OVER_24H_SHARE, "last more than 24 hours"),
    Rule("far_below_trailing_median", "warn", _far_below_median),
)
"""Every rule of every target. ``fail`` stops publication; ``warn`` publishes and notifies."""


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def findings_json(findings: Iterable[Finding]) -> list[dict[str, str]]:
    return [f.as_dict() for f in findings]


def lake_metadata(profile: Profile, findings: Iterable[Finding]) -> dict[str, str]:
    """The lake object's ``taxi.quality`` and ``taxi.warnings`` (JSON text)."""
    return {
        QUALITY_KEY: to_json(profile.as_dict()),
        WARNINGS_KEY: to_json(findings_json(findings)),
    }


def footer_profile(footer: Any, contract: Contract) -> dict[str, Any]:
    """The part of a profile a parquet footer's column statistics give (rows, NULLs, min/max),
    for a lake object written before profiles existed: no data is read to get it."""
    index = {footer.schema.column(i).name: i for i in range(footer.num_columns)}
    nulls: dict[str, int | None] = {}
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    ranged = {c.name for c in contract.columns if c.type in (INT, FLOAT, TIMESTAMP)}
    for name in contract.names:
        if name not in index:
            continue
        stats = [
            footer.row_group(g).column(index[name]).statistics for g in range(footer.num_row_groups)
        ]
        nulls[name] = (
            sum(s.null_count for s in stats) if all(s is not None for s in stats) else None
        )
        if name in ranged:
            bounded = [s for s in stats if s is not None and s.has_min_max]
            low[name] = _json_value(min(s.min for s in bounded)) if bounded else None
            high[name] = _json_value(max(s.max for s in bounded)) if bounded else None
    return {
        "rows": footer.num_rows,
        "nulls": nulls,
        "min": low,
        "max": high,
        "notes": ["from the parquet footer's statistics: the row-level rules were not evaluated"],
    }
