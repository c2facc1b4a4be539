"""The "Taxi months" plugin inside a real api-server: mounted, listed, and behind the login.

Plugin endpoints are not protected by Airflow unless the plugin does it; this test is what
proves ours does: anonymous and forged requests are refused, the UI's own token is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests

from dev.airflow_stack import AirflowStack, taxi_env
from dev.synthetic import write_month
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres

pytestmark = pytest.mark.e2e

DAG_ID = "taxi_to_postgres"
ROWS = 321


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    pg_schema: str,
    source_server,
) -> Iterator[AirflowStack]:
    base, root = source_server
    path = root / "plugin" / "green" / "green_tripdata_2021-05.csv.gz"
    write_month(path, "green", date(2021, 5, 1), ROWS)
    month_to_postgres(
        "green",
        Month(2021, 5),
        source_base=f"{base}/plugin",
        conninfo=postgres_url,
        schema=pg_schema,
        run_id="manual__plugin_test",
    )
    home = tmp_path_factory.mktemp("airflow-plugin")
    env = taxi_env(postgres_url, pg_schema, f"{base}/plugin")
    with AirflowStack(home, DAG_ID, env) as running:
        yield running


def test_the_page_needs_the_ui_login(stack: AirflowStack) -> None:
    anonymous = requests.Session()
    page = anonymous.get(f"{stack.base}/taxi-months/", allow_redirects=False, timeout=30)
    assert page.status_code in (302, 303, 307), stack.explain(f"anonymous page: {page.text}")
    assert "/auth/login" in page.headers["location"], page.headers
    assert "taxi-months" in page.headers["location"], "the login sends the user back here"
    data = anonymous.get(f"{stack.base}/taxi-months/api/months", timeout=30)
    assert data.status_code == 401, data.text
    assert "green" not in data.text
    forged = anonymous.get(
        f"{stack.base}/taxi-months/api/months",
        headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.e30.forged"},
        timeout=30,
    )
    assert forged.status_code in (401, 403), forged.text
    cookie = anonymous.get(
        f"{stack.base}/taxi-months/api/months", cookies={"_token": "forged"}, timeout=30
    )
    assert cookie.status_code in (401, 403), cookie.text

    # the token Airflow gives a user: the Bearer header (REST clients) and the cookie (the UI)
    ok = stack.api("GET", "/taxi-months/api/months")
    assert ok.status_code == 200, stack.explain(f"authenticated: {ok.status_code} {ok.text}")
    (green,) = [s for s in ok.json()["services"] if s["service"] == "green"]
    (may,) = green["months"]
    assert may["month"] == "2021-05"
    assert may["cells"]["postgres"]["state"] == "loaded"
    assert may["cells"]["postgres"]["rows"] == ROWS
    assert may["cells"]["postgres"]["run_id"] == "manual__plugin_test"
    token = stack.session.headers["Authorization"].split(" ", 1)[1]
    html = requests.get(f"{stack.base}/taxi-months/", cookies={"_token": token}, timeout=30)
    assert html.status_code == 200, html.text[:500]
    assert f"{ROWS:,}" in html.text
    assert f"/dags/{DAG_ID}/runs/manual__plugin_test" in html.text

    # and the UI knows its navigation entry (one stack for both: starting one takes ~30 s)
    plugins = stack.api("GET", "/api/v2/plugins").json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "taxi_months"]
    assert ours["fastapi_apps"][0]["url_prefix"] == "/taxi-months"
    (view,) = ours["external_views"]
    assert (view["name"], view["href"], view["url_route"]) == (
        "Taxi months",
        "taxi-months/",
        "taxi-months",
    )
