"""`gitsync daemon` end to end, as a user runs it: a real subprocess on a free 127.0.0.1 port, real git repositories
(a local one watched with watchfiles, a remote over smart HTTP with a token), real GitHub push payloads signed with
the source's secret, the HTTP API, and the SQLite file read from outside.

No test asserts a duration: every wait polls a condition until a generous deadline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    PYTHON,
    STOP_TIMEOUT,
    Daemon,
    RestartableGitServer,
    daemon_env,
    github_headers,
    github_push_payload,
    metric_value,
    query_db,
    running_daemon,
    start_cli_daemon,
    start_daemon,
)
from gitservers import GitRepo
from prometheus_client.parser import text_string_to_metric_families
from runtime import gitsync_cli

from gitsync.state.database import Store

GIT_TOKEN_ENV, GIT_TOKEN = "GITSYNC_TEST_GIT_TOKEN", "git-token-for-daemon-tests"
SECRET_ENV, SECRET = "GITSYNC_TEST_WEBHOOK_SECRET", "webhook-secret-for-daemon-tests"
API_TOKEN = "api-token-for-daemon-tests"
ENV = {GIT_TOKEN_ENV: GIT_TOKEN, SECRET_ENV: SECRET, "GITSYNC_API_TOKEN": API_TOKEN}
NEVER = "1h"
"""A poll interval longer than any test, so a change can only arrive through the path under test."""


def flow(flow_id: str, message: str = "hello", *, every_second: bool = False) -> str:
    text = f"""\
id: {flow_id}
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
"""
    if every_second:
        text += """\
triggers:
  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/1 * * * * *"
    withSeconds: true
    recoverMissedSchedules: ALL
"""
    return text


def local_source(repo: GitRepo, **overrides: Any) -> dict[str, Any]:
    return {"name": "main", "repo": str(repo.path), "branch": "main", "path": "flows", "poll": NEVER, **overrides}


# -- a local repository: the watcher --------------------------------------------------------------------------


def test_a_local_commit_is_applied_by_the_watcher(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    first = repo.commit({"flows/hello.yaml": flow("hello")})
    with running_daemon(tmp_path / "daemon", [local_source(repo)]) as daemon:
        daemon.wait_for(lambda: daemon.flow_uids() == {"acme.demo.hello"}, "the first commit at start-up")
        second = repo.commit({"flows/other.yaml": flow("other"), "flows/hello.yaml": flow("hello", "bonjour")})
        daemon.wait_for(lambda: "acme.demo.other" in daemon.flow_uids(), "the watcher to apply the new commit")
        flows = {row["uid"]: row for row in daemon.api("/api/v1/flows")}
        assert flows["acme.demo.hello"]["commit"]["sha"] == second
        assert flows["acme.demo.hello"]["revision"] == 2
        assert flows["acme.demo.other"]["revision"] == 1
        cli = subprocess.run(
            [PYTHON, "-m", "gitsync", "flows", "--db", str(daemon.db), "--format", "json"],
            capture_output=True,
            text=True,
            env=daemon_env(),
            check=True,
        )
        listed = {row["uid"]: row["commit"] for row in json.loads(cli.stdout)}
        assert listed == {"acme.demo.hello": second, "acme.demo.other": second}
        syncs = daemon.query("SELECT commit_sha FROM syncs WHERE outcome = 'applied' ORDER BY id")
        assert [s["commit_sha"] for s in syncs] == [first, second]


def test_a_source_without_a_branch_says_once_which_branch_it_follows(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/hello.yaml": flow("hello")})
    source = {k: v for k, v in local_source(repo).items() if k != "branch"}
    with running_daemon(tmp_path / "daemon", [source]) as daemon:
        daemon.wait_for(lambda: daemon.flow_uids() == {"acme.demo.hello"}, "the first commit at start-up")
        for name in ("one", "two"):
            repo.commit({f"flows/{name}.yaml": flow(name)})
            daemon.wait_for(lambda name=name: f"acme.demo.{name}" in daemon.flow_uids(), f"the commit adding {name}")
        assert len(daemon.query("SELECT id FROM syncs WHERE outcome = 'applied'")) == 3
    log = daemon.log_path.read_text(encoding="utf-8")
    assert log.count("no branch configured; using the remote's default branch 'main'") == 1, log


# -- a remote over smart HTTP: webhooks, the sync API, health -------------------------------------------------


class Remote:
    """A work repository published to a token-protected smart HTTP server on a fixed port."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "srv"
        self.root.mkdir()
        self.repo = GitRepo(tmp / "work")
        self.server = RestartableGitServer(self.root, token=GIT_TOKEN)
        self.url = f"{self.server.base}/flows.git"

    def push(self, files: dict[str, str | None], message: str = "change") -> str:
        sha = self.repo.commit(files, message)
        self.repo.publish(self.root, "flows")
        return sha

    def source(self) -> dict[str, Any]:
        return {
            "name": "main",
            "repo": self.url,
            "branch": "main",
            "path": "flows",
            "poll": NEVER,
            "token_env": GIT_TOKEN_ENV,
            "webhook_secret_env": SECRET_ENV,
        }


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    remote = Remote(tmp_path)
    remote.push({"flows/hello.yaml": flow("hello")}, "first")
    with remote.server:
        yield remote


