"""PullRequestPlanner without the daemon: a real repository served over smart HTTP on 127.0.0.1 (the pull
request's head published where each host keeps it), a real SQLite outbox drained by the real sender, and the fake
GitHub / GitLab of tests/hostserver.py checking every status and comment request against the host's schema."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import installed
import pytest
from gitservers import GitRepo, closed_port_url, git, http_git_server
from hostserver import RunningHost, host_server

from gitsync.config import Settings, SourceConfig, StatusConfig
from gitsync.hosts import hidden_marker
from gitsync.hosts.webhooks import PullRequest, Repository, WebhookEvent
from gitsync.state.database import Store
from gitsync.statuses.sender import Backoff, OutboxSender
from gitsync.sync.pull_requests import PLAN_CONTEXT, PlanJob, PullRequestPlanner, head_ref

pytestmark = pytest.mark.filterwarnings(  # a provider's connections left open would be a leak per pull request
    "error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def _earlier_garbage_collected() -> None:
    """Sockets that EARLIER test modules left for the garbage collector are collected before each test, with
    their warnings ignored, so that only what this test leaks can fail it (the collector runs at any time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


GIT_TOKEN_ENV, GIT_TOKEN = "GITSYNC_TEST_PR_GIT_TOKEN", "git-token-for-pr-tests"
STATUS_TOKEN_ENV, STATUS_TOKEN = "GITSYNC_TEST_PR_STATUS_TOKEN", "status-token-for-pr-tests"
REPOSITORY = "acme/flows"
MARKER = hidden_marker("gitsync:plan:main")


def planner_for(settings: Settings, store: Store) -> PullRequestPlanner:
    return PullRequestPlanner(settings, store, installed.registry())


def flow(flow_id: str, message: str = "hello") -> str:
    return f"""\
id: {flow_id}
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
"""


INVALID = """\
id: broken
namespace: acme.demo
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.NoSuchTask
    message: hi
"""


class Remote:
    """`main` published to `<root>/flows.git`; pull-request heads pushed to the host's own ref."""

    def __init__(self, tmp: Path, root: Path, base_url: str) -> None:
        self.root = root
        self.bare = root / "flows.git"
        self.repo = GitRepo(tmp / "work")
        self.url = f"{base_url}/flows.git"
        self.base = self.repo.commit({"flows/hello.yaml": flow("hello")}, "first")
        self.repo.publish(root, "flows")

    def head(self, host: str, number: int, files: dict[str, str | None]) -> str:
        """A commit on top of main, published only as the pull request's head ref (no branch)."""
        git("checkout", "-q", "--detach", "main", cwd=self.repo.path)
        try:
            sha = self.repo.commit(files, f"pull request {number}")
        finally:
            git("checkout", "-q", "main", cwd=self.repo.path)
        git("push", "-q", "--force", str(self.bare), f"{sha}:{head_ref(host, number)}", cwd=self.repo.path)
        return sha


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Remote]:
    monkeypatch.setenv(GIT_TOKEN_ENV, GIT_TOKEN)
    monkeypatch.setenv(STATUS_TOKEN_ENV, STATUS_TOKEN)
    root = tmp_path / "srv"
    root.mkdir()
    with http_git_server(root, token=GIT_TOKEN) as base_url:
        yield Remote(tmp_path, root, base_url)


@pytest.fixture(params=["github", "gitlab"])
def host(request: pytest.FixtureRequest) -> Iterator[RunningHost]:
    with host_server(request.param, REPOSITORY, STATUS_TOKEN) as running:
        yield running


def settings_for(
    tmp_path: Path, remote: Remote, kind: str, api_url: str, token_env: str = STATUS_TOKEN_ENV
) -> Settings:
    status = StatusConfig(provider=kind, api_url=api_url, repository=REPOSITORY, token_env=token_env)  # type: ignore[arg-type]
    source = SourceConfig(
        name="main",
        repo=remote.url,
        branch="main",
        path="flows",
        namespace_prefix="acme.demo",
        token_env=GIT_TOKEN_ENV,
        status=status,
    )
    return Settings(db=str(tmp_path / "state.db"), data_dir=str(tmp_path / "data"), sources=[source])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "state.db")
    yield db
    db.close()


def pull_request(kind: str, number: int, head: str, action: str = "opened") -> PullRequest:
    return PullRequest(number=number, action=action, head_sha=head, head_ref="feature", base_ref="main")


