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
from pathlib import Path
from typing import Any

from include.taxi import redact
from include.taxi.errors import SourceNotPublished
from include.taxi.months import Month
from include.taxi.services import Service
from include.taxi.settings import VAR_SOURCE, VAR_SOURCE_URL, VAR_TLC_URL
from include.taxi.source_version import SourceVersion
from include.taxi.sources import http
from include.taxi.sources.reader import CSV_GZ, PARQUET

MIRROR = "mirror"
TLC = "tlc"
KINDS = (MIRROR, TLC)

TLC_FIRST_MONTH: dict[Service, Month] = {
    Service.YELLOW: Month(2009, 1),
    Service.GREEN: Month(2013, 8),
    Service.FHV: Month(2015, 1),
    Service.FHVHV: Month(2019, 2),
}
MIRROR_MONTHS: dict[Service, tuple[Month, Month]] = {
    Service.YELLOW: (Month(2019, 1), Month(2021, 7)),
    Service.GREEN: (Month(2019, 1), Month(2021, 7)),
    Service.FHV: (Month(2019, 1), Month(2021, 12)),
}
"""What the course mirror holds (shared FACTS, "approx."): only used to word a skip message;
a mirror elsewhere (``taxi_source_url``) may hold more, so it is always asked."""
ZONES_FILE = "taxi_zone_lookup.csv"
TLC_FORBIDDEN_RETRIES = 3
"""CloudFront answers 403 both for an object that does not exist and when it throttles bulk
access: a 403 is retried with backoff this many times, then taken as "not published"."""


def _span(first: Month, last: Month) -> str:
    return f"{first}..{last}"


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

    def file_name(self, service: Service, month: Month) -> str:
        return f"{service}_tripdata_{month}.{self.format}"

    def url(self, service: Service, month: Month) -> str:
        """The file's URL as it may be stored and shown (no credentials)."""
        return self._url(self.base, service, month)

    def zones_url(self) -> str:
        """The zone lookup's URL (no credentials): one csv for every month, on both sources."""
        return self._zones_url(self.base)

    def _url(self, base: str, service: Service, month: Month) -> str:
        folder = "trip-data" if self.kind == TLC else service
        return f"{base.rstrip('/')}/{folder}/{self.file_name(service, month)}"

    @staticmethod
    def _zones_url(base: str) -> str:
        return f"{base.rstrip('/')}/misc/{ZONES_FILE}"

    def missing_hint(self, service: Service, month: Month) -> str:
        """Where else ``service``'s ``month`` may be, for a skip message."""
        first = TLC_FIRST_MONTH.get(service)
        if self.kind == MIRROR:
            held = MIRROR_MONTHS.get(service)
            has = f"has {service} {_span(*held)}" if held else f"has no {service} files"
            return (
                f"The course mirror ({VAR_SOURCE}={MIRROR}, {VAR_SOURCE_URL}) {has}; the TLC "
                f"publishes {service} from {first or '?'} on as parquet: "
                f"set the Variable {VAR_SOURCE} to {TLC}"
            )
        hint = (
            f"The TLC ({VAR_SOURCE}={TLC}, {VAR_TLC_URL}) publishes {service} from "
            f"{first or '?'} on, about two months after the month ends"
        )
        held = MIRROR_MONTHS.get(service)
        if held and held[0] <= month <= held[1]:
            hint += f"; the course mirror has {month}: set the Variable {VAR_SOURCE} to {MIRROR}"
        elif held:
            hint += f"; the course mirror ({VAR_SOURCE}={MIRROR}) has only {_span(*held)}"
        else:
            hint += f"; the course mirror ({VAR_SOURCE}={MIRROR}) has no {service} files"
        return hint

    def check_month(self, service: Service, month: Month) -> None:
        """Skip (SourceNotPublished) before any request a month this source cannot have."""
        if self.kind != TLC:
            return
        first = TLC_FIRST_MONTH[service]
        if month < first:
            raise SourceNotPublished(
                self.url(service, month),
                answer=f"cannot exist (the TLC's first {service} month is {first})",
                hint=self.missing_hint(service, month),
            )

    def probe(
        self,
        service: Service,
        month: Month,
        *,
        limits: http.DownloadLimits = http.DEFAULT_LIMITS,
        deadline: float = 120.0,
    ) -> SourceVersion | None:
        self.check_month(service, month)
        return http.probe(
            self._url(self._fetch_base, service, month),
            limits=limits,
            deadline=deadline,
            **self._options(self.missing_hint(service, month)),
        )

    def download(
        self,
        service: Service,
        month: Month,
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
            **self._options(self.missing_hint(service, month)),
        )

    def download_zones(
        self, folder: Path, *, limits: http.DownloadLimits = http.DEFAULT_LIMITS
    ) -> http.Download:
        """The zone lookup, into ``folder``."""
        return http.download(
            self._zones_url(self._fetch_base),
            folder / ZONES_FILE,
            limits=limits,
            **self._options(""),
        )

    def _options(self, hint: str) -> dict[str, Any]:
        if self.kind == TLC:
            return {"forbidden_is_missing": True, "hint": hint, "retries": TLC_FORBIDDEN_RETRIES}
        return {"hint": hint}
