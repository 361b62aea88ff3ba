"""The HTTP API served by a real uvicorn on 127.0.0.1, driven with httpx, fed the hosts' real webhook payloads.

`request_sync` and `on_pull_request` are the app's seams to the daemon: here they record their calls.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from test_webhooks import SECRET, gitea_headers, github_headers, gitlab_headers, hub_signature, payload

from gitsync import state
from gitsync.config import Settings
from gitsync.hosts.webhooks import WebhookEvent
from gitsync.http.app import DeliveryLog, build_app, is_degraded
from gitsync.http.metrics import Metrics
from gitsync.state.database import Store, now_iso

GH_ENV, GITEA_ENV, GITLAB_ENV = "GITSYNC_TEST_GH_SECRET", "GITSYNC_TEST_GITEA_SECRET", "GITSYNC_TEST_GITLAB_SECRET"
TOKEN_ENV, TOKEN = "GITSYNC_TEST_API_TOKEN", "api-token-for-tests"

SOURCES = [
    {"name": "hello", "repo": "https://github.com/Codertocat/Hello-World.git", "branch": "master", "secret": GH_ENV},
    {"name": "sample", "repo": "git@github.com:binkkatal/sample_app.git", "branch": "develop", "secret": GH_ENV},
    {"name": "gitea", "repo": "http://localhost:3000/example/example.git", "branch": "master", "secret": GITEA_ENV},
    {"name": "diaspora", "repo": "git@example.com:mike/diaspora.git", "branch": "master", "secret": GITLAB_ENV},
    {"name": "gltest", "repo": "http://example.com/gitlabhq/gitlab-test", "branch": "master", "secret": GITLAB_ENV},
    {"name": "nosecret", "repo": "https://github.com/Octocoders/Hello-World.git", "branch": "master", "secret": None},
    {"name": "unset", "repo": "ssh://git@example.com/jsmith/example.git", "secret": "GITSYNC_TEST_UNSET_SECRET"},
]


def make_settings() -> Settings:
    return Settings.model_validate(
        {
            "http": {"token_env": TOKEN_ENV},
            "sources": [
                {
                    "name": s["name"],
                    "repo": s["repo"],
                    "branch": s.get("branch"),
                    "namespace_prefix": s["name"],
                    "webhook_secret_env": s["secret"],
                }
                for s in SOURCES
            ],
        }
    )


@dataclass
class Seams:
    """What the app asked the daemon to do, and what the daemon reports as health."""

    syncs: list[tuple[str | None, str]] = field(default_factory=list)
    pull_requests: list[tuple[str, WebhookEvent]] = field(default_factory=list)
    health_report: dict[str, Any] = field(default_factory=lambda: {"status": "ok", "sources": {}})
    fail_sync: bool = False

    def request_sync(self, source: str | None, reason: str) -> None:
        if self.fail_sync:
            raise RuntimeError("queue is closed")
        self.syncs.append((source, reason))

    def on_pull_request(self, source: str, event: WebhookEvent) -> None:
        self.pull_requests.append((source, event))

    def health(self) -> dict[str, Any]:
        if self.health_report.get("boom"):
            raise RuntimeError("health check exploded")
        return self.health_report


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """`app` under a real uvicorn on 127.0.0.1 (a free port), in a thread; stopped on exit."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def seed(store: Store) -> None:
    """One source with a flow, a trigger and two syncs, so the read endpoints have rows to return."""
    with store.atomic() as conn:
        state.upsert_source(conn, "hello", "https://github.com/x/y.git", "master", "", "hello", "c" * 40)
        conn.execute(
            """INSERT INTO flows (uid, source, namespace, id, revision, commit_sha, path, blob)
               VALUES ('hello.etl', 'hello', 'hello', 'etl', 1, ?, 'etl.yaml', 'b1')""",
            ("c" * 40,),
        )
        conn.execute(
            """INSERT INTO triggers (uid, flow_uid, trigger_id, type, spec, cron, registered_at)
               VALUES ('hello.etl/daily', 'hello.etl', 'daily', 'io.kestra.plugin.core.trigger.Schedule', '{}',
                       '0 6 * * *', ?)""",
            (now_iso(),),
        )
        state.insert_sync(conn, "hello", "c" * 40, None, "applied", now_iso(), "1 flow added")
        state.insert_sync(conn, "gitea", None, None, "failed", now_iso(), "cannot reach http://localhost:3000")


