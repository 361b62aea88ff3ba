"""`gitsync review` as CI runs it: a real subprocess in a real clone, with the environment variables each CI sets
(GitHub Actions, Gitea/Forgejo Actions, GitLab CI), against a repository served over smart HTTP (tests/gitservers)
and the fake GitHub, Gitea and GitLab of tests/hostserver.py, which check every request against the host's
published schema. The clones are made with the git CLI, as a CI's checkout makes them (`git clone --depth 1` too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import installed
import jsonschema
import pytest
from gitservers import GitRepo, closed_port_url, git, http_git_server
from hostserver import RunningHost, host_server
from shared import SHARED, require

from gitsync.config import Settings, SourceConfig, StatusConfig
from gitsync.hosts import hidden_marker
from gitsync.hosts.webhooks import PullRequest
from gitsync.state.database import Store
from gitsync.sync.pull_requests import PlanJob, PullRequestPlanner, head_ref

TOKEN = "token-of-the-ci-job"
REPOSITORY = "acme/flows"
MARKER = hidden_marker("gitsync:plan:flows")  # the daemon's marker for a source named after the repository
HOSTS = ["github", "gitea", "gitlab"]

# GitLab's code-quality report, as its documentation describes the fields GitLab reads (no schema is published):
# an array of issues, each with these, `severity` one of the five names, and a line in `location.lines.begin`.
CODE_QUALITY_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string"},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def flow(flow_id: str, message: str = "hello") -> str:
    return f"""\
id: {flow_id}
namespace: acme
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: {message}
"""


INVALID = """\
id: broken
namespace: acme
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    mesage: hello
  - id: run
    type: io.kestra.plugin.scripts.shell.Comands
    commands: [echo hi]
