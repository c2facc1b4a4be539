"""Rows per month per target, from the ingestion logs (never from the trip tables).

``make report SERVICE=green YEAR=2020`` prints one line per month, starting with ``YYYY-MM``
(the course's homework asks for these counts), and a column per configured target
(``status.targets.configured``: Postgres, the lake, BigQuery). A month a target never loaded
shows ``-``; one whose latest attempt failed shows ``failed`` (beside the rows of its last
successful load, kept, if any). Each target's log is read by its own reader, the one the Taxi
months page reads, so the report and the page cannot disagree; reading the logs is fast
whatever the size of the tables.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from include.taxi.contract import contract_for
from include.taxi.load_record import FAILED, IngestionLog, TargetLog
from include.taxi.months import Month
from include.taxi.status.grid import LOAD_TARGETS
from include.taxi.status.targets import configured

log = logging.getLogger(__name__)

Counts = dict[str, int]
"""``YYYY-MM`` → rows in the target after its last successful load."""
Failed = set[str]
"""``YYYY-MM`` of the months whose latest attempt failed."""


def _months(year: int) -> list[Month]:
    return Month.span(Month(year, 1), Month(year, 12))


def counts(found: TargetLog, service: str, year: int) -> Counts:
    """The rows each month of ``service``'s ``year`` held after its latest successful load."""
    return {
        str(month): record.rows
        for (logged, month), record in found.loads.items()
        if logged == service and month.year == year and record.rows is not None
    }


def failed(found: TargetLog, service: str, year: int) -> Failed:
    """The months of ``service``'s ``year`` whose latest attempt failed."""
    return {
        str(month)
        for (logged, month), record in found.latest.items()
        if logged == service and month.year == year and record.status == FAILED
    }


def _cell(rows: int | None, failed: bool) -> str:
    shown = "-" if rows is None else str(rows)
    if not failed:
        return shown
    return "failed" if rows is None else f"{shown} (failed)"


def render(
    service: str, year: int, columns: dict[str, Counts], failed: dict[str, Failed] | None = None
) -> list[str]:
    """The report's lines: a header, then one line per month starting with ``YYYY-MM``."""
    names = list(columns)
    failed = failed or {}
    cells = {
        str(month): [
            _cell(columns[n].get(str(month)), str(month) in failed.get(n, set())) for n in names
        ]
        for month in _months(year)
    }
    width = max(
        [12, *(len(n) + 2 for n in names), *(len(c) + 2 for r in cells.values() for c in r)]
    )
    lines = ["month  " + "".join(f"{n:>{width}}" for n in names)]
    for key, row in cells.items():
        lines.append(key + "  " + "".join(f"{c:>{width}}" for c in row))
    totals = [sum(c.values()) for c in columns.values()]
    lines.append(f"total    {''.join(f'{t:>{width}}' for t in totals)}")
    lines.append(f"({service}, rows per source month after the last successful load of each)")
    if any(failed.values()):
        lines.append(
            "(failed: the month's latest attempt failed; rows beside it are from its last "
            "successful load, kept as they were)"
        )
    return lines


def report(service: str, year: int, logs: Mapping[str, IngestionLog]) -> list[str]:
    """Ask every configured target; a target that cannot be read is named, not fatal."""
    contract_for(service)
    columns: dict[str, Counts] = {}
    failures: dict[str, Failed] = {}
    for name, reader in logs.items():
        try:
            found = reader.records()
        except Exception as exc:
            log.warning("%s: cannot read its log (%s: %s)", name, type(exc).__name__, exc)
            columns[f"{name}?"] = {}
            continue
        columns[name], failures[name] = counts(found, service, year), failed(found, service, year)
    return render(service, year, columns, failures)


def main(argv: Sequence[str]) -> int:
    """``python -m include.taxi.status.report SERVICE YEAR`` (``make report`` sets up the env)."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: make report SERVICE=green YEAR=2020")
        return 2
    service, year = argv[0], int(argv[1])
    try:
        contract_for(service)
    except ValueError as exc:
        print(exc)
        return 2
    for line in report(service, year, configured(LOAD_TARGETS)):
        print(line)
    return 0


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sys.exit(main(sys.argv[1:]))