@dataclass
class Server:
    url: str
    client: httpx.Client
    seams: Seams
    metrics: Metrics
    store: Store
    settings: Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = Store(tmp_path_factory.mktemp("http") / "state.db")
    seed(store)
    settings, seams, metrics = make_settings(), Seams(), Metrics()
    app = build_app(
        settings,
        store,
        request_sync=seams.request_sync,
        health=seams.health,
        metrics=metrics,
        on_pull_request=seams.on_pull_request,
    )
    with (
        pytest.MonkeyPatch.context() as env,
        serve(app) as url,
        httpx.Client(base_url=url, timeout=5) as client,
    ):
        for name in (GH_ENV, GITEA_ENV, GITLAB_ENV):
            env.setenv(name, SECRET)
        env.delenv("GITSYNC_TEST_UNSET_SECRET", raising=False)
        yield Server(url, client, seams, metrics, store, settings)
    store.close()


@pytest.fixture
def srv(server: Server) -> Server:
    server.seams.syncs.clear()
    server.seams.pull_requests.clear()
    server.seams.fail_sync = False
    server.seams.health_report = {"status": "ok", "sources": {}}
    return server


def delivery() -> str:
    return str(uuid.uuid4())


def post_github(srv: Server, name: str, event: str, *, secret: str = SECRET, did: str | None = None) -> httpx.Response:
    body = payload(name)
    headers = github_headers(event, body, secret, did or delivery())
    return srv.client.post("/webhooks/github", content=body, headers=headers)


# -- GitHub ---------------------------------------------------------------------------------------------------------


def test_github_push_to_the_tracked_branch_requests_a_sync(srv: Server) -> None:
    did = delivery()
    started = time.monotonic()
    response = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    assert time.monotonic() - started < 1.0
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == ["hello"]
    assert srv.seams.syncs == [("hello", f"webhook {did}")]


def test_github_wrong_secret_is_401_and_nothing_happens(srv: Server) -> None:
    response = post_github(srv, "github/push.with-new-branch.payload.json", "push", secret="not-the-secret")
    assert response.status_code == 401
    assert "does not match" in response.json()["detail"]
    assert SECRET not in response.text
    assert srv.seams.syncs == []


def test_github_unsigned_delivery_is_401(srv: Server) -> None:
    body = payload("github/push.with-new-branch.payload.json")
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery(), "Content-Type": "application/json"}
    response = srv.client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 401
    assert "missing X-Hub-Signature-256" in response.json()["detail"]
    assert srv.seams.syncs == []


def test_a_body_changed_after_signing_is_401(srv: Server) -> None:
    body = payload("github/push.with-new-branch.payload.json")
    headers = github_headers("push", body, SECRET, delivery())
    response = srv.client.post("/webhooks/github", content=body.replace(b"master", b"mastex", 1), headers=headers)
    assert response.status_code == 401


def test_duplicate_delivery_acts_once(srv: Server) -> None:
    did = delivery()
    first = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    again = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    assert first.status_code == 202
    assert again.status_code == 200 and again.json() == {"duplicate": True, "delivery": did}
    assert srv.seams.syncs == [("hello", f"webhook {did}")]


def test_an_unauthenticated_repeat_does_not_burn_the_delivery_id(srv: Server) -> None:
    did = delivery()
    forged = post_github(srv, "github/push.with-new-branch.payload.json", "push", secret="forged", did=did)
    real = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    assert (forged.status_code, real.status_code) == (401, 202)


def test_a_failing_enqueue_lets_the_redelivery_through(srv: Server) -> None:
    did = delivery()
    srv.seams.fail_sync = True
    failed = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    srv.seams.fail_sync = False
    retried = post_github(srv, "github/push.with-new-branch.payload.json", "push", did=did)
    assert (failed.status_code, retried.status_code) == (503, 202)
    assert srv.seams.syncs == [("hello", f"webhook {did}")]


def test_push_to_another_branch_is_ignored(srv: Server) -> None:
    response = post_github(srv, "github/push.branch-with-commits.go-playground.json", "push")
    assert response.status_code == 200
    assert response.json() == {"ignored": "branch master is not tracked"}
    assert srv.seams.syncs == []


def test_tag_push_is_ignored(srv: Server) -> None:
    response = post_github(srv, "github/push.payload.json", "push")
    assert response.status_code == 200
    assert response.json() == {"ignored": "refs/tags/simple-tag is not a branch"}
    assert srv.seams.syncs == []


