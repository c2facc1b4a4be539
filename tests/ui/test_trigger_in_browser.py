"""A person's path through the web UI: log in, trigger one month from the Params form, watch it.

The REST e2e test proves the scheduler side; only a real browser shows that the DAG's Params
render as a usable form (a dropdown for the enum, titled fields with their descriptions) and
that what the form submits loads the intended month. Chromium is Debian's (`make browser`),
driven headless by Playwright; no browser is ever downloaded.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from psycopg import sql

from dev.airflow_env import ADMIN_USER
from dev.airflow_stack import AirflowStack, taxi_env
from dev.synthetic import write_month, write_zones

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Without the background-networking flags Chromium keeps calling home on a closed network."""
DAG_ID = "taxi_to_postgres"
GREEN_ROWS = 137
"""Not a count the REST e2e test uses, so rows from another test's file would show."""
SERVICES = ["all", "yellow", "green", "fhv", "fhvhv"]
MONTH_DESCRIPTION = "The month to load, e.g. 2021-01. Empty: the run's partition key (its month)."
RUN_TIMEOUT_S = 120
RELOAD_EVERY_S = 5
OUTPUT = Path(__file__).parent / "output"
UI_TIMEOUT_MS = 20_000
UNPAUSE_AND_TRIGGER_S = 15
"""Well under the 30 s an unpause and a trigger stalled on each other with SQLite metadata."""


@pytest.fixture
def source_url(source_server: tuple[str, Path]) -> str:
    """Green 2021-02 and the zones under a folder of their own on the session's source server.

    The server is shared with the REST e2e test, which writes other counts at the same paths.
    """
    base, root = source_server
    folder = root / "ui"
    write_month(
        folder / "green" / "green_tripdata_2021-02.csv.gz",
        "green",
        date(2021, 2, 1),
        GREEN_ROWS,
        seed=GREEN_ROWS,
    )
    write_zones(folder / "misc" / "taxi_zone_lookup.csv")
    return f"{base}/ui"


@pytest.fixture
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, pg_schema: str, source_url: str
) -> Iterator[AirflowStack]:
    home = tmp_path_factory.mktemp("airflow-ui")
    with AirflowStack(home, DAG_ID, taxi_env(postgres_url, pg_schema, source_url)) as stack:
        yield stack


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium; a missing one fails (not skips) so `make test` cannot pass silently."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make browser` (as root it installs Debian's chromium; "
            "otherwise `sudo apt-get install chromium`)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _green_rows(url: str, schema: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE source_month = %s").format(
        sql.Identifier(schema, "green_tripdata")
    )
    with psycopg.connect(url) as conn:
        return conn.execute(query, (date(2021, 2, 1),)).fetchone()[0]


def _log_in(page: Page, stack: AirflowStack) -> None:
    page.goto(stack.base)
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(stack.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _fill_trigger_form(page: Page) -> None:
    """Open the trigger dialog, check the Params' widgets, choose green 2021-02 and submit."""
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")).to_be_visible()

    service = dialog.get_by_role("combobox", name="Service")
    service.click()
    options = dialog.get_by_role("option")
    expect(options).to_have_text(SERVICES)
    dialog.get_by_role("option", name="green", exact=True).click()
    expect(dialog.locator("input[type=hidden][name=element_service]")).to_have_value("green")

    month_field = dialog.get_by_role("group").filter(
        has=page.get_by_text("Month (YYYY-MM)", exact=True)
    )
    expect(month_field.get_by_text(MONTH_DESCRIPTION)).to_be_visible()
    month_field.get_by_role("textbox").fill("2021-02")

    # A partitioned DAG (Airflow 3.3.2's form): no logical date field, and under Advanced
    # Options a Partition Key field, left empty: the month Param says which month to load.
    expect(dialog.get_by_test_id("datetime-input")).to_have_count(0)
    dialog.get_by_role("button", name="Advanced Options").click()
    expect(dialog.get_by_role("textbox", name="Partition Key")).to_have_value("")

    # The DAG is still paused (new DAGs are): the dialog's own "unpause on trigger" sends its
    # PATCH together with the trigger's POST. On a SQLite metadata DB the two could wait on
    # each other for a 30 s busy timeout; `make run` and this stack keep it in PostgreSQL.
    unpause = dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")
    expect(unpause).to_be_visible()
    if not unpause.is_checked():
        unpause.check()
    dialog.get_by_role("button", name="Trigger", exact=True).click()


def _wait_for_success(page: Page, stack: AirflowStack, run_id: str) -> str:
    """Reload the run's page until its state badge is terminal; the badge's text at the end."""
    badge = page.get_by_test_id("state-badge").first
    deadline = time.monotonic() + RUN_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        stack.fail_on_task_trouble([run_id])
        state = badge.inner_text(timeout=UI_TIMEOUT_MS).strip()
        if state.lower() in {"success", "failed"}:
            return state
        page.wait_for_timeout(RELOAD_EVERY_S * 1000)
        page.reload()
    pytest.fail(stack.explain(f"the UI still shows {state!r} after {RUN_TIMEOUT_S} s"))


def test_trigger_green_month_from_the_ui(
    stack: AirflowStack,
    browser: Browser,
    postgres_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    """Trigger green 2021-02 through the Params form and see the run succeed and load it."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT_MS)
    _log_in(page, stack)
    page.goto(f"{stack.base}/dags/{DAG_ID}")
    expect(page.get_by_role("heading", name=DAG_ID, exact=True)).to_be_visible()

    _fill_trigger_form(page)
    clicked = time.monotonic()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")
    waited = time.monotonic() - clicked
    assert waited < UNPAUSE_AND_TRIGGER_S, f"unpause + trigger took {waited:.0f} s (a lock wait?)"
    run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])
    expect(page.get_by_text(run_id).first).to_be_visible()
    this_run = [f"run_id={run_id}/"]

    state = _wait_for_success(page, stack, run_id)
    shot = tmp_path / "trigger.png"
    page.screenshot(path=shot, full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(shot, OUTPUT / "trigger.png")
    assert state.lower() == "success", stack.explain(f"run {run_id}: {state}", this_run)

    run = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()
    assert run["state"] == "success", stack.explain(f"REST says {run}", this_run)
    assert run["conf"]["service"] == "green", run["conf"]
    assert run["conf"]["month"] == "2021-02", run["conf"]
    assert run["logical_date"] is None, run
    assert run["partition_key"] is None, run
    rows = _green_rows(postgres_url, pg_schema)
    assert rows == GREEN_ROWS, stack.explain(f"green 2021-02 rows: {rows}", this_run)