@pytest.fixture
def remote_daemon(tmp_path: Path, remote: Remote) -> Iterator[Daemon]:
    with running_daemon(tmp_path / "daemon", [remote.source()], env=ENV) as daemon:
        daemon.wait_for(lambda: daemon.flow_uids() == {"acme.demo.hello"}, "the first sync at start-up")
        yield daemon


def push_webhook(daemon: Daemon, remote: Remote, commit: str, secret: str = SECRET) -> Any:
    body = github_push_payload(remote.url, commit)
    return daemon.post("/webhooks/github", content=body, headers=github_headers(body, secret, str(uuid.uuid4())))


def syncs_total(daemon: Daemon, outcome: str | None = None) -> float:
    labels = {"source": "main", **({"outcome": outcome} if outcome else {})}
    return metric_value(daemon.get("/metrics").text, "gitsync_syncs_total", labels)


def test_a_signed_github_push_is_accepted_then_applied(remote: Remote, remote_daemon: Daemon) -> None:
    daemon = remote_daemon
    commit = remote.push({"flows/pushed.yaml": flow("pushed")}, "add pushed")
    response = push_webhook(daemon, remote, commit)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == ["main"]
    daemon.wait_for(lambda: "acme.demo.pushed" in daemon.flow_uids(), "the pushed flow to be applied")
    assert daemon.query("SELECT applied_commit FROM sources")[0]["applied_commit"] == commit
    assert metric_value(daemon.get("/metrics").text, "gitsync_webhooks_total", {"outcome": "accepted"}) == 1


def test_a_wrongly_signed_push_is_refused_and_syncs_nothing(remote: Remote, remote_daemon: Daemon) -> None:
    daemon = remote_daemon
    daemon.wait_for(lambda: syncs_total(daemon, "applied") == 1, "the start-up sync to be counted")
    before = syncs_total(daemon)
    commit = remote.push({"flows/sneaky.yaml": flow("sneaky")}, "add sneaky")
    response = push_webhook(daemon, remote, commit, secret="not-the-secret")
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert metric_value(daemon.get("/metrics").text, "gitsync_webhooks_total", {"outcome": "unauthorized"}) == 1
    # a bounded observation window (not a timing assertion): no sync may start because of the refused delivery
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert syncs_total(daemon) == before
        assert "acme.demo.sneaky" not in daemon.flow_uids()
        time.sleep(0.1)
    # the same delivery, signed right, goes through: the commit was reachable all along
    assert push_webhook(daemon, remote, commit).status_code == 202
    daemon.wait_for(lambda: "acme.demo.sneaky" in daemon.flow_uids(), "the correctly signed push to apply")