"""


class Served:
    """`acme/flows` served over smart HTTP (basic auth: the CI job's token), its `main`, and pull requests pushed
    as a `feature` branch and the host's own head ref."""

    def __init__(self, tmp: Path, root: Path, base_url: str) -> None:
        self.tmp = tmp
        self.root = root
        self.base_url = base_url
        self.work = GitRepo(tmp / "work")
        self.first = self.work.commit({"flows/hello.yaml": flow("hello")}, "first")
        self.base = self.work.commit({"flows/hello.yaml": flow("hello", "v2")}, "second")
        self.bare = self.work.publish(root, REPOSITORY)

    @property
    def clone_url(self) -> str:
        return self.base_url.replace("http://", f"http://x-access-token:{TOKEN}@") + f"/{REPOSITORY}.git"

    def push_pr(self, host: str, number: int, files: dict[str, str | None], message: str = "change") -> str:
        """A commit on `feature` (branched from main), published as the branch and as the host's head ref."""
        branches = git("branch", "--list", "feature", cwd=self.work.path)
        git("checkout", "-q", *([] if branches else ["-b"]), "feature", cwd=self.work.path)
        try:
            sha = self.work.commit(files, message)
        finally:
            git("checkout", "-q", "main", cwd=self.work.path)
        git("push", "-q", "--force", str(self.bare), "feature:refs/heads/feature", cwd=self.work.path)
        git("push", "-q", "--force", str(self.bare), f"{sha}:{head_ref(host, number)}", cwd=self.work.path)
        return sha

    def clone(self, name: str, *options: str) -> Path:
        """The CI's checkout of the pull request's branch, made with the git CLI."""
        target = self.tmp / name
        git("clone", "-q", *options, "-b", "feature", self.clone_url, str(target))
        return target


@contextmanager
def serving(tmp: Path) -> Iterator[Served]:
    root = tmp / "srv"
    root.mkdir()
    with http_git_server(root, token=TOKEN) as base_url:
        yield Served(tmp, root, base_url)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as repository:
        yield repository


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> Iterator[RunningHost]:
    with host_server(request.param, REPOSITORY, TOKEN) as running:
        yield running


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def payload(name: str) -> dict:
    return json.loads(require(SHARED / "hosts" / "payloads" / name).read_text(encoding="utf-8"))


def ci_environment(
    kind: str, host: RunningHost, served: Served, checkout: Path, number: int, head: str, base: str
) -> dict[str, str]:
    """The variables the CI sets in the job (and the token the README's workflow passes), nothing else."""
    env = {"PATH": os.environ["PATH"], "HOME": str(served.tmp / "home"), "LANG": "C.UTF-8", "CI": "true"}
    if kind == "gitlab":
        return {
            **env,
            "GITLAB_CI": "true",
            "CI_SERVER_URL": served.base_url,
            "CI_API_V4_URL": host.api_url,
            "CI_PROJECT_ID": "7",
            "CI_PROJECT_PATH": REPOSITORY,
            "CI_PROJECT_DIR": str(checkout),
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(number),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
            "CI_COMMIT_SHA": head,
            "CI_COMMIT_REF_NAME": "feature",
            "CI_JOB_URL": f"{served.base_url}/{REPOSITORY}/-/jobs/99",
            "GITLAB_TOKEN": TOKEN,
        }
    event = payload("gitea/pull-request-event.json" if kind == "gitea" else "github/pull_request.opened.payload.json")
    event["number"] = event["pull_request"]["number"] = number
    event["pull_request"]["head"].update(sha=head, ref="feature")
    event["pull_request"]["base"].update(sha=base, ref="main")
    event_path = served.tmp / f"event-{number}-{head[:7]}.json"
    event_path.write_text(json.dumps(event), encoding="utf-8")
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_REPOSITORY_OWNER": "acme",
            "GITHUB_SERVER_URL": served.base_url,
            "GITHUB_API_URL": host.api_url,
            "GITHUB_REF": f"refs/pull/{number}/merge",
            "GITHUB_SHA": head,
            "GITHUB_HEAD_REF": "feature",
            "GITHUB_BASE_REF": "main",
            "GITHUB_RUN_ID": "42",
            "GITHUB_RUN_NUMBER": "7",
            "GITHUB_WORKSPACE": str(checkout),
            "GITHUB_STEP_SUMMARY": str(served.tmp / "step-summary.md"),
            "GITHUB_TOKEN": TOKEN,
        }
    )
    if kind == "gitea":  # a Forgejo runner sets both; Gitea's act_runner the first
        env.update({"GITEA_ACTIONS": "true", "FORGEJO_ACTIONS": "true"})
    return env


