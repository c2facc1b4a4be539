"""The "Taxi months" page in the Airflow UI: which months of which service each target holds.

An Airflow 3 plugin: a FastAPI app the api-server mounts at ``/taxi-months`` (the page, and
its data as JSON at ``/taxi-months/api/months``) and a navigation entry that shows the page in
the UI. Plugin endpoints are not protected by Airflow by default, so every route here requires
the UI's login: the same JWT (cookie ``_token`` or ``Authorization: Bearer``), checked by
Airflow's own dependency (``get_user``). Each target's column is shown only to a user the auth
manager lets read the runs of the DAG that writes it (``taxi_to_postgres``, ``taxi_to_lake``,
``lake_to_bigquery``): with a DAG-level auth manager (FAB, Keycloak, multi-team) a user who may
read other DAGs only gets 403. Nothing the caller sends (such as ``?dag_id=``) picks the DAGs
checked. The data logic is ``include/taxi/status/`` (``grid.py`` decides, ``targets.py``
reads the configured targets' logs); the HTML is ``include/taxi/status/page.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

URL_PREFIX = "/taxi-months"

app = FastAPI(title="Taxi months", docs_url=None, redoc_url=None, openapi_url=None)


def _base_url() -> str:
    return conf.get("api", "base_url", fallback="").rstrip("/")


@app.exception_handler(HTTPException)
async def _login_first(request: Request, exc: HTTPException) -> Response:
    """A browser without a valid login goes to the login page (and back); the API gets 401."""
    if exc.status_code == status.HTTP_401_UNAUTHORIZED and not request.url.path.startswith(
        f"{URL_PREFIX}/api/"
    ):
        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login if "://" in login else f"{_base_url()}{login}")
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def readable_targets(user: GetUserDep) -> tuple[str, ...]:
    """The targets whose DAG's runs ``user`` may read (the page shows runs and their rows);
    403 if none. The DAG ids are the project's own, never taken from the request."""
    from include.taxi.status.grid import DAG_OF_TARGET

    teams: dict[str, str | None] = {}
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        teams = DagModel.get_dag_id_to_team_name_mapping(list(DAG_OF_TARGET.values()))
    auth = get_auth_manager()
    allowed = tuple(
        target
        for target, dag_id in DAG_OF_TARGET.items()
        if auth.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=teams.get(dag_id)),
            user=user,
        )
    )
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Forbidden: reading the runs of {', '.join(DAG_OF_TARGET.values())} is needed",
        )
    return allowed


ReadableTargets = Annotated[tuple[str, ...], Depends(readable_targets)]


@app.get("/", response_class=HTMLResponse)
def page(targets: ReadableTargets) -> HTMLResponse:
    from include.taxi.status.page import render
    from include.taxi.status.targets import collect_configured

    return HTMLResponse(render(collect_configured(targets), base_url=_base_url()))


@app.get("/api/months")
def months(targets: ReadableTargets) -> dict[str, Any]:
    from include.taxi.status.targets import collect_configured

    return collect_configured(targets).as_json()


class TaxiMonthsPlugin(AirflowPlugin):
    name = "taxi_months"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares these as instance attributes)
        {"app": app, "url_prefix": URL_PREFIX, "name": "Taxi months"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Taxi months",
            "href": "taxi-months/",
            "destination": "nav",
            "url_route": "taxi-months",
        }
    ]
