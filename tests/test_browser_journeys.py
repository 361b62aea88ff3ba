"""A new user's journeys through the web UI, in Debian's Chromium (Playwright), against a real daemon that follows a
real git repository. Each test asserts what the user sees (text, roles, accessible names), acts as a user does
(links, buttons, the keyboard, the forms, the API token dialog) and saves a screenshot of each page it visits at
both widths and in both themes (test-artifacts/screenshots/).

Nothing waits on a clock: a run that must still be running while the user watches waits for a gate file that the
test creates when the user has seen what it shows first.

Where Chromium is absent, every test here skips, saying how to get it (tests/browser.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import new_page, shoot_everywhere
from daemon_harness import Daemon, running_daemon
from gitservers import GitRepo
from playwright.sync_api import Browser, Page, expect

TOKEN = "journey-api-token"
NEVER = "1h"
"""The source's poll interval: longer than the tests, so only the watcher applies a commit."""


def orders_flow(gates: Path) -> str:
    return f"""\
id: orders
namespace: acme.shop
description: Counts the day's orders and reports them.
inputs:
  - id: day
    type: STRING
    defaults: monday
  - id: batches
    type: INT
    description: How many batches to count
  - id: region
    type: SELECT
    values: [north, south]
    defaults: north
tasks:
  - id: start
    type: io.kestra.plugin.core.log.Log
    message: "counting {{{{ inputs.batches }}}} batches for {{{{ inputs.day }}}} in {{{{ inputs.region }}}}"
  - id: each_batch
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: count
        type: io.kestra.plugin.core.debug.Return
        format: "batch {{{{ taskrun.value }}}}"
  - id: wait_for_gate
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    timeout: PT5M
    commands:
      - while [ ! -e '{gates}/{{{{ inputs.day }}}}' ]; do sleep 0.05; done
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "orders counted for {{{{ inputs.day }}}}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
"""


LONG_SLEEP = """\
id: long_sleep
namespace: acme.ops
description: Sleeps for an hour, so that someone can kill it.
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
"""


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a run of `orders` waits for the file named by its `day` input."""
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, gates: Path) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("journeys") / "work")
    repo.commit(
        {"flows/shop/orders.yaml": orders_flow(gates), "flows/ops/long_sleep.yaml": LONG_SLEEP},
        "add the shop's orders flow and a long sleep",
    )
    return repo


@pytest.fixture(scope="module")
def daemon(repo: GitRepo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the module's journeys, the repository's flows applied; its API token is TOKEN."""
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": NEVER}
    env = {"GITSYNC_API_TOKEN": TOKEN}
    with running_daemon(tmp_path_factory.mktemp("daemon"), [source], env=env) as daemon:
        daemon.wait_for(lambda: _applied(daemon), "the first sync to apply the flows")
        yield daemon


def _applied(daemon: Daemon) -> bool:
    report: dict[str, Any] = daemon.health().json()
    return report.get("phase") == "running" and len(daemon.query("SELECT uid FROM flows")) == 2


@pytest.fixture
def page(browser: Browser, daemon: Daemon) -> Iterator[Page]:
    """A new user's tab (nothing stored: no theme chosen, no token given), at 1280x800 in the light theme."""
    page = new_page(browser)
    yield page
    page.context.close()


def give_token(page: Page) -> None:
    """The token dialog the UI opens for an action: type the token, save."""
    dialog = page.get_by_role("dialog", name="API token")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Token for this tab").fill(TOKEN)
    dialog.get_by_role("button", name="Save token").click()
    expect(dialog).to_be_hidden()


def test_healthz_in_the_browser_shows_the_applied_commit(browser: Browser, daemon: Daemon, repo: GitRepo) -> None:
    page = new_page(browser)
    try:
        response = page.goto(daemon.url + "/healthz")
        assert response is not None and response.status == 200
        report = json.loads(page.locator("body").inner_text())
        assert repo.head() in json.dumps(report)
    finally:
        page.context.close()
    shots = shoot_everywhere(browser, daemon.url + "/healthz", "healthz")
    assert [p.name for p in shots] == [
        "healthz-1280-light.png",
        "healthz-1280-dark.png",
        "healthz-390-light.png",
        "healthz-390-dark.png",
    ]


