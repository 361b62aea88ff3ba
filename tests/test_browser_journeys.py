"""A new user's journeys through the web UI, in Debian's Chromium (Playwright), against a real daemon that follows a
real git repository. Each test asserts what the user sees (text, roles, accessible names) and saves a screenshot of
each page it visits at both widths and in both themes (test-artifacts/screenshots/).

Where Chromium is absent, every test here skips, saying how to get it (tests/browser.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from browser import new_page, shoot_everywhere
from daemon_harness import Daemon, running_daemon
from gitservers import GitRepo

if TYPE_CHECKING:
    from playwright.sync_api import Browser

NEVER = "1h"
"""The source's poll interval: longer than the tests, so only the watcher applies a commit."""

FLOWS = {
    "flows/shop/orders.yaml": """\
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
    message: "counting {{ inputs.batches }} batches for {{ inputs.day }} in {{ inputs.region }}"
  - id: each_batch
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: count
        type: io.kestra.plugin.core.debug.Return
        format: "batch {{ taskrun.value }}"
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "orders counted for {{ inputs.day }}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
""",
    "flows/ops/long_sleep.yaml": """\
id: long_sleep
namespace: acme.ops
description: Sleeps for an hour, so that someone can kill it.
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1H
""",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    repo = GitRepo(tmp_path_factory.mktemp("journeys") / "work")
    repo.commit(dict(FLOWS), "add the shop's orders flow and a long sleep")
    return repo


@pytest.fixture(scope="module")
def daemon(repo: GitRepo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the module's journeys, the repository's flows applied."""
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": NEVER}
    with running_daemon(tmp_path_factory.mktemp("daemon"), [source]) as daemon:
        daemon.wait_for(lambda: _applied(daemon), "the first sync to apply the flows")
        yield daemon


def _applied(daemon: Daemon) -> bool:
    report: dict[str, Any] = daemon.health().json()
    return report.get("phase") == "running" and bool(daemon.query("SELECT 1 FROM flows LIMIT 1"))


def _ui_built(daemon: Daemon) -> bool:
    return daemon.get("/").status_code != 404


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
    assert all(p.stat().st_size > 0 for p in shots)


def test_the_dashboard_names_the_source_and_its_commit(browser: Browser, daemon: Daemon, repo: GitRepo) -> None:
    if not _ui_built(daemon):
        pytest.skip("the dashboard (/) is not built yet (issue 13, gitsync/web)")
    page = new_page(browser)
    try:
        page.goto(daemon.url + "/")
        assert page.get_by_role("main").get_by_text(repo.head()[:7]).first.is_visible()
    finally:
        page.context.close()
    shoot_everywhere(browser, daemon.url + "/", "dashboard")