def test_ping(srv: Server) -> None:
    # ping.payload.json is for Octocoders/Hello-World, tracked by a source without a secret: refused
    refused = post_github(srv, "github/ping.payload.json", "ping")
    assert refused.status_code == 403
    assert "'nosecret' has no webhook_secret_env" in refused.json()["detail"]
    body = json.dumps({"zen": "Design for failure.", "repository": {"full_name": "Codertocat/Hello-World",
                       "html_url": "https://github.com/Codertocat/Hello-World"}}).encode()  # fmt: skip
    headers = github_headers("ping", body, SECRET, delivery())
    response = srv.client.post("/webhooks/github", content=body, headers=headers)
    assert response.status_code == 200 and response.json() == {"ping": "ok", "sources": ["hello"]}
    assert srv.seams.syncs == []


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "closed"])
def test_pull_request_goes_to_the_callback_and_never_syncs(srv: Server, action: str) -> None:
    response = post_github(srv, f"github/pull_request.{action}.payload.json", "pull_request")
    assert response.status_code == 202
    assert response.json()["pull_request"] == 2
    assert srv.seams.syncs == []
    [(source, event)] = srv.seams.pull_requests
    assert source == "hello" and event.pull_request is not None
    assert (event.pull_request.action, event.pull_request.head_ref, event.pull_request.base_ref) == (
        action,
        "changes",
        "master",
    )


def test_other_events_are_acknowledged_and_ignored(srv: Server) -> None:
    response = post_github(srv, "github/status.payload.json", "status")
    assert response.status_code == 200 and response.json() == {"ignored": "status events are not handled"}


def test_a_repository_no_source_tracks_is_ignored(srv: Server) -> None:
    body = payload("github/push.with-new-branch.payload.json").replace(b"Codertocat/Hello-World", b"someone/else")
    response = srv.client.post("/webhooks/github", content=body, headers=github_headers("push", body))
    assert response.status_code == 200
    assert response.json() == {"ignored": "no source tracks repository someone/else"}


# -- Gitea ----------------------------------------------------------------------------------------------------------


def test_gitea_push_signed_and_unsigned(srv: Server) -> None:
    body = payload("gitea/push-event.json")
    did = delivery()
    ok = srv.client.post("/webhooks/gitea", content=body, headers=gitea_headers("push", body, SECRET, did))
    assert ok.status_code == 202 and srv.seams.syncs == [("gitea", f"webhook {did}")]
    bad = srv.client.post("/webhooks/gitea", content=body, headers=gitea_headers("push", body, "wrong", delivery()))
    assert bad.status_code == 401
    headers = gitea_headers("push", body, SECRET, delivery())
    del headers["X-Gitea-Signature"]
    headers["X-Forgejo-Signature"] = hub_signature(body)
    forgejo = srv.client.post("/webhooks/gitea", content=body, headers=headers)
    assert forgejo.status_code == 202
    assert len(srv.seams.syncs) == 2


def test_gitea_pull_request(srv: Server) -> None:
    body = payload("gitea/pull-request-event.json")
    response = srv.client.post("/webhooks/gitea", content=body, headers=gitea_headers("pull_request", body))
    assert response.status_code == 202
    [(source, event)] = srv.seams.pull_requests
    assert source == "gitea" and event.pull_request is not None and event.pull_request.head_repo == "example2/example"
    assert srv.seams.syncs == []


# -- GitLab ---------------------------------------------------------------------------------------------------------


def post_gitlab(srv: Server, name: str, event: str, token: str = SECRET, did: str | None = None) -> httpx.Response:
    headers = gitlab_headers(event, token, did or delivery())
    return srv.client.post("/webhooks/gitlab", content=payload(name), headers=headers)


def test_gitlab_push_token_right_and_wrong(srv: Server) -> None:
    did = delivery()
    ok = post_gitlab(srv, "gitlab/push.go-gitlab.json", "Push Hook", did=did)
    assert ok.status_code == 202 and srv.seams.syncs == [("diaspora", f"webhook {did}")]
    wrong = post_gitlab(srv, "gitlab/push-event.go-playground.json", "Push Hook", token="wrong")
    assert wrong.status_code == 401 and SECRET not in wrong.text
    again = post_gitlab(srv, "gitlab/push-event.go-playground.json", "Push Hook", did=did)
    assert again.json() == {"duplicate": True, "delivery": did}
    assert len(srv.seams.syncs) == 1