def review(checkout: Path, env: dict[str, str], *args: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "gitsync", "review", "--path", "flows", "--namespace-prefix", "acme", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def plan_statuses(host: RunningHost) -> list[tuple[str, str, str]]:
    return [(s["sha"], s["context"], s["state"]) for s in host.statuses]


def failed(kind: str) -> str:
    return "failed" if kind == "gitlab" else "failure"


# -- a valid pull request -----------------------------------------------------------------------------------------


def test_a_valid_pull_request_gets_a_success_status_and_the_plan_comment(served: Served, host: RunningHost) -> None:
    head = served.push_pr(host.kind, 3, {"flows/new.yaml": flow("new")})
    checkout = served.clone("checkout")  # the whole history: nothing to fetch
    run = review(checkout, ci_environment(host.kind, host, served, checkout, 3, head, served.base))

    assert run.code == 0, run.both
    assert "+ flow acme.new (flows/new.yaml)" in run.out
    assert "fetched" not in run.err
    assert plan_statuses(host) == [(head, "gitsync/plan", "success")]
    assert host.statuses[0]["description"] == "plan: +1 ~0 -0 flows, 0 trigger change(s)"
    [comment] = host.comments.values()
    assert comment["pr"] == 3 and comment["edits"] == 0
    assert comment["body"].startswith(MARKER)
    assert f"### gitsync plan `{served.base[:7]}` → `{head[:7]}` (`flows/`)" in comment["body"]
    assert "✅ head is valid" in comment["body"] and "`acme.new`" in comment["body"]
    assert host.violations == []
    assert "status gitsync/plan success" in run.err and "the plan comment on pull request #3 posted" in run.err
    if host.kind == "github":  # the status links the run; the job's summary holds the plan
        assert host.statuses[0]["target_url"] == f"{served.base_url}/{REPOSITORY}/actions/runs/42"
        assert "### gitsync plan" in (served.tmp / "step-summary.md").read_text(encoding="utf-8")
    if host.kind == "gitlab":
        assert host.statuses[0]["target_url"] == f"{served.base_url}/{REPOSITORY}/-/jobs/99"
        assert json.loads((checkout / "gl-code-quality-report.json").read_text(encoding="utf-8")) == []


# -- an invalid pull request --------------------------------------------------------------------------------------


def test_an_invalid_pull_request_fails_with_annotations_at_the_lines(served: Served, host: RunningHost) -> None:
    head = served.push_pr(host.kind, 4, {"flows/broken.yaml": INVALID, "flows/new.yaml": flow("new")})
    checkout = served.clone("checkout")
    run = review(checkout, ci_environment(host.kind, host, served, checkout, 4, head, served.base))

    assert run.code == 1, run.both
    [(sha, context, state)] = plan_statuses(host)
    assert (sha, context, state) == (head, "gitsync/plan", failed(host.kind))
    assert host.statuses[0]["description"].startswith("flows/broken.yaml:6: unknown property 'mesage'")
    assert host.statuses[0]["description"].endswith("(+1 more)")
    [comment] = host.comments.values()
    assert "❌ head is invalid: nothing would be applied" in comment["body"]
    assert "`flows/broken.yaml:8:5` (tasks[1].type): unknown task type" in comment["body"]
    assert host.violations == []
    if host.kind in ("github", "gitea"):
        annotations = [line for line in run.out.splitlines() if line.startswith("::")]
        assert len(annotations) == 2, run.out
        assert annotations[0] == (
            "::error file=flows/broken.yaml,line=6,col=5,title=gitsync%3A acme.broken::tasks[0].mesage: unknown "
            "property 'mesage' (did you mean 'message'?) for io.kestra.plugin.core.log.Log"
        )
        assert annotations[1].startswith(
            "::error file=flows/broken.yaml,line=8,col=5,title=gitsync%3A acme.broken::tasks[1].type: unknown task "
            "type 'io.kestra.plugin.scripts.shell.Comands' (did you mean io.kestra.plugin.scripts.shell.Commands"
        )
    else:
        assert "::error" not in run.out
        report = json.loads((checkout / "gl-code-quality-report.json").read_text(encoding="utf-8"))
        jsonschema.validate(report, CODE_QUALITY_SCHEMA)
        assert [(i["location"]["path"], i["location"]["lines"]["begin"], i["severity"]) for i in report] == [
            ("flows/broken.yaml", 6, "blocker"),
            ("flows/broken.yaml", 8, "blocker"),
        ]
        assert report[1]["description"].startswith("flow 'acme.broken' (tasks[1].type): unknown task type")
        assert len({i["fingerprint"] for i in report}) == 2


# -- one comment, whoever posts ----------------------------------------------------------------------------------


def test_a_second_push_edits_the_one_comment(served: Served, host: RunningHost) -> None:
    first = served.push_pr(host.kind, 5, {"flows/new.yaml": flow("new")}, "first push")
    checkout = served.clone("first-checkout")
    assert review(checkout, ci_environment(host.kind, host, served, checkout, 5, first, served.base)).code == 0

    second = served.push_pr(host.kind, 5, {"flows/new.yaml": flow("new", "changed")}, "second push")
    checkout = served.clone("second-checkout")
    run = review(checkout, ci_environment(host.kind, host, served, checkout, 5, second, served.base))

    assert run.code == 0, run.both
    assert plan_statuses(host) == [(first, "gitsync/plan", "success"), (second, "gitsync/plan", "success")]
    [comment] = host.comments.values()
    assert comment["edits"] == 1 and comment["body"].count(MARKER) == 1
    assert f"→ `{second[:7]}`" in comment["body"] and first[:7] not in comment["body"]
    assert "the plan comment on pull request #5 edited in place" in run.err
    assert host.violations == []


def test_the_daemon_and_ci_post_one_comment_between_them(served: Served, tmp_path: Path) -> None:
    with host_server("github", REPOSITORY, TOKEN) as host:
        os.environ["GITSYNC_TEST_REVIEW_TOKEN"] = TOKEN
        try:
            status = StatusConfig(
                provider="github", api_url=host.api_url, repository=REPOSITORY, token_env="GITSYNC_TEST_REVIEW_TOKEN"
            )
            source = SourceConfig(
                name="flows",
                repo=f"{served.base_url}/{REPOSITORY}.git",
                branch="main",
                path="flows",
                namespace_prefix="acme",
                token_env="GITSYNC_TEST_REVIEW_TOKEN",
                status=status,
            )
            settings = Settings(db=str(tmp_path / "state.db"), data_dir=str(tmp_path / "data"), sources=[source])
            head = served.push_pr("github", 6, {"flows/new.yaml": flow("new")})
            store = Store(tmp_path / "state.db")
            try:
                pr = PullRequest(number=6, action="opened", head_sha=head, head_ref="feature", base_ref="main")
                PullRequestPlanner(settings, store, installed.registry()).plan(PlanJob("flows", "github", pr))
            finally:
                store.close()
        finally:
            del os.environ["GITSYNC_TEST_REVIEW_TOKEN"]
        [daemons] = host.comments.values()
        assert daemons["body"].startswith(MARKER)

        checkout = served.clone("checkout")
        run = review(checkout, ci_environment("github", host, served, checkout, 6, head, served.base))
        assert run.code == 0, run.both
        [comment] = host.comments.values()
        assert comment["id"] == daemons["id"] and comment["edits"] == 1
        assert host.violations == []


# -- shallow clones -----------------------------------------------------------------------------------------------


def test_a_depth_1_clone_fetches_the_base_and_the_history_the_plan_reads(served: Served, host: RunningHost) -> None:
    head = served.push_pr(host.kind, 7, {"flows/hello.yaml": flow("hello")}, "back to the first version")
    checkout = served.clone("checkout", "--depth", "1")
    assert git("rev-parse", "--is-shallow-repository", cwd=checkout) == "true"
    run = review(checkout, ci_environment(host.kind, host, served, checkout, 7, head, served.base))

    assert run.code == 0, run.both
    ref = head_ref(host.kind, 7)
    assert (
        f"the clone lacks the base commit {served.base[:7]}: fetched main and {ref} from {served.base_url}/" in run.err
    )
    assert TOKEN not in run.both
    assert f"restores the version of commit {served.first[:7]}" in run.out  # history the clone did not hold
    assert "shallow" not in run.out
    assert plan_statuses(host) == [(head, "gitsync/plan", "success")]
    [comment] = host.comments.values()
    assert f"restores the version of commit `{served.first[:7]}`" in comment["body"]
    assert host.violations == []


def test_a_shallow_clone_that_cannot_fetch_says_what_the_plan_could_not_compute(served: Served) -> None:
    head = served.push_pr("github", 8, {"flows/hello.yaml": flow("hello")}, "back to the first version")
    checkout = served.clone("checkout", "--depth", "2")  # head and base, not the base's parents
    with host_server("github", REPOSITORY, TOKEN) as host:
        env = ci_environment("github", host, served, checkout, 8, head, served.base)
        env["GITHUB_SERVER_URL"] = closed_port_url().removesuffix("/nothing.git")
        run = review(checkout, env)
        assert run.code == 0, run.both
        assert "restores the version" not in run.out
        assert (
            "note: the clone lacks all but 1 commit(s) of the base's history (a shallow clone), and fetching "
            "it failed: " in run.out
        )
        assert "note: the clone is shallow: reverts were looked for in only 1 commit(s) of base's history" in run.out
        [comment] = host.comments.values()
        assert "> **Note:** the clone is shallow: reverts were looked for in only 1 commit(s)" in comment["body"]


def test_a_clone_without_the_base_that_cannot_fetch_it_is_exit_2(served: Served) -> None:
    head = served.push_pr("github", 9, {"flows/new.yaml": flow("new")})
    checkout = served.clone("checkout", "--depth", "1")
    with host_server("github", REPOSITORY, TOKEN) as host:
        env = ci_environment("github", host, served, checkout, 9, head, served.base)
        env["GITHUB_SERVER_URL"] = closed_port_url().removesuffix("/nothing.git")
        run = review(checkout, env)
        assert run.code == 2, run.both
        assert (
            f"gitsync review: cannot plan: the clone lacks the base commit {served.base[:7]}, and fetching it failed:"
            in run.err
        )
        assert host.received == 0


# -- what is not right --------------------------------------------------------------------------------------------

TOKEN_FIX = {
    "github": "GITSYNC_REVIEW_TOKEN or GITHUB_TOKEN is not set. To fix it, pass the workflow's token to the step "
    "(`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`)",
    "gitea": "GITSYNC_REVIEW_TOKEN or GITHUB_TOKEN or GITEA_TOKEN or FORGEJO_TOKEN is not set. To fix it, pass the "
    "job's token to the step (`env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}`",
    "gitlab": "GITSYNC_REVIEW_TOKEN or GITLAB_TOKEN is not set. To fix it, add a masked CI/CD variable GITLAB_TOKEN "
    "holding a project access token with the `api` scope",
}


def test_a_missing_token_is_a_clear_usage_error(served: Served, host: RunningHost) -> None:
    head = served.push_pr(host.kind, 10, {"flows/new.yaml": flow("new")})
    checkout = served.clone("checkout")
    env = ci_environment(host.kind, host, served, checkout, 10, head, served.base)
    del env["GITLAB_TOKEN" if host.kind == "gitlab" else "GITHUB_TOKEN"]
    run = review(checkout, env)
    assert run.code == 2, run.both
    assert run.err.startswith("gitsync review: no token to post the review to the pull request with: ")
    assert TOKEN_FIX[host.kind] in run.err
    assert run.out == "" and host.received == 0


def test_a_token_the_host_refuses_is_exit_2_saying_what_it_needs(served: Served) -> None:
    head = served.push_pr("github", 11, {"flows/new.yaml": flow("new")})
    checkout = served.clone("checkout")
    with host_server("github", REPOSITORY, "another-token") as host:
        run = review(checkout, ci_environment("github", host, served, checkout, 11, head, served.base))
    assert run.code == 2, run.both
    assert "+ flow acme.new" in run.out
    assert "gitsync review: the plan was made but not posted to pull request #11 of acme/flows" in run.err
    assert "HTTP 401: Bad credentials; the token needs `statuses: write` and `pull-requests: write`" in run.err
    assert "(GITHUB_TOKEN was used)" in run.err


def test_a_run_that_is_not_for_a_pull_request_says_how_to_run_it(served: Served, host: RunningHost) -> None:
    served.push_pr(host.kind, 12, {"flows/new.yaml": flow("new")})
    checkout = served.clone("checkout")
    env = ci_environment(host.kind, host, served, checkout, 12, served.base, served.first)
    if host.kind == "gitlab":
        del env["CI_MERGE_REQUEST_IID"]
        env["CI_PIPELINE_SOURCE"] = "push"
        expected = "this is not a merge request pipeline (CI_MERGE_REQUEST_IID is not set; CI_PIPELINE_SOURCE is push)"
    else:
        Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps(payload("github/push.payload.json")), encoding="utf-8")
        env["GITHUB_EVENT_NAME"] = "push"
        expected = "this run is not for a pull request (its event is push): run the workflow `on: pull_request`"
    run = review(checkout, env)
    assert run.code == 2, run.both
    assert expected in run.err and host.received == 0
