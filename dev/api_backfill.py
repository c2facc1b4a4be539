"""`make backfill`: a backfill created through the running Airflow's REST API.

`airflow backfill create` writes its runs into the metadata DB itself, racing the scheduler,
the dag-processor and the api-server that write there too. Asking the api-server instead
(``POST /api/v2/backfills``) needs only its URL and the login `make run` printed, works with
any metadata DB, and says so when no Airflow is running. The months come from the same
request's dry run, so what is printed is what the scheduler will run.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests

from include.taxi.months import Month

PARSE_WAIT_S = 120.0
REPROCESS = ("none", "failed", "completed")


class ApiError(SystemExit):
    """A failure the user can act on, as the message `make backfill` exits with."""


@dataclass(frozen=True)
class BackfillRequest:
    """What `make backfill` asks for: the DAG, the month range (``YYYY-MM``) and options."""

    dag_id: str
    first: str
    last: str
    service: str | None = None
    reprocess: str = "none"
    newest_first: bool = False
    force_reload: bool = False
    max_active_runs: int = 2

    def conf(self) -> dict[str, Any]:
        """The runs' conf: the DAGs' Params ``service`` and ``force_reload``, when given."""
        conf: dict[str, Any] = {"service": self.service} if self.service else {}
        if self.force_reload:
            conf["force_reload"] = True
        return conf

    def body(self) -> dict[str, Any]:
        """The body of ``POST /api/v2/backfills`` (and of its dry run)."""
        if self.reprocess not in REPROCESS:
            raise ApiError(f"REPROCESS={self.reprocess!r}: expected one of {', '.join(REPROCESS)}")
        try:
            first, last = Month.parse(self.first), Month.parse(self.last)
        except ValueError as exc:
            raise ApiError(f"make backfill: {exc}") from None
        if last < first:
            raise ApiError(f"make backfill: TO={self.last} is before FROM={self.first}")
        current = Month.of(date.today())
        if last >= current:
            # A partitioned DAG's backfill runs every month of the range at once: Airflow 3.3.2
            # does not hold back a month still in progress (a data-interval backfill did).
            raise ApiError(
                f"make backfill: TO={self.last} is not over yet; the latest complete month is "
                f"{current.shift(-1)}"
            )
        return {
            "dag_id": self.dag_id,
            "from_date": f"{first.first_day.isoformat()}T00:00:00Z",
            "to_date": f"{end_of(last.first_day).isoformat()}T00:00:00Z",
            "run_backwards": self.newest_first,
            "dag_run_conf": self.conf(),
            "reprocess_behavior": self.reprocess,
            "max_active_runs": self.max_active_runs,
        }


class AirflowApi:
    """The running Airflow's REST API, logged in as the local admin."""

    def __init__(self, base_url: str, timeout_s: float = 60) -> None:
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(
                method, f"{self.base}{path}", timeout=self.timeout_s, **kwargs
            )
        except requests.ConnectionError:
            raise ApiError(
                f"make backfill: no Airflow answers at {self.base}. Start it first with "
                "`make run` in another terminal (the same AIRFLOW_HOME and AIRFLOW__API__PORT)."
            ) from None

    def login(self, user: str, password: str) -> None:
        resp = self.call("POST", "/auth/token", json={"username": user, "password": password})
        if resp.status_code not in (200, 201):
            raise ApiError(
                f"make backfill: the Airflow at {self.base} refused the login of {user!r} "
                f"({resp.status_code}): is it the `make run` of this AIRFLOW_HOME?"
            )
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def wait_for_dag(self, dag_id: str, timeout_s: float = PARSE_WAIT_S) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it (right after `make run` starts)."""
        deadline = time.monotonic() + timeout_s
        said = False
        while (resp := self.call("GET", f"/api/v2/dags/{dag_id}")).status_code == 404:
            if time.monotonic() > deadline:
                known = self.call("GET", "/api/v2/dags", params={"limit": 100}).json()
                names = sorted(d["dag_id"] for d in known.get("dags", []))
                raise ApiError(f"make backfill: no DAG {dag_id!r}; the DAGs are {names}")
            if not said:
                print(f"waiting for the dag-processor to parse {dag_id} ...", flush=True)
                said = True
            time.sleep(2)
        resp.raise_for_status()
        return dict(resp.json())


def backfill(api: AirflowApi, request: BackfillRequest, *, dry_run: bool = False) -> int:
    """Create the backfill (or only show it); prints its id, months and where to watch it."""
    body = request.body()
    dag = api.wait_for_dag(request.dag_id)
    if dag.get("timetable_partitioned") and not dag.get("timetable_periodic"):
        return trigger_partitions(api, request, dag, dry_run=dry_run)
    planned = api.call("POST", "/api/v2/backfills/dry_run", json=body)
    _check(planned, request)
    months = [_label(run) for run in planned.json()["backfills"]]
    scope = f"service {request.service}" if request.service else "all services"
    if request.force_reload:
        scope += ", force_reload"
    if not _go_ahead(api, request, dag, months, dry_run=dry_run, would=f"create {{}} ({scope})"):
        return 0
    created = api.call("POST", "/api/v2/backfills", json=body)
    _check(created, request)
    ident = created.json()["id"]
    print(
        f"backfill {ident} of {request.dag_id} created: {len(months)} runs ({scope}), "
        f"{request.max_active_runs} at a time{', newest first' if request.newest_first else ''}\n"
        f"  months: {' '.join(months)}\n"
        f"  watch:  {api.base}/dags/{request.dag_id} (the backfill banner, and its runs)\n"
        f"          {api.base}/taxi-months/ (the rows each month landed)\n"
        "  cancel: the banner's cancel button"
    )
    return 0


def trigger_partitions(
    api: AirflowApi, request: BackfillRequest, dag: dict[str, Any], *, dry_run: bool
) -> int:
    """An asset-partitioned DAG (lake_to_bigquery): Airflow 3.3.2 cannot backfill a DAG whose
    schedule is not periodic, so a run per month is triggered with the month as its partition
    key. REPROCESS and NEWEST_FIRST mean what they mean for a backfill; the DAG's own
    ``max_active_runs`` paces them."""
    months = [str(m) for m in Month.span(Month.parse(request.first), Month.parse(request.last))]
    held = _partition_states(api, request.dag_id)
    rerun = {"none": set(), "failed": {"failed"}, "completed": {"failed", "success"}}
    todo = [m for m in months if m not in held or held[m] & rerun[request.reprocess]]
    todo = todo[::-1] if request.newest_first else todo
    if not _go_ahead(api, request, dag, todo, dry_run=dry_run, would="trigger {}"):
        return 0
    stamp = int(time.time())
    for month in todo:
        body = {
            "dag_run_id": f"backfill_{month}_{stamp}",
            "logical_date": None,
            "partition_key": month,
            "conf": request.conf(),
        }
        _check(api.call("POST", f"/api/v2/dags/{request.dag_id}/dagRuns", json=body), request)
    print(
        f"triggered {len(todo)} runs of {request.dag_id} (Airflow cannot backfill an "
        f"asset-scheduled DAG: a run per month, keyed by it)\n  months: {' '.join(todo)}\n"
        f"  watch:  {api.base}/dags/{request.dag_id}"
    )
    return 0


def _go_ahead(
    api: AirflowApi,
    request: BackfillRequest,
    dag: dict[str, Any],
    months: list[str],
    *,
    dry_run: bool,
    would: str,
) -> bool:
    """The steps a backfill and a run per partition share: say there is nothing to do, or what
    a dry run would do (``would``: e.g. ``"trigger {}"``, the runs in the braces), or unpause
    the DAG (its scheduler-made runs start too) and go ahead."""
    if not months:
        print(
            f"nothing to create: every month of {request.dag_id} from {request.first} to "
            f"{request.last} already has a run (REPROCESS=failed or REPROCESS=completed reruns "
            "them)"
        )
        return False
    if dry_run:
        runs = would.format(f"{len(months)} runs of {request.dag_id}")
        print(f"would {runs}: {' '.join(months)}")
        return False
    if dag.get("is_paused"):
        api.call("PATCH", f"/api/v2/dags/{request.dag_id}", json={"is_paused": False})
        print(f"unpaused {request.dag_id} (its own schedule runs from now on too)")
    return True


def _partition_states(api: AirflowApi, dag_id: str) -> dict[str, set[str]]:
    """The states of each partition key's runs of ``dag_id``."""
    states: dict[str, set[str]] = {}
    offset = 0
    while True:
        params = {"limit": 100, "offset": offset}
        page = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params).json()
        for run in page["dag_runs"]:
            if run.get("partition_key"):
                states.setdefault(run["partition_key"], set()).add(run["state"])
        offset += len(page["dag_runs"])
        if not page["dag_runs"] or offset >= page["total_entries"]:
            return states


def _label(run: dict[str, Any]) -> str:
    """A planned run as the month it loads: its partition key, else its logical date's month."""
    if run.get("partition_key"):
        return str(run["partition_key"])
    return str(run["logical_date"])[:7]


def _check(resp: requests.Response, request: BackfillRequest) -> None:
    if resp.status_code == 409:
        raise ApiError(
            f"make backfill: a backfill of {request.dag_id} is still running; wait for it or "
            "cancel it (the banner on the DAG's page), then try again"
        )
    if resp.status_code >= 400:
        raise ApiError(f"make backfill: Airflow answered {resp.status_code}: {resp.text[:500]}")


def end_of(month: date) -> date:
    """The last day of ``month``: a backfill's ``to_date`` covers the whole month."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])
