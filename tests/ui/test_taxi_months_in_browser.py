"""A person's look at the state of the data: log in, open "Taxi months" from the navigation.

The data is what real loads leave: months loaded into Postgres and the lake by the project's
own load code from generated files, a month the source published that Postgres never loaded,
a failed attempt (inserted as the loader logs one) and a quality warning on a loaded month (the
``warnings`` column part A adds to the log, added here by hand). The screenshot goes to
tests/ui/output/taxi_months.png (the README shows it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from dev.airflow_stack import AirflowStack, taxi_env
from dev.synthetic import write_month
from include.taxi.lake.load import month_to_lake
from include.taxi.months import Month
from include.taxi.postgres.load import month_to_postgres
from tests.integration.test_status_grid import _add_warnings, _insert_failed
from tests.ui.test_trigger_in_browser import OUTPUT, UI_TIMEOUT_MS, _log_in, browser  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.ui]

DAG_ID = "taxi_to_postgres"
ROWS = {"2021-01": 1_234, "2021-03": 987, "2021-04": 1_111}
YELLOW_ROWS = 2_345


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, pg_schema: str, source_server
) -> Iterator[AirflowStack]:
    """Green Jan, Mar, Apr loaded (Feb published, never loaded), Apr failed on a reload, a
    warning on Mar; the lake holds green Jan and Apr; yellow Jan everywhere."""
    base, root = source_server
    source = f"{base}/months-ui"
    lake_url = tmp_path_factory.mktemp("lake").as_uri()
    load = {"source_base": source, "conninfo": postgres_url, "schema": pg_schema}
    for month, rows in [*ROWS.items(), ("2021-02", 500)]:
        first = date(2021, int(month[5:]), 1)
        write_month(
            root / "months-ui" / "green" / f"green_tripdata_{month}.csv.gz",
            "green",
            first,
            rows,
            seed=rows,
        )
    write_month(
        root / "months-ui" / "yellow" / "yellow_tripdata_2021-01.csv.gz",
        "yellow",
        date(2021, 1, 1),
        YELLOW_ROWS,
    )
    for month in ROWS:
        month_to_postgres(
            "green", Month.parse(month), run_id=f"scheduled__{month}-01T00:00:00+00:00", **load
        )
    month_to_postgres("yellow", Month(2021, 1), run_id="manual__yellow", **load)
    for service, month in [("green", "2021-01"), ("green", "2021-04"), ("yellow", "2021-01")]:
        month_to_lake(
            service, Month.parse(month), source_base=source, lake_url=lake_url, run_id="lake_run"
        )
    _insert_failed(postgres_url, pg_schema, "green", date(2021, 4, 1), "manual__retry_april")
    _add_warnings(postgres_url, pg_schema, "green", date(2021, 3, 1))
    home = tmp_path_factory.mktemp("airflow-months-ui")
    env = {**taxi_env(postgres_url, pg_schema, source), "AIRFLOW_VAR_TAXI_LAKE_URL": lake_url}
    with AirflowStack(home, DAG_ID, env) as running:
        yield running


def test_see_the_months_in_the_ui(stack: AirflowStack, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(UI_TIMEOUT_MS)
    _log_in(page, stack)

    page.get_by_role("link", name="Taxi months").or_(
        page.get_by_role("button", name="Taxi months")
    ).first.click()
    page.wait_for_url("**/plugin/taxi-months")
    frame = page.frame_locator("iframe").first
    expect(frame.get_by_role("heading", name="Taxi months")).to_be_visible()

    def cell(service: str, month: str, target: str = "postgres"):
        return frame.locator(f"#{service} td[data-month='{month}'][data-target='{target}']")

    jan = cell("green", "2021-01")
    expect(jan).to_have_attribute("data-state", "loaded")
    expect(jan).to_contain_text("1,234")
    expect(jan.get_by_role("link")).to_have_attribute(
        "href", f"{stack.base}/dags/{DAG_ID}/runs/scheduled__2021-01-01T00%3A00%3A00%2B00%3A00"
    )
    expect(cell("green", "2021-02")).to_have_attribute("data-state", "missing")
    expect(cell("green", "2021-02")).to_contain_text("missing")
    expect(cell("green", "2021-02", "lake")).to_have_attribute("data-state", "missing")
    expect(cell("green", "2021-04")).to_have_attribute("data-state", "failed")
    expect(cell("green", "2021-04")).to_contain_text("1,111")
    expect(cell("green", "2021-03")).to_contain_text("⚠ 1")
    expect(frame.get_by_text("12 trips end first")).to_be_visible()
    expect(cell("yellow", "2021-01", "lake")).to_contain_text("2,345")
    expect(cell("yellow", "2021-01", "lake").get_by_role("link")).to_have_attribute(
        "href", f"{stack.base}/dags/taxi_to_lake/runs/lake_run"
    )
    expect(frame.locator("#green svg.chart rect")).to_have_count(3)
    # the fourth column: no taxi_models run built January's models yet
    expect(cell("green", "2021-01", "models")).to_have_attribute("data-state", "missing")

    # the run link leaves the iframe for the run's page in the UI
    jan.get_by_role("link").click()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")
    page.go_back()
    expect(
        page.frame_locator("iframe").first.get_by_role("heading", name="Taxi months")
    ).to_be_visible()

    # the screenshot of the page itself, full length (the iframe scrolls inside the UI)
    page.goto(f"{stack.base}/taxi-months/")
    expect(page.get_by_role("heading", name="Taxi months")).to_be_visible()
    shot = tmp_path / "taxi_months.png"
    page.screenshot(path=shot, full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(shot, OUTPUT / "taxi_months.png")