def test_the_dashboard_shows_the_source_at_its_commit_and_the_keyboard_reaches_the_main_nav(
    page: Page, browser: Browser, daemon: Daemon, repo: GitRepo
) -> None:
    page.goto(daemon.url + "/")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.get_by_text("2 active flows in 2 namespaces")).to_be_visible()
    source = page.get_by_role("row", name=re.compile(r"^main\b"))
    expect(source).to_contain_text(repo.head()[:7])
    expect(source.get_by_role("link", name=re.compile(r"^sync \d+$"))).to_be_visible()
    expect(page.get_by_role("button", name="Sync main now")).to_be_visible()
    shoot_everywhere(browser, daemon.url + "/", "dashboard", ready=_heading("Dashboard"))

    # the keyboard alone: Tab from the top of the page into the main navigation, Enter on "Executions"
    nav = page.get_by_role("navigation", name="Main")
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return e && e.closest('nav[aria-label=\"Main\"]') ? "
            "e.textContent.trim() : null; }"
        )
        if focused == "Executions":
            break
    else:
        raise AssertionError("Tab never reached the Executions link of the main navigation")
    expect(nav.get_by_role("link", name="Executions")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/executions$"))
    expect(page.get_by_role("heading", name="Executions", level=1)).to_be_visible()
    expect(nav.get_by_role("link", name="Executions")).to_have_attribute("aria-current", "page")
    shoot_everywhere(browser, daemon.url + "/executions", "executions", ready=_heading("Executions"))


def test_a_flow_page_shows_its_graph_with_the_foreach_drawn_as_one(
    page: Page, browser: Browser, daemon: Daemon
) -> None:
    page.goto(daemon.url + "/")
    page.get_by_role("link", name="acme.shop", exact=True).click()
    expect(page.get_by_role("heading", name="Namespace acme.shop", level=1)).to_be_visible()
    shoot_everywhere(browser, page.url, "namespace", ready=_heading("Namespace acme.shop"))
    page.get_by_role("link", name="orders", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^orders\s+in acme\.shop$"), level=1)).to_be_visible()
    expect(page.get_by_role("paragraph").filter(has_text="Counts the day's orders and reports them.")).to_be_visible()
    graph = page.get_by_role("group", name="Task graph of acme.shop.orders, revision 1")
    expect(graph).to_be_visible()
    for name in ("start (Log)", "each_batch (ForEach)", "count (Return)", "wait_for_gate (Commands)", "report (Log)"):
        expect(graph.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"^Source at commit"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^nightly\b"))).to_contain_text("0 2 * * *")
    shoot_everywhere(browser, page.url, "flow", ready=_heading(re.compile(r"^orders")))


def test_a_run_from_the_form_shows_a_field_error_then_succeeds_with_its_logs_arriving_live(
    page: Page, browser: Browser, daemon: Daemon, gates: Path
) -> None:
    page.goto(daemon.url + "/flows/acme.shop/orders")
    page.get_by_role("link", name="Run orders").click()
    expect(page.get_by_role("heading", name="Run orders", level=1)).to_be_visible()
    shoot_everywhere(browser, page.url, "run-form", ready=_heading("Run orders"))
    main = page.get_by_role("main")
    batches = main.get_by_label("batches")
    expect(main.get_by_label("day")).to_have_value("monday")
    expect(main.get_by_label("region")).to_have_value("north")

    # batches is required and left empty: the form comes back with the error beside the field
    main.get_by_label("day").fill("tuesday")
    main.get_by_label("region").select_option("south")
    main.get_by_label("API token").fill(TOKEN)
    main.get_by_role("button", name="Run orders").click()
    expect(page.get_by_role("alert")).to_contain_text("The flow was not run")
    expect(batches).to_have_attribute("aria-invalid", "true")
    expect(batches).to_have_accessible_description(re.compile(r"^This input is required\. INT"))
    error = main.locator(".field", has=page.get_by_label("batches")).locator(".field-error")
    expect(error).to_have_text("This input is required.")  # beside the field, and what a screen reader reads with it
    expect(page.get_by_role("alert").get_by_role("link", name="input 'batches' is required")).to_be_visible()
    expect(main.get_by_label("day")).to_have_value("tuesday")  # what was typed is kept
    expect(main.get_by_label("region")).to_have_value("south")
    page.screenshot(path=str(_shot("run-form-error")), full_page=True)

    batches.fill("3")
    if not main.get_by_label("API token").input_value():
        main.get_by_label("API token").fill(TOKEN)
    main.get_by_role("button", name="Run orders").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f]+$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Execution "), level=1)).to_be_visible()
    state = page.locator("#execution-state")
    logs = page.get_by_role("table", name="Logs")
    expect(logs).to_contain_text("counting 3 batches for tuesday in south")
    expect(state).to_have_text("RUNNING")
    expect(logs).not_to_contain_text("orders counted for tuesday")

    (gates / "tuesday").touch()  # the run goes on; the page is not reloaded
    expect(logs).to_contain_text("orders counted for tuesday")
    expect(state).to_have_text("SUCCESS")
    runs = page.get_by_role("table", name="Task runs")
    for task in ("start", "each_batch", "count", "wait_for_gate", "report"):
        expect(runs.get_by_role("rowheader", name=re.compile(rf"^{task}\b")).first).to_be_visible()
    shoot_everywhere(browser, page.url, "execution", ready=_heading(re.compile(r"^Execution ")))


def test_the_sync_history_leads_to_a_sync_and_its_plan(
    page: Page, browser: Browser, daemon: Daemon, repo: GitRepo
) -> None:
    page.goto(daemon.url + "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Syncs").click()
    expect(page.get_by_role("heading", name="Syncs", level=1)).to_be_visible()
    first = page.get_by_role("row", name=re.compile(r"^Sync 1\b"))
    expect(first).to_contain_text("applied")
    expect(first).to_contain_text(repo.head()[:7])
    shoot_everywhere(browser, page.url, "syncs", ready=_heading("Syncs"))
    first.get_by_role("link", name="Sync 1").click()
    expect(page.get_by_role("heading", name="Sync 1 of main", level=1)).to_be_visible()
    plan = page.get_by_role("region", name="Plan")
    expect(plan).to_contain_text("acme.shop.orders")
    expect(plan).to_contain_text("acme.ops.long_sleep")
    expect(page.get_by_role("heading", name="Errors (0)")).to_be_visible()
    shoot_everywhere(browser, page.url, "sync", ready=_heading("Sync 1 of main"))


def test_a_trigger_is_paused_and_resumed_with_the_token_asked_once(
    page: Page, browser: Browser, daemon: Daemon
) -> None:
    page.goto(daemon.url + "/triggers")
    expect(page.get_by_role("heading", name="Triggers", level=1)).to_be_visible()
    row = page.get_by_role("row", name=re.compile(r"^nightly\b"))
    expect(row).to_contain_text("active")
    shoot_everywhere(browser, page.url, "triggers", ready=_heading("Triggers"))

    row.get_by_role("button", name="Pause nightly of acme.shop.orders").click()
    give_token(page)
    expect(row).to_contain_text("paused")
    assert _trigger(daemon)["paused"] is True

    row.get_by_role("button", name="Resume nightly of acme.shop.orders").click()  # the tab kept the token
    expect(row).to_contain_text("active")
    expect(row.get_by_role("button", name="Pause nightly of acme.shop.orders")).to_be_visible()
    assert _trigger(daemon)["paused"] is False


def test_a_running_execution_is_killed_from_its_page(page: Page, browser: Browser, daemon: Daemon) -> None:
    started = daemon.post(
        "/api/v1/executions/acme.ops/long_sleep", headers={"Authorization": f"Bearer {TOKEN}"}, json={}
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["id"]
    daemon.wait_for(lambda: _state(daemon, execution_id) == "RUNNING", "the long sleep to run")

    page.goto(daemon.url + "/executions?state=RUNNING")
    page.get_by_role("link", name=execution_id).click()
    state = page.locator("#execution-state")
    expect(state).to_have_text("RUNNING")
    page.get_by_role("button", name=f"Kill execution {execution_id}").click()
    give_token(page)
    expect(state).to_have_text("KILLED")
    expect(page.get_by_role("button", name=f"Kill execution {execution_id}")).to_have_count(0)
    assert _state(daemon, execution_id) == "KILLED"
    shoot_everywhere(browser, page.url, "execution-killed", ready=_heading(re.compile(r"^Execution ")))


# -- helpers ------------------------------------------------------------------------------------------------------


def _heading(name: str | re.Pattern[str]) -> Any:
    def ready(page: Page) -> None:
        expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()

    return ready


def _shot(name: str) -> Path:
    from browser import screenshot_path

    return screenshot_path(name, "1280", "light")


def _trigger(daemon: Daemon) -> dict[str, Any]:
    (row,) = daemon.query("SELECT paused FROM triggers WHERE uid = 'acme.shop.orders/nightly'")
    return {"paused": bool(row["paused"])}


def _state(daemon: Daemon, execution_id: str) -> str:
    rows = daemon.query("SELECT state FROM executions WHERE id = ?", (execution_id,))
    return str(rows[0]["state"]) if rows else ""
