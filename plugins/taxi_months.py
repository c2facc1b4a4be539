"""The "Taxi months" page in the Airflow UI: which months of which service each target holds.

An Airflow 3 plugin: a FastAPI app the api-server mounts at ``/taxi-months`` (the page, and
its data as JSON at ``/taxi-months/api/months``) and a navigation entry that shows the page in
the UI. Plugin endpoints are not protected by Airflow by default, so every route here requires
the UI's login: the same JWT (cookie ``_token`` or ``Authorization: Bearer``), checked by
Airflow's own dependencies, and permission to read DAG runs. The data logic is
``include/taxi/months_view.py``; the HTML is ``include/taxi/months_page.py``.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

URL_PREFIX = "/taxi-months"
can_read_runs = Depends(requires_access_dag("GET", DagAccessEntity.RUN))

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


@app.get("/", response_class=HTMLResponse, dependencies=[can_read_runs])
def page() -> HTMLResponse:
    from include.taxi.months_page import render
    from include.taxi.months_view import collect_configured

    return HTMLResponse(render(collect_configured(), base_url=_base_url()))


@app.get("/api/months", dependencies=[can_read_runs])
def months() -> dict[str, Any]:
    from include.taxi.months_view import collect_configured

    return collect_configured().as_json()


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
