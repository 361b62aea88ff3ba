"""The web UI served by a real daemon, read as a user's browser gets it (HTML over HTTP): the dashboard, a flow with
its highlighted source, graph and revisions, the diff of two revisions, the Run form and its errors, executions
with their Gantt rows and logs, syncs with their plan and errors, triggers, statuses. Each page shows what the API
shows, escapes what users wrote, and runs no inline script or style.

One daemon serves the module: a source over smart HTTP (its commits link to the host), three commits (the last
invalid), two runs of a flow (one per revision).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import Daemon, running_daemon
from gitservers import GitRepo, closed_port_url, http_git_server
from htmlpage import Element, parse
from test_web_pieces import FLOW

from gitsync.web.diff import parse_unified

TOKEN = "token-for-the-web-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

HELLO = """\
id: hello
namespace: acme.demo
description: "Says <b>hello</b> & waves"
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: count
    type: INT
  - id: env
    type: SELECT
    values: [dev, prod]
    defaults: dev
  - id: tags
    type: MULTISELECT
    values: [red, green, blue]
    required: false
triggers:
  - id: yearly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 1 1 *"
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }} x{{ inputs.count }} <script>alert(1)</script>"
"""
HELLO_2 = (
    HELLO
    + """\
  - id: bye
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "bye {{ inputs.tags }}"
"""
)
SLEEPER = """\
id: sleeper
namespace: acme.demo
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
"""
INTAKE = """\
id: intake
namespace: acme.demo
inputs:
  - id: data
    type: FILE
  - id: ratio
    type: FLOAT
    defaults: 0.5
  - id: dry
    type: BOOLEAN
    defaults: true
  - id: day
    type: DATE
    required: false
  - id: at
    type: DATETIME
    defaults: "2024-01-15T08:00:00Z"
  - id: options
    type: JSON
    required: false