def test_gitlab_merge_request(srv: Server) -> None:
    response = post_gitlab(srv, "gitlab/merge_request.go-gitlab.json", "Merge Request Hook")
    assert response.status_code == 202
    [(source, event)] = srv.seams.pull_requests
    assert source == "gltest" and event.pull_request is not None
    assert (event.pull_request.number, event.pull_request.head_ref) == (1, "ms-viewport")
    assert srv.seams.syncs == []


def test_gitlab_source_whose_secret_variable_is_unset_is_403(srv: Server) -> None:
    response = post_gitlab(srv, "gitlab/tag_push.go-gitlab.json", "Tag Push Hook")
    assert response.status_code == 403
    assert response.json()["detail"] == "source 'unset': environment variable GITSYNC_TEST_UNSET_SECRET is not set"


# -- malformed requests ---------------------------------------------------------------------------------------------


def test_malformed_webhook_requests(srv: Server) -> None:
    c = srv.client
    assert c.post("/webhooks/github", content=b"{}").status_code == 400  # no X-GitHub-Event
    not_json = c.post("/webhooks/github", content=b"nope", headers={"X-GitHub-Event": "push"})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["detail"]
    assert c.post("/webhooks/bitbucket", content=b"{}").status_code == 404
    assert c.get("/webhooks/github").status_code == 405
    assert srv.seams.syncs == []