def drain(store: Store, settings: Settings) -> None:
    sender = OutboxSender.from_settings(store, settings, backoff=Backoff(base=0.01, cap=0.05))
    try:
        assert sender.drain()
    finally:
        sender.close()


def outbox(store: Store) -> list[tuple[str, str, str, str]]:
    rows = store.query("SELECT commit_sha, context, state, description FROM outbox ORDER BY id")
    return [(r["commit_sha"], r["context"], r["state"], r["description"]) for r in rows]


# -- the heads of each host ---------------------------------------------------------------------------------------


def test_head_refs() -> None:
    assert head_ref("github", 12) == "refs/pull/12/head"
    assert head_ref("gitea", 12) == "refs/pull/12/head"
    assert head_ref("gitlab", 12) == "refs/merge-requests/12/head"


def test_a_pull_request_is_planned_reported_and_commented_once(
    tmp_path: Path, remote: Remote, host: RunningHost, store: Store
) -> None:
    settings = settings_for(tmp_path, remote, host.kind, host.api_url)
    planner = planner_for(settings, store)
    h1 = remote.head(host.kind, 3, {"flows/new.yaml": flow("new")})
    plan = planner.plan(PlanJob("main", host.kind, pull_request(host.kind, 3, h1)))
    assert plan is not None and plan.valid and plan.flow_uids("added") == ["acme.demo.new"]
    assert plan.base == remote.base and plan.head == h1
    assert outbox(store) == [(h1, PLAN_CONTEXT, "success", "plan: +1 ~0 -0 flows, 0 trigger change(s)")]

    h2 = remote.head(host.kind, 3, {"flows/new.yaml": flow("new"), "flows/hello.yaml": flow("hello", "changed")})
    planner.plan(PlanJob("main", host.kind, pull_request(host.kind, 3, h2, "synchronize")))
    drain(store, settings)

    assert [(s["sha"], s["context"], s["state"]) for s in host.statuses] == [
        (h1, PLAN_CONTEXT, "success"),
        (h2, PLAN_CONTEXT, "success"),
    ]
    assert host.statuses[1]["description"] == "plan: +1 ~1 -0 flows, 0 trigger change(s)"
    assert len(host.comments) == 1
    comment = next(iter(host.comments.values()))
    assert comment["pr"] == 3 and comment["edits"] == 1
    assert MARKER in comment["body"] and h2[:7] in comment["body"] and "acme.demo.hello" in comment["body"]
    assert host.violations == []
    # nothing of the head is applied: the state holds no flow, and only refs/gitsync/… points at the head
    assert store.query("SELECT uid FROM flows") == []


def test_an_invalid_head_fails_with_the_file_and_line(
    tmp_path: Path, remote: Remote, host: RunningHost, store: Store
) -> None:
    settings = settings_for(tmp_path, remote, host.kind, host.api_url)
    head = remote.head(host.kind, 4, {"flows/broken.yaml": INVALID, "flows/other.yaml": INVALID.replace("broken", "x")})
    plan = planner_for(settings, store).plan(PlanJob("main", host.kind, pull_request(host.kind, 4, head)))
    assert plan is not None and not plan.valid
    [(commit, context, state, description)] = outbox(store)
    assert (commit, context, state) == (head, PLAN_CONTEXT, "failure")
    assert description.startswith("flows/broken.yaml:5:") and "NoSuchTask" in description
    assert description.endswith("(+1 more)")
    drain(store, settings)
    [posted] = host.statuses
    assert posted["state"] == ("failed" if host.kind == "gitlab" else "failure")
    assert posted["description"].startswith("flows/broken.yaml:5:")
    comment = next(iter(host.comments.values()))
    assert "head is invalid" in comment["body"] and "flows/broken.yaml:5" in comment["body"]
    assert host.violations == []


def test_a_head_the_remote_does_not_have_is_an_error_status(tmp_path: Path, remote: Remote, store: Store) -> None:
    settings = settings_for(tmp_path, remote, "github", closed_port_url())
    missing = "f" * 40
    assert planner_for(settings, store).plan(PlanJob("main", "github", pull_request("github", 99, missing))) is None
    [(commit, context, state, description)] = outbox(store)
    assert (commit, context, state) == (missing, PLAN_CONTEXT, "error")
    assert "refs/pull/99/head" in description


# -- the planner's thread -------------------------------------------------------------------------------------------