tasks:
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.data }} {{ inputs.ratio }}"
"""
BROKEN = "id: broken\nnamespace: acme.demo\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n"


@dataclass
class Site:
    daemon: Daemon
    repo_url: str
    shas: list[str]
    first_run: str
    second_run: str

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.daemon.get(path, **kwargs)

    def page(self, path: str, status: int = 200) -> Element:
        response = self.get(path)
        assert response.status_code == status, f"{path}: {response.status_code}\n{response.text[:2000]}"
        assert response.headers["content-type"].startswith("text/html")
        return parse(response.text)

    def run(self, flow: str, inputs: dict[str, Any]) -> str:
        started = self.daemon.post(f"/api/v1/executions/acme.demo/{flow}", json=inputs, headers=AUTH)
        assert started.status_code == 201, started.text
        return str(started.json()["id"])

    def ended(self, execution_id: str) -> dict[str, Any]:
        return self.daemon.wait_for(
            lambda: (e := self.daemon.api(f"/api/v1/executions/{execution_id}"))["ended_at"] and e,
            f"execution {execution_id} to end",
        )

    def synced(self, repo: GitRepo, root: Path, files: dict[str, str | None], message: str) -> str:
        sha = repo.commit(files, message)
        repo.publish(root, "flows")
        assert self.daemon.post("/api/v1/sync", json={"source": "main"}, headers=AUTH).status_code == 202
        self.daemon.wait_for(lambda: any(s["commit"] and s["commit"]["sha"] == sha for s in self.daemon.api(
            "/api/v1/syncs")), f"the sync of {sha}")  # fmt: skip
        return sha


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    repo, root = GitRepo(tmp / "work"), tmp / "served"
    root.mkdir()
    demo = FLOW.replace("namespace: acme\n", "namespace: acme.demo\n")
    flows = {"hello": HELLO, "demo": demo, "sleeper": SLEEPER, "intake": INTAKE}
    first = {f"flows/{name}.yaml": text for name, text in flows.items()}
    shas = [repo.commit(first, "add hello <b>bold</b> & co")]
    repo.publish(root, "flows")
    with ExitStack() as stack:
        base = stack.enter_context(http_git_server(root))
        status = {"provider": "gitea", "api_url": closed_port_url(), "repository": "acme/flows"}
        source = {"name": "main", "repo": f"{base}/flows.git", "branch": "main", "path": "flows", "poll": "1h",
                  "status": status}  # fmt: skip
        env = {"GITSYNC_API_TOKEN": TOKEN}
        daemon = stack.enter_context(running_daemon(tmp / "daemon", [source], env=env))
        daemon.wait_for(lambda: "acme.demo.hello" in daemon.flow_uids(), "the first sync")
        partial = Site(daemon, f"{base}/flows", shas, "", "")
        partial.first_run = partial.run("hello", {"count": 1})
        assert partial.ended(partial.first_run)["state"] == "SUCCESS"
        shas.append(partial.synced(repo, root, {"flows/hello.yaml": HELLO_2}, "say bye"))
        shas.append(partial.synced(repo, root, {"flows/broken.yaml": BROKEN}, "a broken flow"))
        partial.second_run = partial.run("hello", {"count": 2, "tags": ["red", "blue"]})
        assert partial.ended(partial.second_run)["state"] == "SUCCESS"
        yield partial


def commit_href(site: Site, sha: str) -> str:
    return f"{site.repo_url}/commit/{sha}"


# -- every page ---------------------------------------------------------------------------------------------------

PAGES = [
    "/", "/namespaces/acme.demo", "/flows/acme.demo/hello", "/flows/acme.demo/demo", "/flows/acme.demo/hello/diff",
    "/flows/acme.demo/hello/diff?from=1&to=2", "/flows/acme.demo/hello/run", "/executions", "/syncs", "/syncs/1",
    "/triggers", "/statuses", "/login",
]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_each_page_has_a_title_landmarks_and_a_strict_policy(site: Site, path: str) -> None:
    response = site.get(path)
    assert response.status_code == 200, response.text[:2000]
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    page = parse(response.text)
    assert page.find("title").text().endswith("· gitsync")
    assert page.find("header") and page.find("nav", aria_label="Main") and page.find("main", id="main")
    assert page.find("a", cls="skip-link").attrs["href"] == "#main"
    assert len(page.find_all("h1")) == 1
    for control in page.find_all("input") + page.find_all("select") + page.find_all("textarea"):
        if control.attrs.get("type") != "hidden":
            assert page.find_all("label", **{"for": control.attrs["id"]}), f"no label for {control.attrs}"
    for button in page.find_all("button"):
        assert button.text() or button.attrs.get("aria-label"), f"a button without a name: {button.attrs}"
    assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)  # no inline script
    assert not re.search(r"\sstyle=", response.text)  # no inline style
    assert not re.search(r"\son[a-z]+=", response.text)  # no inline event handler


def test_the_script_and_the_stylesheet_are_served_from_the_package(site: Site) -> None:
    css, js = site.get("/static/app.css"), site.get("/static/app.js")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "prefers-color-scheme" in css.text or "color-scheme: light dark" in css.text
    assert site.get("/static/../routes.py").status_code == 404
    assert site.get("/static/nothing.css").status_code == 404


# -- dashboard ----------------------------------------------------------------------------------------------------


def test_the_dashboard_shows_each_source_its_commit_on_the_host_and_its_last_sync(site: Site) -> None:
    page = site.page("/")
    row = page.by_id("sources").find("tbody").find("tr")
    assert row.find("th").text() == "main"
    applied = row.find("a", href=commit_href(site, site.shas[1]))  # the broken commit was not applied
    assert applied.text() == site.shas[1][:12]
    last = row.find("a", href=f"/syncs/{site.daemon.api('/api/v1/syncs')[0]['id']}")
    assert last.text().startswith("sync ") and "invalid" in row.text()
    assert row.find("button", aria_label="Sync main now").attrs["data-api"] == "/api/v1/sync"
    assert ["acme.demo", "4", "0"] in page.by_id("namespaces").rows()
    fires = page.by_id("next-fires").rows()
    assert fires[0][:2] == ["yearly", "acme.demo.hello"] and fires[0][2].endswith("-01-01 00:00:00 UTC")
    days = page.by_id("executions-by-day").rows()
    assert len(days) == 14 and days[-1][1] == str(len(site.daemon.api("/api/v1/executions")))
    assert page.by_id("executions-chart").attrs["role"] == "img"


# -- a flow -------------------------------------------------------------------------------------------------------


def test_a_flow_shows_its_source_at_its_commit_highlighted_and_escaped(site: Site) -> None:
    response = site.get("/flows/acme.demo/hello")
    page = parse(response.text)
    assert page.find("h1").text() == "hello in acme.demo"
    assert "Says <b>hello</b> & waves" in page.find("main").text()  # shown as text
    assert "<b>hello</b>" not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    source = page.by_id("source")
    lines = source.find_all("span", cls="line")
    assert len(lines) == len(HELLO_2.splitlines())
    assert [ln.attrs["id"] for ln in lines[:3]] == ["L1", "L2", "L3"]
    assert lines[0].raw_text() == "id: hello\n"
    assert source.find("span", cls="hl-expr").text() == "{{ inputs.name }}"
    assert page.find("h2", id="source-heading").text() == f"Source at commit {site.shas[1][:12]}"


def test_a_flow_shows_its_revisions_with_commit_author_message_and_diff_links(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello")
    rows = page.by_id("revisions").find("tbody").find_all("tr")
    assert [r.find("th").text() for r in rows] == ["2 active", "1"]
    assert rows[0].find("a", href=commit_href(site, site.shas[1])).text() == site.shas[1][:12]
    assert rows[1].find("a", href=commit_href(site, site.shas[0]))
    assert "add hello <b>bold</b> & co" in rows[1].text() and "Test" in rows[1].text()
    assert rows[0].find("a", href="/flows/acme.demo/hello/diff?from=1&to=2").text() == "diff with 1"


def test_a_flow_says_what_changed_since_its_last_successful_run(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello")
    section = page.find("section", aria_labelledby="changed-heading")
    assert "The last successful run ran revision 1" not in section.text()  # the second run (revision 2) succeeded
    assert "Nothing: its last successful run" in section.text()
    assert section.find("a", href=f"/executions/{site.second_run}")


def test_an_older_revision_shows_its_own_source_and_the_changes_since(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello?revision=1")
    assert "This is revision 1" in page.find("main").text()
    assert len(page.by_id("source").find_all("span", cls="line")) == len(HELLO.splitlines())
    assert site.page("/flows/acme.demo/hello?revision=9", 404).find("p", cls="error").text() == (
        "flow acme.demo.hello has no revision 9"
    )


def test_the_graph_draws_each_task_as_a_named_link(site: Site) -> None:
    page = site.page("/flows/acme.demo/demo")
    svg = page.find("svg", cls="graph")
    assert svg.attrs["role"] == "group" and svg.find("title").text().startswith("Task graph of acme.demo.demo")
    nodes = {a.attrs["aria-label"]: a.attrs["href"] for a in svg.find_all("a", cls="node")}
    assert nodes["child (Flow)"] == "/flows/acme.other/downstream"
    assert set(nodes) >= {"fan (Parallel)", "right (Sequential)", "check (If)", "route (Switch)", "each (ForEach)",
                          "graph (Dag)", "alert (Log)", "cleanup (Log)"}  # fmt: skip
    line = int(nodes["start (Log)"].removeprefix("#L"))
    assert page.by_id(f"L{line}").raw_text().strip() == "- id: start"
    labels = [t.text() for t in svg.find_all("text", cls="label")]
    assert {"then", "else", "case dev", "defaults", "errors", "finally"} <= set(labels)
    assert 'for each of ["x","y"]' in labels


# -- diff ---------------------------------------------------------------------------------------------------------


def test_the_diff_page_shows_the_lines_the_api_diff_holds(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello/diff?from=1&to=2")
    api = site.daemon.api("/api/v1/flows/acme.demo/hello/diff?from=1&to=2")
    expected = [(r.kind, r.old, r.new, r.text) for r in parse_unified(api["diff"])]
    shown = []
    for row in page.by_id("diff").find("tbody").find_all("tr"):
        kind = row.attrs["class"]
        cells = [c.raw_text() for c in row.find_all("td")]
        if kind == "hunk":
            shown.append((kind, None, None, cells[0]))
        else:
            shown.append((kind, int(cells[0]) if cells[0] else None, int(cells[1]) if cells[1] else None, cells[3]))
    assert shown == expected
    added = [text for kind, _, _, text in shown if kind == "add"]
    assert added == ["  - id: bye", "    type: io.kestra.plugin.core.log.Log", "    level: WARN",
                     '    message: "bye {{ inputs.tags }}"']  # fmt: skip
    assert page.find("h1").text() == "acme.demo.hello: revision 1 → 2"
    assert "4 lines added, 0 removed" in page.find("dl").text()


def test_the_diff_page_without_revisions_offers_the_choice(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello/diff")
    options = [o.attrs["value"] for o in page.by_id("diff-from").find_all("option")]
    assert options == ["1", "2"] and not page.has_id("diff")
    assert "from" in site.page("/flows/acme.demo/hello/diff?from=x", 400).find("p", cls="error").text()


# -- run form -----------------------------------------------------------------------------------------------------


def test_the_run_form_asks_for_each_input_by_its_type(site: Site) -> None:
    page = site.page("/flows/acme.demo/hello/run")
    form = page.by_id("run-form")
    assert form.attrs["method"] == "post" and "novalidate" in form.attrs
    assert page.by_id("input-name").attrs["value"] == "world"
    count = page.by_id("input-count")
    assert (count.attrs["type"], count.attrs["step"], "required" in count.attrs) == ("number", "1", True)
    assert page.find("label", **{"for": "input-count"}).text() == "count (required)"
    env = page.by_id("input-env")
    assert [(o.attrs["value"], "selected" in o.attrs) for o in env.find_all("option")] == [
        ("", False), ("dev", True), ("prod", False)]  # fmt: skip
    tags = page.by_id("input-tags")
    assert "multiple" in tags.attrs and [o.text() for o in tags.find_all("option")] == ["red", "green", "blue"]
    assert page.by_id("run-token").attrs["type"] == "password"
    assert page.by_id("hint-env").text() == "SELECT. Default: dev."


def test_the_run_form_shows_each_problem_beside_its_field_and_keeps_the_values(site: Site) -> None:
    form = {"name": "<i>me</i>", "count": "many", "env": "staging", "_token": TOKEN}
    response = site.daemon.post("/flows/acme.demo/hello/run", data=form)
    assert response.status_code == 422
    page = parse(response.text)
    assert page.by_id("err-count").text() == "Expected an integer, got 'many'"
    assert page.by_id("err-env").text() == "'staging' is not one of ['dev', 'prod']"
    assert page.by_id("input-count").attrs["aria-invalid"] == "true"
    assert page.by_id("input-count").attrs["aria-describedby"] == "err-count hint-count"
    assert page.by_id("input-name").attrs["value"] == "<i>me</i>" and "<i>me</i>" not in response.text
    summary = page.by_id("form-errors")
    assert summary.attrs["role"] == "alert" and summary.find("a", href="#input-count")
    assert not page.has_id("err-name")


def test_the_run_form_needs_the_token(site: Site) -> None:
    for token, message in (("", "give the API token"), ("wrong", "wrong API token")):
        response = site.daemon.post("/flows/acme.demo/hello/run", data={"count": "1", "_token": token})
        assert response.status_code == 403
        assert parse(response.text).by_id("err-token").text().startswith(message)


def test_the_run_form_starts_the_run_and_opens_its_page(site: Site) -> None:
    form = {"count": "7", "tags": ["green", "blue"], "_token": TOKEN}
    response = site.daemon.post("/flows/acme.demo/hello/run", data=form)
    assert response.status_code == 303
    execution_id = response.headers["location"].removeprefix("/executions/")
    ran = site.ended(execution_id)
    assert ran["inputs"] == {"name": "world", "count": 7, "env": "dev", "tags": ["green", "blue"]}
    assert ran["trigger_kind"] == "api" and ran["state"] == "SUCCESS"


def test_the_run_form_takes_a_file_and_typed_values(site: Site) -> None:
    page = site.page("/flows/acme.demo/intake/run")
    assert page.by_id("run-form").attrs["enctype"] == "multipart/form-data"
    assert page.by_id("input-data").attrs["type"] == "file"
    ratio = page.by_id("input-ratio")
    assert (ratio.attrs["type"], ratio.attrs["step"], ratio.attrs["value"]) == ("number", "any", "0.5")
    assert page.by_id("input-dry").find("option", value="true").attrs.get("selected") is not None
    assert page.by_id("input-day").attrs["type"] == "date"
    assert (page.by_id("input-at").attrs["type"], page.by_id("input-at").attrs["value"]) == (
        "datetime-local", "2024-01-15T08:00:00")  # fmt: skip
    assert page.by_id("input-options").tag == "textarea"
    missing = site.daemon.post("/flows/acme.demo/intake/run", data={"_token": TOKEN}, files={"none": ("", b"")})
    assert missing.status_code == 422 and parse(missing.text).by_id("err-data").text() == "This input is required."
    form = {"dry": "false", "day": "2024-05-01", "options": '{"k": [1, 2]}', "_token": TOKEN}
    response = site.daemon.post("/flows/acme.demo/intake/run", data=form, files={"data": ("rows.csv", b"a,b\n1,2\n")})
    assert response.status_code == 303, response.text[:3000]
    inputs = site.ended(response.headers["location"].removeprefix("/executions/"))["inputs"]
    assert inputs["data"].startswith("kestra:///acme/demo/intake/executions/") and inputs["data"].endswith("rows.csv")
    typed = {"ratio": 0.5, "dry": False, "day": "2024-05-01", "at": "2024-01-15T08:00:00Z", "options": {"k": [1, 2]}}
    assert {k: v for k, v in inputs.items() if k != "data"} == typed


# -- executions ---------------------------------------------------------------------------------------------------


def test_an_execution_shows_its_task_runs_as_a_timeline_its_logs_and_its_commit(site: Site) -> None:
    response = site.get(f"/executions/{site.second_run}")
    page = parse(response.text)
    api = site.daemon.api(f"/api/v1/executions/{site.second_run}")
    assert page.by_id("execution-state").text() == "SUCCESS"
    runs = page.by_id("task-runs").find("tbody").find_all("tr")
    assert [r.attrs["data-task-id"] for r in runs] == [t["task_id"] for t in api["task_runs"]] == ["greet", "bye"]
    assert runs[0].attrs["id"] == "task-greet"
    bar = runs[1].find("rect", cls="span")
    assert bar.attrs["x"].endswith("%") and 0 < float(bar.attrs["width"].rstrip("%")) <= 100
    facts = page.find("dl", cls="facts")
    assert facts.find("a", href=commit_href(site, site.shas[1])).text() == site.shas[1][:12]
    assert facts.find("a", href="/flows/acme.demo/hello/diff?from=1&to=2").text() == "what it changed"
    logs = page.by_id("logs")
    lines = [(r.attrs["data-level"], r.find_all("td")[2].text(), r.find_all("td")[3].text())
             for r in logs.find("tbody").find_all("tr")]  # fmt: skip
    api_logs = site.daemon.api(f"/api/v1/executions/{site.second_run}/logs")
    assert lines == [(line["level"], line["task_id"], line["message"]) for line in api_logs]
    assert lines[0] == ("INFO", "greet", "hello world x2 <script>alert(1)</script>") and lines[1][:2] == ("WARN", "bye")
    assert "<script>alert(1)" not in response.text
    assert logs.attrs["data-stream"] == f"/api/v1/executions/{site.second_run}/logs/stream"
    assert logs.attrs["data-ended"] == "true"
    graph = page.find("svg", cls="graph")
    assert graph.find("a", aria_label="greet (Log), SUCCESS").attrs["href"] == "#task-greet"
    assert json.loads(page.by_id("inputs").raw_text()) == api["inputs"] == {
        "name": "world", "count": 2, "env": "dev", "tags": ["red", "blue"]}  # fmt: skip


def test_the_logs_are_filtered_by_level_and_text_as_the_api_filters_them(site: Site) -> None:
    page = site.page(f"/executions/{site.second_run}?level=WARN")
    assert [r.attrs["data-level"] for r in page.by_id("logs").find("tbody").find_all("tr")] == ["WARN"]
    assert page.by_id("log-level").find("option", value="WARN").attrs.get("selected") is not None
    page = site.page(f"/executions/{site.second_run}?q=HELLO")
    assert [r.find_all("td")[2].text() for r in page.by_id("logs").find("tbody").find_all("tr")] == ["greet"]
    assert site.page(f"/executions/{site.second_run}?level=LOUD", 400)


def test_a_running_execution_offers_kill_and_its_fragment_follows_the_state(site: Site) -> None:
    execution_id = site.run("sleeper", {})
    site.daemon.wait_for(lambda: site.daemon.api(f"/api/v1/executions/{execution_id}")["state"] == "RUNNING", "run")
    page = site.page(f"/executions/{execution_id}")
    kill = page.find("button", aria_label=f"Kill execution {execution_id}")
    assert kill.attrs["data-api"] == f"/api/v1/executions/{execution_id}/kill" and kill.text() == "Kill"
    assert page.by_id("logs").attrs["data-ended"] == "false"
    assert page.by_id("live-fragment").attrs["data-src"] == f"/executions/{execution_id}/live"
    assert site.daemon.post(kill.attrs["data-api"], headers=AUTH).status_code == 202
    assert site.ended(execution_id)["state"] == "KILLED"
    fragment = site.page(f"/executions/{execution_id}/live")
    assert fragment.by_id("execution-state").text() == "KILLED"
    assert not fragment.find_all("button", aria_label=f"Kill execution {execution_id}")


def test_the_executions_list_filters_like_the_api_and_pages_on(site: Site) -> None:
    page = site.page("/executions?flow=acme.demo.hello&state=SUCCESS")
    api = site.daemon.api("/api/v1/executions?flow=acme.demo.hello&state=SUCCESS")
    rows = page.by_id("executions").find("tbody").find_all("tr")
    assert [r.find("th").text() for r in rows] == [e["id"] for e in api]
    assert all("SUCCESS" in r.text() and "acme.demo.hello" in r.text() for r in rows)
    first = site.page("/executions?flow=acme.demo.hello&limit=1")
    link = first.find("a", rel="next").attrs["href"]
    assert "cursor=" in link and "limit=1" in link and "flow=acme.demo.hello" in link
    second = site.page(f"/executions{link}")
    ids = [r.find("th").text() for r in second.by_id("executions").find("tbody").find_all("tr")]
    assert len(ids) == 1 and ids[0] != first.by_id("executions").find("tbody").find("th").text()
    refused = site.page("/executions?since=yesterday", 400)
    assert "since" in refused.find("p", cls="error").text()
    assert "No execution matches" in site.page("/executions?flow=acme.demo.nothing").find("main").text()


# -- syncs, triggers, statuses ------------------------------------------------------------------------------------


def test_the_sync_history_and_a_sync_with_its_errors_and_plan(site: Site) -> None:
    syncs = site.daemon.api("/api/v1/syncs")
    page = site.page("/syncs")
    rows = page.by_id("syncs").find("tbody").find_all("tr")
    assert [r.find("th").text() for r in rows] == [f"Sync {s['id']}" for s in syncs]
    assert "invalid" in rows[0].text() and "applied" in rows[1].text()
    broken = site.page(f"/syncs/{syncs[0]['id']}")
    errors = broken.by_id("sync-errors").rows()
    assert errors and errors[0][0].startswith("flows/broken.yaml:") and "message" in errors[0][2]
    applied = site.page(f"/syncs/{syncs[1]['id']}")
    plan = applied.by_id("plan").raw_text()
    assert plan == site.daemon.api(f"/api/v1/syncs/{syncs[1]['id']}")["plan"] and "acme.demo.hello" in plan
    assert site.page("/syncs/999999", 404) and site.page("/syncs/x", 404)


def test_the_triggers_page_pauses_and_resumes_through_the_api(site: Site) -> None:
    page = site.page("/triggers")
    row = page.by_id("triggers").find("tbody").find("tr")
    assert row.find("th").text() == "yearly" and "active" in row.text() and "0 0 1 1 *" in row.text()
    pause = row.find("button", aria_label="Pause yearly of acme.demo.hello")
    assert pause.attrs["data-api"] == "/api/v1/triggers/acme.demo/hello/yearly/pause"
    assert site.daemon.post(pause.attrs["data-api"], headers=AUTH).status_code == 200
    try:
        row = site.page("/triggers").by_id("triggers").find("tbody").find("tr")
        assert "paused" in row.text() and row.find("button", aria_label="Resume yearly of acme.demo.hello")
    finally:
        site.daemon.post("/api/v1/triggers/acme.demo/hello/yearly/resume", headers=AUTH)


def test_the_statuses_page_shows_each_commit_status_and_its_outbox_state(site: Site) -> None:
    api = site.daemon.api("/api/v1/statuses")
    assert api, "the source reports commit statuses"
    rows = site.page("/statuses").by_id("statuses").find("tbody").find_all("tr")
    assert len(rows) == len(api)
    assert [r.find_all("td")[1].text() for r in rows] == [s["context"] for s in api]
    assert [r.find_all("td")[4].text().split(" next ")[0] for r in rows] == [s["outbox"] for s in api]
    short = api[0]["commit"]["sha"][:8]
    filtered = site.page(f"/statuses?commit={short}").by_id("statuses").find("tbody").find_all("tr")
    assert filtered and all(r.find("th").text().startswith(short) for r in filtered)
    assert "commit" in site.page("/statuses?commit=zz", 400).find("p", cls="error").text()


def test_a_missing_flow_or_execution_is_a_404_page_that_says_so(site: Site) -> None:
    assert "no active flow acme.demo.nope" in site.page("/flows/acme.demo/nope", 404).find("main").text()
    assert "no execution nope" in site.page("/executions/nope", 404).find("main").text()
    assert "No active flow in namespace" in site.page("/namespaces/zzz", 404).find("main").text()