def test_the_sync_api_needs_the_bearer_token(remote: Remote, remote_daemon: Daemon) -> None:
    daemon = remote_daemon
    commit = remote.push({"flows/later.yaml": flow("later")}, "add later")
    assert daemon.post("/api/v1/sync").status_code == 401
    assert daemon.post("/api/v1/sync", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert daemon.post("/api/v1/sync", headers={"Authorization": f"Basic {API_TOKEN}"}).status_code == 401
    assert "acme.demo.later" not in daemon.flow_uids()
    response = daemon.post("/api/v1/sync", headers={"Authorization": f"Bearer {API_TOKEN}"}, json={"source": "main"})
    assert response.status_code == 202
    assert response.json() == {"accepted": ["main"]}
    daemon.wait_for(lambda: "acme.demo.later" in daemon.flow_uids(), "the API sync to apply")
    assert daemon.query("SELECT applied_commit FROM sources")[0]["applied_commit"] == commit


def test_health_is_degraded_while_the_remote_is_down(remote: Remote, remote_daemon: Daemon) -> None:
    daemon = remote_daemon
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert daemon.health().status_code == 200
    remote.server.stop()
    assert daemon.post("/api/v1/sync", headers=auth).status_code == 202
    degraded = daemon.wait_for(lambda: _if(daemon.health(), 503), "/healthz to report degraded")
    report = degraded.json()
    assert report["status"] == "degraded"
    source = report["sources"]["main"]
    assert source["degraded"] is True and source["outcome"] == "failed"
    assert "127.0.0.1" in source["reason"] and GIT_TOKEN not in degraded.text
    assert daemon.flow_uids() == {"acme.demo.hello"}  # a failed fetch leaves the applied state alone
    remote.server.start()
    commit = remote.push({"flows/back.yaml": flow("back")}, "back")
    assert daemon.post("/api/v1/sync", headers=auth).status_code == 202
    healthy = daemon.wait_for(lambda: _if(daemon.health(), 200), "/healthz to be ok again")
    assert healthy.json()["sources"]["main"]["reason"] is None
    daemon.wait_for(lambda: "acme.demo.back" in daemon.flow_uids(), "the commit pushed while down")
    assert healthy.json()["status"] == "ok"
    assert daemon.query("SELECT applied_commit FROM sources")[0]["applied_commit"] == commit


def _if(response: Any, status: int) -> Any:
    return response if response.status_code == status else None


def test_metrics_parse_and_count_syncs(remote: Remote, remote_daemon: Daemon) -> None:
    daemon = remote_daemon
    daemon.wait_for(lambda: syncs_total(daemon, "applied") >= 1, "the start-up sync in the metrics")
    response = daemon.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "gitsync_syncs" in families and families["gitsync_syncs"].type == "counter"
    samples = [s for s in families["gitsync_syncs"].samples if s.name == "gitsync_syncs_total"]
    assert {"source": "main", "outcome": "applied"} in [s.labels for s in samples]
    assert metric_value(response.text, "gitsync_flows", {"source": "main"}) == 1


# -- restarts ---------------------------------------------------------------------------------------------------


def test_a_restart_keeps_the_state_and_fires_each_second_once(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    commit = repo.commit({"flows/hello.yaml": flow("hello"), "flows/tick.yaml": flow("tick", every_second=True)})
    directory = tmp_path / "daemon"
    with running_daemon(directory, [local_source(repo)]) as daemon:
        daemon.wait_for(lambda: daemon.trigger_uids() == {"acme.demo.tick/tick"}, "the trigger to register")
        daemon.wait_for(lambda: _executions(daemon.db) >= 2, "a couple of fires")
        flows_before = daemon.flow_revisions()
        triggers_before = {t["uid"] for t in daemon.api("/api/v1/triggers")}
        assert daemon.stop() == 0
    fired_before = _executions(directory / "gitsync.db")
    with running_daemon(directory, [local_source(repo)]) as daemon:
        daemon.wait_for(lambda: _executions(daemon.db) >= fired_before + 2, "fires after the restart")
        assert daemon.flow_revisions() == flows_before  # same revisions, same commit: nothing re-applied
        assert {t["uid"] for t in daemon.api("/api/v1/triggers")} == triggers_before
        daemon.wait_for(lambda: _if(daemon.health(), 200), "the start-up sync to finish")
        assert daemon.stop() == 0
    db = directory / "gitsync.db"
    applied = query_db(db, "SELECT commit_sha FROM syncs WHERE outcome = 'applied'")
    assert [row["commit_sha"] for row in applied] == [commit]
    assert query_db(db, "SELECT count(*) AS n FROM revisions")[0]["n"] == 2
    duplicates = query_db(
        db, "SELECT trigger_uid, scheduled_at FROM executions GROUP BY trigger_uid, scheduled_at HAVING count(*) > 1"
    )
    assert duplicates == []
    assert missing_seconds(db, "acme.demo.tick/tick") == []


def test_the_daemon_skips_the_fires_a_schedule_condition_refuses(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    odd = (
        flow("odd", every_second=True)
        + """\
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ (trigger.date | date('s') | number) % 2 == 1 }}"
"""
    )
    never = (
        flow("never", every_second=True)
        + """\
    when: "{{ trigger.date | date('yyyy') == '1999' }}"
"""
    )
    repo.commit({"flows/odd.yaml": odd, "flows/never.yaml": never})
    with running_daemon(tmp_path / "daemon", [local_source(repo)]) as daemon:
        daemon.wait_for(lambda: len(daemon.trigger_uids()) == 2, "the triggers to register")
        daemon.wait_for(lambda: _executions(daemon.db) >= 2, "a couple of fires")
        decided = daemon.query("SELECT last_scheduled_at FROM triggers WHERE uid = 'acme.demo.never/tick'")
        assert decided[0]["last_scheduled_at"] is not None  # its times were decided...
        assert daemon.query("SELECT id FROM executions WHERE flow_uid = 'acme.demo.never'") == []  # ...and skipped
        seconds = daemon.query("SELECT scheduled_at FROM executions WHERE flow_uid = 'acme.demo.odd'")
        assert seconds and {int(r["scheduled_at"][17:19]) % 2 for r in seconds} == {1}  # odd seconds only
        assert daemon.stop() == 0


def _executions(db: Path) -> int:
    return int(query_db(db, "SELECT count(*) AS n FROM executions")[0]["n"])


def missing_seconds(db: Path, trigger: str) -> list[str]:
    """Scheduled seconds between a trigger's first and last execution that have no execution (ALL recovers all)."""
    from datetime import datetime, timedelta

    rows = query_db(db, "SELECT scheduled_at FROM executions WHERE trigger_uid = ? ORDER BY scheduled_at", (trigger,))
    times = [datetime.fromisoformat(r["scheduled_at"]) for r in rows]
    have = set(times)
    missing, moment = [], times[0] if times else None
    while moment is not None and moment < times[-1]:
        moment += timedelta(seconds=1)
        if moment not in have:
            missing.append(moment.isoformat())
    return missing


def test_an_execution_left_running_is_failed_at_start(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/hello.yaml": flow("hello")})
    directory = tmp_path / "daemon"
    directory.mkdir()
    store = Store(directory / "gitsync.db")
    with store.atomic() as conn:
        conn.execute(
            """INSERT INTO executions (id, flow_uid, revision, commit_sha, state, created_at, started_at, source)
               VALUES ('exec-left-running', 'acme.demo.hello', 1, ?, 'RUNNING', ?, ?, 'main')""",
            ("0" * 40, "2024-01-01T00:00:00.000+00:00", "2024-01-01T00:00:01.000+00:00"),
        )
    store.close()
    daemon = start_daemon(directory, [local_source(repo)])
    try:
        rows = daemon.query("SELECT state, error, ended_at FROM executions WHERE id = 'exec-left-running'")
        assert rows[0]["state"] == "FAILED"
        assert rows[0]["error"].startswith("worker lost")
        assert rows[0]["ended_at"]
        # the source has no `status:` block: nothing is queued that nothing would send (issue 10, 12)
        assert daemon.query("SELECT state FROM outbox") == []
    finally:
        assert daemon.stop() == 0


# -- a Webhook trigger whose key cannot be rendered (issue 10, 3) ---------------------------------------------------

HOOKS = """\
id: hooks
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hello
triggers:
  - id: guarded
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{ secret('HOOK_KEY') }}"
  - id: plain
    type: io.kestra.plugin.core.trigger.Webhook
    key: plain-key-for-daemon-tests
"""


def test_a_webhook_key_that_needs_an_unset_secret_is_refused_with_the_reason(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit({"flows/hooks.yaml": HOOKS})
    with running_daemon(tmp_path / "daemon", [local_source(repo)], env=ENV) as daemon:
        daemon.wait_for(lambda: "acme.demo.hooks" in daemon.flow_uids(), "the flow is applied")
        refused = daemon.post("/api/v1/executions/webhook/acme.demo/hooks/what-the-caller-sends", json={})
        accepted = daemon.post("/api/v1/executions/webhook/acme.demo/hooks/plain-key-for-daemon-tests", json={})
        log = daemon.log_path.read_text(encoding="utf-8", errors="replace")
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == (
        "flow acme.demo.hooks: the key of Webhook trigger 'guarded' cannot be rendered, so no call can "
        "match it: secret 'HOOK_KEY' is not defined (set environment variable SECRET_HOOK_KEY to its base64 value, "
        "or add it to the secrets file) in {{ secret('HOOK_KEY') }}"
    )
    assert accepted.status_code == 200, accepted.text  # the flow's other trigger still answers
    assert "Traceback" not in log
    said = [line for line in log.splitlines() if "HOOK_KEY" in line]
    assert len(said) == 1 and "WARNING" in said[0] and "acme.demo.hooks" in said[0], log


def test_a_webhook_call_its_conditions_refuse_is_answered_204_and_starts_nothing(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    hook = (
        flow("gated")
        + """\
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: gated-key-for-daemon-tests
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.ref == 'main' }}"
"""
    )
    repo.commit({"flows/gated.yaml": hook})
    with running_daemon(tmp_path / "daemon", [local_source(repo)], env=ENV) as daemon:
        daemon.wait_for(lambda: "acme.demo.gated" in daemon.flow_uids(), "the flow is applied")
        path = "/api/v1/executions/webhook/acme.demo/gated/gated-key-for-daemon-tests"
        refused = daemon.post(path, json={"ref": "feature"})
        assert refused.status_code == 204 and refused.content == b""
        assert daemon.query("SELECT id FROM executions") == []
        accepted = daemon.post(path, json={"ref": "main"})
        assert accepted.status_code == 200, accepted.text
        assert [r["id"] for r in daemon.query("SELECT id FROM executions")] == [accepted.json()["id"]]
        assert daemon.stop() == 0


# -- how each execution was started, recorded and shown (issue 10, 10) ------------------------------------------------

KIND_FLOWS = {
    "flows/parent.yaml": """\
id: parent
namespace: acme.demo
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: acme.demo
    flowId: child
""",
    "flows/child.yaml": flow("child"),
    "flows/after.yaml": """\
id: after
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: after the parent
triggers:
  - id: on_parent
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: acme.demo
        flowId: parent
""",
    "flows/hook.yaml": """\
id: hook
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hooked
triggers:
  - id: incoming
    type: io.kestra.plugin.core.trigger.Webhook
    key: kind-key-for-daemon-tests
""",
    "flows/tick.yaml": flow("tick", every_second=True),
    "flows/flaky.yaml": """\
id: flaky
namespace: acme.demo
retry:
  type: constant
  interval: PT0S
  maxAttempts: 2
  behavior: CREATE_NEW_EXECUTION
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
""",
}


def test_each_execution_shows_how_it_was_started(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "work")
    repo.commit(KIND_FLOWS)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    ended = ("SUCCESS", "FAILED", "RETRIED", "WARNING", "KILLED")
    with running_daemon(tmp_path / "daemon", [local_source(repo)], env=ENV) as daemon:
        daemon.wait_for(lambda: "acme.demo.flaky" in daemon.flow_uids(), "the flows are applied")
        for uid in ("parent", "flaky"):
            answer = daemon.post(f"/api/v1/executions/acme.demo/{uid}", json={}, headers=auth)
            assert answer.status_code == 201, answer.text
        hooked = daemon.post("/api/v1/executions/webhook/acme.demo/hook/kind-key-for-daemon-tests", json={})
        assert hooked.status_code == 200, hooked.text

        def kinds() -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for row in daemon.api("/api/v1/executions"):
                if row["state"] in ended:
                    out.setdefault(row["flow"], set()).add(row["trigger_kind"])
            return out

        wanted = {
            "acme.demo.parent": {"api"},
            "acme.demo.child": {"subflow"},
            "acme.demo.after": {"flow"},
            "acme.demo.hook": {"webhook"},
            "acme.demo.tick": {"schedule"},
            "acme.demo.flaky": {"api", "retry"},
        }
        daemon.wait_for(lambda: kinds() == wanted, "every kind of start to run", timeout=90)
        one = daemon.api(f"/api/v1/executions/{hooked.json()['id']}")
        assert one["trigger_kind"] == "webhook"
    state = (str(daemon.db), str(daemon.data_dir))
    manual = gitsync_cli(state, "run", "acme.demo.child", "--quiet")
    assert manual.returncode == 0, manual.stderr
    listed = gitsync_cli(state, "executions", "--format", "json", "--limit", "1000")
    rows = json.loads(listed.stdout)
    assert {r["trigger_kind"] for r in rows if r["flow"] == "acme.demo.child"} == {"subflow", "manual"}
    assert {r["trigger_kind"] for r in rows} == {"api", "subflow", "flow", "webhook", "schedule", "retry", "manual"}
    text = gitsync_cli(state, "executions", "--limit", "1000").stdout.splitlines()
    shown = {(r["id"], r["trigger_kind"], r["trigger"]) for r in rows}
    for execution_id, kind, trigger in shown:
        line = next(line for line in text if line.startswith(execution_id))
        assert f"  {kind} {trigger}  " in line if trigger else f"  {kind}  " in line, line
    tick = next(r for r in rows if r["trigger_kind"] == "schedule")
    assert tick["trigger"] == "acme.demo.tick/tick"


# -- what the daemon says: where its state lives, what to try, why it stopped ----------------------------------


def _said(daemon: Daemon, text: str) -> str:
    """The log line holding `text` (waited for)."""
    return daemon.wait_for(
        lambda: next((line for line in daemon.log_tail(200).splitlines() if text in line), None), repr(text)
    )


def test_the_first_lines_say_where_the_state_lives_and_what_to_try_and_ctrl_c_is_logged(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "checkout")
    repo.commit({"flows/hello.yaml": flow("hello")})
    daemon = start_cli_daemon(repo.path, ["--repo", ".", "--path", "flows", "--namespace-prefix", "acme"])
    try:
        daemon.wait_for(lambda: daemon.flow_uids() == {"acme.demo.hello"}, "the first sync")
        state = _said(daemon, "state database")
        assert f"state database {repo.path / 'gitsync.db'}" in state and f"files in {repo.path / '.gitsync'}" in state
        source = _said(daemon, "source 'default'")  # `--repo .` names its source `default`
        for part in (f"{repo.path}", "folder flows", "namespaces acme", "watched for commits", "polled every 60s"):
            assert part in source, source
        running = _said(daemon, "gitsync is running")
        assert f"HTTP API at {daemon.url}" in running and f"health: {daemon.url}/healthz" in running
        assert "Ctrl-C" in running
        tries = _said(daemon, "try, from this folder:")
        for command in ("gitsync flows", "gitsync executions", "gitsync run NS.ID", f"curl -s {daemon.url}/healthz"):
            assert command in tries, tries
        listed = subprocess.run(
            [PYTHON, "-m", "gitsync", "flows"], cwd=repo.path, capture_output=True, text=True, timeout=120
        )
        assert "acme.demo.hello" in listed.stdout, listed.stdout + listed.stderr
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.proc.wait(STOP_TIMEOUT) == 0
    finally:
        if daemon.alive():
            daemon.kill()
    log = daemon.log_tail(200)
    assert "gitsync stopped (SIGINT, Ctrl-C)" in log, log
    assert "Traceback" not in log


def test_state_flags_are_in_the_commands_to_try_and_sigterm_is_logged(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "checkout")
    repo.commit({"flows/hello.yaml": flow("hello")})
    args = ["--repo", ".", "--path", "flows", "--db", "state/x.db", "--data-dir", "state/files"]
    (repo.path / "state").mkdir()
    daemon = start_cli_daemon(repo.path, args)
    try:
        daemon.wait_for(lambda: daemon.flow_uids() == {"acme.demo.hello"}, "the first sync")
        flags = f"--db {repo.path / 'state' / 'x.db'} --data-dir {repo.path / 'state' / 'files'}"
        tries = _said(daemon, "try:")
        assert f"gitsync flows {flags}" in tries and f"gitsync executions {flags}" in tries, tries
        assert "namespaces every namespace" in _said(daemon, "source 'default'")
        pasted = tries.split("try: ", 1)[1].split(", ")[0]  # `gitsync flows --db … --data-dir …`, from elsewhere
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        command = [PYTHON, "-m", *pasted.split()]
        listed = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, timeout=120)
        assert "acme.demo.hello" in listed.stdout, listed.stdout + listed.stderr
        assert daemon.stop() == 0
    finally:
        if daemon.alive():
            daemon.kill()
    assert "gitsync stopped (SIGTERM)" in daemon.log_tail(200)
