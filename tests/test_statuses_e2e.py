"""Commit statuses and pull-request review end to end, as a new user meets them (issue 5).

Real parts only: `gitsync daemon` as a subprocess, a git repository served over smart HTTP with a token on
127.0.0.1, the fake GitHub of tests/hostserver.py as the status API (it checks every request against GitHub's
published schema and records what it accepted), and GitHub's real push / pull_request payloads, rewritten to the
test repository and signed with the source's secret.

The rule asserted for each (commit, context): the statuses GitHub received are the statuses gitsync wrote, in the
order written, each at most once; the only ones allowed to be missing are `pending` statuses followed by a later
status of the same key (the sender legitimately coalesces a pending that was superseded before it was posted).
The last status of every key always arrives.

No test asserts a duration: every wait polls a condition until a generous deadline.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import (
    PAYLOADS,
    PYTHON,
    Daemon,
    daemon_env,
    github_headers,
    github_push_payload,
    running_daemon,
    start_daemon,
)
from gitservers import GitRepo, git, http_git_server
from hostserver import RunningHost, host_server

GIT_TOKEN_ENV, GIT_TOKEN = "GITSYNC_TEST_GIT_TOKEN", "git-token-for-status-tests"
SECRET_ENV, SECRET = "GITSYNC_TEST_WEBHOOK_SECRET", "webhook-secret-for-status-tests"
STATUS_TOKEN_ENV, STATUS_TOKEN = "GITSYNC_TEST_STATUS_TOKEN", "status-token-for-status-tests"
OTHER_STATUS_TOKEN_ENV = "GITSYNC_TEST_OTHER_STATUS_TOKEN"
API_TOKEN = "api-token-for-status-tests"
ENV = {
    GIT_TOKEN_ENV: GIT_TOKEN,
    SECRET_ENV: SECRET,
    STATUS_TOKEN_ENV: STATUS_TOKEN,
    OTHER_STATUS_TOKEN_ENV: "a-token-github-refuses",
    "GITSYNC_API_TOKEN": API_TOKEN,
}
REPOSITORY = "acme/flows"
SYNC, PLAN = "gitsync/sync", "gitsync/plan"
PR_NUMBER = 7
TIMEOUT = 90.0

Expected = list[tuple[str, str]]
"""(state, regular expression the description must match in full)."""


def flow(flow_id: str, message: str = "hello", namespace: str = "acme.demo", *, hourly: bool = False) -> str:
    """A flow that logs `message`; `hourly`: scheduled every hour, and it waits to be resumed before logging
    (so the test sees its execution's pending status arrive before the final one, without any timing)."""
    text = f"""\
id: {flow_id}
namespace: {namespace}
tasks:
"""
    if hourly:
        text += """\
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
"""
    text += f"""\
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
"""
    if hourly:
        text += """\
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@hourly"
"""
    return text


INVALID = """\
id: broken
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.NoSuchTask
    message: hi
"""


class Remote:
    """A work repository published as `<root>/<name>.git`, served over smart HTTP with a token."""

    def __init__(self, tmp: Path, root: Path, base: str, name: str = "flows") -> None:
        self.root, self.name = root, name
        self.repo = GitRepo(tmp / f"work-{name}")
        self.url = f"{base}/{name}.git"

    @property
    def bare(self) -> Path:
        return self.root / f"{self.name}.git"

    def push(self, files: dict[str, str | None], message: str = "change") -> str:
        sha = self.repo.commit(files, message)
        self.repo.publish(self.root, self.name)
        return sha

    def revert(self, commit: str) -> str:
        git("revert", "--no-edit", commit, cwd=self.repo.path)
        self.repo.publish(self.root, self.name)
        return self.repo.head()

    def pull_request_head(self, branch: str, files: dict[str, str | None], number: int) -> str:
        """A commit on `branch` (not the tracked one), published where GitHub keeps it: refs/pull/N/head."""
        current = git("symbolic-ref", "--short", "HEAD", cwd=self.repo.path)
        existing = git("branch", "--list", branch, cwd=self.repo.path)
        git("checkout", "-q", *([] if existing else ["-b"]), branch, cwd=self.repo.path)
        try:
            sha = self.repo.commit(files, f"pull request #{number}")
        finally:
            git("checkout", "-q", current, cwd=self.repo.path)
        git("push", "-q", "--force", str(self.bare), f"{sha}:refs/pull/{number}/head", cwd=self.repo.path)
        return sha

    def source(self, name: str = "main", prefix: str = "acme.demo", **status: Any) -> dict[str, Any]:
        return {
            "name": name,
            "repo": self.url,
            "branch": "main",
            "path": "flows",
            "namespace_prefix": prefix,
            "poll": "1h",  # longer than any test: changes arrive through webhooks
            "token_env": GIT_TOKEN_ENV,
            "webhook_secret_env": SECRET_ENV,
            "status": {"provider": "github", "repository": REPOSITORY, "token_env": STATUS_TOKEN_ENV, **status},
        }


@pytest.fixture
def git_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "srv"
    root.mkdir()
    with http_git_server(root, token=GIT_TOKEN) as base:
        yield root, base


@pytest.fixture
def github() -> Iterator[RunningHost]:
    with host_server("github", REPOSITORY, STATUS_TOKEN) as host:
        yield host


# -- webhooks -----------------------------------------------------------------------------------------------------


def push_webhook(daemon: Daemon, remote: Remote, commit: str) -> None:
    body = github_push_payload(remote.url, commit)
    answer = daemon.post("/webhooks/github", content=body, headers=github_headers(body, SECRET, str(uuid.uuid4())))
    assert answer.status_code == 202, answer.text


def pull_request_webhook(daemon: Daemon, remote: Remote, action: str, head: str, base: str, before: str = "") -> None:
    """GitHub's real `pull_request` payload (opened / synchronize) rewritten to the test repository."""
    data = json.loads((PAYLOADS / "github" / f"pull_request.{action}.payload.json").read_bytes())
    data["number"] = PR_NUMBER
    pr = data["pull_request"]
    pr["number"] = PR_NUMBER
    pr["head"].update(sha=head, ref="feature")
    pr["base"].update(sha=base, ref="main")
    for side in (pr["head"]["repo"], pr["base"]["repo"], data["repository"]):
        side.update(full_name=REPOSITORY, clone_url=remote.url, html_url=remote.url, default_branch="main")
    if action == "synchronize":
        data.update(before=before, after=head)
    body = json.dumps(data).encode()
    headers = github_headers(body, SECRET, str(uuid.uuid4()), event="pull_request")
    answer = daemon.post("/webhooks/github", content=body, headers=headers)
    assert answer.status_code == 202, answer.text


def api_run(daemon: Daemon, uid: str) -> str:
    namespace, _, flow_id = uid.rpartition(".")
    answer = daemon.post(
        f"/api/v1/executions/{namespace}/{flow_id}", json={}, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


# -- what the host received -----------------------------------------------------------------------------------------


def received(host: RunningHost) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(commit, context) -> [(state, description)], in the order the host accepted them."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for status in list(host.statuses):
        out.setdefault((status["sha"], status["context"]), []).append((status["state"], status["description"] or ""))
    return out


def arrived(host: RunningHost, commit: str, context: str, state: str) -> list[tuple[str, str]] | None:
    """The key's statuses once its last one has `state` (a final state: nothing else follows it)."""
    got = received(host).get((commit, context), [])
    return got if got and got[-1][0] == state else None


def assert_sequence(got: list[tuple[str, str]], expected: Expected, key: Any) -> None:
    """`got` is `expected` in order, each once, where only a pending followed by a later status may be missing."""
    i = 0
    for n, (state, pattern) in enumerate(expected):
        if i < len(got) and got[i][0] == state and re.fullmatch(pattern, got[i][1]):
            i += 1
        elif state == "pending" and n < len(expected) - 1:
            continue  # coalesced: superseded before it was posted
        else:
            raise AssertionError(f"{key}: received {got}, expected {expected} (missing or out of order: {state})")
    assert i == len(got), f"{key}: received {got}, more than expected {expected}"


def statuses_cli(daemon: Daemon) -> list[dict[str, Any]]:
    done = subprocess.run(
        [PYTHON, "-m", "gitsync", "statuses", "--db", str(daemon.db), "--format", "json"],
        capture_output=True,
        text=True,
        env=daemon_env(),
        check=True,
    )
    return json.loads(done.stdout)


def applied(added: int = 0, changed: int = 0, removed: int = 0, triggers: int = 0) -> str:
    return re.escape(f"applied: +{added} ~{changed} -{removed} flows, {triggers} trigger change(s)")


# -- 1. the user's path: push, invalid push, run, revert, pull request ----------------------------------------------


def test_every_sync_run_and_pull_request_is_reported_on_its_commit(
    tmp_path: Path, git_root: tuple[Path, str], github: RunningHost
) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    c0 = remote.push({"flows/hello.yaml": flow("hello")}, "first")
    source = remote.source(api_url=github.api_url)
    with running_daemon(tmp_path / "daemon", [source], env=ENV) as daemon:
        daemon.wait_for(lambda: arrived(github, c0, SYNC, "success"), "the start-up sync's status", TIMEOUT)

        # (a) a valid commit, announced by a webhook: pending, then success with the summary
        c1 = remote.push({"flows/tick.yaml": flow("tick", "tick", hourly=True)}, "add tick")
        push_webhook(daemon, remote, c1)
        daemon.wait_for(lambda: arrived(github, c1, SYNC, "success"), "gitsync/sync success on the valid commit")

        # (d) a run of the scheduled flow (@hourly, started through the API) on the commit of its revision
        execution = api_run(daemon, "acme.demo.tick")
        tick = "gitsync/acme.demo.tick"
        daemon.wait_for(lambda: arrived(github, c1, tick, "pending"), "the execution's pending status", TIMEOUT)
        assert daemon.api(f"/api/v1/executions/{execution}")["state"] == "PAUSED"
        resumed = daemon.post(
            f"/api/v1/executions/{execution}/resume", json={}, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert resumed.status_code == 202, resumed.text
        run = daemon.wait_for(
            lambda: (row := daemon.api(f"/api/v1/executions/{execution}"))["state"] == "SUCCESS" and row,
            "the execution to succeed",
            TIMEOUT,
        )
        assert run["commit"]["sha"] == c1
        daemon.wait_for(lambda: arrived(github, c1, tick, "success"), "the execution's final status")
        assert received(github)[(c1, tick)][0] == ("pending", f"running (execution {execution})")

        # (b) an invalid commit: pending, then failure naming the file and line of the first error
        c2 = remote.push({"flows/broken.yaml": INVALID}, "break it")
        push_webhook(daemon, remote, c2)
        daemon.wait_for(lambda: arrived(github, c2, SYNC, "failure"), "gitsync/sync failure on the invalid commit")
        assert daemon.flow_uids() == {"acme.demo.hello", "acme.demo.tick"}

        # (e) the invalid commit reverted: success
        c3 = remote.revert(c2)
        push_webhook(daemon, remote, c3)
        daemon.wait_for(lambda: arrived(github, c3, SYNC, "success"), "gitsync/sync success on the revert")
        flows_before = daemon.flow_revisions()

        # (c) a pull request: a plan status on its head and one comment, edited in place on the next push
        h1 = remote.pull_request_head("feature", {"flows/pr.yaml": flow("pr", "from the pull request")}, PR_NUMBER)
        pull_request_webhook(daemon, remote, "opened", h1, c3)
        daemon.wait_for(lambda: arrived(github, h1, PLAN, "success"), "gitsync/plan on the pull request's head")
        daemon.wait_for(lambda: len(github.comments) == 1, "the plan comment")
        first = dict(next(iter(github.comments.values())))
        assert first["pr"] == PR_NUMBER and first["edits"] == 0
        assert "gitsync plan" in first["body"] and "acme.demo.pr" in first["body"] and h1[:7] in first["body"]

        h2 = remote.pull_request_head(
            "feature", {"flows/pr.yaml": flow("pr", "changed"), "flows/two.yaml": flow("two")}, PR_NUMBER
        )
        pull_request_webhook(daemon, remote, "synchronize", h2, c3, before=h1)
        daemon.wait_for(lambda: arrived(github, h2, PLAN, "success"), "gitsync/plan on the new head")
        daemon.wait_for(lambda: next(iter(github.comments.values()))["edits"] == 1, "the comment edited in place")
        assert len(github.comments) == 1
        edited = next(iter(github.comments.values()))
        assert edited["id"] == first["id"] and h2[:7] in edited["body"] and "acme.demo.two" in edited["body"]
        assert [r["route"] for r in github.requests if "comment" in r["route"]] == [
            "list_comments",
            "create_comment",
            "list_comments",
            "edit_comment",
        ]

        # nothing of the pull request's head was applied or run
        assert daemon.flow_revisions() == flows_before
        assert [row["flow"] for row in daemon.api("/api/v1/executions")] == ["acme.demo.tick"]
        daemon.wait_for(lambda: not pending_rows(daemon), "the outbox to drain")

    expected: dict[tuple[str, str], Expected] = {
        (c0, SYNC): [("pending", "syncing"), ("success", applied(added=1))],
        (c1, SYNC): [("pending", "syncing"), ("success", applied(added=1, triggers=1))],
        (c1, tick): [
            ("pending", re.escape(f"running (execution {execution})")),
            ("success", r"success in \d+\.\ds"),
        ],
        (c2, SYNC): [
            ("pending", "syncing"),
            ("failure", r"flows/broken\.yaml:5:\d+: .*unknown task type 'io\.kestra\.plugin\.core\.log\.NoSuchTask'.*"),
        ],
        (c3, SYNC): [("pending", "syncing"), ("success", applied())],
        (h1, PLAN): [("success", re.escape("plan: +1 ~0 -0 flows, 0 trigger change(s)"))],
        (h2, PLAN): [("success", re.escape("plan: +2 ~0 -0 flows, 0 trigger change(s)"))],
    }
    got = received(github)
    assert set(got) == set(expected), f"statuses on unexpected (commit, context): {sorted(set(got) ^ set(expected))}"
    for key, sequence in expected.items():
        assert_sequence(got[key], sequence, key)
    for status in github.statuses:
        assert len(status["description"] or "") <= 140
    assert github.violations == []


def commit_of(daemon: Daemon, uid: str) -> str | None:
    return {row["uid"]: row["commit"]["sha"] for row in daemon.api("/api/v1/flows")}.get(uid)


def pending_rows(daemon: Daemon, source: str | None = None) -> list[dict[str, Any]]:
    where = " AND source = ?" if source else ""
    return daemon.query(
        f"SELECT * FROM outbox WHERE sent_at IS NULL AND given_up = 0 AND superseded = 0{where}",
        (source,) if source else (),
    )


# -- 2. a crash while the host fails: every status arrives once after the restart ---------------------------------


def test_statuses_queued_at_a_crash_arrive_exactly_once_after_the_restart(
    tmp_path: Path, git_root: tuple[Path, str], github: RunningHost
) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    other = Remote(tmp_path, root, base, name="other")
    c0 = remote.push({"flows/hello.yaml": flow("hello")}, "first")
    d0 = other.push({"flows/x.yaml": flow("x", namespace="acme.other")}, "first")
    with host_server("github", REPOSITORY, "the-right-token") as refusing:
        sources = [
            remote.source(api_url=github.api_url),
            other.source("other", "acme.other", api_url=refusing.api_url, token_env=OTHER_STATUS_TOKEN_ENV),
        ]
        github.fail(500, times=None)
        directory = tmp_path / "daemon"
        daemon = start_daemon(directory, sources, env=ENV)
        try:
            daemon.wait_for(lambda: "acme.demo.hello" in daemon.flow_uids(), "the start-up sync")
            c1 = remote.push({"flows/hello.yaml": flow("hello", "bonjour")}, "second")
            push_webhook(daemon, remote, c1)
            daemon.wait_for(lambda: commit_of(daemon, "acme.demo.hello") == c1, "the second commit applied")
            execution = api_run(daemon, "acme.demo.hello")
            daemon.wait_for(
                lambda: daemon.api(f"/api/v1/executions/{execution}")["state"] == "SUCCESS", "the run", TIMEOUT
            )
            keys = {(c0, SYNC), (c1, SYNC), (c1, "gitsync/acme.demo.hello")}

            def queued_and_failing() -> bool:
                rows = pending_rows(daemon, "main")
                failing = {(r["commit_sha"], r["context"]) for r in rows if r["attempts"] and "500" in r["last_error"]}
                return failing == keys and len(rows) == len(keys)

            daemon.wait_for(queued_and_failing, "every status queued and retried after a 500", TIMEOUT)
            daemon.wait_for(lambda: daemon.query("SELECT 1 FROM outbox WHERE given_up = 1"), "the 401 to give up")
            degraded = daemon.wait_for(lambda: daemon.health().status_code == 503 and daemon.health(), "degraded")
            report = degraded.json()["statuses"]
            assert report["status"] == "degraded"
            assert any("401" in g["last_error"] and g["commit"] == d0 for g in report["given_up_recent"])
            assert github.statuses == [] and github.faulted
        finally:
            daemon.kill()  # SIGKILL: statuses are queued, nothing is flushed

        github.clear_faults()
        with running_daemon(directory, sources, env=ENV) as again:
            again.wait_for(lambda: not pending_rows(again, "main"), "the outbox to drain after the restart", TIMEOUT)
            sent = again.query("SELECT * FROM outbox WHERE source = 'main' AND sent_at IS NOT NULL ORDER BY id")
            written = again.query("SELECT * FROM outbox WHERE source = 'main' ORDER BY id")
            rows = statuses_cli(again)
            health = again.health()

        # exactly once: the host accepted each sent row once, and nothing else
        counts = Counter((s["sha"], s["context"], s["state"], s["description"]) for s in github.statuses)
        assert all(n == 1 for n in counts.values()), counts
        assert counts == Counter((r["commit_sha"], r["context"], r["state"], r["description"]) for r in sent)
        last = {(r["commit_sha"], r["context"]): r for r in written}
        assert set(last) == keys and all(r["sent_at"] for r in last.values())
        assert last[(c1, "gitsync/acme.demo.hello")]["state"] == "success"
        assert {(k[0], k[1], r["state"]) for k, r in last.items()} <= {(s, c, st) for s, c, st, _ in counts}
        for key, sequence in received(github).items():
            expected = [
                (r["state"], re.escape(r["description"])) for r in written if (r["commit_sha"], r["context"]) == key
            ]
            assert_sequence(sequence, expected, key)
        assert github.violations == []

        # `gitsync statuses`: sent rows for the healthy host, given-up rows with their reason for the refusing one
        mine = [r for r in rows if r["source"] == "main"]
        assert {r["outcome"] for r in mine} <= {"sent", "superseded"}
        assert all(r["sent_at"] for r in mine if r["outcome"] == "sent")
        refused = [r for r in rows if r["source"] == "other"]
        assert refused and refused[0]["outcome"] == "given_up"  # newest first: the final status was refused
        assert {r["outcome"] for r in refused} <= {"given_up", "superseded"}
        given_up = [r for r in refused if r["outcome"] == "given_up"]
        assert all("401" in r["last_error"] and "Bad credentials" in r["last_error"] for r in given_up)
        assert {r["commit"] for r in refused} == {d0}
        assert refusing.statuses == []
        assert health.status_code == 503 and health.json()["statuses"]["status"] == "degraded"
        assert "a-token-github-refuses" not in json.dumps(rows) + health.text


# -- 3. a crash during a run: the execution's own status is resolved -----------------------------------------------


def test_an_execution_interrupted_by_a_crash_fails_its_own_status(
    tmp_path: Path, git_root: tuple[Path, str], github: RunningHost
) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    c0 = remote.push({"flows/tick.yaml": flow("tick", hourly=True)}, "first")
    sources = [remote.source(api_url=github.api_url)]
    tick = "gitsync/acme.demo.tick"
    daemon = start_daemon(tmp_path / "daemon", sources, env=ENV)
    try:
        daemon.wait_for(lambda: arrived(github, c0, SYNC, "success"), "the start-up sync's status", TIMEOUT)
        execution = api_run(daemon, "acme.demo.tick")
        daemon.wait_for(lambda: arrived(github, c0, tick, "pending"), "the execution's pending status", TIMEOUT)
    finally:
        daemon.kill()  # the execution is PAUSED: no thread of the new process can carry it on
    with running_daemon(tmp_path / "daemon", sources, env=ENV) as again:
        again.wait_for(lambda: again.api(f"/api/v1/executions/{execution}")["state"] == "FAILED", "worker lost")
        again.wait_for(lambda: not pending_rows(again), "the outbox to drain", TIMEOUT)
    assert received(github)[(c0, tick)][-1][0] == "failure"


# -- 4. a scheduled run reports on the commit of its revision, like any other run (issue 10, 1) ----------------------

EVERY_SECOND = """\
id: every
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: tick
triggers:
  - id: second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/1 * * * * *"
    withSeconds: true
"""


def test_a_scheduled_run_posts_its_status_on_the_commit_of_its_revision(
    tmp_path: Path, git_root: tuple[Path, str], github: RunningHost
) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    c0 = remote.push({"flows/every.yaml": EVERY_SECOND}, "first")
    context = "gitsync/acme.demo.every"
    with running_daemon(tmp_path / "daemon", [remote.source(api_url=github.api_url)], env=ENV) as daemon:
        daemon.wait_for(lambda: arrived(github, c0, context, "success"), "a scheduled run's status", TIMEOUT)
        runs = daemon.query("SELECT id, scheduled_at, source FROM executions WHERE flow_uid = 'acme.demo.every'")
    pending = [d for state, d in received(github)[(c0, context)] if state == "pending"]
    scheduled = {r["id"] for r in runs if r["scheduled_at"]}
    assert runs and len(scheduled) == len(runs)  # no run but the schedule's
    assert all(d.removeprefix("running (execution ").removesuffix(")") in scheduled for d in pending)
    assert github.violations == []


# -- 5. a source without a `status:` block: nothing is queued that nothing would send (issue 10, 12) ------------------


def unreported(remote: Remote) -> dict[str, Any]:
    """The source as `Remote.source` makes it, without its `status:` block (nothing posts its statuses)."""
    return {key: value for key, value in remote.source().items() if key != "status"}


def nothing_pending(daemon: Daemon) -> None:
    report = daemon.health().json()["statuses"]
    assert (report["pending"], report["oldest_pending_at"]) == (0, None), report
    assert daemon.query("SELECT * FROM outbox") == []


def test_a_source_without_a_status_block_queues_no_status(tmp_path: Path, git_root: tuple[Path, str]) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    remote.push({"flows/hello.yaml": flow("hello")}, "first")
    with running_daemon(tmp_path / "daemon", [unreported(remote)], env=ENV) as daemon:
        daemon.wait_for(lambda: "acme.demo.hello" in daemon.flow_uids(), "the start-up sync")
        c1 = remote.push({"flows/hello.yaml": flow("hello", "bonjour")}, "second")
        push_webhook(daemon, remote, c1)
        daemon.wait_for(lambda: commit_of(daemon, "acme.demo.hello") == c1, "the pushed commit applied")
        execution = api_run(daemon, "acme.demo.hello")
        daemon.wait_for(lambda: daemon.api(f"/api/v1/executions/{execution}")["state"] == "SUCCESS", "the run")
        head = remote.pull_request_head("feature", {"flows/pr.yaml": flow("pr")}, PR_NUMBER)
        pull_request_webhook(daemon, remote, "opened", head, c1)
        daemon.wait_for(
            lambda: daemon.query("SELECT 1 FROM outbox") or "not planned" in daemon.log_tail(),
            "the pull request to be handled",
        )
        nothing_pending(daemon)
        assert f"pull request #{PR_NUMBER} of main: not planned: the source has no status: block" in daemon.log_tail()


def test_a_restart_after_a_crash_queues_no_status_for_a_source_without_a_status_block(
    tmp_path: Path, git_root: tuple[Path, str]
) -> None:
    root, base = git_root
    remote = Remote(tmp_path, root, base)
    remote.push({"flows/tick.yaml": flow("tick", hourly=True)}, "first")
    sources = [unreported(remote)]
    daemon = start_daemon(tmp_path / "daemon", sources, env=ENV)
    try:
        daemon.wait_for(lambda: "acme.demo.tick" in daemon.flow_uids(), "the start-up sync")
        execution = api_run(daemon, "acme.demo.tick")
        daemon.wait_for(lambda: daemon.api(f"/api/v1/executions/{execution}")["state"] == "PAUSED", "the pause")
    finally:
        daemon.kill()  # the execution is PAUSED: the next start resolves it as worker lost
    with running_daemon(tmp_path / "daemon", sources, env=ENV) as again:
        again.wait_for(lambda: again.api(f"/api/v1/executions/{execution}")["state"] == "FAILED", "worker lost")
        nothing_pending(again)
