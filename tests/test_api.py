"""The REST API (issue 13) against a real daemon on a real git repository: namespaces, flows with filters and
cursors, a flow's source at a revision and the diff between two, syncs with their plan, triggers with next fires
and pause/resume, executions with filters and cursor pages, task runs, logs paged and live over server-sent
events, statuses, workers, and the OpenAPI document describing every route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_fixture import AUTH, ENV, HELLO_V1, HELLO_V2, ApiWorld, api_world, run_flow, wait_ended
from daemon_harness import query_db, running_daemon
from gitservers import GitRepo


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world(tmp_path_factory.mktemp("api")) as built:
        yield built


def get(world: ApiWorld, path: str, **params: object) -> dict:
    response = world.daemon.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_namespaces_and_flows_with_filters_and_cursors(world: ApiWorld) -> None:
    spaces = {n["name"]: n["flows"] for n in world.daemon.api("/api/v1/namespaces")}
    assert spaces == {"acme.demo": 4, "acme.ops.sub": 1}
    # a namespace filter takes its children too, and only them
    acme = get(world, "/api/v1/flows", namespace="acme.ops")
    assert [f["uid"] for f in acme["items"]] == ["acme.ops.sub.child"]
    assert [f["uid"] for f in get(world, "/api/v1/flows", q="HELL")["items"]] == ["acme.demo.hello"]
    # one row per page: every flow once, in uid order, and the last page says so
    seen, cursor = [], None
    while True:
        page = get(world, "/api/v1/flows", limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [f["uid"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(world.daemon.flow_uids())
    hello = next(f for f in get(world, "/api/v1/flows")["items"] if f["id"] == "hello")
    assert (hello["revision"], hello["commit"]["sha"], hello["message"]) == (2, world.commits[1], "hello in French")
    assert hello["last_execution"]["state"] == "SUCCESS"


def test_a_flow_its_source_at_each_revision_and_the_diff(world: ApiWorld) -> None:
    flow = get(world, "/api/v1/flows/acme.demo/hello")
    assert flow["description"] == "Says hello to someone." and flow["labels"] == {"team": "data"}
    inputs = {i["id"]: i for i in flow["inputs"]}
    assert inputs["name"] == {**inputs["name"], "type": "STRING", "defaults": "world", "required": True}
    assert inputs["times"]["required"] is False
    assert inputs["color"]["values"] == ["red", "blue"]
    assert [(r["revision"], r["commit"]["sha"]) for r in flow["revisions"]] == [
        (2, world.commits[1]),
        (1, world.commits[0]),
    ]
    assert flow["last_success_revision"] == 2
    assert get(world, "/api/v1/flows/acme.demo/hello/source", revision=1)["text"] == HELLO_V1
    assert get(world, "/api/v1/flows/acme.demo/hello/source")["text"] == HELLO_V2
    diff = get(world, "/api/v1/flows/acme.demo/hello/diff", **{"from": 1, "to": 2})
    assert '-    message: "hello {{ inputs.name }}"\n' in diff["diff"]
    assert '+    message: "bonjour {{ inputs.name }}"\n' in diff["diff"]
    assert (diff["from_commit"]["sha"], diff["to_commit"]["sha"]) == tuple(world.commits)
    missing = world.daemon.get("/api/v1/flows/acme.demo/nope")
    assert missing.status_code == 404 and "no active flow acme.demo.nope" in missing.json()["detail"]
    assert world.daemon.get("/api/v1/flows/acme.demo/hello/source", params={"revision": 9}).status_code == 404


def test_syncs_list_and_one_sync_with_its_plan(world: ApiWorld) -> None:
    page = get(world, "/api/v1/syncs", source="main")
    applied = [s for s in page["items"] if s["outcome"] == "applied"]
    assert [s["commit"]["sha"] for s in applied][:2] == [world.commits[1], world.commits[0]]
    sync = get(world, f"/api/v1/syncs/{applied[0]['id']}")
    assert "acme.demo.chatty" in sync["plan"] and "acme.demo.hello" in sync["plan"]
    assert sync["error_list"] == []
    assert world.daemon.get("/api/v1/syncs/999999").status_code == 404
    assert world.daemon.get("/api/v1/syncs", params={"cursor": "abc"}).status_code == 400


def test_a_broken_commit_is_a_sync_with_every_error_located(world: ApiWorld) -> None:
    bad = world.repo.commit({"flows/broken.yaml": "id: broken\nnamespace: acme.demo\ntasks:\n  - id: x\n"}, "broken")
    sync = world.daemon.wait_for(
        lambda: next((s for s in get(world, "/api/v1/syncs")["items"] if (s["commit"] or {}).get("sha") == bad), None),
        "the broken commit's sync",
    )
    assert sync["outcome"] == "invalid" and sync["errors"] >= 1
    detail = get(world, f"/api/v1/syncs/{sync['id']}")
    assert any(e["file"] == "flows/broken.yaml" and e["line"] for e in detail["error_list"]), detail["error_list"]
    world.repo.commit({"flows/broken.yaml": None}, "remove the broken flow")
    world.daemon.wait_for(
        lambda: get(world, "/api/v1/syncs")["items"][0]["outcome"] in ("applied", "unchanged"), "the fix"
    )


def test_triggers_show_next_fires_and_pause_and_resume_with_the_token(world: ApiWorld) -> None:
    trigger = get(world, "/api/v1/triggers", flow="acme.demo.tick")["items"][0]
    fires = [datetime.fromisoformat(f) for f in trigger["next_fires"]]
    assert len(fires) == 5 and fires == sorted(fires) and all(f.hour == 3 and f.minute == 0 for f in fires)
    path = "/api/v1/triggers/acme.demo/tick/nightly"
    refused = world.daemon.post(f"{path}/pause")
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    paused = world.daemon.post(f"{path}/pause", headers=AUTH)
    assert paused.json() == {"uid": "acme.demo.tick/nightly", "paused": True}
    trigger = get(world, "/api/v1/triggers", flow="acme.demo.tick")["items"][0]
    assert trigger["paused"] is True and trigger["next_fires"] == []
    assert world.daemon.post(f"{path}/resume", headers=AUTH).json()["paused"] is False
    assert len(get(world, "/api/v1/triggers", flow="acme.demo.tick")["items"][0]["next_fires"]) == 5
    unknown = world.daemon.post("/api/v1/triggers/acme.demo/tick/weekly/pause", headers=AUTH)
    assert unknown.status_code == 404 and "no trigger 'weekly'" in unknown.json()["detail"]


def test_executions_filtered_by_flow_state_kind_and_time_with_cursor_pages(world: ApiWorld) -> None:
    failed = get(world, "/api/v1/executions", state="FAILED")["items"]
    assert [e["flow"] for e in failed] == ["acme.demo.fails"]
    assert failed[0]["error"] and failed[0]["commit"]["sha"] == world.commits[0]
    both = get(world, "/api/v1/executions", state="FAILED,SUCCESS", namespace="acme.demo")["items"]
    assert {e["flow"] for e in both} == {"acme.demo.fails", "acme.demo.hello", "acme.demo.chatty"}
    assert {e["trigger_kind"] for e in get(world, "/api/v1/executions", trigger_kind="api")["items"]} == {"api"}
    assert get(world, "/api/v1/executions", trigger_kind="schedule")["items"] == []
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert get(world, "/api/v1/executions", since=future)["items"] == []
    assert len(get(world, "/api/v1/executions", until=future, flow="acme.demo.hello")["items"]) >= 1
    first = get(world, "/api/v1/executions", limit=2)
    second = get(world, "/api/v1/executions", limit=2, cursor=first["next_cursor"])
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 3 and ids == sorted(ids, reverse=True)
    for bad, word in ({"state": "DONE"}, "state"), ({"since": "yesterday"}, "since"), ({"colour": "x"}, "colour"):
        refused = world.daemon.get("/api/v1/executions", params=bad)
        assert refused.status_code == 400 and word in refused.json()["detail"], refused.text


def test_an_execution_with_its_task_runs_and_logs_paged_and_filtered(world: ApiWorld) -> None:
    execution = get(world, f"/api/v1/executions/{world.executions['fails']}")
    assert execution["state"] == "FAILED"
    runs = {r["task_id"]: r for r in execution["task_runs"]}
    assert runs["first"]["state"] == "SUCCESS" and runs["boom"]["state"] == "FAILED"
    assert "the export was empty" in runs["boom"]["error"]
    chatty = world.executions["chatty"]
    page = get(world, f"/api/v1/executions/{chatty}/logs", limit=10)
    assert [line["message"] for line in page["items"]][:3] == ["line 0", "line 1", "line 2"]
    rest = get(world, f"/api/v1/executions/{chatty}/logs", cursor=page["next_cursor"], limit=1000)
    messages = [line["message"] for line in page["items"] + rest["items"]]
    assert messages[:30] == [f"line {i}" for i in range(30)] and rest["next_cursor"] is None
    warnings = get(world, f"/api/v1/executions/{chatty}/logs", level="WARN")["items"]
    assert [(w["level"], w["message"], w["task_id"]) for w in warnings] == [("WARN", "the disk is nearly full", "warn")]
    assert [x["message"] for x in get(world, f"/api/v1/executions/{chatty}/logs", q="LINE 2")["items"]][:2] == [
        "line 2",
        "line 20",
    ]
    assert world.daemon.get("/api/v1/executions/nope/logs").status_code == 404


def test_logs_arrive_live_over_server_sent_events_until_the_end(world: ApiWorld) -> None:
    execution = run_flow(world.daemon, "acme.demo", "chatty")
    events: list[tuple[str, dict]] = []
    url = f"{world.daemon.client.base_url}/api/v1/executions/{execution}/logs/stream"
    with httpx.stream("GET", url, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line.removeprefix("data: "))))
                if name == "end":
                    break
    logs = [data["message"] for kind, data in events if kind == "log"]
    assert logs[:30] == [f"line {i}" for i in range(30)] and "the disk is nearly full" in logs
    assert events[-1] == ("end", {"state": "SUCCESS"})
    assert ("state", {"state": "SUCCESS"}) in events
    # a reconnect from the last id seen (EventSource's Last-Event-ID) sends nothing twice
    last = max(int(data["id"]) for kind, data in events if kind == "log")
    again = httpx.get(url, headers={"Last-Event-ID": str(last)}, timeout=30).text
    assert "event: log" not in again and "event: end" in again
    wait_ended(world.daemon, execution)


def test_statuses_workers_and_the_dashboard(world: ApiWorld) -> None:
    assert get(world, "/api/v1/statuses") == {"items": [], "next_cursor": None}  # no source reports to a host
    assert world.daemon.get("/api/v1/statuses", params={"commit": "xyz!"}).status_code == 400
    workers = world.daemon.api("/api/v1/workers")
    assert [(w["kind"], w["alive"]) for w in workers if w["kind"] == "daemon"] == [("daemon", True)]
    board = get(world, "/api/v1/dashboard")
    assert board["flows"] == 5 and board["namespaces"] == 2
    assert [s["name"] for s in board["sources"]] == ["main"]
    assert board["sources"][0]["last_sync"]["outcome"] in ("applied", "unchanged", "invalid")
    assert [f["flow"] for f in board["failing"]] == ["acme.demo.fails"]
    assert [t["uid"] for t in board["next_fires"]] == ["acme.demo.tick/nightly"]
    today = datetime.now(UTC).date().isoformat()
    assert board["executions_by_day"][-1]["day"] == today
    assert board["executions_by_day"][-1]["states"].get("FAILED", 0) >= 1


def test_the_openapi_document_describes_every_route_the_app_serves(world: ApiWorld) -> None:
    spec = get(world, "/api/v1/openapi.json")
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/executions", "get"),
        ("/api/v1/executions/{execution_id}/logs/stream", "get"),
        ("/api/v1/executions/{namespace}/{flow_id}", "post"),
        ("/api/v1/triggers/{namespace}/{flow_id}/{trigger_id}/pause", "post"),
        ("/api/v1/flows/{namespace}/{flow_id}/diff", "get"),
        ("/api/v1/sync", "post"),
    ]:
        assert method in paths[path], (path, method)
    listed = paths["/api/v1/executions"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {
        "flow", "namespace", "state", "trigger_kind", "since", "until", "cursor", "limit",
    }  # fmt: skip
    assert paths["/api/v1/triggers/{namespace}/{flow_id}/{trigger_id}/pause"]["post"]["security"] == [{"bearer": []}]
    text = json.dumps(spec)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in spec["components"]["schemas"], f"{ref} is referenced but not defined"


def test_every_read_route_answers_methods_it_does_not_take_with_405_and_allow(world: ApiWorld) -> None:
    answer = world.daemon.client.request("DELETE", "/api/v1/executions/abc/logs")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"
    assert answer.headers["content-type"] == "application/problem+json"


def test_reads_follow_the_path_of_a_removed_flow(world: ApiWorld, tmp_path: Path) -> None:
    """A flow a commit removed keeps its history: its revisions and old source stay readable; it is no longer
    active."""
    world.repo.commit({"flows/child.yaml": None}, "retire child")
    world.daemon.wait_for(lambda: "acme.ops.sub.child" not in world.daemon.flow_uids(), "the removal")
    revisions = world.daemon.api("/api/v1/flows/acme.ops.sub/child/revisions")
    assert [r["deleted"] for r in revisions] == [True, False]
    assert "message: hi" in get(world, "/api/v1/flows/acme.ops.sub/child/source", revision=1)["text"]
    assert world.daemon.get("/api/v1/flows/acme.ops.sub/child").status_code == 404


def test_a_paused_every_second_trigger_stops_firing_and_resumes(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/beat.yaml": BEAT}, "beat")
    source = {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": "1h"}
    with running_daemon(tmp_path / "daemon", [source], env=ENV) as daemon:

        def fired_after(moment: str) -> int:
            rows = query_db(
                daemon.db, "SELECT count(*) AS n FROM executions WHERE state != 'AHEAD' AND scheduled_at > ?", (moment,)
            )
            return int(rows[0]["n"])

        daemon.wait_for(lambda: fired_after("") >= 2, "the trigger to fire")
        paused = daemon.post("/api/v1/triggers/acme.demo/beat/every/pause", headers=AUTH)
        assert paused.status_code == 200, paused.text
        at = datetime.now(UTC)
        # no fire is decided for a time after the pause (the fire of the current second may still be released)
        later = (at + timedelta(seconds=1)).isoformat(timespec="milliseconds")
        daemon.wait_for(lambda: datetime.now(UTC) > at + timedelta(seconds=4), "four seconds to pass")
        assert fired_after(later) == 0
        assert daemon.post("/api/v1/triggers/acme.demo/beat/every/resume", headers=AUTH).status_code == 200
        resumed = datetime.now(UTC).isoformat(timespec="milliseconds")
        daemon.wait_for(lambda: fired_after(resumed) >= 2, "the trigger to fire again")


BEAT = """\
id: beat
namespace: acme.demo
tasks:
  - id: note
    type: io.kestra.plugin.core.log.Log
    message: beat
triggers:
  - id: every
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/1 * * * * *"
    withSeconds: true
"""
