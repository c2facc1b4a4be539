"""Which source a month comes from: the course mirror (csv.gz) or the TLC itself (parquet).

``taxi_source`` picks one (settings.VAR_SOURCE). Each lays its files out its own way:

* mirror: ``{taxi_source_url}/{service}/{service}_tripdata_{YYYY-MM}.csv.gz`` (GitHub releases;
  yellow/green 2019-01..2021-07, fhv 2019-01..2021-12, no fhvhv: shared FACTS);
* tlc: ``{taxi_tlc_url}/trip-data/{service}_tripdata_{YYYY-MM}.parquet`` (one flat folder),
  from each service's first month (yellow 2009-01, green 2013-08, fhv 2015-01, fhvhv 2019-02),
  published with a lag of about two months.

Both serve the zones at ``{base}/misc/taxi_zone_lookup.csv``. A month a source cannot have is
skipped with a message naming the other source, never failed: the user picked the wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from include.taxi import redact
from include.taxi.contract import ZONES, contract_for
from include.taxi.errors import SourceNotPublished
from include.taxi.months import month_name, parse_month
from include.taxi.settings import VAR_SOURCE, VAR_SOURCE_URL, VAR_TLC_URL
from include.taxi.source_version import SourceVersion
from include.taxi.sources import http
from include.taxi.sources.reader import CSV_GZ, PARQUET

MIRROR = "mirror"
TLC = "tlc"
KINDS = (MIRROR, TLC)

TLC_FIRST_MONTH = {
    "yellow": date(2009, 1, 1),
    "green": date(2013, 8, 1),
    "fhv": date(2015, 1, 1),
    "fhvhv": date(2019, 2, 1),
}
MIRROR_MONTHS = {
    "yellow": (date(2019, 1, 1), date(2021, 7, 1)),
    "green": (date(2019, 1, 1), date(2021, 7, 1)),
    "fhv": (date(2019, 1, 1), date(2021, 12, 1)),
}
"""What the course mirror holds (shared FACTS, "approx."): only used to word a skip message;
a mirror elsewhere (``taxi_source_url``) may hold more, so it is always asked."""
TLC_FORBIDDEN_RETRIES = 3
"""CloudFront answers 403 both for an object that does not exist and when it throttles bulk
access: a 403 is retried with backoff this many times, then taken as "not published"."""


def _span(first: date, last: date) -> str:
    return f"{month_name(first)}..{month_name(last)}"


@dataclass(frozen=True)
class Source:
    """One source of trip files: its kind (``mirror`` or ``tlc``) and base URL.

    A base URL may hold ``user:password@`` (requests sends it as Basic auth): ``base`` and
    ``url()`` are the public form (redact.public_url), the only one stored or shown; the
    credentials stay in a private copy that only ``download`` and ``probe`` use."""

    kind: str
    base: str
    _fetch_base: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"Variable {VAR_SOURCE} is {self.kind!r}: use {MIRROR} (the course's csv.gz "
                f"mirror) or {TLC} (the TLC's own parquet files)"
            )
        object.__setattr__(self, "_fetch_base", self.base)
        object.__setattr__(self, "base", redact.public_url(self.base))

    @property
    def format(self) -> str:
        return PARQUET if self.kind == TLC else CSV_GZ

    def file_name(self, service: str, month: str) -> str:
        if service == ZONES:
            return "taxi_zone_lookup.csv"
        contract_for(service)
        return f"{service}_tripdata_{month}.{self.format}"

    def url(self, service: str, month: str) -> str:
        """The file's URL as it may be stored and shown (no credentials)."""
        return self._url(self.base, service, month)

    def _url(self, base: str, service: str, month: str) -> str:
        base = base.rstrip("/")
        if service == ZONES:
            return f"{base}/misc/{self.file_name(ZONES, '')}"
        folder = "trip-data" if self.kind == TLC else service
        return f"{base}/{folder}/{self.file_name(service, month)}"

    def missing_hint(self, service: str, month: str) -> str:
        """Where else ``service``'s ``month`` may be, for a skip message."""
        first = TLC_FIRST_MONTH.get(service)
        if self.kind == MIRROR:
            held = MIRROR_MONTHS.get(service)
            has = f"has {service} {_span(*held)}" if held else f"has no {service} files"
            return (
                f"The course mirror ({VAR_SOURCE}={MIRROR}, {VAR_SOURCE_URL}) {has}; the TLC "
                f"publishes {service} from {month_name(first) if first else '?'} on as parquet: "
                f"set the Variable {VAR_SOURCE} to {TLC}"
            )
        day = parse_month(month)
        hint = (
            f"The TLC ({VAR_SOURCE}={TLC}, {VAR_TLC_URL}) publishes {service} from "
            f"{month_name(first) if first else '?'} on, about two months after the month ends"
        )
        held = MIRROR_MONTHS.get(service)
        if held and held[0] <= day <= held[1]:
            hint += f"; the course mirror has {month}: set the Variable {VAR_SOURCE} to {MIRROR}"
        elif held:
            hint += f"; the course mirror ({VAR_SOURCE}={MIRROR}) has only {_span(*held)}"
        else:
            hint += f"; the course mirror ({VAR_SOURCE}={MIRROR}) has no {service} files"
        return hint

    def check_month(self, service: str, month: str) -> None:
        """Skip (SourceNotPublished) before any request a month this source cannot have."""
        if service == ZONES or self.kind != TLC:
            return
        first = TLC_FIRST_MONTH[service]
        if parse_month(month) < first:
            raise SourceNotPublished(
                self.url(service, month),
                answer=f"cannot exist (the TLC's first {service} month is {month_name(first)})",
                hint=self.missing_hint(service, month),
            )

    def probe(
        self,
        service: str,
        month: str,
        *,
        limits: http.DownloadLimits = http.DEFAULT_LIMITS,
        deadline: float = 120.0,
    ) -> SourceVersion | None:
        self.check_month(service, month)
        return http.probe(
            self._url(self._fetch_base, service, month),
            limits=limits,
            deadline=deadline,
            **self._options(service, month),
        )

    def download(
        self,
        service: str,
        month: str,
        folder: Path,
        *,
        limits: http.DownloadLimits = http.DEFAULT_LIMITS,
    ) -> http.Download:
        self.check_month(service, month)
        dest = folder / self.file_name(service, month)
        return http.download(
            self._url(self._fetch_base, service, month),
            dest,
            limits=limits,
            **self._options(service, month),
        )

    def _options(self, service: str, month: str) -> dict[str, Any]:
        hint = "" if service == ZONES else self.missing_hint(service, month)
        if self.kind == TLC:
            return {"forbidden_is_missing": True, "hint": hint, "retries": TLC_FORBIDDEN_RETRIES}
        return {"hint": hint}