def test_body_over_the_cap_is_413(server: Server) -> None:
    seams = Seams()
    app = build_app(server.settings, server.store, request_sync=seams.request_sync, health=seams.health,
                    metrics=Metrics(), max_body=1024)  # fmt: skip
    body = payload("github/push.with-new-branch.payload.json")
    assert len(body) > 1024
    with serve(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        response = client.post("/webhooks/github", content=body, headers=github_headers("push", body))
        assert response.status_code == 413
        # no Content-Length: the cap holds while streaming too
        chunked = client.post(
            "/webhooks/github", content=iter([body[:800], body[800:]]), headers={"X-GitHub-Event": "push"}
        )
        assert chunked.status_code == 413
    assert seams.syncs == []


# -- the sync API ---------------------------------------------------------------------------------------------------


def test_sync_api_refused_when_no_token_is_configured(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    response = srv.client.post("/api/v1/sync", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert response.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": f"set {TOKEN_ENV} to enable the API",
    }
    assert response.headers["content-type"] == "application/problem+json"
    assert srv.seams.syncs == []


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing token"),
        ("Bearer", "missing token"),
        ("Basic " + TOKEN, "missing token"),
        ("Bearer wrong-token", "wrong API token"),
        ("Bearer " + TOKEN + "x", "wrong API token"),
    ],
)
def test_sync_api_wrong_or_missing_token(
    srv: Server, monkeypatch: pytest.MonkeyPatch, authorization: str | None, message: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    response = srv.client.post("/api/v1/sync", headers=headers)
    assert response.status_code == 401
    assert message in response.json()["detail"] and TOKEN not in response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert srv.seams.syncs == []


def test_sync_api_with_the_token(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    every = srv.client.post("/api/v1/sync", headers=auth)
    assert every.status_code == 202 and every.json()["accepted"] == [s["name"] for s in SOURCES]
    one = srv.client.post("/api/v1/sync", headers=auth, json={"source": "hello"})
    assert one.status_code == 202 and one.json() == {"accepted": ["hello"]}
    assert srv.seams.syncs == [(None, "api"), ("hello", "api")]
    unknown = srv.client.post("/api/v1/sync", headers=auth, json={"source": "nope"})
    assert unknown.status_code == 404 and "no source named 'nope'" in unknown.json()["detail"]
    bad = srv.client.post("/api/v1/sync", headers=auth, content=b"{not json")
    assert bad.status_code == 400
    assert srv.client.post("/api/v1/sync", headers=auth, json=["hello"]).status_code == 400
    assert len(srv.seams.syncs) == 2


# -- health, metrics, read-only state -------------------------------------------------------------------------------


def test_healthz_ok_and_degraded(srv: Server) -> None:
    srv.seams.health_report = {"status": "ok", "sources": {"hello": {"degraded": False, "applied_commit": "c" * 40}}}
    ok = srv.client.get("/healthz")
    assert ok.status_code == 200 and ok.json() == srv.seams.health_report
    srv.seams.health_report = {"status": "degraded", "sources": {"gitea": {"degraded": True, "reason": "unreachable"}}}
    degraded = srv.client.get("/healthz")
    assert degraded.status_code == 503 and degraded.json()["sources"]["gitea"]["reason"] == "unreachable"
    srv.seams.health_report = {"boom": True}
    broken = srv.client.get("/healthz")
    assert broken.status_code == 503 and broken.json() == {
        "status": "degraded",
        "error": "health check failed: RuntimeError",
    }


@pytest.mark.parametrize(
    ("report", "degraded"),
    [
        ({"status": "ok"}, False),
        ({"status": "degraded"}, True),
        ({"sources": {"a": {"degraded": False}}}, False),
        ({"sources": {"a": {"degraded": True}}}, True),
        ({"sources": [{"name": "a", "degraded": True}]}, True),
        ({"degraded": True}, True),
    ],
)
def test_is_degraded(report: dict[str, Any], degraded: bool) -> None:
    assert is_degraded(report) is degraded


def test_metrics_parse(srv: Server) -> None:
    m = srv.metrics
    m.observe_sync("hello", "applied", 0.42, commit="a" * 40)
    m.observe_sync("hello", "applied", 0.1, commit="b" * 40)
    m.set_counts("hello", flows=3, triggers=2)
    m.observe_fire("hello.etl", 1.5)
    post_github(srv, "github/push.with-new-branch.payload.json", "push", secret="wrong")
    response = srv.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("gitsync_syncs_total", (("outcome", "applied"), ("source", "hello")))] == 2
    assert samples[("gitsync_sync_duration_seconds_count", (("source", "hello"),))] == 2
    assert samples[("gitsync_applied_commit", (("commit", "b" * 40), ("source", "hello")))] == 1
    assert ("gitsync_applied_commit", (("commit", "a" * 40), ("source", "hello"))) not in samples
    assert samples[("gitsync_flows", (("source", "hello"),))] == 3
    assert samples[("gitsync_triggers", (("source", "hello"),))] == 2
    assert samples[("gitsync_trigger_fires_total", (("flow", "hello.etl"),))] == 1
    assert samples[("gitsync_trigger_fire_lag_seconds_count", ())] == 1
    assert samples[("gitsync_webhooks_total", (("host", "github"), ("outcome", "unauthorized")))] >= 1


def test_metrics_are_read_back_whole_by_prometheus_parser() -> None:
    """What `/metrics` writes (gitsync.http.metrics, no metrics library) reads back as written: buckets counted
    cumulatively up to +Inf, a label value with quotes, backslashes and a newline, a commit series replaced."""
    m = Metrics()
    for seconds in (0.07, 0.3, 400):
        m.observe_sync('a "quoted" \\ source\nname', "applied", seconds)
    m.set_applied_commit("main", "a" * 40)
    m.set_applied_commit("main", "b" * 40)
    families = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    assert {f.name: f.type for f in families.values()}.items() >= {
        ("gitsync_sync_duration_seconds", "histogram"),
        ("gitsync_syncs", "counter"),
        ("gitsync_applied_commit", "gauge"),
        ("gitsync_trigger_fire_lag_seconds", "histogram"),
    }
    buckets = {
        s.labels["le"]: s.value
        for s in families["gitsync_sync_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["source"] == 'a "quoted" \\ source\nname'
    }
    assert (buckets["0.05"], buckets["0.1"], buckets["0.5"], buckets["300.0"], buckets["+Inf"]) == (0, 1, 2, 2, 3)
    sums = [s.value for s in families["gitsync_sync_duration_seconds"].samples if s.name.endswith("_sum")]
    assert sums == [pytest.approx(400.37)]
    commits = [s.labels for s in families["gitsync_applied_commit"].samples]
    assert commits == [{"source": "main", "commit": "b" * 40}]
    unobserved = [s for s in families["gitsync_trigger_fire_lag_seconds"].samples if s.name.endswith("_count")]
    assert [s.value for s in unobserved] == [0]


def test_read_only_endpoints_match_the_state(srv: Server) -> None:
    """The paged reads list what the state holds: each flow with its revision and commit, each sync, each trigger."""
    flows = srv.client.get("/api/v1/flows").json()
    assert [(f["uid"], f["revision"], f["commit"]["sha"]) for f in flows["items"]] == [
        (row["uid"], row["revision"], row["commit"]) for row in state.list_flows(srv.store)
    ]
    syncs = srv.client.get("/api/v1/syncs").json()
    assert [(s["id"], s["outcome"]) for s in syncs["items"]] == [
        (row["id"], row["outcome"]) for row in state.list_syncs(srv.store)
    ]
    triggers = srv.client.get("/api/v1/triggers").json()
    assert [t["uid"] for t in triggers["items"]] == [row["uid"] for row in state.list_triggers(srv.store)]
    for page in (flows, syncs, triggers):
        assert page["items"], "the seed rows are missing"
        assert page["next_cursor"] is None
    assert len(srv.client.get("/api/v1/syncs", params={"limit": 1}).json()["items"]) == 1
    refused = srv.client.get("/api/v1/syncs", params={"limit": "x"})
    assert refused.status_code == 400
    assert "limit" in refused.json()["detail"]


def test_the_api_cannot_write_flows(srv: Server) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert srv.client.request(method, "/api/v1/flows", json={"id": "x"}).status_code == 405
    assert srv.client.post("/api/v1/flows/hello.etl", json={}).status_code == 404


# -- secrets stay out of the logs -----------------------------------------------------------------------------------


def test_logs_hold_no_secret_signature_or_body(srv: Server, caplog: pytest.LogCaptureFixture) -> None:
    body = payload("github/push.with-new-branch.payload.json")
    caplog.set_level(logging.DEBUG)
    for secret in (SECRET, "wrong-secret"):
        srv.client.post("/webhooks/github", content=body, headers=github_headers("push", body, secret, delivery()))
    srv.client.post("/webhooks/gitlab", content=payload("gitlab/push.go-gitlab.json"),
                    headers=gitlab_headers("Push Hook", "wrong-token", delivery()))  # fmt: skip
    assert "webhook" in caplog.text
    for leak in (SECRET, "wrong-secret", "wrong-token", hub_signature(body), "Codertocat@users.noreply"):
        assert leak not in caplog.text


def test_delivery_log_forgets_the_oldest() -> None:
    log = DeliveryLog(size=2)
    assert not log.check_and_add("github", "a")
    assert not log.check_and_add("github", "b")
    assert log.check_and_add("github", "a")
    assert not log.check_and_add("gitlab", "a")  # per host; evicts b (a was just seen again)
    assert not log.check_and_add("github", "b")
    assert not log.check_and_add("github", None) and not log.check_and_add("github", None)


def test_sources_for_event_overrides_matching(server: Server) -> None:
    seams = Seams()
    app = build_app(server.settings, server.store, request_sync=seams.request_sync, health=seams.health,
                    metrics=Metrics(), sources_for_event=lambda event: ["gitea", "no-such-source"])  # fmt: skip
    body = payload("github/push.with-new-branch.payload.json")
    with serve(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        response = client.post("/webhooks/github", content=body, headers=github_headers("push", body, SECRET, "d-1"))
    assert response.status_code == 202 and response.json()["accepted"] == ["gitea"]
    assert seams.syncs == [("gitea", "webhook d-1")]


def test_every_refusal_is_a_problem_details_body(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9457 from each layer that refuses: the Host check, the body reader, the token check and a handler."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    seams = Seams()
    app = build_app(server.settings, server.store, request_sync=seams.request_sync, health=seams.health,
                    metrics=Metrics(), max_body=1024)  # fmt: skip
    with serve(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        refusals = {
            "Host check": client.get("/healthz", headers={"Host": "evil.example"}),
            "body reader": client.post("/webhooks/github", content=b"x" * 2048, headers={"X-GitHub-Event": "push"}),
            "token check": client.post("/api/v1/sync", json={"source": "gh"}, headers={"Authorization": "Bearer no"}),
            "handler": client.post("/webhooks/nowhere", content=b"{}"),
        }
    assert [response.status_code for response in refusals.values()] == [421, 413, 401, 404]
    for layer, response in refusals.items():
        assert response.status_code >= 400, layer
        assert response.headers["content-type"] == "application/problem+json", layer
        body = response.json()
        assert body.keys() == {"type", "title", "status", "detail"}, (layer, body)
        assert body["type"] == "about:blank" and body["status"] == response.status_code, layer
        assert body["title"] and body["detail"], layer
        assert TOKEN not in response.text, layer


def test_accepted_connections_send_without_waiting_for_the_clients_ack() -> None:
    """Nagle's algorithm off on every connection the daemon accepts: with it on, a response's body waited for the
    client's delayed ACK of its headers (about 40 ms on Linux) on every request of a keep-alive connection."""
    import socket

    from gitsync.config import HttpConfig
    from gitsync.http.server import bind

    listening = bind(HttpConfig(listen="127.0.0.1:0"))
    try:
        client = socket.create_connection(listening.getsockname()[:2])
        accepted, _ = listening.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listening.close()