def event(kind: str, pr: PullRequest) -> WebhookEvent:
    return WebhookEvent(
        kind, "pull_request", "pull_request", "delivery", Repository(full_name=REPOSITORY), pull_request=pr
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("kind, closed", [("github", "closed"), ("gitlab", "close"), ("gitlab", "merge")])
def test_closed_pull_requests_are_ignored(tmp_path: Path, remote: Remote, store: Store, kind: str, closed: str) -> None:
    settings = settings_for(tmp_path, remote, kind, closed_port_url())
    head = remote.head(kind, 5, {"flows/new.yaml": flow("new")})
    planner = planner_for(settings, store)
    planner.start()
    planner.submit("main", event(kind, pull_request(kind, 5, head, closed)))
    planner.submit("main", event(kind, pull_request(kind, 5, head, "opened" if kind == "github" else "open")))
    planner.close()  # waits for the queue: the open one was planned, the closed one never queued
    assert [(c, ctx, s) for c, ctx, s, _ in outbox(store)] == [(head, PLAN_CONTEXT, "success")]


# -- the comment is a side channel --------------------------------------------------------------------------------


def test_a_host_error_on_the_comment_is_logged_not_raised(
    tmp_path: Path,
    remote: Remote,
    host: RunningHost,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITSYNC_TEST_PR_WRONG_TOKEN", "not-the-token")
    settings = settings_for(tmp_path, remote, host.kind, host.api_url, token_env="GITSYNC_TEST_PR_WRONG_TOKEN")
    head = remote.head(host.kind, 6, {"flows/new.yaml": flow("new")})
    with caplog.at_level(logging.WARNING, logger="gitsync.pull_requests"):
        plan = planner_for(settings, store).plan(PlanJob("main", host.kind, pull_request(host.kind, 6, head)))
    assert plan is not None and plan.valid
    assert [(c, ctx, s) for c, ctx, s, _ in outbox(store)] == [(head, PLAN_CONTEXT, "success")]
    assert host.comments == {}
    [record] = [r for r in caplog.records if "comment was not posted" in r.getMessage()]
    assert "#6" in record.getMessage() and "401" in record.getMessage()
    assert "not-the-token" not in caplog.text


def test_a_missing_token_or_an_unreachable_host_is_logged_not_raised(
    tmp_path: Path, remote: Remote, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    head = remote.head("github", 8, {"flows/new.yaml": flow("new")})
    for settings in (
        settings_for(tmp_path, remote, "github", closed_port_url(), token_env="GITSYNC_TEST_PR_UNSET_TOKEN"),
        settings_for(tmp_path, remote, "github", closed_port_url()),
    ):
        with caplog.at_level(logging.WARNING, logger="gitsync.pull_requests"):
            assert planner_for(settings, store).plan(PlanJob("main", "github", pull_request("github", 8, head)))
    messages = [r.getMessage() for r in caplog.records if "comment was not posted" in r.getMessage()]
    assert len(messages) == 2
    assert "GITSYNC_TEST_PR_UNSET_TOKEN" in messages[0] and "cannot reach the host" in messages[1]


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_markdown_is_shortened_to_the_hosts_limit(tmp_path: Path, remote: Remote, store: Store, kind: str) -> None:
    """A pull request adding 300 flows with long names: its plan is over GitHub's 65,536 characters, and under
    GitLab's 1,000,000. The source has a long name, so the comment's hidden marker is long too."""
    name = "a-source-whose-name-is-long-" * 4
    long = "a_flow_with_a_rather_long_name_so_that_the_plan_comment_grows_past_the_limit_of_github_"
    files: dict[str, str | None] = {f"flows/{long}{n:03}.yaml": flow(f"{long}{n:03}") for n in range(300)}
    head = remote.head(kind, 9, files)
    with host_server(kind, REPOSITORY, STATUS_TOKEN) as running:
        settings = settings_for(tmp_path, remote, kind, running.api_url)
        settings = settings.model_copy(update={"sources": [settings.sources[0].model_copy(update={"name": name})]})
        plan = planner_for(settings, store).plan(PlanJob(name, kind, pull_request(kind, 9, head)))
        assert plan is not None and len(plan.flow_uids("added")) == 300
        assert running.violations == []
        [comment] = running.comments.values()
    body = comment["body"]
    assert body.startswith(hidden_marker(f"gitsync:plan:{name}"))
    if kind == "github":
        assert len(body) <= 65_536 and "left out to fit a comment" in body
        assert f"{long}000" in body and f"{long}299" not in body
    else:
        assert 65_536 < len(body) <= 1_000_000 and "left out" not in body
        assert all(f"acme.demo.{long}{n:03}" in body for n in range(300))
